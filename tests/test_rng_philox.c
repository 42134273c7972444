/* torch CUDA (Philox4x32-10) golden data, bit for bit: every file listed in
 * tests/data/philox_rng/manifest.json (AUTOMATIC1111's CPU imitation, its
 * call sequences and the raw Philox blocks), driven by each entry's `python`
 * text (CDF_RNG_GOLDEN_ROOT selects another set in the same format).  Then
 * torch's launch geometry on a small "GPU" (1 SM of 256 threads): which
 * Philox counter, thread and lane each element takes, and the offsets, all
 * checked against the golden vectors and raw blocks; curand's stream
 * semantics; the GPU presets, options, state bytes, seeds and dtypes. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "rng/generator.h"
#include "rng/philox.h"
#include "rng/torch_cuda.h"
#include "tensor/half.h"

static const char *path_of(const char *file) { return tu_rng_golden("philox_rng", file); }


static cJSON *load_manifest(void) {
    char *text = tu_read_text(path_of("manifest.json"));
    if (!text) fail_msg("cannot read %s", path_of("manifest.json"));
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) fail_msg("cannot parse the philox_rng manifest");
    return j;
}

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cdf_generator *make_gpu(const char *seed, uint32_t sm, uint32_t tps) {
    cdf_generator *g = NULL;
    cdf_error err = {0};
    cdf_cuda_options o = {sm, tps};
    if (cdf_generator_new_torch_cuda(seed, &o, &g, &err) != CDF_OK) fail_msg("seed %s: %s", seed, err.msg);
    return g;
}

static const char *parse_tuple(const char *p, int64_t *shape, int *ndim) {
    if (*p != '(') fail_msg("expected a shape tuple at \"%.40s\"", p);
    p++;
    *ndim = 0;
    while (*p && *p != ')') {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p) fail_msg("bad shape at \"%.40s\"", p);
        assert_true(*ndim < CDF_MAX_DIMS);
        shape[(*ndim)++] = v;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    if (*p != ')') fail_msg("unterminated shape");
    return p + 1;
}

static void run_randn_entry(const cJSON *f) {
    const char *file = jstr(f, "file"), *python = jstr(f, "python"), *seed = jstr(f, "seed");
    const cJSON *ci = cJSON_GetObjectItemCaseSensitive(f, "call_index");
    int target = cJSON_IsNumber(ci) ? ci->valueint : 0;
    size_t count = (size_t)cJSON_GetObjectItemCaseSensitive(f, "count")->valuedouble;
    float *want = tu_load_bin(path_of(file), count, 4);
    if (!want) fail_msg("%s: cannot read it", file);
    char *text = strdup(python);
    cdf_generator *g = NULL;
    int call = 0, compared = 0;
    char *save = NULL;
    for (char *stmt = strtok_r(text, ";", &save); stmt; stmt = strtok_r(NULL, ";", &save)) {
        while (*stmt == ' ') stmt++;
        if (!strncmp(stmt, "g = rng_philox.Generator(", 25)) {
            assert_int_equal(strtoull(stmt + 25, NULL, 10), strtoull(seed, NULL, 10));
            g = make_gpu(seed, 0, 0); /* defaults: A1111's unbounded grid */
            continue;
        }
        if (strncmp(stmt, "g.randn(", 8)) fail_msg("%s: statement not understood: \"%s\"", file, stmt);
        int64_t shape[CDF_MAX_DIMS];
        int ndim;
        parse_tuple(stmt + 8, shape, &ndim);
        size_t n = 1;
        for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
        cdf_philox_state ps;
        cdf_error err = {0};
        assert_int_equal(cdf_generator_get_philox_state(g, &ps, &err), CDF_OK);
        float *got = malloc(4 * n + 4);
        assert_int_equal(cdf_randn_tensor(&g, 1, shape, ndim, CDF_F32, got, &err), CDF_OK);
        if (call == target) {
            assert_int_equal(n, count);
            const cJSON *oc = cJSON_GetObjectItemCaseSensitive(f, "philox_offset_counter");
            if (cJSON_IsNumber(oc)) assert_int_equal(ps.offset / 4, oc->valueint);
            for (size_t i = 0; i < n; i++)
                if (memcmp(&got[i], &want[i], 4)) fail_msg("%s: element %zu differs: %a vs %a", file, i, got[i], want[i]);
            compared = 1;
        }
        free(got);
        call++;
    }
    if (!compared) fail_msg("%s: call %d never made", file, target);
    cdf_generator_free(g);
    free(text);
    free(want);
}

/* "philox4_32(counter=[[O]*16, [0]*16, arange(16), [0]*16], key=...)": rows i of (16, 4). */
static void run_raw_entry(const cJSON *f) {
    const char *file = jstr(f, "file"), *python = jstr(f, "python"), *seed = jstr(f, "seed");
    const char *c = strstr(python, "counter=[[");
    assert_non_null(c);
    uint32_t off = (uint32_t)strtoul(c + 10, NULL, 10);
    uint64_t s = strtoull(seed, NULL, 10);
    uint32_t *want = tu_load_bin(path_of(file), 64, 4);
    assert_non_null(want);
    uint32_t key[2] = {(uint32_t)s, (uint32_t)(s >> 32)};
    for (uint32_t i = 0; i < 16; i++) {
        uint32_t ctr[4] = {off, 0, i, 0}, out[4];
        cdf_philox4x32_10(ctr, key, out);
        assert_memory_equal(out, want + 4 * i, 16);
        /* curand's stream for subsequence i at offset 4*off starts with the same block */
        cdf_philox_stream st;
        cdf_philox_stream_init(&st, s, i, 4ull * off);
        cdf_philox_stream_next4(&st, out);
        assert_memory_equal(out, want + 4 * i, 16);
        /* the bit generator table walks curand's stream */
        cdf_bitgen bg;
        cdf_philox_stream_init(&st, s, i, 4ull * off);
        cdf_philox_bitgen(&st, &bg);
        assert_int_equal(bg.next_u32(bg.state), want[4 * i]);
        assert_true(bg.next_u64(bg.state) == (((uint64_t)want[4 * i + 1] << 32) | want[4 * i + 2]));
        /* an offset inside the block skips words */
        cdf_philox_stream_init(&st, s, i, 4ull * off + 3);
        assert_int_equal(cdf_philox_stream_next(&st), want[4 * i + 3]);
    }
    free(want);
}

static void test_philox_manifest_files(void **state) {
    (void)state;
    cJSON *m = load_manifest();
    const cJSON *f;
    int n = 0, raw = 0;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(m, "files")) {
        if (!strcmp(jstr(f, "kind"), "raw")) {
            run_raw_entry(f);
            raw++;
        } else {
            run_randn_entry(f);
        }
        n++;
    }
    print_message("philox_rng: %d files (%d raw) bit-exact\n", n, raw);
    assert_true(n > raw && raw > 0);
    tu_expect_ran("philox_rng files", n, 75);
    tu_expect_ran("philox_rng raw files", raw, 4);
    cJSON_Delete(m);
}

/* A1111's Box-Muller on two raw words, the cosine half (torch's lane 1/3). */
static float cos_lane(uint32_t x, uint32_t y) {
    double u = (double)x * 0x1p-32 + 0x1p-33;
    double v = (double)y * 0x1.921fb6p-30 + 0x1.921fb6p-31;
    return (float)(sqrt(-2.0 * log(u)) * cos(v));
}
static float sin_lane(uint32_t x, uint32_t y) {
    double u = (double)x * 0x1p-32 + 0x1p-33;
    double v = (double)y * 0x1.921fb6p-30 + 0x1.921fb6p-31;
    return (float)(sqrt(-2.0 * log(u)) * sin(v));
}

/* One SM of 256 threads: stride S = 256.  randn of 1025 elements takes two
 * iterations: element e < 1024 is thread e % 256, lane e / 256 of counter 0;
 * element 1024 is thread 0, lane 0 of counter 1; the offset grows by 8. */
static void test_philox_grid_stride(void **state) {
    (void)state;
    float *call0 = tu_load_bin(path_of("seq_b_s42_randn1x4x8x8_x3.call0.bin"), 256, 4);
    float *call1 = tu_load_bin(path_of("seq_b_s42_randn1x4x8x8_x3.call1.bin"), 256, 4);
    float *call2 = tu_load_bin(path_of("seq_b_s42_randn1x4x8x8_x3.call2.bin"), 256, 4);
    uint32_t *raw = tu_load_bin(path_of("philox4x32_10_s42_off0_16x4.bin"), 64, 4);
    assert_non_null(call0);
    assert_non_null(call1);
    assert_non_null(call2);
    assert_non_null(raw);
    cdf_generator *g = make_gpu("42", 1, 256);
    cdf_error err = {0};
    float big[1025], small[256];
    int64_t shape1[1] = {1025}, shape2[4] = {1, 4, 8, 8};
    assert_int_equal(cdf_randn_tensor(&g, 1, shape1, 1, CDF_F32, big, &err), CDF_OK);
    assert_memory_equal(big, call0, 256 * 4); /* lane 0: what A1111 computes */
    for (int t = 0; t < 16; t++) {
        const uint32_t *w = raw + 4 * t;
        float l1 = cos_lane(w[0], w[1]), l2 = sin_lane(w[2], w[3]), l3 = cos_lane(w[2], w[3]);
        assert_memory_equal(&big[256 + t], &l1, 4);
        assert_memory_equal(&big[512 + t], &l2, 4);
        assert_memory_equal(&big[768 + t], &l3, 4);
    }
    assert_memory_equal(&big[1024], &call1[0], 4); /* counter 1, thread 0 */
    cdf_philox_state ps;
    assert_int_equal(cdf_generator_get_philox_state(g, &ps, &err), CDF_OK);
    assert_int_equal(ps.offset, 8);
    assert_int_equal(cdf_randn_tensor(&g, 1, shape2, 4, CDF_F32, small, &err), CDF_OK);
    assert_memory_equal(small, call2, sizeof small); /* counter 2 */
    cdf_generator_free(g);

    /* up to numel = SMs x threads per SM every GPU equals A1111 */
    g = make_gpu("42", 1, 256);
    cdf_generator *a = make_gpu("42", 0, 0);
    assert_int_equal(cdf_randn_tensor(&g, 1, shape2, 4, CDF_F32, small, &err), CDF_OK);
    assert_memory_equal(small, call0, sizeof small);
    assert_int_equal(cdf_randn_tensor(&a, 1, shape2, 4, CDF_F32, small, &err), CDF_OK);
    assert_memory_equal(small, call0, sizeof small);
    cdf_generator_free(a);
    cdf_generator_free(g);
    /* a preset GPU matches A1111 on SD-1.5 latents (16384 <= 28 x 1536) */
    float *lat = tu_load_bin(path_of("randn_f32_s42_1x4x64x64.bin"), 16384, 4);
    assert_non_null(lat);
    cdf_cuda_options o;
    assert_int_equal(cdf_cuda_preset("rtx3060", &o, &err), CDF_OK);
    assert_int_equal(cdf_generator_new_torch_cuda("42", &o, &g, &err), CDF_OK);
    float *got = malloc(16384 * 4);
    int64_t shape3[4] = {1, 4, 64, 64};
    assert_int_equal(cdf_randn_tensor(&g, 1, shape3, 4, CDF_F32, got, &err), CDF_OK);
    assert_memory_equal(got, lat, 16384 * 4);
    /* the stride rule itself: grid capped at SMs x (threads / 256) */
    cdf_torch_cuda c = {0, 0, 28, 1536};
    assert_int_equal(cdf_torch_cuda_stride(&c, 16384), 16384);
    assert_int_equal(cdf_torch_cuda_stride(&c, 65536), 28 * 1536);
    assert_int_equal(cdf_torch_cuda_stride(&c, 1), 256);
    free(got);
    free(lat);
    cdf_generator_free(g);
    free(call0);
    free(call1);
    free(call2);
    free(raw);
}

static void test_philox_presets_options(void **state) {
    (void)state;
    cdf_error err = {0};
    cdf_cuda_options o = {1, 1};
    assert_int_equal(cdf_cuda_preset("a1111", &o, &err), CDF_OK);
    assert_int_equal(o.sm_count, 0);
    assert_int_equal(cdf_cuda_preset("h100-sxm", &o, &err), CDF_OK);
    assert_int_equal(o.sm_count, 132);
    assert_int_equal(o.threads_per_sm, 2048);
    assert_int_equal(cdf_cuda_preset("rtx3090", &o, &err), CDF_OK);
    assert_int_equal(o.sm_count, 82);
    assert_int_equal(o.threads_per_sm, 1536);
    assert_int_equal(cdf_cuda_preset("voodoo2", &o, &err), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "voodoo2"));
    size_t n = 0;
    const char *desc = NULL;
    for (const char *name; (name = cdf_cuda_preset_name(n, &desc)); n++) {
        assert_non_null(desc);
        assert_int_equal(cdf_cuda_preset(name, &o, &err), CDF_OK);
    }
    assert_true(n >= 10);
    cdf_generator *g = NULL;
    cdf_cuda_options bad = {10, 300};
    assert_int_equal(cdf_generator_new_torch_cuda("1", &bad, &g, &err), CDF_ERR_ARG);
    assert_null(g);
    bad.threads_per_sm = 8192;
    assert_int_equal(cdf_generator_new_torch_cuda("1", &bad, &g, &err), CDF_ERR_ARG);
}

/* Seeds: torch's range, negative seeds as two's complement, all 64 bits used. */
static void test_philox_seeds_and_state(void **state) {
    (void)state;
    cdf_error err = {0};
    float *want = tu_load_bin(path_of("randn_f32_s18446744073709551615_7.bin"), 7, 4);
    assert_non_null(want);
    cdf_generator *g = NULL;
    assert_int_equal(cdf_generator_new(CDF_RNG_TORCH_CUDA, "-1", &g, &err), CDF_OK);
    float got[7];
    int64_t shape[1] = {7};
    assert_int_equal(cdf_randn_tensor(&g, 1, shape, 1, CDF_F32, got, &err), CDF_OK);
    assert_memory_equal(got, want, sizeof got);
    cdf_seed_info info;
    assert_int_equal(cdf_rng_seed_info(CDF_RNG_TORCH_CUDA, "-1", &info, &err), CDF_OK);
    assert_int_equal(info.reduced, 0);
    assert_true(info.used_seed == UINT64_MAX);
    assert_int_equal(cdf_rng_seed_info(CDF_RNG_TORCH_CUDA, "18446744073709551616", &info, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_rng_seed_info(CDF_RNG_TORCH_CUDA, "-9223372036854775809", &info, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_rng_seed_info(CDF_RNG_TORCH_CUDA, "-9223372036854775808", &info, &err), CDF_OK);
    assert_true(info.used_seed == 9223372036854775808ull);

    /* state bytes: 800 x 0xff, seed, offset; set_state continues the stream */
    uint8_t b[CDF_TORCH_CUDA_STATE_BYTES];
    size_t w = 0;
    assert_int_equal(cdf_generator_get_torch_state_bytes(g, b, sizeof b, &w, &err), CDF_OK);
    assert_int_equal(w, 816);
    for (int i = 0; i < 800; i++) assert_int_equal(b[i], 0xff);
    for (int i = 800; i < 808; i++) assert_int_equal(b[i], 0xff); /* seed 2^64-1 */
    assert_int_equal(b[808], 4);                                    /* offset 4 after one call */
    cdf_generator *h = make_gpu("5", 0, 0);
    assert_int_equal(cdf_generator_set_torch_state_bytes(h, b, sizeof b, &err), CDF_OK);
    float *seq = tu_load_bin(path_of("randn_f32_s18446744073709551615_7.bin"), 7, 4);
    float g2[7], h2[7];
    assert_int_equal(cdf_randn_tensor(&g, 1, shape, 1, CDF_F32, g2, &err), CDF_OK);
    assert_int_equal(cdf_randn_tensor(&h, 1, shape, 1, CDF_F32, h2, &err), CDF_OK);
    assert_memory_equal(g2, h2, sizeof g2);
    assert_memory_not_equal(g2, seq, sizeof g2); /* the second call uses counter 1 */
    b[808] = 5;
    assert_int_equal(cdf_generator_set_torch_state_bytes(h, b, sizeof b, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_generator_set_torch_state_bytes(h, b, 100, &err), CDF_ERR_ARG);
    /* re-seeding resets the offset */
    assert_int_equal(cdf_generator_reseed(h, "18446744073709551615", &err), CDF_OK);
    assert_int_equal(cdf_randn_tensor(&h, 1, shape, 1, CDF_F32, h2, &err), CDF_OK);
    assert_memory_equal(h2, want, sizeof h2);
    /* list seeds are refused for torch kinds */
    const char *two[2] = {"1", "2"};
    cdf_generator *l = NULL;
    assert_int_equal(cdf_generator_new_list(CDF_RNG_TORCH_CUDA, two, 2, &l, &err), CDF_ERR_ARG);
    free(seq);
    free(want);
    cdf_generator_free(h);
    cdf_generator_free(g);
}

/* dtypes: float16 / bfloat16 are torch's casts of the float32 noise; float64
 * is refused before anything is drawn. */
static void test_philox_dtypes(void **state) {
    (void)state;
    float *want = tu_load_bin(path_of("randn_f32_s0_2x4x8x8.bin"), 512, 4);
    assert_non_null(want);
    cdf_error err = {0};
    cdf_generator *g = make_gpu("0", 0, 0);
    int64_t shape[4] = {2, 4, 8, 8};
    double d[512];
    assert_int_equal(cdf_randn_tensor(&g, 1, shape, 4, CDF_F64, d, &err), CDF_ERR_UNSUPPORTED);
    uint16_t h[512], bf[512];
    assert_int_equal(cdf_randn_tensor(&g, 1, shape, 4, CDF_F16, h, &err), CDF_OK); /* counter 0: nothing drawn before */
    for (int i = 0; i < 512; i++) assert_int_equal(h[i], cdf_f32_to_f16(want[i]));
    assert_int_equal(cdf_generator_reseed(g, "0", &err), CDF_OK);
    assert_int_equal(cdf_randn_tensor(&g, 1, shape, 4, CDF_BF16, bf, &err), CDF_OK);
    for (int i = 0; i < 512; i++) assert_int_equal(bf[i], cdf_f32_to_bf16(want[i]));
    assert_int_equal(cdf_generator_rand(g, 4, CDF_F32, d, &err), CDF_ERR_UNSUPPORTED);
    assert_int_equal(cdf_generator_next_u64(g), 0);
    cdf_generator_free(g);
    free(want);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_manifest_files),   cmocka_unit_test(test_philox_grid_stride),
        cmocka_unit_test(test_philox_presets_options),  cmocka_unit_test(test_philox_seeds_and_state),
        cmocka_unit_test(test_philox_dtypes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
