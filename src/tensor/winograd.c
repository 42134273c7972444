#include "tensor/winograd.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "tensor/gemm.h"
#include "tensor/gemm_kernels.h"
#include "tensor/half.h"

#define TILE 2  /* output tile side */
#define WIN 4   /* input window side */
#define XI 16   /* transformed points per tile: xi = (row frequency) * WIN + (column frequency) */
#define CIN_RUN 64 /* weight channels widened at a time */

/* Scratch budgets (bytes; they choose block sizes only, never a result): the transformed weights
 * of one block of output channels, and the transformed inputs and products of one chunk of tiles
 * (per thread: about what stays in a core's cache between the transforms and the products). */
#define U_BUDGET ((size_t)32 << 20)
#define CHUNK_BUDGET ((size_t)2 << 20)
/* A call's transformed weights are kept for the run (cdf_exec_derived, where the exec allows it)
 * when their transform is a large share of its work, fewer than CACHE_TILES tiles, and they are
 * small, at most CACHE_BYTES: a batch-1 forward of a small UNet, over every step of a run. */
#define CACHE_TILES 1024
#define CACHE_BYTES ((size_t)16 << 20)

/* o = B^T d, the input transform of four values (rows of B^T: 1 0 -1 0 / 0 1 1 0 / 0 -1 1 0 /
 * 0 1 0 -1): exact differences and sums, zeros in give +0 out */
#define BT4(d0, d1, d2, d3, o0, o1, o2, o3) \
    do {                                    \
        (o0) = (d0) - (d2);                 \
        (o1) = (d1) + (d2);                 \
        (o2) = (d2) - (d1);                 \
        (o3) = (d1) - (d3);                 \
    } while (0)

/* y = A^T m, the output transform of four values (rows of A^T: 1 1 1 0 / 0 1 -1 -1) */
#define AT2(m0, m1, m2, m3, y0, y1)         \
    do {                                    \
        (y0) = ((m0) + (m1)) + (m2);        \
        (y1) = ((m1) - (m2)) - (m3);        \
    } while (0)

/* The weight transform G x for three values (G's rows: 1 0 0 / 1/2 1/2 1/2 / 1/2 -1/2 1/2 / 0 0 1),
 * in float64: the sums of three float32 values are exact there but for extreme exponent spreads */
#define G3(x0, x1, x2, o0, o1, o2, o3)           \
    do {                                         \
        (o0) = (x0);                             \
        (o1) = 0.5 * (((x0) + (x1)) + (x2));     \
        (o2) = 0.5 * (((x0) - (x1)) + (x2));     \
        (o3) = (x2);                             \
    } while (0)

/* U = float(G g G^T) for nc <= CIN_RUN kernels g (g: [nc][3][3]): the columns of g first, then the
 * rows, in float64, rounded once; point xi of kernel c stored at u[xi * plane + c * step] (vector
 * loops over the kernels) */
static void weight_transform(const float *g, int nc, float *u, size_t step, size_t plane) {
    double gt[9][CIN_RUN]; /* [tap][kernel] */
    for (int c = 0; c < nc; c++)
        for (int k = 0; k < 9; k++) gt[k][c] = g[9 * c + k];
    double a[WIN][3][CIN_RUN]; /* G g: [row frequency][kernel column][kernel] */
    for (int j = 0; j < 3; j++)
        for (int c = 0; c < nc; c++)
            G3(gt[j][c], gt[3 + j][c], gt[6 + j][c], a[0][j][c], a[1][j][c], a[2][j][c], a[3][j][c]);
    for (int i = 0; i < WIN; i++) {
        float *d0 = u + (size_t)(i * WIN) * plane, *d1 = d0 + plane, *d2 = d1 + plane, *d3 = d2 + plane;
        for (int c = 0; c < nc; c++) {
            double o0, o1, o2, o3;
            G3(a[i][0][c], a[i][1][c], a[i][2][c], o0, o1, o2, o3);
            d0[c * step] = (float)o0;
            d1[c * step] = (float)o1;
            d2[c * step] = (float)o2;
            d3[c * step] = (float)o3;
        }
    }
}

int cdf_winograd_applies(const cdf_exec *ex, int cin, int cout, int kh, int kw, int stride, int ho, int wo) {
    return ex->precision == CDF_PRECISION_FP32 && kh == 3 && kw == 3 && stride == 1 && ho >= 8 && wo >= 8 &&
           cin >= 8 && cout >= 8;
}

/* ---- the reference: one tile at a time ---- */

void cdf_conv3x3_winograd_ref(const float *x, int batch, int cin, int h, int w, const float *wt, const float *bias,
                              int cout, int pad_t, int pad_l, int pad_b, int pad_r, float *y) {
    int ho = h + pad_t + pad_b - 2, wo = w + pad_l + pad_r - 2;
    for (int b = 0; b < batch; b++)
        for (int co = 0; co < cout; co++)
            for (int ty = 0; ty * TILE < ho; ty++)
                for (int tx = 0; tx * TILE < wo; tx++) {
                    float s[XI], chain[XI];
                    for (int ci = 0; ci < cin; ci++) {
                        const float *img = x + ((size_t)b * cin + ci) * h * w;
                        float d[WIN][WIN], hr[WIN][WIN], v[XI], u[XI];
                        for (int i = 0; i < WIN; i++)
                            for (int j = 0; j < WIN; j++) {
                                int iy = ty * TILE - pad_t + i, ix = tx * TILE - pad_l + j;
                                d[i][j] = iy >= 0 && iy < h && ix >= 0 && ix < w ? img[(size_t)iy * w + ix] : 0.0f;
                            }
                        for (int i = 0; i < WIN; i++) /* rows: hr[i][k] */
                            BT4(d[i][0], d[i][1], d[i][2], d[i][3], hr[i][0], hr[i][1], hr[i][2], hr[i][3]);
                        for (int k = 0; k < WIN; k++) /* columns: v[l * WIN + k] */
                            BT4(hr[0][k], hr[1][k], hr[2][k], hr[3][k], v[k], v[WIN + k], v[2 * WIN + k],
                                v[3 * WIN + k]);
                        weight_transform(wt + ((size_t)co * cin + ci) * 9, 1, u, 1, 1);
                        /* cdf_gemm's contract over k = ci: fma chains of CDF_GEMM_SUM_BLOCK, summed in order */
                        int pos = ci % CDF_GEMM_SUM_BLOCK;
                        for (int q = 0; q < XI; q++) {
                            chain[q] = fmaf(u[q], v[q], pos == 0 ? 0.0f : chain[q]);
                            if (pos == CDF_GEMM_SUM_BLOCK - 1 || ci == cin - 1)
                                s[q] = ci < CDF_GEMM_SUM_BLOCK ? chain[q] : s[q] + chain[q];
                        }
                    }
                    float z[TILE][WIN], o[TILE][TILE];
                    for (int k = 0; k < WIN; k++) /* columns: z[r][k] */
                        AT2(s[k], s[WIN + k], s[2 * WIN + k], s[3 * WIN + k], z[0][k], z[1][k]);
                    for (int r = 0; r < TILE; r++) /* rows */
                        AT2(z[r][0], z[r][1], z[r][2], z[r][3], o[r][0], o[r][1]);
                    for (int r = 0; r < TILE && ty * TILE + r < ho; r++)
                        for (int c = 0; c < TILE && tx * TILE + c < wo; c++)
                            y[(((size_t)b * cout + co) * ho + ty * TILE + r) * wo + tx * TILE + c] =
                                bias ? o[r][c] + bias[co] : o[r][c];
                }
}

/* ---- the fast path: chunks of tiles, each a set of 16 products of packed panels ---- */

#define MR CDF_GEMM_MR
#define PW CDF_GEMM_NR

/* Layouts (the micro-kernel's panels, packed here once, so the kernel reads both operands in place):
 *   U [XI][npa][cin][MR]   transformed weights of a block of output channels (rows past the block zero)
 *   V [XI][np][cin][PW]    transformed inputs of a chunk of tiles (lanes past the chunk zero)
 *   M [XI][npa * MR][np * PW]  their products */
typedef struct wplan {
    const float *x;  /* [batch, cin, h, w] */
    float *y;        /* [batch, cout, ho, wo] */
    const float *bias;
    int cin, cout, h, w, pad_t, pad_l, ho, wo;
    int tw;          /* tiles per tile row */
    int64_t tiles;   /* tiles per image */
    int mb, npa;     /* output channels per weight block, and their MR-row panels */
    int nt, np;      /* tiles per chunk, and their PW-wide panels */
    cdf_gemm_kernel_fn kern;
} wplan;

static size_t u_plane(const wplan *P) { return (size_t)P->npa * P->cin * MR; }
static size_t v_plane(const wplan *P) { return (size_t)P->np * P->cin * PW; }
static size_t m_plane(const wplan *P) { return (size_t)P->npa * MR * P->np * PW; }

/* The run of tiles starting at chunk tile t (global index over the batch): its image, tile row and
 * column, and its length (up to `left` tiles, within one tile row and one panel of the chunk). */
typedef struct seg {
    int b, ty, tx, n;
} seg;

static seg seg_at(const wplan *P, int64_t t, int64_t t0, int64_t left) {
    seg s;
    int64_t r = t % P->tiles;
    s.b = (int)(t / P->tiles);
    s.ty = (int)(r / P->tw);
    s.tx = (int)(r % P->tw);
    int64_t n = P->tw - s.tx, in_panel = PW - (t - t0) % PW;
    if (n > left) n = left;
    s.n = (int)(n < in_panel ? n : in_panel);
    return s;
}

/* V for the chunk's tiles t0 .. t0+ncur-1 (tile t0 + panel * PW + lane) and input channel ci */
static void input_chunk(const wplan *P, int ci, int64_t t0, int ncur, float *V) {
    float row[TILE * PW + 2]; /* one window row of the run, zero outside the image */
    float hr[WIN][WIN][PW];   /* [window row][column frequency][tile] */
    size_t plane = v_plane(P);
    for (int64_t t = t0; t < t0 + ncur;) {
        seg s = seg_at(P, t, t0, t0 + ncur - t);
        const float *img = P->x + ((size_t)s.b * P->cin + ci) * P->h * P->w;
        int x0 = s.tx * TILE - P->pad_l, len = s.n * TILE + 2;
        int qa = x0 < 0 ? -x0 : 0, qb = P->w - x0 < len ? P->w - x0 : len; /* row[q] in the image for qa <= q < qb */
        for (int i = 0; i < WIN; i++) {
            int iy = s.ty * TILE - P->pad_t + i;
            if (iy < 0 || iy >= P->h || qb <= qa) {
                memset(row, 0, (size_t)len * sizeof(float));
            } else {
                memset(row, 0, (size_t)qa * sizeof(float));
                memcpy(row + qa, img + (size_t)iy * P->w + x0 + qa, (size_t)(qb - qa) * sizeof(float));
                memset(row + qb, 0, (size_t)(len - qb) * sizeof(float));
            }
            for (int j = 0; j < s.n; j++) {
                const float *d = row + TILE * j;
                BT4(d[0], d[1], d[2], d[3], hr[i][0][j], hr[i][1][j], hr[i][2][j], hr[i][3][j]);
            }
        }
        int64_t tl = t - t0;
        float *v0 = V + ((size_t)(tl / PW) * P->cin + ci) * PW + tl % PW;
        for (int k = 0; k < WIN; k++) {
            float *v = v0 + (size_t)k * plane;
            for (int j = 0; j < s.n; j++)
                BT4(hr[0][k][j], hr[1][k][j], hr[2][k][j], hr[3][k][j], v[j], v[WIN * plane + j],
                    v[2 * WIN * plane + j], v[3 * WIN * plane + j]);
        }
        t += s.n;
    }
    if (ncur % PW)
        for (int q = 0; q < XI; q++) {
            float *v = V + q * plane + ((size_t)(ncur / PW) * P->cin + ci) * PW;
            memset(v + ncur % PW, 0, (size_t)(PW - ncur % PW) * sizeof(float));
        }
}

/* M's row panel ip for every xi: one kernel call per PW-wide panel, over all of k = cin (cdf_gemm's
 * contract: the kernel sums in blocks of CDF_GEMM_SUM_BLOCK) */
static void products(const wplan *P, const float *U, const float *V, float *M, int ip) {
    int64_t ldm = (int64_t)P->np * PW;
    for (int q = 0; q < XI; q++) {
        const float *a = U + q * u_plane(P) + (size_t)ip * P->cin * MR;
        float *c = M + q * m_plane(P) + (size_t)ip * MR * ldm;
        for (int jp = 0; jp < P->np; jp++)
            P->kern(P->cin, a, V + q * v_plane(P) + (size_t)jp * P->cin * PW, c + (size_t)jp * PW, ldm, 1);
    }
}

/* y for output channel co (row `row` of M) over the chunk's tiles */
static void output_chunk(const wplan *P, const float *M, int co, int row, int64_t t0, int ncur) {
    float z[TILE][WIN][PW]; /* [output row][column frequency][tile] */
    float out[TILE * PW];
    size_t plane = m_plane(P);
    for (int64_t t = t0; t < t0 + ncur;) {
        seg s = seg_at(P, t, t0, t0 + ncur - t);
        for (int k = 0; k < WIN; k++) {
            const float *m = M + (size_t)k * plane + (size_t)row * P->np * PW + (size_t)(t - t0);
            for (int j = 0; j < s.n; j++)
                AT2(m[j], m[WIN * plane + j], m[2 * WIN * plane + j], m[3 * WIN * plane + j], z[0][k][j], z[1][k][j]);
        }
        int ox = s.tx * TILE, ncol = P->wo - ox < s.n * TILE ? P->wo - ox : s.n * TILE;
        for (int r = 0; r < TILE && s.ty * TILE + r < P->ho; r++) {
            for (int j = 0; j < s.n; j++)
                AT2(z[r][0][j], z[r][1][j], z[r][2][j], z[r][3][j], out[TILE * j], out[TILE * j + 1]);
            float *dst = P->y + (((size_t)s.b * P->cout + co) * P->ho + s.ty * TILE + r) * P->wo + ox;
            if (P->bias) {
                float bv = P->bias[co];
                for (int q = 0; q < ncol; q++) dst[q] = out[q] + bv;
            } else {
                memcpy(dst, out, (size_t)ncol * sizeof(float));
            }
        }
        t += s.n;
    }
}

/* U for output channels co0 .. co0+nrow-1 */
static void weight_block(cdf_exec *ex, const void *wt, cdf_dtype wdt, const wplan *P, int co0, int nrow, float *U) {
    size_t esz = cdf_dtype_size(wdt);
    unsigned cpu = cdf_exec_cpu(ex);
    int last = (nrow - 1) / MR, pad = (last + 1) * MR - nrow; /* rows past the block in its last panel: zero */
    for (int q = 0; pad > 0 && q < XI; q++)
        for (int ci = 0; ci < P->cin; ci++)
            memset(U + q * u_plane(P) + ((size_t)last * P->cin + ci) * MR + MR - pad, 0, (size_t)pad * sizeof(float));
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)nrow * P->cin * 100)) schedule(static)
    for (int r = 0; r < nrow; r++) {
        float g[9 * CIN_RUN];
        float *u = U + (size_t)(r / MR) * P->cin * MR + r % MR;
        for (int c0 = 0; c0 < P->cin; c0 += CIN_RUN) {
            int nc = P->cin - c0 < CIN_RUN ? P->cin - c0 : CIN_RUN;
            cdf_gemm_widen(cpu, wdt, (const char *)wt + ((size_t)(co0 + r) * P->cin + c0) * 9 * esz, g, nc * 9);
            weight_transform(g, nc, u + (size_t)c0 * MR, MR, u_plane(P));
        }
    }
}

/* The block sizes the budgets give: output channels in equal blocks (multiples of MR) whose
 * transformed weights fit U_BUDGET, tiles in chunks (multiples of PW) whose transformed inputs and
 * products fit CHUNK_BUDGET, but at least 4 chunks per thread where there are tiles for them. */
static void plan_blocks(int cin, int cout, int64_t tiles, int threads, int *mb, int *nt) {
    size_t mb_max = U_BUDGET / ((size_t)XI * cin * sizeof(float)) / MR * MR;
    if (mb_max < MR) mb_max = MR;
    int nblk = (int)(((size_t)cout + mb_max - 1) / mb_max);
    *mb = ((cout + nblk - 1) / nblk + MR - 1) / MR * MR;
    int64_t n = (int64_t)(CHUNK_BUDGET / ((size_t)XI * (cin + (size_t)*mb) * sizeof(float))) / PW * PW;
    int64_t spread = tiles / (4 * (int64_t)threads) / PW * PW;
    if (n > spread) n = spread;
    if (n < PW) n = PW;
    if (n > tiles) n = tiles;
    *nt = (int)n;
}

cdf_status cdf_conv3x3_winograd(cdf_exec *ex, const float *x, int batch, int cin, int h, int w, const void *wt,
                                cdf_dtype wdt, const float *bias, int cout, int pad_t, int pad_l, int pad_b, int pad_r,
                                float *y) {
    return cdf_conv3x3_winograd_blocks(ex, x, batch, cin, h, w, wt, wdt, bias, cout, pad_t, pad_l, pad_b, pad_r, 0, 0,
                                       y);
}

cdf_status cdf_conv3x3_winograd_blocks(cdf_exec *ex, const float *x, int batch, int cin, int h, int w, const void *wt,
                                       cdf_dtype wdt, const float *bias, int cout, int pad_t, int pad_l, int pad_b,
                                       int pad_r, int mb, int nt, float *y) {
    wplan P = {.x = x, .y = y, .bias = bias, .cin = cin, .cout = cout, .h = h, .w = w, .pad_t = pad_t,
               .pad_l = pad_l, .ho = h + pad_t + pad_b - 2, .wo = w + pad_l + pad_r - 2,
               .kern = cdf_gemm_kernel_for(cdf_exec_cpu(ex))};
    if (wdt != CDF_F32 && wdt != CDF_F16 && wdt != CDF_BF16)
        return cdf_error_set(ex->err, CDF_ERR_UNSUPPORTED, "convolution weights of dtype %s (F32, F16 or BF16 needed)",
                             cdf_dtype_name(wdt));
    if (batch < 1 || cin < 1 || cout < 1 || P.ho < 1 || P.wo < 1 || pad_t < 0 || pad_l < 0 || mb < 0 || nt < 0)
        return cdf_error_set(ex->err, CDF_ERR_ARG,
                             "Winograd convolution of %d images %dx%dx%d to %d channels, pads %d,%d, blocks %d,%d",
                             batch, cin, h, w, cout, pad_t, pad_l, mb, nt);
    P.tw = (P.wo + TILE - 1) / TILE;
    P.tiles = (int64_t)((P.ho + TILE - 1) / TILE) * P.tw;
    int64_t T = P.tiles * batch;
    if (T > INT32_MAX / XI)
        return cdf_error_set(ex->err, CDF_ERR_LIMIT, "convolution of %d images of %dx%d pixels is too large", batch,
                             P.ho, P.wo);
    int fresh = 0;
    size_t u_all = (size_t)XI * ((cout + MR - 1) / MR) * cin * MR; /* U of all output channels */
    float *kept = NULL;
    if (!mb && !nt && T < CACHE_TILES && u_all * sizeof(float) <= CACHE_BYTES) {
        cdf_status st = cdf_exec_derived(ex, wt, u_all, &kept, &fresh);
        if (st) return st;
    }
    plan_blocks(cin, cout, T, ex->threads, &P.mb, &P.nt);
    if (kept) P.mb = cout;
    if (mb) P.mb = mb;
    if (nt) P.nt = nt;
    if (P.mb > cout) P.mb = cout;
    if (P.nt > T) P.nt = (int)T;
    P.npa = (P.mb + MR - 1) / MR;
    P.np = (P.nt + PW - 1) / PW;
    if (fresh) weight_block(ex, wt, wdt, &P, 0, cout, kept); /* filled before anything can fail */
    /* enough chunks: each thread takes whole chunks (no barrier inside one); else the chunks in turn,
     * each phase split over the threads */
    int64_t nchunk = (T + P.nt - 1) / P.nt;
    int per_thread = ex->threads > 1 && nchunk >= 2 * (int64_t)ex->threads;
    int nbuf = per_thread ? ex->threads : 1;
    size_t nu = kept ? 0 : XI * u_plane(&P), nvm = XI * (v_plane(&P) + m_plane(&P));
    float *buf = cdf_exec_scratch(ex, CDF_SLOT_WINOGRAD, nu + nvm * nbuf);
    if (!buf) return ex->err && ex->err->status ? ex->err->status : CDF_ERR_NOMEM;
    float *U = kept ? kept : buf, *VM = buf + nu; /* VM: nbuf pairs of V and M */
    int64_t v_t0 = -1; /* the chunk V holds (one buffer) */
    for (int co0 = 0; co0 < cout; co0 += P.mb) {
        int nrow = cout - co0 < P.mb ? cout - co0 : P.mb, npa = (nrow + MR - 1) / MR;
        if (!kept) weight_block(ex, wt, wdt, &P, co0, nrow, U);
        if (per_thread) {
#pragma omp parallel num_threads(ex->threads)
            {
                float *V = VM + nvm * (size_t)omp_get_thread_num(), *M = V + XI * v_plane(&P);
#pragma omp for schedule(dynamic, 1)
                for (int64_t c = 0; c < nchunk; c++) {
                    int64_t t0 = c * P.nt;
                    int ncur = (int)(T - t0 < P.nt ? T - t0 : P.nt);
                    for (int ci = 0; ci < cin; ci++) input_chunk(&P, ci, t0, ncur, V);
                    for (int ip = 0; ip < npa; ip++) products(&P, U, V, M, ip);
                    for (int r = 0; r < nrow; r++) output_chunk(&P, M, co0 + r, r, t0, ncur);
                }
            }
            continue;
        }
        float *V = VM, *M = V + XI * v_plane(&P);
        for (int64_t t0 = 0; t0 < T; t0 += P.nt) {
            int ncur = (int)(T - t0 < P.nt ? T - t0 : P.nt);
            if (v_t0 != t0) {
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)cin * ncur * 100)) schedule(static)
                for (int ci = 0; ci < cin; ci++) input_chunk(&P, ci, t0, ncur, V);
                v_t0 = t0;
            }
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)nrow * cin * ncur * 32)) schedule(dynamic, 1)
            for (int ip = 0; ip < npa; ip++) products(&P, U, V, M, ip);
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)nrow * ncur * 100)) schedule(static)
            for (int r = 0; r < nrow; r++) output_chunk(&P, M, co0 + r, r, t0, ncur);
        }
    }
    /* the work counter counts the convolution as the direct product it stands for */
    ex->gemm_flops += 2.0 * batch * cout * (double)P.ho * P.wo * cin * 9.0;
    return CDF_OK;
}
