/* The text-encoder result cache (cdf_text_cache, src/pipelines/text_cache.c)
 * on the tiny Stable Diffusion and Stable Diffusion XL pipelines:
 *   rows_independent: the CLIP text forwards the cache relies on give every
 *     row the bits it has alone (tiny SD encoder, tiny SDXL text_encoder_2
 *     with its pooled embeds, and a wider synthetic encoder whose products
 *     span several k blocks), on 1 and 3 threads, float32 and bf16 products;
 *   sd_same_bytes / sdxl_same_bytes: images (and every step's latents) made
 *     with a cache equal those made without, for a first call (all misses), a
 *     repeat (all hits), a call mixing cached and new prompts in a list with
 *     negatives, num_images_per_prompt 2 and clip_skip 1, its repeat, and the
 *     same list at clip_skip 0; hits and misses exactly as counted by hand;
 *     a text repeated within a call is encoded once (the call's GEMM work);
 *   precision_keyed: bf16 matrix products give other embeddings: a bf16
 *     call after a float32 one misses (SD and SDXL), same bytes as uncached;
 *   sd_eviction / sdxl_eviction: a cache of one entry, of two (SD: least
 *     recently used out first, as the counts show), of a few (SDXL) and one
 *     too small for any entry still give the same bytes, with the misses
 *     counted again;
 *   two_pipelines: one cache serving tiny-sd15-a and tiny-sd15-b-f16
 *     (different weights) never gives one's embeddings to the other, nor to a
 *     pipeline loaded after one is freed (possibly at the same address);
 *   reload_same_shapes: after tiny-sd15-a is freed, a twin of it (the same
 *     configs and tokenizer, other synthetic weights, so its allocations
 *     repeat and its encoder can take the freed one's address) finds none of
 *     its entries;
 *   oom_sd / oom_sdxl: a cache's life (new; the first call and the mixed
 *     call stopped once their text is encoded; the mixed call again, in full,
 *     from what is cached; free) with allocation n failed, for every n of its
 *     creation and of each call's text phase (tokenizing, cache lookups,
 *     encoding, stores): CDF_OK (a failed store or index growth just caches
 *     less: same bytes, and for some n fewer hits) or CDF_ERR_NOMEM, and no
 *     block left allocated.  The UNet's allocations are swept without a
 *     cache by test_hardening_oom_sd. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cdiffusers/pipeline.h"
#include "cdiffusers/rng.h"
#include "models/clip_text.h"
#include "models/synthetic.h"
#include "oom_alloc.h"
#include "pipelines/pipeline_internal.h"
#include "tensor/exec.h"
#include "text/clip_tokenizer.h"

#define SEED "7"
#define MAX_IMAGES 8

/* ---- generate calls ---- */

typedef struct call {
    const char *const *prompts;
    size_t np;
    const char *const *negs;
    size_t nn;
    const char *const *prompts_2;
    size_t np2;
    int nipp, clip_skip;
    double guidance;
    cdf_output_type output;
    int steps;        /* 0: 2 */
    cdf_precision precision;
    int stop;         /* stop at the initial noise (CDF_ERR_INTERRUPTED): the text phase only */
} call;

typedef struct result {
    cdf_status status;
    cdf_tensor img;
    uint64_t steps_hash; /* FNV-1a over every step's latents */
    double gflop;
    const tu_oom *count; /* the allocation counter while the call runs under it, else NULL */
    int stop;            /* the call's stop */
    long text_from, text_to; /* allocations made when generate began, and at the initial noise (text encoded) */
} result;

static int hash_steps(const cdf_step_info *si, void *user) {
    result *r = user;
    if (si->step == -1 && r->count) r->text_to = r->count->calls;
    const unsigned char *b = (const unsigned char *)si->latents;
    size_t n = (size_t)si->batch * si->channels * si->height * si->width * sizeof(float);
    for (size_t i = 0; i < n; i++) r->steps_hash = (r->steps_hash ^ b[i]) * 0x100000001b3ull;
    return r->stop;
}

/* One call; every image has its own generator seeded SEED, so an image
 * depends only on its prompt row (equal rows give equal images). */
static void run_call(cdf_pipeline *p, const call *c, cdf_text_cache *cache, int threads, const tu_oom *count,
                     result *r) {
    memset(r, 0, sizeof *r);
    r->count = count;
    r->stop = c->stop;
    r->steps_hash = 0xcbf29ce484222325ull;
    cdf_generate_options o;
    cdf_generate_options_init(&o);
    o.threads = threads;
    o.num_inference_steps = c->steps ? c->steps : 2;
    o.prompts = c->prompts;
    o.num_prompts = c->np;
    o.negative_prompts = c->negs;
    o.num_negative_prompts = c->nn;
    o.prompts_2 = c->prompts_2;
    o.num_prompts_2 = c->np2;
    o.num_images_per_prompt = c->nipp ? c->nipp : 1;
    o.clip_skip = c->clip_skip;
    o.guidance_scale = c->guidance;
    o.precision = c->precision;
    o.output_type = c->output;
    o.on_step = hash_steps;
    o.on_step_user = r;
    o.work_gflop = &r->gflop;
    o.text_cache = cache;
    int total = (int)c->np * o.num_images_per_prompt;
    assert_true(total <= MAX_IMAGES);
    cdf_generator *g[MAX_IMAGES] = {NULL};
    cdf_error err = {0};
    for (int i = 0; i < total && !r->status; i++) r->status = cdf_generator_new(CDF_RNG_NUMPY, SEED, &g[i], &err);
    if (count) r->text_from = count->calls;
    if (!r->status) r->status = cdf_pipeline_generate(p, &o, g, (size_t)total, &r->img, NULL);
    for (int i = 0; i < total; i++) cdf_generator_free(g[i]);
}

static void run_ok(cdf_pipeline *p, const call *c, cdf_text_cache *cache, result *r) {
    run_call(p, c, cache, 2, NULL, r);
    if (r->status) fail_msg("generate: %s", cdf_pipeline_last_error(p));
}

static size_t img_bytes(const result *r) { return (size_t)cdf_tensor_numel(&r->img) * sizeof(float); }

/* The same steps and output (a stopped call has no output). */
static int same_bytes(const result *a, const result *b) {
    if (!a->img.data || !b->img.data) return a->steps_hash == b->steps_hash && !a->img.data && !b->img.data;
    return a->steps_hash == b->steps_hash && img_bytes(a) == img_bytes(b) &&
           memcmp(a->img.data, b->img.data, img_bytes(a)) == 0;
}

/* Image i of r (NP output [batch, H, W, C]) equals image j. */
static int same_image(const result *r, int i, int j) {
    size_t per = img_bytes(r) / (size_t)r->img.shape[0];
    return memcmp((const char *)r->img.data + i * per, (const char *)r->img.data + j * per, per) == 0;
}

static void expect_stats(const cdf_text_cache *c, uint64_t hits, uint64_t misses) {
    uint64_t h = 99, m = 99;
    cdf_text_cache_stats(c, &h, &m);
    if (h != hits || m != misses)
        fail_msg("cache stats: %llu hits, %llu misses; expected %llu, %llu", (unsigned long long)h,
                 (unsigned long long)m, (unsigned long long)hits, (unsigned long long)misses);
}

static cdf_pipeline *load(const char *family, const char *name) {
    cdf_error err = {0};
    cdf_pipeline *p = NULL;
    if (cdf_pipeline_load(tu_data("%s/pipelines/%s", family, name), NULL, &p, &err) != CDF_OK)
        fail_msg("%s: %s", name, err.msg);
    return p;
}

static cdf_text_cache *new_cache(size_t max_bytes) {
    cdf_text_cache *c = NULL;
    cdf_error err = {0};
    assert_int_equal(cdf_text_cache_new(max_bytes, &c, &err), CDF_OK);
    assert_non_null(c);
    expect_stats(c, 0, 0);
    return c;
}

/* Runs c with the cache and without it: the same bytes. */
static void cached_equals_plain(cdf_pipeline *p, const call *c, cdf_text_cache *cache, result *plain) {
    result cached;
    run_ok(p, c, cache, &cached);
    run_ok(p, c, NULL, plain);
    if (!same_bytes(&cached, plain)) fail_msg("cached and uncached runs differ");
    cdf_tensor_free(&cached.img);
}

/* The calls of the tests. */
static const char *const k_two[] = {"a cat", "a dog"};
static const char *const k_mixed[] = {"a cat", "a bird", "a cat"};
static const char *const k_mixed_neg[] = {"blurry", "", "ugly"};
static const char *const k_mixed_2[] = {"a cat", "a bird 2", "other"};

static call sd_first(void) {
    call c = {.prompts = k_two, .np = 2, .nipp = 1, .guidance = 7.5};
    return c;
}

static call sd_mixed(int clip_skip) {
    call c = {.prompts = k_mixed, .np = 3, .negs = k_mixed_neg, .nn = 3, .nipp = 2, .clip_skip = clip_skip,
              .guidance = 7.5};
    return c;
}

static call xl_first(void) {
    call c = {.prompts = k_two, .np = 2, .nipp = 1, .guidance = 5.0};
    return c;
}

static call xl_mixed(int clip_skip) {
    call c = {.prompts = k_mixed, .np = 3, .negs = k_mixed_neg, .nn = 3, .prompts_2 = k_mixed_2, .np2 = 3, .nipp = 2,
              .clip_skip = clip_skip, .guidance = 5.0};
    return c;
}

/* ---- the forwards' rows are independent ---- */

/* Token ids [3, L] of three texts. */
static void tokenize3(const cdf_clip_tokenizer *tok, int64_t *ids) {
    static const char *const texts[3] = {"a cat sitting on a mat", "", "a bird, flying over the sea at dawn"};
    cdf_error err = {0};
    assert_int_equal(cdf_pipeline_tokenize(tok, texts, 3, 0, ids, NULL, &err), CDF_OK);
}

/* Batch of 3 rows vs each row alone, bit for bit: forward (clip_skip cs, when
 * hidden_mode 0) or forward_hidden with the pooled embeds (hidden_mode 1). */
static void check_rows(const cdf_clip_text *m, const int64_t *ids, int seq, int hidden_mode, int cs, int threads,
                       cdf_precision precision) {
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, threads, &err);
    ex.precision = precision;
    const cdf_clip_text_config *cfg = cdf_clip_text_get_config(m);
    size_t row = (size_t)seq * cfg->hidden_size, P = (size_t)cfg->projection_dim;
    float *all = malloc(3 * row * sizeof(float)), *one = malloc(row * sizeof(float)); /* [3, seq, D], [1, seq, D] */
    float *pall = malloc(3 * P * sizeof(float)), *pone = malloc(P * sizeof(float));   /* [3, P], [1, P] */
    assert_true(all && one && pall && pone);
    if (hidden_mode)
        assert_int_equal(cdf_clip_text_forward_hidden(&ex, m, ids, 3, seq, cs, all, pall), CDF_OK);
    else
        assert_int_equal(cdf_clip_text_forward(&ex, m, ids, 3, seq, cs, all), CDF_OK);
    for (int b = 0; b < 3; b++) {
        if (hidden_mode) {
            const int64_t *row_ids = ids + (size_t)b * seq;
            assert_int_equal(cdf_clip_text_forward_hidden(&ex, m, row_ids, 1, seq, cs, one, pone), CDF_OK);
            assert_memory_equal(pone, pall + b * P, P * sizeof(float));
        } else {
            assert_int_equal(cdf_clip_text_forward(&ex, m, ids + (size_t)b * seq, 1, seq, cs, one), CDF_OK);
        }
        assert_memory_equal(one, all + b * row, row * sizeof(float));
    }
    /* not vacuous: the rows differ */
    assert_memory_not_equal(all, all + row, row * sizeof(float));
    cdf_exec_release(&ex);
    free(all), free(one), free(pall), free(pone);
}

static cdf_clip_text *load_encoder(const char *dir) {
    cdf_error err = {0};
    cdf_clip_text *m = NULL;
    if (cdf_clip_text_load(dir, NULL, &m, &err) != CDF_OK) fail_msg("%s: %s", dir, err.msg);
    return m;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const cdf_precision k_precisions[2] = {CDF_PRECISION_FP32, CDF_PRECISION_BF16};

static void rows_independent(void **state) {
    (void)state;
    cdf_error err = {0};
    cdf_clip_tokenizer *tok = NULL;
    assert_int_equal(cdf_clip_tokenizer_load(tu_data("sd/pipelines/tiny-sd15-a/tokenizer"), &tok, &err), CDF_OK);
    const int L = cdf_clip_tokenizer_max_length(tok);
    int64_t ids[3 * 77];
    assert_true(L <= 77);
    tokenize3(tok, ids);
    cdf_clip_text *sd = load_encoder(tu_data("sd/pipelines/tiny-sd15-a/text_encoder"));
    cdf_clip_text *xl2 = load_encoder(tu_data("sdxl/pipelines/tiny-sdxl-a/text_encoder_2"));
    for (int pr = 0; pr < 2; pr++)
        for (int threads = 1; threads <= 3; threads += 2)
            for (int cs = 0; cs <= 1; cs++) {
                check_rows(sd, ids, L, 0, cs, threads, k_precisions[pr]);
                check_rows(xl2, ids, L, 1, cs, threads, k_precisions[pr]);
            }
    cdf_clip_text_free(sd);
    cdf_clip_text_free(xl2);
    /* a wider encoder: k = 320 and 1280 span several summation and packing blocks, m = 77 and 231 */
    char *cfg_dir = tu_tmpdir(), *out_dir = tu_tmpdir(), path[2048];
    snprintf(path, sizeof path, "%s/model_index.json", cfg_dir);
    write_text(path, "{\"_class_name\": \"Test\", "
                     "\"text_encoder\": [\"transformers\", \"CLIPTextModelWithProjection\"]}");
    snprintf(path, sizeof path, "%s/text_encoder", cfg_dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/text_encoder/config.json", cfg_dir);
    write_text(path, "{\"architectures\": [\"CLIPTextModelWithProjection\"], \"hidden_size\": 320, "
                     "\"intermediate_size\": 1280, \"num_attention_heads\": 5, \"num_hidden_layers\": 2, "
                     "\"projection_dim\": 160, \"vocab_size\": 49408, \"max_position_embeddings\": 77, "
                     "\"hidden_act\": \"gelu\", \"model_type\": \"clip_text_model\"}");
    snprintf(path, sizeof path, "%s/syn", out_dir);
    assert_int_equal(cdf_make_synthetic(cfg_dir, path, "3", CDF_F16, &err), CDF_OK);
    snprintf(path, sizeof path, "%s/syn/text_encoder", out_dir);
    cdf_clip_text *wide = load_encoder(path);
    for (int pr = 0; pr < 2; pr++)
        for (int threads = 1; threads <= 3; threads += 2) {
            check_rows(wide, ids, L, 0, 0, threads, k_precisions[pr]);
            check_rows(wide, ids, L, 0, 1, threads, k_precisions[pr]);
            check_rows(wide, ids, L, 1, 0, threads, k_precisions[pr]);
        }
    cdf_clip_text_free(wide);
    tu_rmtree(cfg_dir);
    tu_rmtree(out_dir);
    free(cfg_dir), free(out_dir);
    cdf_clip_tokenizer_free(tok);
}

/* ---- same bytes, counted hits and misses ---- */

static void api_edges(void **state) {
    (void)state;
    cdf_error err = {0};
    assert_int_equal(cdf_text_cache_new(0, NULL, &err), CDF_ERR_ARG);
    cdf_text_cache_free(NULL);
    uint64_t h = 5, m = 5;
    cdf_text_cache_stats(NULL, &h, &m);
    assert_true(h == 0 && m == 0);
    cdf_text_cache *c = new_cache(0);
    cdf_text_cache_stats(c, NULL, NULL);
    cdf_text_cache_free(c);
    cdf_generate_options o;
    memset(&o, 0xab, sizeof o);
    cdf_generate_options_init(&o);
    assert_null(o.text_cache);
}

static void sd_same_bytes(void **state) {
    (void)state;
    cdf_pipeline *p = load("sd", "tiny-sd15-a");
    cdf_text_cache *c = new_cache(0);
    result r0, r1, m1, m0;
    call a = sd_first(), mx = sd_mixed(1), mx0 = sd_mixed(0);
    /* first call: 2 prompts and 2 "" negatives, all missing */
    cached_equals_plain(p, &a, c, &r0);
    expect_stats(c, 0, 4);
    /* the same again: every row from the cache */
    cached_equals_plain(p, &a, c, &r1);
    expect_stats(c, 4, 4);
    /* clip_skip 1 positives miss (even "a cat"); negatives at 0: "" hits, "blurry" and "ugly" miss */
    cached_equals_plain(p, &mx, c, &m1);
    expect_stats(c, 5, 9);
    cdf_tensor_free(&m1.img);
    cached_equals_plain(p, &mx, c, &m1);
    expect_stats(c, 11, 9);
    /* clip_skip 0: "a cat" twice from the first call, "a bird" missing; negatives all cached */
    cached_equals_plain(p, &mx0, c, &m0);
    expect_stats(c, 16, 10);
    /* not vacuous: clip_skip changes the image, each prompt row has its own, equal rows equal images */
    assert_true(memcmp(m1.img.data, m0.img.data, img_bytes(&m1)) != 0);
    assert_true(same_image(&m1, 0, 1));
    assert_false(same_image(&m1, 0, 2));
    assert_false(same_image(&m1, 0, 4));
    assert_false(same_image(&m1, 2, 4));
    cdf_tensor_free(&r0.img), cdf_tensor_free(&r1.img), cdf_tensor_free(&m1.img), cdf_tensor_free(&m0.img);
    cdf_text_cache_free(c);

    /* a text repeated in a call is encoded once: GEMM work without guidance (positives only) */
    static const char *const dup[] = {"p one", "p one"}, *const pair[] = {"p one", "p two"};
    call cd = {.prompts = dup, .np = 2, .nipp = 1, .guidance = 1.0};
    call cp = {.prompts = pair, .np = 2, .nipp = 1, .guidance = 1.0};
    result rd, rdu, rp, rz;
    cdf_text_cache *c1 = new_cache(0), *c2 = new_cache(0);
    run_ok(p, &cd, c1, &rd);
    expect_stats(c1, 0, 2);
    run_ok(p, &cd, NULL, &rdu);
    assert_true(same_bytes(&rd, &rdu));
    run_ok(p, &cp, c2, &rp);
    run_ok(p, &cp, c2, &rz); /* all hits: no encoder work */
    expect_stats(c2, 2, 2);
    double row = rd.gflop - rz.gflop, tol = 1e-9 * rdu.gflop;
    printf("GEMM GFLOP: encoder row %.6g, all-hit call %.6g\n", row, rz.gflop);
    assert_true(row > 0);
    assert_true(fabs((rp.gflop - rz.gflop) - 2 * row) <= tol);  /* two texts: two rows */
    assert_true(fabs((rdu.gflop - rz.gflop) - 2 * row) <= tol); /* uncached: both rows */
    cdf_tensor_free(&rd.img), cdf_tensor_free(&rdu.img), cdf_tensor_free(&rp.img), cdf_tensor_free(&rz.img);
    cdf_text_cache_free(c1);
    cdf_text_cache_free(c2);
    cdf_pipeline_free(p);
}

static void sdxl_same_bytes(void **state) {
    (void)state;
    cdf_pipeline *p = load("sdxl", "tiny-sdxl-a");
    cdf_text_cache *c = new_cache(0);
    result r, m1, m0;
    call a = xl_first(), mx = xl_mixed(1), mx0 = xl_mixed(0);
    /* 3 lookups a row (text_encoder, text_encoder_2, pooled); no negatives: zeroed (force_zeros_for_empty_prompt) */
    cached_equals_plain(p, &a, c, &r);
    expect_stats(c, 0, 6);
    cdf_tensor_free(&r.img);
    cached_equals_plain(p, &a, c, &r);
    expect_stats(c, 6, 6);
    cdf_tensor_free(&r.img);
    /* clip_skip 1: both encoders' hidden states miss; the pooled "a cat" hits (it does not depend on clip_skip);
     * the 3 explicit negatives miss in all three */
    cached_equals_plain(p, &mx, c, &m1);
    expect_stats(c, 7, 23);
    cdf_tensor_free(&m1.img);
    cached_equals_plain(p, &mx, c, &m1);
    expect_stats(c, 25, 23);
    /* clip_skip 0: encoder 1 "a cat" x2 and encoder 2 "a cat" hit, "a bird" / "a bird 2" / "other" miss */
    cached_equals_plain(p, &mx0, c, &m0);
    expect_stats(c, 40, 26);
    assert_true(memcmp(m1.img.data, m0.img.data, img_bytes(&m1)) != 0);
    assert_true(same_image(&m1, 0, 1));
    assert_false(same_image(&m1, 0, 2));
    assert_false(same_image(&m1, 0, 4));
    cdf_tensor_free(&m1.img), cdf_tensor_free(&m0.img);
    cdf_text_cache_free(c);
    cdf_pipeline_free(p);
}

/* ---- the arithmetic is part of the key ---- */

static void precision_pair(const char *family, const char *name, call c, uint64_t rows) {
    cdf_pipeline *p = load(family, name);
    cdf_text_cache *cache = new_cache(0);
    result f32, b16, r;
    cached_equals_plain(p, &c, cache, &f32);
    expect_stats(cache, 0, rows);
    c.precision = CDF_PRECISION_BF16;
    cached_equals_plain(p, &c, cache, &b16);
    expect_stats(cache, 0, 2 * rows);
    assert_false(same_bytes(&f32, &b16));
    cached_equals_plain(p, &c, cache, &r);
    expect_stats(cache, rows, 2 * rows);
    cdf_tensor_free(&f32.img), cdf_tensor_free(&b16.img), cdf_tensor_free(&r.img);
    cdf_text_cache_free(cache);
    cdf_pipeline_free(p);
}

static void precision_keyed(void **state) {
    (void)state;
    precision_pair("sd", "tiny-sd15-a", sd_first(), 4);
    precision_pair("sdxl", "tiny-sdxl-a", xl_first(), 6);
}

/* ---- eviction ---- */

static void sd_eviction(void **state) {
    (void)state;
    cdf_pipeline *p = load("sd", "tiny-sd15-a");
    /* one entry (77 x 32 floats and its text) fits, two do not */
    cdf_text_cache *c = new_cache(12000);
    call a = sd_first(), mx = sd_mixed(1);
    result r;
    cached_equals_plain(p, &a, c, &r);
    expect_stats(c, 0, 4); /* stored "a cat", "a dog", then "": only "" is left */
    cdf_tensor_free(&r.img);
    cached_equals_plain(p, &a, c, &r);
    expect_stats(c, 0, 8); /* the positives' stores evict "" before the negatives look it up */
    cdf_tensor_free(&r.img);
    cdf_text_cache_free(c);
    /* nothing fits: every lookup misses */
    c = new_cache(1);
    for (int i = 0; i < 2; i++) {
        cached_equals_plain(p, &mx, c, &r);
        cdf_tensor_free(&r.img);
    }
    expect_stats(c, 0, 12);
    cdf_text_cache_free(c);
    /* room for two entries, least recently used first out: A, B, A (hit: A is now the newest), C (evicts B, the
     * least recently used; first-in-first-out would evict A), A (hit) */
    static const char *const seq[] = {"A", "B", "A", "C", "A"};
    c = new_cache(25000);
    for (int i = 0; i < 5; i++) {
        call one = {.prompts = &seq[i], .np = 1, .nipp = 1, .guidance = 1.0};
        cached_equals_plain(p, &one, c, &r);
        cdf_tensor_free(&r.img);
    }
    expect_stats(c, 2, 3);
    cdf_text_cache_free(c);
    cdf_pipeline_free(p);
}

static void sdxl_eviction(void **state) {
    (void)state;
    cdf_pipeline *p = load("sdxl", "tiny-sdxl-a");
    call mx = xl_mixed(1);
    result r;
    cdf_text_cache *c = new_cache(1);
    for (int i = 0; i < 2; i++) {
        cached_equals_plain(p, &mx, c, &r);
        cdf_tensor_free(&r.img);
    }
    expect_stats(c, 0, 36);
    cdf_text_cache_free(c);
    /* room for a few entries only: fewer hits than with room for all, same bytes */
    c = new_cache(30000);
    for (int i = 0; i < 2; i++) {
        cached_equals_plain(p, &mx, c, &r);
        cdf_tensor_free(&r.img);
    }
    uint64_t h, m;
    cdf_text_cache_stats(c, &h, &m);
    printf("SDXL, 30000 bytes: %llu hits, %llu misses\n", (unsigned long long)h, (unsigned long long)m);
    assert_true(h + m == 36 && h > 0 && h < 18);
    cdf_text_cache_free(c);
    cdf_pipeline_free(p);
}

/* ---- one cache, several pipelines ---- */

static void two_pipelines(void **state) {
    (void)state;
    cdf_pipeline *pa = load("sd", "tiny-sd15-a"), *pb = load("sd", "tiny-sd15-b-f16");
    cdf_text_cache *c = new_cache(0);
    call a = sd_first();
    result ra, rb, r;
    run_ok(pa, &a, NULL, &ra);
    run_ok(pb, &a, NULL, &rb);
    assert_false(same_bytes(&ra, &rb)); /* different weights, different images */
    /* first round: each pipeline misses its 4 rows (pb finds none of pa's); second round: all hit, own bytes */
    static const uint64_t after[2][2][2] = {{{0, 4}, {0, 8}}, {{4, 8}, {8, 8}}};
    for (int i = 0; i < 2; i++) {
        run_ok(pa, &a, c, &r);
        assert_true(same_bytes(&r, &ra));
        cdf_tensor_free(&r.img);
        expect_stats(c, after[i][0][0], after[i][0][1]);
        run_ok(pb, &a, c, &r);
        assert_true(same_bytes(&r, &rb));
        cdf_tensor_free(&r.img);
        expect_stats(c, after[i][1][0], after[i][1][1]);
    }
    /* a pipeline loaded after pa is freed (its state may take pa's address) finds none of pa's entries */
    const void *old_state = pa->state;
    cdf_pipeline_free(pa);
    cdf_pipeline *pc = load("sd", "tiny-sd15-b-f16");
    printf("reloaded pipeline state %s the freed one's address\n", pc->state == old_state ? "at" : "not at");
    run_ok(pc, &a, c, &r);
    assert_true(same_bytes(&r, &rb));
    expect_stats(c, 8, 12);
    cdf_tensor_free(&r.img);
    cdf_tensor_free(&ra.img), cdf_tensor_free(&rb.img);
    cdf_text_cache_free(c);
    cdf_pipeline_free(pb);
    cdf_pipeline_free(pc);
}

static void reload_same_shapes(void **state) {
    (void)state;
    cdf_error err = {0};
    char *tmp = tu_tmpdir(), twin[2048];
    snprintf(twin, sizeof twin, "%s/twin", tmp);
    assert_int_equal(cdf_make_synthetic(tu_data("sd/pipelines/tiny-sd15-a"), twin, "11", CDF_F32, &err), CDF_OK);
    cdf_text_cache *c = new_cache(0);
    call a = sd_first();
    result ra, rt, r;
    cdf_pipeline *pa = load("sd", "tiny-sd15-a");
    run_ok(pa, &a, c, &ra);
    expect_stats(c, 0, 4);
    const void *old_state = pa->state;
    cdf_pipeline_free(pa);
    cdf_pipeline *pt = NULL;
    assert_int_equal(cdf_pipeline_load(twin, NULL, &pt, &err), CDF_OK);
    printf("twin pipeline state %s the freed one's address\n", pt->state == old_state ? "at" : "not at");
    run_ok(pt, &a, c, &r);
    expect_stats(c, 0, 8);
    run_ok(pt, &a, NULL, &rt);
    assert_false(same_bytes(&ra, &rt));
    assert_true(same_bytes(&r, &rt));
    cdf_tensor_free(&ra.img), cdf_tensor_free(&rt.img), cdf_tensor_free(&r.img);
    cdf_text_cache_free(c);
    cdf_pipeline_free(pt);
    tu_rmtree(tmp);
    free(tmp);
}

/* ---- allocation failure ---- */

/* A cache's whole life under the hook: new, three calls, free.  The first
 * two calls stop once their text is encoded; the third runs to the end, from
 * whatever the first two left in the cache. */
typedef struct life {
    cdf_status status;   /* the first failure, or CDF_OK */
    result r[3];
    long end_calls;      /* allocations made by the end of the last call (then the cache is freed) */
} life;

static void cache_life(cdf_pipeline *p, const call *calls, const tu_oom *count, life *lf, uint64_t *hits) {
    memset(lf, 0, sizeof *lf);
    cdf_text_cache *c = NULL;
    cdf_error err = {0};
    lf->status = cdf_text_cache_new(0, &c, &err);
    for (int i = 0; i < 3 && !lf->status; i++) {
        run_call(p, &calls[i], c, 1, count, &lf->r[i]);
        lf->status = lf->r[i].status == CDF_ERR_INTERRUPTED && calls[i].stop ? CDF_OK : lf->r[i].status;
    }
    if (count) lf->end_calls = count->calls;
    cdf_text_cache_stats(c, hits, NULL);
    cdf_text_cache_free(c);
}

static void life_free(life *lf) {
    for (int i = 0; i < 3; i++) cdf_tensor_free(&lf->r[i].img);
}

/* Allocation n is one of a text phase (each call's tokenizing, encoding and cache work), the cache's
 * creation or its end. */
static int in_text_phase(const life *clean, long n) {
    if (n == 1 || n > clean->end_calls) return 1;
    for (int i = 0; i < 3; i++)
        if (n > clean->r[i].text_from && n <= clean->r[i].text_to) return 1;
    return 0;
}

static void oom_sweep(const char *family, const char *name, const call *calls) {
    cdf_pipeline *p = load(family, name);
    life ref, clean, lf;
    uint64_t ref_hits = 0, hits = 0;
    cache_life(p, calls, NULL, &ref, &ref_hits);
    assert_int_equal(ref.status, CDF_OK);
    tu_oom st = {0, 0, 0, 0};
    cdf_allocator a = tu_oom_allocator(&st);
    cdf_set_allocator(&a); /* no failure: the allocations a life makes, and where each call's text phase is */
    cache_life(p, calls, &st, &clean, &hits);
    life_free(&clean);
    cdf_set_allocator(NULL);
    assert_int_equal(clean.status, CDF_OK);
    assert_int_equal(st.live, 0);
    assert_true(hits == ref_hits);
    const long total = st.calls;
    long text = 0;
    for (int i = 0; i < 3; i++) {
        assert_true(clean.r[i].text_from > 0 && clean.r[i].text_to > clean.r[i].text_from);
        text += clean.r[i].text_to - clean.r[i].text_from;
    }
    int ok = 0, nomem = 0, fewer_hits = 0;
    for (long n = 1; n <= total; n++) {
        if (!in_text_phase(&clean, n)) continue; /* the UNet's: as without a cache (test_hardening_oom_sd) */
        tu_oom s = {0, n, 0, 0};
        a = tu_oom_allocator(&s);
        cdf_set_allocator(&a);
        cache_life(p, calls, NULL, &lf, &hits);
        cdf_status status = lf.status;
        int differs = -1;
        if (status == CDF_OK)
            for (int i = 0; i < 3; i++)
                if (!same_bytes(&lf.r[i], &ref.r[i])) differs = i;
        life_free(&lf);
        cdf_set_allocator(NULL);
        if (s.failed != 1) fail_msg("%s: allocation %ld was not made", name, n);
        if (s.live != 0) fail_msg("%s: allocation %ld failed: %ld blocks left allocated", name, n, s.live);
        if (status == CDF_OK) {
            if (differs >= 0) fail_msg("%s: allocation %ld failed: call %d gives other bytes", name, n, differs);
            ok++;
            fewer_hits += hits < ref_hits;
        } else if (status == CDF_ERR_NOMEM) {
            nomem++;
        } else {
            fail_msg("%s: allocation %ld failed: %s, not CDF_ERR_NOMEM", name, n, cdf_status_name(status));
        }
    }
    printf("%s: %ld allocations in a cache's life (%ld in text phases): %d failures gave CDF_ERR_NOMEM, %d only "
           "cached less (%d with fewer hits)\n",
           name, total, text, nomem, ok, fewer_hits);
    /* failed stores (entries, index growth) happened and were absorbed: same bytes, fewer hits */
    assert_true(ok > 0 && fewer_hits > 0 && nomem > 0);
    life_free(&ref);
    cdf_pipeline_free(p);
}

/* first call and mixed call: text only; the mixed call again, whole (one step, the final latents) */
static void oom_calls(call *calls) {
    for (int i = 0; i < 3; i++) {
        calls[i].output = CDF_OUTPUT_SAMPLE;
        calls[i].steps = 1;
        calls[i].stop = i < 2;
    }
}

static void oom_sd(void **state) {
    (void)state;
    call calls[3] = {sd_first(), sd_mixed(1), sd_mixed(1)};
    oom_calls(calls);
    oom_sweep("sd", "tiny-sd15-a", calls);
}

static void oom_sdxl(void **state) {
    (void)state;
    call calls[3] = {xl_first(), xl_mixed(1), xl_mixed(1)};
    oom_calls(calls);
    oom_sweep("sdxl", "tiny-sdxl-a", calls);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(api_edges),       cmocka_unit_test(rows_independent),   cmocka_unit_test(sd_same_bytes),
        cmocka_unit_test(sdxl_same_bytes), cmocka_unit_test(precision_keyed),    cmocka_unit_test(sd_eviction),
        cmocka_unit_test(sdxl_eviction),
        cmocka_unit_test(two_pipelines),   cmocka_unit_test(reload_same_shapes), cmocka_unit_test(oom_sd),
        cmocka_unit_test(oom_sdxl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
