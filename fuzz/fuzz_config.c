/* config.json / model_index.json / scheduler_config.json text into the typed
 * configs.  The input is parsed as JSON once and handed to every parser
 * (UNet2DModel, UNet2DConditionModel, AutoencoderKL, CLIPTextConfig,
 * PriorTransformer, UnCLIPTextProjModel, scheduler config, model_index
 * components of every pipeline family); an accepted model config is
 * then described (the state_dict shapes loading would ask for), and an
 * accepted scheduler config is printed, converted to every class and run
 * for a few steps on a tiny sample. */
#include <math.h>

#include "fuzz_util.h"
#include "io/json.h"
#include "models/clip_text.h"
#include "models/prior_transformer.h"
#include "models/text_proj.h"
#include "models/unet2d.h"
#include "models/unet2d_cond.h"
#include "models/unet2d_config.h"
#include "models/unet2d_cond_config.h"
#include "models/vae.h"
#include "pipelines/pipeline_internal.h"
#include "schedulers/scheduler.h"

/* Every described tensor has 1..4 positive dims whose product fits easily. */
static cdf_status record(const char *name, int ndim, const int64_t *shape, void *user) {
    (void)user;
    FZ_CHECK(name && name[0] && strlen(name) < 256);
    FZ_CHECK(ndim >= 1 && ndim <= 4);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        FZ_CHECK(shape[i] >= 1 && shape[i] <= ((int64_t)1 << 31));
        FZ_CHECK(n <= INT64_MAX / shape[i]);
        n *= shape[i];
    }
    return CDF_OK;
}

static void run_scheduler(const cdf_sched_config *cfg) {
    cdf_error err = {0};
    cdf_scheduler *s = NULL;
    if (cfg->num_train_timesteps > 4096) return; /* valid but slow: keep the fuzzer fast */
    cdf_status st = cdf_scheduler_new(cfg, &s, &err);
    FZ_CHECK_STATUS(st, err);
    if (st) return;
    static const int steps[] = {1, 3};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        cdf_error e2 = {0};
        st = cdf_scheduler_set_timesteps(s, steps[k], &e2);
        FZ_CHECK_STATUS(st, e2);
        if (st) continue;
        int n = cdf_scheduler_num_timesteps(s);
        FZ_CHECK(n >= 1 && n <= 64);
        float sample[2 * 3] = {0.5f, -1.0f, 0.25f, 2.0f, 0.0f, -0.75f};
        float model[2 * 3] = {0.1f, 0.2f, -0.3f, 0.4f, -0.5f, 0.6f};
        float noise[2 * 3] = {1.0f, -1.0f, 0.5f, -0.5f, 0.25f, -0.25f};
        cdf_sched_step_opts so = {0.5, -1};
        for (int i = 0; i < n; i++) {
            (void)cdf_scheduler_timestep(s, i);
            (void)cdf_scheduler_timestep_value(s, i);
            cdf_scheduler_scale_model_input(s, i, sample, sample, 6);
            int nn = cdf_scheduler_step_needs_noise(s, i, &so);
            st = cdf_scheduler_step(s, i, model, 3, sample, 2, 3, 1, nn ? noise : NULL, &so, &e2);
            FZ_CHECK_STATUS(st, e2);
            if (st) break;
        }
    }
    cdf_scheduler_free(s);
}

static void try_scheduler(const cJSON *root) {
    cdf_error err = {0};
    cdf_sched_config cfg;
    cdf_status s = cdf_sched_config_parse(root, "scheduler_config.json", &cfg, &err);
    FZ_CHECK_STATUS(s, err);
    if (s) return;
    char *js = cdf_sched_config_to_json(&cfg);
    FZ_CHECK(js != NULL);
    /* the printed config reads back to the same config */
    cJSON *again = NULL;
    cdf_error e2 = {0};
    s = cdf_json_parse(js, strlen(js), "printed", &again, &e2);
    FZ_CHECK(s == CDF_OK);
    cdf_sched_config cfg2;
    s = cdf_sched_config_parse(again, "printed", &cfg2, &e2);
    if (s != CDF_OK) {
        fprintf(stderr, "printed config does not parse: %s\n%s\n", e2.msg, js);
        abort();
    }
    char *js2 = cdf_sched_config_to_json(&cfg2);
    FZ_CHECK(js2 && strcmp(js, js2) == 0);
    cdf_free(js2);
    cdf_sched_config_free(&cfg2);
    cJSON_Delete(again);
    cdf_free(js);
    run_scheduler(&cfg);
    for (int k = 0; k < CDF_SCHED_N_KINDS; k++) {
        cdf_sched_config c;
        cdf_error e3 = {0};
        if (cdf_sched_config_copy(&c, &cfg, &e3) != CDF_OK) abort();
        s = cdf_sched_config_convert(&c, (cdf_sched_kind)k, &e3);
        FZ_CHECK_STATUS(s, e3);
        if (s == CDF_OK) {
            FZ_CHECK(c.kind == (cdf_sched_kind)k);
            if (k == CDF_SCHED_EULER || k == CDF_SCHED_DPMSOLVER_MULTISTEP) run_scheduler(&c);
        }
        cdf_sched_config_free(&c);
    }
    cdf_sched_config_free(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cdf_error err = {0};
    cJSON *root = NULL;
    cdf_status s = cdf_json_parse((const char *)data, size, "config.json", &root, &err);
    FZ_CHECK_STATUS(s, err);
    if (s) return 0;

    cdf_unet2d_config u;
    err = (cdf_error){0};
    s = cdf_unet2d_config_parse(root, "unet/config.json", &u, &err);
    FZ_CHECK_STATUS(s, err);
    if (!s) {
        err = (cdf_error){0};
        s = cdf_unet2d_describe(&u, record, NULL, &err);
        FZ_CHECK_STATUS(s, err);
    }

    cdf_unet2d_cond_config uc;
    err = (cdf_error){0};
    s = cdf_unet2d_cond_config_parse(root, "unet/config.json", &uc, &err);
    FZ_CHECK_STATUS(s, err);
    if (!s) {
        err = (cdf_error){0};
        s = cdf_unet2d_cond_describe(&uc, record, NULL, &err);
        FZ_CHECK_STATUS(s, err);
    }

    cdf_vae_config v;
    err = (cdf_error){0};
    s = cdf_vae_config_parse(root, "vae/config.json", &v, &err);
    FZ_CHECK_STATUS(s, err);
    if (!s) {
        err = (cdf_error){0};
        s = cdf_vae_describe(&v, record, NULL, &err);
        FZ_CHECK_STATUS(s, err);
    }

    cdf_clip_text_config ct;
    err = (cdf_error){0};
    s = cdf_clip_text_config_parse(root, "text_encoder/config.json", &ct, &err);
    FZ_CHECK_STATUS(s, err);
    if (!s) {
        err = (cdf_error){0};
        s = cdf_clip_text_describe(&ct, record, NULL, &err);
        FZ_CHECK_STATUS(s, err);
    }

    cdf_prior_config pc;
    err = (cdf_error){0};
    s = cdf_prior_config_parse(root, "prior/config.json", &pc, &err);
    FZ_CHECK_STATUS(s, err);
    if (!s) {
        err = (cdf_error){0};
        s = cdf_prior_describe(&pc, record, NULL, &err);
        FZ_CHECK_STATUS(s, err);
    }

    cdf_text_proj_config tp;
    err = (cdf_error){0};
    s = cdf_text_proj_config_parse(root, "text_proj/config.json", &tp, &err);
    FZ_CHECK_STATUS(s, err);
    if (!s) {
        err = (cdf_error){0};
        s = cdf_text_proj_describe(&tp, record, NULL, &err);
        FZ_CHECK_STATUS(s, err);
    }

    try_scheduler(root);

    static const char *const keys[] = {"unet", "scheduler", "vae", "text_encoder", "tokenizer", "safety_checker",
                                       "prior", "text_proj", "decoder", "super_res_first", "prior_scheduler"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *cls = NULL;
        err = (cdf_error){0};
        s = cdf_index_component(root, "model_index.json", keys[i], i < 2, &cls, &err);
        FZ_CHECK_STATUS(s, err);
        if (!s && cls) FZ_CHECK(strlen(cls) < size + 1);
    }
    cJSON_Delete(root);
    return 0;
}
