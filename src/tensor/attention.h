/* Multi-head scaled dot-product attention for one sequence (one image), in
 * blocks of query rows so that at most one head's [block, n_kv] score tile
 * exists at a time (64x64 latents: 4096 keys, a 512-row block is 8 MiB). */
#ifndef CDF_TENSOR_ATTENTION_H
#define CDF_TENSOR_ATTENTION_H

#include "tensor/exec.h"

/* Rows of queries per score tile; fixed so results never depend on threads. */
#define CDF_ATTN_QBLOCK 512

/* For each head h: out_h = softmax(scale * q_h k_h^T [+ causal mask]) v_h.
 * q: [nq, heads*dh] with row stride ldq (head h at column h*dh); k, v:
 * [nkv, heads*dh] with strides ldk, ldv; out: [nq, heads*dh], stride ldo.
 * scale multiplies the finished dot products (torch's baddbmm alpha).
 * causal: key j > query i is masked out (CLIP).  Uses scratch slot 3. */
cdf_status cdf_attention(cdf_exec *ex, const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                         float *out, int ldo, int nq, int nkv, int heads, int dh, float scale, int causal);

/* Same with an additive mask, as diffusers' baddbmm(mask, q, k^T, beta=1,
 * alpha=scale): logits[i, j] = scale * (q_i . k_j) + mask[i * ldm + j] (the
 * scaled product rounded to float32 first), then softmax over all nkv keys
 * (masked keys take part: a -10000 entry is not -inf).  mask: [nq, nkv] with
 * row stride ldm, the same for every head; ldm 0 broadcasts one row [nkv]
 * to every query.  Borrowed; uses scratch slot 3. */
cdf_status cdf_attention_masked(cdf_exec *ex, const float *q, int ldq, const float *k, int ldk, const float *v,
                                int ldv, float *out, int ldo, int nq, int nkv, int heads, int dh, float scale,
                                const float *mask, int ldm);

#endif
