/* numpy Generator(PCG64) golden data, bit for bit: every file listed in
 * tests/data/numpy_rng/manifest.json (driven by the manifest, so more seeds in
 * the same format are checked too), the per-seed state fields, the ziggurat
 * slow-path events, and the initial noise of the ddpm golden cases. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "rng/distributions.h"
#include "rng/generator.h"
#include "rng/seedseq.h"

/* What tests/data/numpy_rng/manifest.json and ddpm/manifest.json hold: every
 * loop below checks it ran exactly this often, so an emptied or truncated
 * manifest (or a renamed field the loops skip) fails instead of passing. */
#define N_FILES 176            /* numpy_rng "files" */
#define N_SEEDS 11             /* numpy_rng "seeds" */
#define N_SLOW_EVENTS 1348     /* their slow_path_events_f64 + _f32, all seeds */
#define N_ZIGGURAT_EVENTS 24   /* ziggurat_events: {f64, f32} x {tail, tail_multi, wedge_reject} x 4 */
#define N_SLOW_SEED_FILES 22   /* slow_seed_*consumed_u8 files among "files" */
#define N_DDPM_CASES 11        /* ddpm "cases", one with a generator list */

/* ---- small helpers ---- */

static cJSON *load_json(const char *path) {
    char *text = tu_read_text(path);
    if (!text) fail_msg("cannot read %s", path);
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) fail_msg("cannot parse %s", path);
    return j;
}

/* Seed field: a decimal string, a JSON integer, or a list of either.
 * Fills strs[0..*n) (each malloc'd). */
static void seed_strings(const cJSON *seed, char ***strs, size_t *n) {
    const cJSON *items[64];
    size_t k = 0;
    if (cJSON_IsArray(seed)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, seed) {
            assert_true(k < 64);
            items[k++] = it;
        }
    } else {
        items[k++] = seed;
    }
    *strs = calloc(k ? k : 1, sizeof **strs);
    for (size_t i = 0; i < k; i++) {
        char buf[64];
        if (cJSON_IsString(items[i])) {
            (*strs)[i] = strdup(items[i]->valuestring);
            continue;
        }
        assert_true(cJSON_IsNumber(items[i]));
        double v = items[i]->valuedouble;
        /* JSON numbers are doubles: only integers below 2^53 are exact */
        assert_true(v >= 0 && v < 9007199254740992.0 && v == (double)(uint64_t)v);
        snprintf(buf, sizeof buf, "%" PRIu64, (uint64_t)v);
        (*strs)[i] = strdup(buf);
    }
    *n = k;
}

static void free_strings(char **strs, size_t n) {
    for (size_t i = 0; i < n; i++) free(strs[i]);
    free(strs);
}

static cdf_generator *gen_from_seed(const cJSON *seed) {
    char **strs;
    size_t n;
    seed_strings(seed, &strs, &n);
    cdf_generator *g = NULL;
    cdf_error err = {0};
    cdf_status st = cdf_generator_new_list(CDF_RNG_NUMPY, (const char *const *)strs, n, &g, &err);
    if (st != CDF_OK) fail_msg("generator: %s", err.msg);
    free_strings(strs, n);
    return g;
}

static void seedseq_from_seed(const cJSON *seed, cdf_seedseq *ss, uint32_t **words_out, size_t *nwords_out) {
    char **strs;
    size_t n;
    seed_strings(seed, &strs, &n);
    uint32_t *words = NULL;
    size_t nw = 0;
    cdf_error err = {0};
    for (size_t i = 0; i < n; i++) assert_int_equal(cdf_seed_words_append(strs[i], &words, &nw, &err), CDF_OK);
    free_strings(strs, n);
    cdf_seedseq_init(ss, words, nw);
    if (words_out) {
        *words_out = words;
        *nwords_out = nw;
    } else {
        cdf_free(words);
    }
}

static void parse_hex128(const char *s, uint64_t *hi, uint64_t *lo) {
    assert_true(s[0] == '0' && (s[1] == 'x' || s[1] == 'X'));
    *hi = *lo = 0;
    for (const char *p = s + 2; *p; p++) {
        int c = *p, v = 0;
        if (c >= '0' && c <= '9') v = c - '0';
        else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
        else fail_msg("bad hex %s", s);
        *hi = (*hi << 4) | (*lo >> 60);
        *lo = (*lo << 4) | (uint64_t)v;
    }
}

/* Bit generator wrapper counting consumed words and keeping each draw's first word. */
typedef struct counter {
    const cdf_bitgen *inner;
    unsigned n64, n32; /* words used since the last reset */
    int have_first;
    uint64_t first;
} counter;

static uint64_t cnt_u64(void *s) {
    counter *c = s;
    uint64_t w = c->inner->next_u64(c->inner->state);
    c->n64++;
    if (!c->have_first) c->first = w, c->have_first = 1;
    return w;
}
static double cnt_double(void *s) {
    counter *c = s;
    c->n64++;
    c->have_first = 1; /* a double never starts a normal draw */
    return c->inner->next_double(c->inner->state);
}
static uint32_t cnt_u32(void *s) {
    counter *c = s;
    uint32_t w = c->inner->next_u32(c->inner->state);
    c->n32++;
    if (!c->have_first) c->first = w, c->have_first = 1;
    return w;
}

/* Draws n normals (f64 or f32) one by one recording words used and first layer. */
static void counted_normals(cdf_generator *g, int f32, size_t n, void *out, uint8_t *consumed, uint8_t *layer) {
    counter c = {cdf_generator_bitgen(g), 0, 0, 0, 0};
    cdf_bitgen wrap = {&c, cnt_u64, cnt_u32, cnt_double};
    for (size_t i = 0; i < n; i++) {
        c.n64 = c.n32 = 0;
        c.have_first = 0;
        if (f32)
            ((float *)out)[i] = cdf_dist_standard_normal_f32(&wrap);
        else
            ((double *)out)[i] = cdf_dist_standard_normal(&wrap);
        unsigned used = f32 ? c.n32 : c.n64;
        consumed[i] = (uint8_t)(used > 255 ? 255 : used);
        if (layer) layer[i] = (uint8_t)(c.first & 0xffu);
    }
}

/* Bitwise compare; prints the first mismatches. Returns 1 when equal. */
static int same_bits(const char *what, const void *got, const void *want, size_t count, size_t es) {
    if (memcmp(got, want, count * es) == 0) return 1;
    int shown = 0;
    for (size_t i = 0; i < count && shown < 3; i++) {
        const unsigned char *a = (const unsigned char *)got + i * es, *b = (const unsigned char *)want + i * es;
        if (memcmp(a, b, es) == 0) continue;
        shown++;
        if (es == 8) {
            uint64_t x, y;
            double dx, dy;
            memcpy(&x, a, 8), memcpy(&y, b, 8), memcpy(&dx, a, 8), memcpy(&dy, b, 8);
            print_error("%s[%zu]: got 0x%016" PRIx64 " (%.17g) want 0x%016" PRIx64 " (%.17g)\n", what, i, x, dx, y, dy);
        } else if (es == 4) {
            uint32_t x, y;
            float fx, fy;
            memcpy(&x, a, 4), memcpy(&y, b, 4), memcpy(&fx, a, 4), memcpy(&fy, b, 4);
            print_error("%s[%zu]: got 0x%08" PRIx32 " (%.9g) want 0x%08" PRIx32 " (%.9g)\n", what, i, x, fx, y, fy);
        } else {
            print_error("%s[%zu]: got %u want %u\n", what, i, a[0], b[0]);
        }
    }
    return 0;
}

/* ---- manifest files ---- */

typedef struct file_kind {
    const char *suffix; /* after "<tag>." */
    int seen;
} file_kind;

static const cJSON *find_file(const cJSON *files, const char *name) {
    const cJSON *f;
    cJSON_ArrayForEach(f, files) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(f, "file");
        if (cJSON_IsString(fn) && strcmp(fn->valuestring, name) == 0) return f;
    }
    return NULL;
}

static size_t shape_of(const cJSON *entry, int64_t *shape, int *ndim) {
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(entry, "shape"), *d;
    size_t numel = 1;
    *ndim = 0;
    cJSON_ArrayForEach(d, sh) {
        assert_true(*ndim < CDF_MAX_DIMS);
        shape[(*ndim)++] = (int64_t)d->valuedouble;
        numel *= (size_t)d->valuedouble;
    }
    return numel;
}

/* Computes what the file holds; returns 1 when it matches bit for bit. */
static int check_file(const cJSON *files, const cJSON *entry, file_kind *kinds, size_t nkinds) {
    const char *name = cJSON_GetObjectItemCaseSensitive(entry, "file")->valuestring;
    const char *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype")->valuestring;
    size_t count = (size_t)cJSON_GetObjectItemCaseSensitive(entry, "count")->valuedouble;
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(entry, "seed");
    const char *dot = strchr(name, '.');
    assert_non_null(dot);
    const char *suffix = dot + 1;
    size_t es = strcmp(dtype, "uint8") == 0 ? 1 : (strcmp(dtype, "uint32") == 0 || strcmp(dtype, "float32") == 0) ? 4 : 8;
    void *want = tu_load_bin(tu_data("numpy_rng/%s", name), count, es);
    if (!want) {
        print_error("%s: missing or wrong size\n", name);
        return 0;
    }
    void *got = calloc(count ? count : 1, es);
    cdf_error err = {0};
    int known = 1;
    size_t k;
    for (k = 0; k < nkinds; k++)
        if (strcmp(kinds[k].suffix, suffix) == 0) break;
    if (k == nkinds) {
        print_error("%s: unknown file kind '%s' (extend the test)\n", name, suffix);
        known = 0;
    } else {
        kinds[k].seen++;
    }
    if (known && strcmp(suffix, "seedseq_state4_u64.bin") == 0) {
        cdf_seedseq ss;
        seedseq_from_seed(seed, &ss, NULL, NULL);
        cdf_seedseq_generate_u64(&ss, got, count);
    } else if (known && strcmp(suffix, "seedseq_pool_u32.bin") == 0) {
        cdf_seedseq ss;
        seedseq_from_seed(seed, &ss, NULL, NULL);
        assert_int_equal(count, CDF_SEEDSEQ_POOL_SIZE);
        memcpy(got, ss.pool, sizeof ss.pool);
    } else if (known) {
        cdf_generator *g = gen_from_seed(seed);
        if (strcmp(suffix, "pcg64_state_u64.bin") == 0) {
            cdf_pcg64_state st;
            assert_int_equal(cdf_generator_get_pcg64_state(g, &st, &err), CDF_OK);
            uint64_t v[4] = {st.state_hi, st.state_lo, st.inc_hi, st.inc_lo};
            assert_int_equal(count, 4);
            memcpy(got, v, sizeof v);
        } else if (strcmp(suffix, "raw32_u64.bin") == 0) {
            for (size_t i = 0; i < count; i++) ((uint64_t *)got)[i] = cdf_generator_next_u64(g);
        } else if (strcmp(suffix, "normal4096_f64.bin") == 0) {
            cdf_generator_standard_normal(g, got, count);
        } else if (strcmp(suffix, "normal4096_f32.bin") == 0) {
            cdf_generator_standard_normal_f32(g, got, count);
        } else if (strcmp(suffix, "normal4096_f64_cast_f32.bin") == 0) {
            int64_t shape[1] = {(int64_t)count};
            assert_int_equal(cdf_randn_tensor(&g, 1, shape, 1, CDF_F32, got, &err), CDF_OK);
        } else if (strcmp(suffix, "random64_f64.bin") == 0) {
            cdf_generator_random(g, got, count);
        } else if (strncmp(suffix, "normal_", 7) == 0 && strstr(suffix, "_f64.bin")) {
            int64_t shape[CDF_MAX_DIMS];
            int ndim;
            assert_int_equal(shape_of(entry, shape, &ndim), count);
            assert_int_equal(cdf_randn_tensor(&g, 1, shape, ndim, CDF_F64, got, &err), CDF_OK);
        } else if (strcmp(suffix, "after_block_raw16_u64.bin") == 0) {
            /* same generator after the sibling normal_<shape>_f64 block */
            char block[512];
            snprintf(block, sizeof block, "%.*s.normal_2x3x32x32_f64.bin", (int)(dot - name), name);
            const cJSON *b = find_file(files, block);
            assert_non_null(b);
            int64_t shape[CDF_MAX_DIMS];
            int ndim;
            size_t bn = shape_of(b, shape, &ndim);
            double *tmp = malloc(bn * sizeof *tmp);
            assert_int_equal(cdf_randn_tensor(&g, 1, shape, ndim, CDF_F64, tmp, &err), CDF_OK);
            free(tmp);
            for (size_t i = 0; i < count; i++) ((uint64_t *)got)[i] = cdf_generator_next_u64(g);
        } else if (strcmp(suffix, "normal4096_f64_consumed_u8.bin") == 0 ||
                   strcmp(suffix, "normal4096_f32_consumed_u8.bin") == 0) {
            int f32 = strstr(suffix, "f32") != NULL;
            void *vals = malloc(count * 8);
            counted_normals(g, f32, count, vals, got, NULL);
            free(vals);
        }
        cdf_generator_free(g);
    }
    int ok = known && same_bits(name, got, want, count, es);
    free(got);
    free(want);
    return ok;
}

static void test_manifest_files(void **state) {
    (void)state;
    cJSON *m = load_json(tu_data("numpy_rng/manifest.json"));
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(m, "files");
    assert_true(cJSON_IsArray(files));
    file_kind kinds[] = {
        {"seedseq_state4_u64.bin", 0},        {"seedseq_pool_u32.bin", 0},
        {"pcg64_state_u64.bin", 0},           {"raw32_u64.bin", 0},
        {"normal4096_f64.bin", 0},            {"normal4096_f32.bin", 0},
        {"normal4096_f64_cast_f32.bin", 0},   {"random64_f64.bin", 0},
        {"normal_2x3x32x32_f64.bin", 0},      {"after_block_raw16_u64.bin", 0},
        {"normal4096_f64_consumed_u8.bin", 0}, {"normal4096_f32_consumed_u8.bin", 0},
    };
    size_t nk = sizeof kinds / sizeof kinds[0];
    int bad = 0, total = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, files) {
        total++;
        if (!check_file(files, f, kinds, nk)) bad++;
    }
    print_message("numpy_rng: %d files checked, %d mismatched\n", total, bad);
    for (size_t k = 0; k < nk; k++) {
        if (!kinds[k].seen) print_error("no file of kind %s in the manifest\n", kinds[k].suffix);
        assert_true(kinds[k].seen > 0);
    }
    assert_int_equal(total, N_FILES);
    assert_int_equal(bad, 0);
    cJSON_Delete(m);
}

/* ---- per-seed fields and slow-path events ---- */

/* Checks one ziggurat event against our own draw record. */
static int check_event(const char *what, const cJSON *ev, const void *vals, int f32, const uint8_t *consumed,
                       const uint8_t *layer, size_t n) {
    size_t idx = (size_t)cJSON_GetObjectItemCaseSensitive(ev, "index")->valuedouble;
    int want_used = (int)cJSON_GetObjectItemCaseSensitive(ev, "consumed")->valuedouble;
    double want_val = cJSON_GetObjectItemCaseSensitive(ev, "value")->valuedouble;
    int want_layer = (int)cJSON_GetObjectItemCaseSensitive(ev, "first_layer")->valuedouble;
    const char *kind = cJSON_GetObjectItemCaseSensitive(ev, "kind")->valuestring;
    assert_true(idx < n);
    double got = f32 ? (double)((const float *)vals)[idx] : ((const double *)vals)[idx];
    int ok = consumed[idx] == want_used && layer[idx] == want_layer &&
             (f32 ? (float)got == (float)want_val : got == want_val);
    /* the event's kind must agree with the path our draw took */
    if (strcmp(kind, "tail") == 0 || strcmp(kind, "tail_multi") == 0)
        ok = ok && layer[idx] == 0 && consumed[idx] >= 3 && (consumed[idx] - 1) % 2 == 0;
    else if (strcmp(kind, "wedge_accept") == 0)
        ok = ok && layer[idx] != 0 && consumed[idx] == 2;
    else if (strcmp(kind, "wedge_reject") == 0)
        ok = ok && layer[idx] != 0 && consumed[idx] >= 3;
    else
        ok = 0;
    if (!ok)
        print_error("%s event %s at %zu: got value %.17g used %u layer %u; want %.17g used %d layer %d\n", what, kind,
                    idx, got, consumed[idx], layer[idx], want_val, want_used, want_layer);
    return ok;
}

static void test_manifest_seeds(void **state) {
    (void)state;
    cJSON *m = load_json(tu_data("numpy_rng/manifest.json"));
    const cJSON *seeds = cJSON_GetObjectItemCaseSensitive(m, "seeds"), *s;
    int nseeds = 0, nevents = 0, bad = 0;
    int kinds_seen[2][4] = {{0}}; /* [f64/f32][tail, tail_multi, wedge_accept, wedge_reject] */
    cJSON_ArrayForEach(s, seeds) {
        nseeds++;
        const char *tag = cJSON_GetObjectItemCaseSensitive(s, "tag")->valuestring;
        const cJSON *seed = cJSON_GetObjectItemCaseSensitive(s, "seed");
        /* entropy words */
        cdf_seedseq ss;
        uint32_t *words;
        size_t nw;
        seedseq_from_seed(seed, &ss, &words, &nw);
        const cJSON *ew = cJSON_GetObjectItemCaseSensitive(s, "entropy_u32_words"), *w;
        size_t i = 0;
        cJSON_ArrayForEach(w, ew) {
            if (i >= nw || words[i] != (uint32_t)w->valuedouble) {
                print_error("%s: entropy word %zu differs\n", tag, i);
                bad++;
            }
            i++;
        }
        if (i != nw) print_error("%s: %zu entropy words, want %zu\n", tag, nw, i), bad++;
        cdf_free(words);
        /* generate_state(4, uint64) */
        uint64_t st4[4];
        cdf_seedseq_generate_u64(&ss, st4, 4);
        const cJSON *hx = cJSON_GetObjectItemCaseSensitive(s, "seedseq_state4_u64_hex");
        i = 0;
        cJSON_ArrayForEach(w, hx) {
            uint64_t hi, lo;
            parse_hex128(w->valuestring, &hi, &lo);
            if (i >= 4 || hi != 0 || lo != st4[i]) print_error("%s: seedseq state word %zu differs\n", tag, i), bad++;
            i++;
        }
        assert_int_equal(i, 4);
        /* PCG64 state after seeding */
        cdf_generator *g = gen_from_seed(seed);
        cdf_pcg64_state pst;
        cdf_error err = {0};
        assert_int_equal(cdf_generator_get_pcg64_state(g, &pst, &err), CDF_OK);
        uint64_t hi, lo;
        parse_hex128(cJSON_GetObjectItemCaseSensitive(s, "pcg64_state_hex")->valuestring, &hi, &lo);
        if (hi != pst.state_hi || lo != pst.state_lo) print_error("%s: pcg64 state differs\n", tag), bad++;
        parse_hex128(cJSON_GetObjectItemCaseSensitive(s, "pcg64_inc_hex")->valuestring, &hi, &lo);
        if (hi != pst.inc_hi || lo != pst.inc_lo) print_error("%s: pcg64 inc differs\n", tag), bad++;
        assert_int_equal(pst.has_uint32, 0);
        cdf_generator_free(g);
        /* slow-path events of the first 4096 draws, f64 then f32 */
        for (int f32 = 0; f32 < 2; f32++) {
            const cJSON *evs = cJSON_GetObjectItemCaseSensitive(s, f32 ? "slow_path_events_f32" : "slow_path_events_f64");
            if (!evs) continue;
            size_t n = 4096;
            void *vals = malloc(n * 8);
            uint8_t *used = malloc(n), *layer = malloc(n);
            g = gen_from_seed(seed);
            counted_normals(g, f32, n, vals, used, layer);
            cdf_generator_free(g);
            /* every draw off the fast path must be a listed event */
            size_t slow = 0;
            for (size_t j = 0; j < n; j++) slow += used[j] != 1;
            if (slow != (size_t)cJSON_GetArraySize(evs))
                print_error("%s %s: %zu slow draws, manifest lists %d\n", tag, f32 ? "f32" : "f64", slow,
                            cJSON_GetArraySize(evs)),
                    bad++;
            const cJSON *ev;
            cJSON_ArrayForEach(ev, evs) {
                nevents++;
                if (!check_event(tag, ev, vals, f32, used, layer, n)) bad++;
                const char *k = cJSON_GetObjectItemCaseSensitive(ev, "kind")->valuestring;
                kinds_seen[f32][strcmp(k, "tail") == 0 ? 0 : strcmp(k, "tail_multi") == 0 ? 1 : strcmp(k, "wedge_accept") == 0 ? 2 : 3]++;
            }
            free(vals);
            free(used);
            free(layer);
        }
    }
    print_message("numpy_rng: %d seeds, %d slow-path events checked\n", nseeds, nevents);
    assert_int_equal(nseeds, N_SEEDS);
    assert_int_equal(nevents, N_SLOW_EVENTS);
    for (int f = 0; f < 2; f++) {
        assert_true(kinds_seen[f][0] > 0); /* tail */
        assert_true(kinds_seen[f][2] > 0); /* wedge accepted */
        assert_true(kinds_seen[f][3] > 0); /* wedge rejected */
    }
    assert_int_equal(bad, 0);
    cJSON_Delete(m);
}

static void test_ziggurat_events(void **state) {
    (void)state;
    cJSON *m = load_json(tu_data("numpy_rng/manifest.json"));
    const cJSON *ze = cJSON_GetObjectItemCaseSensitive(m, "ziggurat_events");
    assert_non_null(ze);
    int bad = 0, n_multi = 0, n_tail = 0, n_rej = 0, n_events = 0;
    for (int f32 = 0; f32 < 2; f32++) {
        const cJSON *byk = cJSON_GetObjectItemCaseSensitive(ze, f32 ? "f32" : "f64"), *list;
        assert_non_null(byk);
        cJSON_ArrayForEach(list, byk) {
            const cJSON *ev;
            cJSON_ArrayForEach(ev, list) {
                const cJSON *seed = cJSON_GetObjectItemCaseSensitive(ev, "seed");
                cJSON *seedstr = cJSON_IsNumber(seed) ? NULL : (cJSON *)seed;
                char buf[32];
                if (!seedstr) {
                    snprintf(buf, sizeof buf, "%" PRIu64, (uint64_t)seed->valuedouble);
                    seedstr = cJSON_CreateString(buf);
                }
                size_t idx = (size_t)cJSON_GetObjectItemCaseSensitive(ev, "index")->valuedouble;
                size_t n = idx + 1;
                void *vals = malloc(n * 8);
                uint8_t *used = malloc(n), *layer = malloc(n);
                cdf_generator *g = gen_from_seed(seedstr);
                counted_normals(g, f32, n, vals, used, layer);
                cdf_generator_free(g);
                if (!check_event(f32 ? "ziggurat_events f32" : "ziggurat_events f64", ev, vals, f32, used, layer, n))
                    bad++;
                const char *k = cJSON_GetObjectItemCaseSensitive(ev, "kind")->valuestring;
                n_multi += strcmp(k, "tail_multi") == 0;
                n_tail += strcmp(k, "tail") == 0;
                n_rej += strcmp(k, "wedge_reject") == 0;
                n_events++;
                if (seedstr != seed) cJSON_Delete(seedstr);
                free(vals);
                free(used);
                free(layer);
            }
        }
    }
    print_message("ziggurat events: %d tail, %d multi-round tail, %d wedge rejections\n", n_tail, n_multi, n_rej);
    assert_true(n_multi > 0 && n_tail > 0 && n_rej > 0);
    assert_int_equal(n_events, N_ZIGGURAT_EVENTS);
    assert_int_equal(bad, 0);
    cJSON_Delete(m);
}

/* The slow_seed_* float64 files must really contain every slow-path kind. */
static void test_slow_seed_files_cover_paths(void **state) {
    (void)state;
    cJSON *m = load_json(tu_data("numpy_rng/manifest.json"));
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(m, "files"), *f;
    int hist[2][8] = {{0}}, nfiles = 0;
    cJSON_ArrayForEach(f, files) {
        const char *name = cJSON_GetObjectItemCaseSensitive(f, "file")->valuestring;
        if (strncmp(name, "slow_seed_", 10) != 0 || !strstr(name, "consumed_u8")) continue;
        int f32 = strstr(name, "f32") != NULL;
        size_t count = (size_t)cJSON_GetObjectItemCaseSensitive(f, "count")->valuedouble;
        uint8_t *want = tu_load_bin(tu_data("numpy_rng/%s", name), count, 1);
        assert_non_null(want);
        for (size_t i = 0; i < count; i++) hist[f32][want[i] < 7 ? want[i] : 7]++;
        free(want);
        nfiles++;
    }
    for (int k = 0; k < 2; k++) {
        assert_true(hist[k][2] > 0); /* wedge accepted */
        assert_true(hist[k][3] > 0); /* wedge rejected once / tail in one round */
        assert_true(hist[k][5] > 0); /* tail needing two rounds */
    }
    assert_int_equal(nfiles, N_SLOW_SEED_FILES);
    cJSON_Delete(m);
}

/* ---- mindone randn_tensor vs the ddpm golden initial noise ---- */

static void test_ddpm_case_noise(void **state) {
    (void)state;
    cJSON *m = load_json(tu_data("ddpm/manifest.json"));
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(m, "cases"), *c;
    int checked = 0, lists = 0;
    cJSON_ArrayForEach(c, cases) {
        const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        cJSON *cj = load_json(tu_data("ddpm/cases/%s/case.json", name));
        const cJSON *gen = cJSON_GetObjectItemCaseSensitive(cj, "generator");
        const cJSON *noise = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cj, "files"), "noise");
        const char *kind = cJSON_GetObjectItemCaseSensitive(gen, "kind")->valuestring;
        const cJSON *seeds = cJSON_GetObjectItemCaseSensitive(gen, "seeds"), *sd;
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(noise, "dtype")->valuestring, "float32");
        int64_t shape[CDF_MAX_DIMS];
        int ndim;
        size_t count = shape_of(noise, shape, &ndim);
        float *want = tu_load_bin(tu_data("ddpm/cases/%s/noise.bin", name), count, 4);
        assert_non_null(want);
        cdf_generator *gens[64];
        size_t ng = 0;
        cJSON_ArrayForEach(sd, seeds) {
            assert_true(ng < 64);
            gens[ng++] = gen_from_seed(sd);
        }
        assert_true(strcmp(kind, "list") == 0 || ng == 1);
        lists += strcmp(kind, "list") == 0;
        float *got = calloc(count, 4);
        cdf_error err = {0};
        assert_int_equal(cdf_randn_tensor(gens, ng, shape, ndim, CDF_F32, got, &err), CDF_OK);
        char what[256];
        snprintf(what, sizeof what, "ddpm/%s noise", name);
        assert_true(same_bits(what, got, want, count, 4));
        for (size_t i = 0; i < ng; i++) cdf_generator_free(gens[i]);
        free(got);
        free(want);
        cJSON_Delete(cj);
        checked++;
    }
    print_message("ddpm noise: %d cases (%d with generator lists)\n", checked, lists);
    assert_int_equal(checked, N_DDPM_CASES);
    assert_int_equal(lists, 1);
    cJSON_Delete(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_files),
        cmocka_unit_test(test_manifest_seeds),
        cmocka_unit_test(test_ziggurat_events),
        cmocka_unit_test(test_slow_seed_files_cover_paths),
        cmocka_unit_test(test_ddpm_case_noise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
