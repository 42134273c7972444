/* State get/set for every kind, in Python's terms: numpy's PCG64
 * bit_generator.state, torch's g.get_state() (as fields and as its byte
 * tensor), numpy's RandomState.get_state(). */
#include <math.h>
#include <string.h>

#include "rng/generator.h"

static cdf_status want_kind(const cdf_generator *g, const void *st, int ok, const char *what, cdf_error *err) {
    if (!g || !st) return cdf_error_set(err, CDF_ERR_ARG, "generator state: NULL generator or state");
    if (!ok)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "generator state: a %s generator has no %s state",
                             cdf_rng_kind_name(g->kind), what);
    return CDF_OK;
}

static int is_torch_cpu(const cdf_generator *g) {
    return g->kind == CDF_RNG_TORCH_CPU || g->kind == CDF_RNG_TORCH_CPU_AVX2;
}

/* ---- numpy PCG64 ---- */

cdf_status cdf_generator_get_pcg64_state(const cdf_generator *g, cdf_pcg64_state *st, cdf_error *err) {
    cdf_status s = want_kind(g, st, g && g->kind == CDF_RNG_NUMPY, "PCG64", err);
    if (s != CDF_OK) return s;
    st->state_hi = g->u.pcg.state.hi;
    st->state_lo = g->u.pcg.state.lo;
    st->inc_hi = g->u.pcg.inc.hi;
    st->inc_lo = g->u.pcg.inc.lo;
    st->has_uint32 = g->u.pcg.has_uint32;
    st->uinteger = g->u.pcg.uinteger;
    return CDF_OK;
}

cdf_status cdf_generator_set_pcg64_state(cdf_generator *g, const cdf_pcg64_state *st, cdf_error *err) {
    cdf_status s = want_kind(g, st, g && g->kind == CDF_RNG_NUMPY, "PCG64", err);
    if (s != CDF_OK) return s;
    /* numpy stores state and inc as given (even an even inc) */
    g->u.pcg.state = cdf_u128_make(st->state_hi, st->state_lo);
    g->u.pcg.inc = cdf_u128_make(st->inc_hi, st->inc_lo);
    g->u.pcg.has_uint32 = st->has_uint32 != 0;
    g->u.pcg.uinteger = st->uinteger;
    return CDF_OK;
}

/* ---- torch CPU ---- */

cdf_status cdf_generator_get_torch_cpu_state(const cdf_generator *g, cdf_torch_cpu_state *st, cdf_error *err) {
    cdf_status s = want_kind(g, st, g && is_torch_cpu(g), "torch CPU", err);
    if (s != CDF_OK) return s;
    const cdf_torch_cpu *t = &g->u.tc;
    st->initial_seed = t->initial_seed;
    memcpy(st->mt, t->mt.state, sizeof st->mt);
    st->left = t->mt.left;
    st->seeded = t->seeded;
    st->next = t->mt.next;
    st->has_normal = t->has_normal;
    st->normal = t->has_normal ? t->normal : 0.0;
    st->has_float_normal = t->has_float_normal;
    st->float_normal = t->has_float_normal ? t->float_normal : 0.0f;
    return CDF_OK;
}

cdf_status cdf_generator_set_torch_cpu_state(cdf_generator *g, const cdf_torch_cpu_state *st, cdf_error *err) {
    cdf_status s = want_kind(g, st, g && is_torch_cpu(g), "torch CPU", err);
    if (s != CDF_OK) return s;
    /* at::mt19937::is_valid() */
    if (!st->seeded || st->left <= 0 || st->left > CDF_MT_N || st->next > CDF_MT_N)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "torch CPU state: Invalid mt19937 state (seeded %d, left %d, next %u; need seeded, "
                             "1 <= left <= 624, next <= 624)",
                             (int)st->seeded, (int)st->left, (unsigned)st->next);
    cdf_torch_cpu *t = &g->u.tc;
    t->initial_seed = st->initial_seed;
    memcpy(t->mt.state, st->mt, sizeof st->mt);
    t->mt.left = st->left;
    t->mt.next = st->next;
    t->seeded = 1;
    t->has_normal = st->has_normal != 0;
    t->normal = t->has_normal ? st->normal : 0.0;
    t->has_float_normal = st->has_float_normal != 0;
    t->float_normal = t->has_float_normal ? st->float_normal : 0.0f;
    return CDF_OK;
}

/* ---- torch CUDA ---- */

cdf_status cdf_generator_get_philox_state(const cdf_generator *g, cdf_philox_state *st, cdf_error *err) {
    cdf_status s = want_kind(g, st, g && g->kind == CDF_RNG_TORCH_CUDA, "Philox", err);
    if (s != CDF_OK) return s;
    st->seed = g->u.cu.seed;
    st->offset = g->u.cu.offset;
    return CDF_OK;
}

cdf_status cdf_generator_set_philox_state(cdf_generator *g, const cdf_philox_state *st, cdf_error *err) {
    cdf_status s = want_kind(g, st, g && g->kind == CDF_RNG_TORCH_CUDA, "Philox", err);
    if (s != CDF_OK) return s;
    if (st->offset % 4 != 0)
        return cdf_error_set(err, CDF_ERR_ARG, "torch CUDA state: offset %llu is not a multiple of 4",
                             (unsigned long long)st->offset);
    g->u.cu.seed = st->seed;
    g->u.cu.offset = st->offset;
    cdf_philox_stream_init(&g->ph, st->seed, 0, 0);
    return CDF_OK;
}

/* ---- torch byte tensors (x86-64 layout of CPUGeneratorImplState) ---- */

/* CPUGeneratorImplStateLegacy: the_initial_seed u64 @0, left i32 @8, seeded
 * i32 @12, next u64 @16, state u64[624] @24, normal_x f64 @5016, normal_y
 * @5024, normal_rho @5032, normal_is_valid i32 @5040, padding to 5048; then
 * next_float_normal_sample f32 @5048, is_next_float_normal_sample_valid u8
 * @5052, padding to 5056.  Little-endian. */
#define OFF_LEFT 8
#define OFF_SEEDED 12
#define OFF_NEXT 16
#define OFF_STATE 24
#define OFF_NORMAL_X 5016
#define OFF_NORMAL_Y 5024
#define OFF_NORMAL_RHO 5032
#define OFF_NORMAL_VALID 5040
#define OFF_FLOAT_NORMAL 5048
#define OFF_FLOAT_VALID 5052
#define CUDA_GARBAGE 800 /* 200 * sizeof(int): torch's memset(-1) backward-compatibility block */

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint64_t f64_bits(double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}
static double bits_f64(uint64_t u) {
    double d;
    memcpy(&d, &u, 8);
    return d;
}

cdf_status cdf_generator_get_torch_state_bytes(const cdf_generator *g, uint8_t *buf, size_t len, size_t *written,
                                               cdf_error *err) {
    if (!g || !buf) return cdf_error_set(err, CDF_ERR_ARG, "torch state bytes: NULL generator or buffer");
    if (g->kind == CDF_RNG_TORCH_CUDA) {
        if (len < CDF_TORCH_CUDA_STATE_BYTES)
            return cdf_error_set(err, CDF_ERR_ARG, "torch state bytes: buffer of %zu bytes, need %d", len,
                                 CDF_TORCH_CUDA_STATE_BYTES);
        memset(buf, 0xff, CUDA_GARBAGE);
        put_u64(buf + CUDA_GARBAGE, g->u.cu.seed);
        put_u64(buf + CUDA_GARBAGE + 8, g->u.cu.offset);
        if (written) *written = CDF_TORCH_CUDA_STATE_BYTES;
        return CDF_OK;
    }
    if (!is_torch_cpu(g))
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "torch state bytes: a %s generator is not a torch generator",
                             cdf_rng_kind_name(g->kind));
    if (len < CDF_TORCH_CPU_STATE_BYTES)
        return cdf_error_set(err, CDF_ERR_ARG, "torch state bytes: buffer of %zu bytes, need %d", len,
                             CDF_TORCH_CPU_STATE_BYTES);
    const cdf_torch_cpu *t = &g->u.tc;
    memset(buf, 0, CDF_TORCH_CPU_STATE_BYTES);
    put_u64(buf, t->initial_seed);
    put_u32(buf + OFF_LEFT, (uint32_t)t->mt.left);
    put_u32(buf + OFF_SEEDED, (uint32_t)t->seeded);
    put_u64(buf + OFF_NEXT, t->mt.next);
    for (int i = 0; i < CDF_MT_N; i++) put_u64(buf + OFF_STATE + 8 * i, t->mt.state[i]);
    if (t->has_normal) {
        put_u32(buf + OFF_NORMAL_VALID, 1);
        put_u64(buf + OFF_NORMAL_Y, f64_bits(t->normal));
    }
    if (t->has_float_normal) {
        uint32_t fb;
        memcpy(&fb, &t->float_normal, 4);
        put_u32(buf + OFF_FLOAT_NORMAL, fb);
        buf[OFF_FLOAT_VALID] = 1;
    }
    if (written) *written = CDF_TORCH_CPU_STATE_BYTES;
    return CDF_OK;
}

cdf_status cdf_generator_set_torch_state_bytes(cdf_generator *g, const uint8_t *buf, size_t len, cdf_error *err) {
    if (!g || !buf) return cdf_error_set(err, CDF_ERR_ARG, "torch state bytes: NULL generator or buffer");
    if (g->kind == CDF_RNG_TORCH_CUDA) {
        if (len != CDF_TORCH_CUDA_STATE_BYTES && len != CDF_TORCH_CUDA_STATE_BYTES - 8)
            return cdf_error_set(err, CDF_ERR_ARG, "torch state bytes: RNG state is wrong size (%zu bytes, want %d or %d)",
                                 len, CDF_TORCH_CUDA_STATE_BYTES, CDF_TORCH_CUDA_STATE_BYTES - 8);
        cdf_philox_state ps = {get_u64(buf + CUDA_GARBAGE), len == CDF_TORCH_CUDA_STATE_BYTES ? get_u64(buf + CUDA_GARBAGE + 8) : 0};
        return cdf_generator_set_philox_state(g, &ps, err);
    }
    if (!is_torch_cpu(g))
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "torch state bytes: a %s generator is not a torch generator",
                             cdf_rng_kind_name(g->kind));
    if (len != CDF_TORCH_CPU_STATE_BYTES && len != CDF_TORCH_CPU_STATE_BYTES_LEGACY)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "torch state bytes: Expected either a CPUGeneratorImplStateLegacy of size %d or a "
                             "CPUGeneratorImplState of size %d but found the input RNG state size to be %zu",
                             CDF_TORCH_CPU_STATE_BYTES_LEGACY, CDF_TORCH_CPU_STATE_BYTES, len);
    cdf_torch_cpu_state st;
    memset(&st, 0, sizeof st);
    st.initial_seed = get_u64(buf);
    st.left = (int32_t)get_u32(buf + OFF_LEFT);
    st.seeded = (int32_t)get_u32(buf + OFF_SEEDED);
    st.next = (uint32_t)get_u64(buf + OFF_NEXT);
    for (int i = 0; i < CDF_MT_N; i++) st.mt[i] = (uint32_t)get_u64(buf + OFF_STATE + 8 * i);
    int valid = get_u32(buf + OFF_NORMAL_VALID) != 0;
    if (len == CDF_TORCH_CPU_STATE_BYTES) {
        if (valid) {
            st.has_normal = 1;
            st.normal = bits_f64(get_u64(buf + OFF_NORMAL_Y));
        }
        if (buf[OFF_FLOAT_VALID]) {
            uint32_t fb = get_u32(buf + OFF_FLOAT_NORMAL);
            st.has_float_normal = 1;
            memcpy(&st.float_normal, &fb, 4);
        }
    } else if (valid) {
        /* legacy layout: rho and the angle's uniform; the sin half is cached */
        double rho = bits_f64(get_u64(buf + OFF_NORMAL_RHO));
        double theta = 2.0 * 3.14159265358979323846 * bits_f64(get_u64(buf + OFF_NORMAL_X));
        st.has_normal = 1;
        st.normal = rho * sin(theta);
    }
    /* torch's seeded_ is a bool read from an int: any non-zero is true */
    st.seeded = st.seeded != 0;
    return cdf_generator_set_torch_cpu_state(g, &st, err);
}

/* ---- numpy RandomState ---- */

cdf_status cdf_generator_get_legacy_state(const cdf_generator *g, cdf_legacy_state *st, cdf_error *err) {
    cdf_status s = want_kind(g, st, g && g->kind == CDF_RNG_NUMPY_LEGACY, "RandomState", err);
    if (s != CDF_OK) return s;
    memcpy(st->key, g->u.lg.mt.state, sizeof st->key);
    st->pos = cdf_mt19937_pos(&g->u.lg.mt);
    st->has_gauss = g->u.lg.has_gauss;
    st->cached_gaussian = g->u.lg.has_gauss ? g->u.lg.gauss : 0.0;
    return CDF_OK;
}

cdf_status cdf_generator_set_legacy_state(cdf_generator *g, const cdf_legacy_state *st, cdf_error *err) {
    cdf_status s = want_kind(g, st, g && g->kind == CDF_RNG_NUMPY_LEGACY, "RandomState", err);
    if (s != CDF_OK) return s;
    if (st->pos < 0 || st->pos > CDF_MT_N)
        return cdf_error_set(err, CDF_ERR_ARG, "RandomState state: pos %d out of 0 .. 624", st->pos);
    memcpy(g->u.lg.mt.state, st->key, sizeof st->key);
    cdf_mt19937_set_pos(&g->u.lg.mt, st->pos);
    g->u.lg.has_gauss = st->has_gauss != 0;
    g->u.lg.gauss = g->u.lg.has_gauss ? st->cached_gaussian : 0.0;
    return CDF_OK;
}
