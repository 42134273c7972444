#include "tensor/gemm.h"

#include <cblas.h>

/* Output tiles of a fixed size: an element's value depends only on (m, n, k)
 * and its tile, never on how many threads share the tiles.  (OpenBLAS's own
 * threading changes the K blocking with the thread count, and its small-matrix
 * kernel is chosen by size, so its results are not thread-count invariant.) */
#define TILE_M 128
#define TILE_N 256
#define SMALL_WORK (1 << 20) /* m*n*k below this: one call, one thread */

static void tile_gemm(int trans_a, int trans_b, int i0, int j0, int tm, int tn, int k, float alpha, const float *a,
                      int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    const float *at = trans_a ? a + i0 : a + (size_t)i0 * lda;
    const float *bt = trans_b ? b + (size_t)j0 * ldb : b + j0;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, tm, tn, k,
                alpha, at, lda, bt, ldb, beta, c + (size_t)i0 * ldc + j0, ldc);
}

void cdf_sgemm(const cdf_exec *ex, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
               int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    if (m <= 0 || n <= 0) return;
    int tiles_m = (m + TILE_M - 1) / TILE_M, tiles_n = (n + TILE_N - 1) / TILE_N, tiles = tiles_m * tiles_n;
    if ((double)m * n * k < SMALL_WORK || tiles == 1 || ex->threads <= 1) {
        /* the same tiles, run in order on this thread */
        for (int t = 0; t < tiles; t++) {
            int i0 = (t / tiles_n) * TILE_M, j0 = (t % tiles_n) * TILE_N;
            int tm = m - i0 < TILE_M ? m - i0 : TILE_M, tn = n - j0 < TILE_N ? n - j0 : TILE_N;
            tile_gemm(trans_a, trans_b, i0, j0, tm, tn, k, alpha, a, lda, b, ldb, beta, c, ldc);
        }
        return;
    }
#pragma omp parallel for num_threads(ex->threads) schedule(static)
    for (int t = 0; t < tiles; t++) {
        int i0 = (t / tiles_n) * TILE_M, j0 = (t % tiles_n) * TILE_N;
        int tm = m - i0 < TILE_M ? m - i0 : TILE_M, tn = n - j0 < TILE_N ? n - j0 : TILE_N;
        tile_gemm(trans_a, trans_b, i0, j0, tm, tn, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }
}

void cdf_sgemm_ref(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc) {
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            float s = 0.0f;
            for (int p = 0; p < k; p++) {
                float av = trans_a ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                float bv = trans_b ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                s += av * bv;
            }
            float prev = beta == 0.0f ? 0.0f : beta * c[(size_t)i * ldc + j];
            c[(size_t)i * ldc + j] = alpha * s + prev;
        }
    }
}
