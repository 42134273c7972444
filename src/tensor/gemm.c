#include "tensor/gemm.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "tensor/gemm_kernels.h"
#include "tensor/half.h"

#if CDF_HAVE_X86
#include <xmmintrin.h>
#endif

/* Blocking (BLIS's loop order inside one output tile): k in KC blocks; per
 * block, A's MC x KC and B's KC x NC are packed into micro-panels, then each
 * NR-wide B panel meets every MR-tall A panel.  The kernels sum in blocks of
 * CDF_GEMM_SUM_BLOCK (the contract in gemm.h), adding each block's chain to
 * the running sum in C; KC is a multiple of that block, so KC, MC and NC are
 * chosen for speed and load balance only: they never change a result. */
#define MR CDF_GEMM_MR
#define NR CDF_GEMM_NR
#define KC 256 /* a multiple of CDF_GEMM_SUM_BLOCK */
#define MC (MR * 24)
#define NC_MAX (NR * 128)
#define ROUND_UP(x, q) (((x) + (q)-1) / (q) * (q))

/* x, or a zero of its sign when it is subnormal (denormals-are-zero on an input) */
static inline float flush(float x) { return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x; }

/* x86's flush-to-zero on a result r rounded from the exact value e: tininess is detected before
 * rounding, so an e just below FLT_MIN that rounds up to it is flushed too (e from float64, exact
 * for the sums and products that land there from float32 operands of similar size) */
static inline float ftz(float r, double e) {
    return fabsf(r) < FLT_MIN || (fabsf(r) == FLT_MIN && fabs(e) < (double)FLT_MIN) ? copysignf(0.0f, r) : r;
}
static inline float fma_ftz(float a, float b, float c) {
    float r = fmaf(a, b, c);
    return fabsf(r) > FLT_MIN ? r : ftz(r, fma((double)a, (double)b, (double)c));
}
static inline float add_ftz(float a, float b) {
    float r = a + b;
    return fabsf(r) > FLT_MIN ? r : ftz(r, (double)a + (double)b);
}

/* The portable kernel, plain (fmaf, IEEE adds) or with bf16 mode's flushes (x86's FTZ | DAZ written out). */
static inline void kernel_scalar(int kc, const float *a, const float *b, float *c, int64_t ldc, int first, int ftz) {
    for (int q0 = 0; q0 < kc; q0 += CDF_GEMM_SUM_BLOCK) {
        int q1 = kc - q0 < CDF_GEMM_SUM_BLOCK ? kc : q0 + CDF_GEMM_SUM_BLOCK;
        float acc[MR][NR] = {{0}};
        for (int p = q0; p < q1; p++)
            for (int i = 0; i < MR; i++)
                for (int j = 0; j < NR; j++) {
                    float av = a[p * MR + i], bv = b[p * NR + j];
                    acc[i][j] = ftz ? fma_ftz(av, bv, acc[i][j]) : fmaf(av, bv, acc[i][j]);
                }
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) {
                float *cij = c + i * ldc + j;
                *cij = first && q0 == 0 ? acc[i][j] : ftz ? add_ftz(flush(*cij), acc[i][j]) : *cij + acc[i][j];
            }
    }
}

void cdf_gemm_kernel_scalar(int kc, const float *a, const float *b, float *c, int64_t ldc, int first) {
    kernel_scalar(kc, a, b, c, ldc, first, 0);
}

void cdf_gemm_kernel_scalar_bf16(int kc, const float *a, const float *b, float *c, int64_t ldc, int first) {
    kernel_scalar(kc, a, b, c, ldc, first, 1);
}

/* bf16 mode's operand rounding, as vcvtneps2bf16: a subnormal input is a zero of its sign, else
 * the nearest bfloat16 (ties to even, as cdf_f32_to_bf16; never subnormal then) */
static inline float bf16_in(float x) { return cdf_bf16_to_f32(cdf_f32_to_bf16(flush(x))); }

/* bf16 mode, after packing: the kc rows of each of npanel panels (width lanes, panel stride kp
 * rows) rounded by bf16_in, and each pair of rows (k even, k + 1) swapped: vdpbf16ps adds the
 * odd product first.  An odd kc (the end of k) gets its missing odd row as zeros (kp = kc + 1). */
static void bf16_pairs(float *panels, int npanel, int kc, int kp, int width) {
    for (int q = 0; q < npanel; q++) {
        float *d = panels + (size_t)q * kp * width;
        for (int p = 0; p + 1 < kc; p += 2)
            for (int l = 0; l < width; l++) {
                float e = bf16_in(d[p * width + l]), o = bf16_in(d[(p + 1) * width + l]);
                d[p * width + l] = o;
                d[(p + 1) * width + l] = e;
            }
        if (kc & 1)
            for (int l = 0; l < width; l++) {
                d[kc * width + l] = bf16_in(d[(kc - 1) * width + l]);
                d[(kc - 1) * width + l] = 0.0f;
            }
    }
}

static cdf_gemm_kernel_fn pick_kernel(unsigned cpu, const char **name) {
#if CDF_HAVE_X86
    if (cpu & CDF_CPU_AVX2_FMA) {
        if (name) *name = "avx2";
        return cdf_gemm_kernel_avx2;
    }
#endif
    (void)cpu;
    if (name) *name = "scalar";
    return cdf_gemm_kernel_scalar;
}

cdf_gemm_kernel_fn cdf_gemm_kernel_for(unsigned cpu) { return pick_kernel(cpu, NULL); }

const char *cdf_gemm_kernel_name(cdf_exec *ex) {
    const char *name = NULL;
    pick_kernel(cdf_exec_cpu(ex), &name);
    return name;
}

void cdf_gemm_widen(unsigned cpu, cdf_dtype dt, const void *src, float *dst, int n) {
#if CDF_HAVE_X86
    if (dt == CDF_F16 && (cpu & CDF_CPU_F16C)) {
        cdf_gemm_f16_to_f32_f16c(src, dst, n);
        return;
    }
#endif
    (void)cpu;
    cdf_convert_to_f32(dt, src, dst, (size_t)n);
}

/* A full panel's interleave (cdf_gemm_interleave_avx2), or NULL for the portable loop. */
typedef void (*interleave_fn)(const float *rows, int64_t ld, int width, int kc, float *d);

/* How this call packs: the CPU features its widening may use (cdf_gemm_widen) and the full-panel
 * interleave. */
typedef struct packer {
    unsigned cpu;
    interleave_fn il;
} packer;

/* n elements of operand o starting at element offset off -> dst (float32). */
static void load_run(const cdf_gemm_operand *o, unsigned cpu, int64_t off, int n, float *dst) {
    cdf_gemm_widen(cpu, o->dtype, (const char *)o->data + off * (int64_t)cdf_dtype_size(o->dtype), dst, n);
}

/* rows[r * ld + p] (r < nrow, p < kc) -> d[p * width + r], lanes nrow .. width-1 zero: one panel,
 * written in order (inlined with a constant width, so a full panel's loop is unrolled) */
static inline void interleave(const float *rows, int64_t ld, int nrow, int kc, int width, float *d) {
    if (nrow == width) {
        for (int p = 0; p < kc; p++, d += width)
            for (int r = 0; r < width; r++) d[r] = rows[r * ld + p];
        return;
    }
    for (int p = 0; p < kc; p++, d += width) {
        int r = 0;
        for (; r < nrow; r++) d[r] = rows[r * ld + p];
        for (; r < width; r++) d[r] = 0.0f;
    }
}

/* nrow rows of kc elements of operand o (row r at element offset off + r * o->ld) -> one panel of
 * the given width; float32 rows are read in place, others converted into tmp first */
static inline void pack_rows(const cdf_gemm_operand *o, const packer *pk, int64_t off, int nrow, int kc, int width,
                             float *d, float *tmp) {
    const float *rows = (const float *)o->data + off;
    int64_t ld = o->ld;
    if (o->dtype != CDF_F32) {
        for (int r = 0; r < nrow; r++) load_run(o, pk->cpu, off + r * o->ld, kc, tmp + (size_t)r * kc);
        rows = tmp;
        ld = kc;
    }
    if (pk->il && nrow == width)
        pk->il(rows, ld, width, kc, d);
    else
        interleave(rows, ld, nrow, kc, width, d);
}

/* A[i0 .. i0+mc, p0 .. p0+kc] -> MR-tall panels [kc, MR] (panel stride kp >= kc rows), rows past mc
 * zero; tmp: MR * KC floats. */
static void pack_a(const cdf_gemm_operand *a, const packer *pk, int i0, int mc, int p0, int kc, int kp, float *dst,
                   float *tmp) {
    for (int ip = 0; ip < mc; ip += MR) {
        int mr = mc - ip < MR ? mc - ip : MR;
        float *d = dst + (size_t)ip * kp;
        if (!a->trans) {
            pack_rows(a, pk, (int64_t)(i0 + ip) * a->ld + p0, mr, kc, MR, d, tmp);
        } else {
            for (int p = 0; p < kc; p++) {
                int64_t off = (int64_t)(p0 + p) * a->ld + i0 + ip;
                if (mr == MR && a->dtype == CDF_F32)
                    memcpy(d + p * MR, (const float *)a->data + off, sizeof(float) * MR);
                else
                    load_run(a, pk->cpu, off, mr, d + p * MR);
                for (int r = mr; r < MR; r++) d[p * MR + r] = 0.0f;
            }
        }
    }
}

/* The im2col matrix of b->conv for rows p0 .. p0+kc, columns j0 .. j0+nr (one panel). */
static void pack_b_im2col(const cdf_gemm_operand *b, int p0, int kc, int j0, int nr, float *d) {
    const cdf_conv_geom *g = b->conv;
    int64_t hwo = (int64_t)g->ho * g->wo, img = (int64_t)g->cin * g->h * g->w;
    int by[NR], bx[NR];
    const float *xb[NR]; /* each column's image */
    for (int c = 0; c < nr; c++) {
        int64_t j = (int64_t)j0 + c, r = j % hwo;
        int oy = (int)(r / g->wo), ox = (int)(r % g->wo);
        xb[c] = (const float *)b->data + (j / hwo) * img;
        by[c] = oy * g->stride - g->pad_t;
        bx[c] = ox * g->stride - g->pad_l;
    }
    /* a full panel on one output row of one image with stride 1 reads NR neighbouring pixels */
    int one_row = nr == NR && g->stride == 1 && by[0] == by[NR - 1] && xb[0] == xb[NR - 1];
    const float *x = xb[0];
    int taps = g->kh * g->kw, ci = p0 / taps, ky = (p0 % taps) / g->kw, kx = p0 % g->kw;
    for (int p = 0; p < kc; p++, d += NR) {
        const float *xc = x + (size_t)ci * g->h * g->w;
        if (one_row) {
            int iy = by[0] + ky, ix = bx[0] + kx;
            if (iy < 0 || iy >= g->h) {
                memset(d, 0, sizeof(float) * NR);
            } else if (ix >= 0 && ix + NR <= g->w) {
                const float *src = xc + (size_t)iy * g->w + ix;
                for (int c = 0; c < NR; c++) d[c] = src[c];
            } else {
                const float *xr = xc + (size_t)iy * g->w;
                for (int c = 0; c < NR; c++) d[c] = ix + c >= 0 && ix + c < g->w ? xr[ix + c] : 0.0f;
            }
        } else {
            size_t plane = (size_t)ci * g->h * g->w;
            for (int c = 0; c < nr; c++) {
                int iy = by[c] + ky, ix = bx[c] + kx;
                d[c] = iy >= 0 && iy < g->h && ix >= 0 && ix < g->w ? xb[c][plane + (size_t)iy * g->w + ix] : 0.0f;
            }
            for (int c = nr; c < NR; c++) d[c] = 0.0f;
        }
        if (++kx == g->kw) {
            kx = 0;
            if (++ky == g->kh) {
                ky = 0;
                ci++;
            }
        }
    }
}

/* B[p0 .. p0+kc, j0 .. j0+nc] -> NR-wide panels [kc, NR] (panel stride kp >= kc rows), columns past
 * nc zero; tmp: NR * KC floats. */
static void pack_b(const cdf_gemm_operand *b, const packer *pk, int p0, int kc, int kp, int j0, int nc, float *dst,
                   float *tmp) {
    for (int jp = 0; jp < nc; jp += NR) {
        int nr = nc - jp < NR ? nc - jp : NR;
        float *d = dst + (size_t)jp * kp;
        if (b->conv) {
            pack_b_im2col(b, p0, kc, j0 + jp, nr, d);
        } else if (!b->trans) {
            for (int p = 0; p < kc; p++) {
                int64_t off = (int64_t)(p0 + p) * b->ld + j0 + jp;
                if (nr == NR && b->dtype == CDF_F32)
                    memcpy(d + p * NR, (const float *)b->data + off, sizeof(float) * NR);
                else
                    load_run(b, pk->cpu, off, nr, d + p * NR);
                for (int c = nr; c < NR; c++) d[p * NR + c] = 0.0f;
            }
        } else {
            pack_rows(b, pk, (int64_t)(j0 + jp) * b->ld + p0, nr, kc, NR, d, tmp);
        }
    }
}

typedef struct gemm_job {
    int m, n, k;
    float alpha;
    const cdf_gemm_operand *a, *b;
    const float *row_bias, *col_bias;
    float *c;
    int64_t ldc, cpb, cbs;      /* C's columns come in blocks of cpb, block q at c + q * cbs */
    int mg, nc, tiles_n, tiles; /* output tiles of mg x nc (mg a multiple of MC, or of MR below MC; nc of NR) */
    cdf_gemm_kernel_fn kern;
    packer pk;
    int bf16;          /* operands rounded and paired as vdpbf16ps takes them (bf16_pairs) */
    unsigned csr_or;   /* MXCSR bits set around the kernels (bf16 on the AVX2 kernel: FTZ | DAZ), else 0 */
} gemm_job;

/* where C[i, j] is */
static inline float *c_at(const gemm_job *J, int i, int j) {
    return J->c + (j / J->cpb) * J->cbs + (int64_t)i * J->ldc + j % J->cpb;
}

/* One mg x nc output tile, all of k, then the epilogue: per KC block of k, B's kc x nc block is packed
 * once and meets each MC-tall block of A in turn. */
static void run_tile(const gemm_job *J, int tile, float *pa, float *pb, float *tmp) {
    int i0 = (tile / J->tiles_n) * J->mg, j0 = (tile % J->tiles_n) * J->nc;
    int mg = J->m - i0 < J->mg ? J->m - i0 : J->mg, nc = J->n - j0 < J->nc ? J->n - j0 : J->nc;
    if (J->k == 0)
        for (int i = 0; i < mg; i++)
            for (int j = 0; j < nc; j++) *c_at(J, i0 + i, j0 + j) = 0.0f;
    for (int p0 = 0; p0 < J->k; p0 += KC) {
        int kc = J->k - p0 < KC ? J->k - p0 : KC, first = p0 == 0;
        int kp = J->bf16 ? kc + (kc & 1) : kc; /* packed rows per panel: the kernel's steps */
        pack_b(J->b, &J->pk, p0, kc, kp, j0, nc, pb, tmp);
        if (J->bf16) bf16_pairs(pb, (nc + NR - 1) / NR, kc, kp, NR);
        for (int ic = 0; ic < mg; ic += MC) {
            int mc = mg - ic < MC ? mg - ic : MC;
            pack_a(J->a, &J->pk, i0 + ic, mc, p0, kc, kp, pa, tmp);
            if (J->bf16) bf16_pairs(pa, (mc + MR - 1) / MR, kc, kp, MR);
#if CDF_HAVE_X86
            unsigned csr = J->csr_or ? _mm_getcsr() : 0u;
            if (J->csr_or) _mm_setcsr(csr | J->csr_or);
#endif
            for (int jp = 0; jp < nc; jp += NR) {
                int nr = nc - jp < NR ? nc - jp : NR, jg = j0 + jp;
                int in_block = jg % J->cpb + nr <= J->cpb; /* the panel's columns are one run of C */
                for (int ip = 0; ip < mc; ip += MR) {
                    int mr = mc - ip < MR ? mc - ip : MR, ig = i0 + ic + ip;
                    const float *ap = pa + (size_t)ip * kp, *bp = pb + (size_t)jp * kp;
                    if (mr == MR && nr == NR && in_block) {
                        J->kern(kp, ap, bp, c_at(J, ig, jg), J->ldc, first);
                        continue;
                    }
                    float edge[MR * NR], *col[NR];
                    for (int c = 0; c < nr; c++) col[c] = c_at(J, ig, jg + c);
                    if (!first)
                        for (int i = 0; i < mr; i++)
                            for (int c = 0; c < nr; c++) edge[i * NR + c] = col[c][(int64_t)i * J->ldc];
                    J->kern(kp, ap, bp, edge, NR, first);
                    for (int i = 0; i < mr; i++)
                        for (int c = 0; c < nr; c++) col[c][(int64_t)i * J->ldc] = edge[i * NR + c];
                }
            }
#if CDF_HAVE_X86
            if (J->csr_or) _mm_setcsr(csr);
#endif
        }
    }
    if (J->alpha == 1.0f && !J->row_bias && !J->col_bias) return;
    for (int i = 0; i < mg; i++) {
        for (int j = 0; j < nc;) {
            /* one run of C: up to the end of the tile or of a column block */
            int jg = j0 + j, run = (int)(J->cpb - jg % J->cpb);
            if (run > nc - j) run = nc - j;
            float *cr = c_at(J, i0 + i, jg);
            for (int q = 0; q < run; q++) {
                float v = J->alpha * cr[q];
                if (J->row_bias) v = v + J->row_bias[i0 + i];
                if (J->col_bias) v = v + J->col_bias[jg + q];
                cr[q] = v;
            }
            j += run;
        }
    }
}

cdf_status cdf_gemm(cdf_exec *ex, int m, int n, int k, float alpha, const cdf_gemm_operand *a,
                    const cdf_gemm_operand *b, const float *row_bias, const float *col_bias, float *c, int64_t ldc) {
    return cdf_gemm_blocked_c(ex, m, n, k, alpha, a, b, row_bias, col_bias, c, ldc, n, 0);
}

cdf_status cdf_gemm_blocked_c(cdf_exec *ex, int m, int n, int k, float alpha, const cdf_gemm_operand *a,
                              const cdf_gemm_operand *b, const float *row_bias, const float *col_bias, float *c,
                              int64_t ldc, int64_t cols_per_block, int64_t block_stride) {
    if (m <= 0 || n <= 0 || k < 0) return CDF_OK;
    if (cols_per_block < 1) cols_per_block = n;
    ex->gemm_flops += 2.0 * m * n * k;
    const cdf_gemm_operand *ops[2] = {a, b};
    for (int i = 0; i < 2; i++)
        if (!ops[i]->conv && ops[i]->dtype != CDF_F32 && ops[i]->dtype != CDF_F16 && ops[i]->dtype != CDF_BF16)
            return cdf_error_set(ex->err, CDF_ERR_UNSUPPORTED, "GEMM operand of dtype %s (F32, F16 or BF16 needed)",
                                 cdf_dtype_name(ops[i]->dtype));
    unsigned cpu = cdf_exec_cpu(ex);
    gemm_job J = {.m = m, .n = n, .k = k, .alpha = alpha, .a = a, .b = b, .row_bias = row_bias,
                  .col_bias = col_bias, .c = c, .ldc = ldc, .cpb = cols_per_block, .cbs = block_stride,
                  .kern = pick_kernel(cpu, NULL), .pk = {cpu, NULL},
                  .bf16 = ex->precision == CDF_PRECISION_BF16};
#if CDF_HAVE_X86
    if (cpu & CDF_CPU_AVX2_FMA) J.pk.il = cdf_gemm_interleave_avx2;
    if (J.bf16 && J.kern != cdf_gemm_kernel_scalar) J.csr_or = 0x8040u; /* FTZ (bit 15) | DAZ (bit 6) */
#endif
    if (J.bf16 && J.kern == cdf_gemm_kernel_scalar) J.kern = cdf_gemm_kernel_scalar_bf16;
    int nth = cdf_exec_threads_for(ex, (double)m * n * (k ? k : 1));
    /* Tiles as large as possible (each B block is packed once per tile row, each A block once per
     * tile column), then split until the threads have about four tiles each: along m where B is
     * the smaller operand to pack again, else along n; m in MC blocks, then down to 4 * MR rows. */
    J.mg = ROUND_UP(m, MC);
    J.nc = n < NC_MAX ? ROUND_UP(n, NR) : NC_MAX;
    for (;;) {
        double tiles = (double)((m + J.mg - 1) / J.mg) * ((n + J.nc - 1) / J.nc);
        if (nth == 1 || tiles >= 4.0 * nth) break;
        int can_m = J.mg > 4 * MR, can_n = J.nc > 4 * NR;
        if (can_m && (n <= m || !can_n))
            J.mg = J.mg > MC ? ROUND_UP(J.mg / 2, MC) : ROUND_UP(J.mg / 2, MR);
        else if (can_n)
            J.nc = ROUND_UP(J.nc / 2, NR);
        else
            break;
    }
    J.tiles_n = (n + J.nc - 1) / J.nc;
    J.tiles = ((m + J.mg - 1) / J.mg) * J.tiles_n;
    if (nth > J.tiles) nth = J.tiles;
    /* per thread (floats, 64-byte multiples): A block, B block, the rows an interleave reads */
    size_t kmax = (size_t)(k < KC ? k + (k & 1) : KC); /* packed rows per panel (bf16: an odd k gets one more) */
    size_t pack_a = ((size_t)MC * kmax + 15) / 16 * 16, pack_b = (kmax * (size_t)J.nc + 15) / 16 * 16;
    size_t per_thread = pack_a + pack_b + (size_t)(MR > NR ? MR : NR) * KC;
    float *buf = cdf_exec_scratch(ex, CDF_SLOT_GEMM, per_thread * (size_t)nth);
    if (!buf) return ex->err && ex->err->status ? ex->err->status : CDF_ERR_NOMEM;
    if (nth <= 1) {
        for (int t = 0; t < J.tiles; t++) run_tile(&J, t, buf, buf + pack_a, buf + pack_a + pack_b);
        return CDF_OK;
    }
    /* tiles handed out in turn to whichever thread is free: tiles differ in size (edges), and a tile's
     * result does not depend on the thread that makes it */
    int next = 0;
#pragma omp parallel num_threads(nth)
    {
        float *mine = buf + per_thread * (size_t)omp_get_thread_num();
        for (;;) {
            int t;
#pragma omp atomic capture
            t = next++;
            if (t >= J.tiles) break;
            run_tile(&J, t, mine, mine + pack_a, mine + pack_a + pack_b);
        }
    }
    return CDF_OK;
}

cdf_status cdf_sgemm(cdf_exec *ex, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                     int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc) {
    cdf_gemm_operand oa = cdf_gemm_f32(a, lda, trans_a), ob = cdf_gemm_f32(b, ldb, trans_b);
    return cdf_gemm(ex, m, n, k, alpha, &oa, &ob, NULL, NULL, c, ldc);
}

void cdf_sgemm_ref(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float *c, int64_t ldc) {
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            float s = 0.0f;
            for (int p0 = 0; p0 < k; p0 += CDF_GEMM_SUM_BLOCK) {
                float t = 0.0f;
                for (int p = p0; p < k && p < p0 + CDF_GEMM_SUM_BLOCK; p++) {
                    float av = trans_a ? a[(int64_t)p * lda + i] : a[(int64_t)i * lda + p];
                    float bv = trans_b ? b[(int64_t)j * ldb + p] : b[(int64_t)p * ldb + j];
                    t = fmaf(av, bv, t);
                }
                s = p0 == 0 ? t : s + t;
            }
            c[(int64_t)i * ldc + j] = alpha * s;
        }
    }
}

void cdf_sgemm_ref_bf16(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int64_t lda,
                        const float *b, int64_t ldb, float *c, int64_t ldc) {
    int kp = k + (k & 1); /* steps: per pair the odd k, then the even one; a missing odd k is a zero */
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            float s = 0.0f;
            for (int s0 = 0; s0 < kp; s0 += CDF_GEMM_SUM_BLOCK) {
                float t = 0.0f;
                for (int st = s0; st < kp && st < s0 + CDF_GEMM_SUM_BLOCK; st++) {
                    int p = st ^ 1;
                    float av = 0.0f, bv = 0.0f;
                    if (p < k) {
                        av = bf16_in(trans_a ? a[(int64_t)p * lda + i] : a[(int64_t)i * lda + p]);
                        bv = bf16_in(trans_b ? b[(int64_t)j * ldb + p] : b[(int64_t)p * ldb + j]);
                    }
                    t = fma_ftz(av, bv, t);
                }
                s = s0 == 0 ? t : add_ftz(s, t);
            }
            c[(int64_t)i * ldc + j] = alpha * s;
        }
    }
}
