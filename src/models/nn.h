/* Leaf modules (Conv2d, Linear, GroupNorm) as views of checkpoint tensors,
 * and the loader that walks checkpoint names ("down_blocks.0.resnets.1.conv1")
 * with strict shape checks.  Weights stay in the file's dtype in the mmap:
 * convolutions and linear layers read them as they are (the GEMM converts
 * while packing), other modules get float32 through cdf_param_f32. */
#ifndef CDF_MODELS_NN_H
#define CDF_MODELS_NN_H

#include "io/weights.h"
#include "tensor/exec.h"
#include "tensor/ops.h"

/* Longest module path ("up_blocks.3.attentions.2.transformer_blocks.0.attn1.to_q"). */
#define CDF_NAME_MAX 256

/* "<prefix>.<name>" into buf[CDF_NAME_MAX] (cut at the end if ever too long); returns buf. */
const char *cdf_join(char *buf, const char *prefix, const char *name);

/* One weight tensor: a read-only view into a mapped safetensors file. */
typedef struct cdf_param {
    const cdf_st_tensor *t; /* NULL when the module has no such tensor (bias=False) */
} cdf_param;

/* Checkpoint walker for one component: every lookup is by full name, every
 * tensor must exist with the exact expected shape, and at the end every
 * tensor in the files must have been used. */
/* Called for each tensor a module asks for, in record mode (no weights). */
typedef cdf_status (*cdf_param_record_fn)(const char *name, int ndim, const int64_t *shape, void *user);

typedef struct cdf_loader {
    cdf_weights *w;    /* borrowed; NULL in record mode */
    cdf_error *err;    /* borrowed */
    const char *what;  /* component folder, for messages */
    int legacy_attention; /* accept query/key/value/proj_attn for to_q/to_k/to_v/to_out.0 */
    cdf_param_record_fn record; /* record mode: list the state_dict instead of loading */
    void *record_user;
} cdf_loader;

/* Finds "<prefix>.<name>" of exactly `shape` (ndim dims).  optional: absent
 * leaves out->t NULL.  Errors name the file, tensor, expected and found shape.
 * In record mode it reports the name and shape (optional ones are skipped). */
cdf_status cdf_load_param(cdf_loader *ld, const char *prefix, const char *name, int ndim, const int64_t *shape,
                          int optional, cdf_param *out);

/* float32 data of p: the mapped bytes themselves when they are aligned F32,
 * otherwise converted into scratch slot `slot` of ex (valid until that slot
 * is used again).  NULL only on allocation failure (ex->err set), or when
 * p->t is NULL. */
const float *cdf_param_f32(cdf_exec *ex, const cdf_param *p, int slot);

typedef struct cdf_conv2d {
    cdf_param weight; /* [cout, cin, k, k] */
    cdf_param bias;   /* [cout] */
    int cin, cout, k, stride, pad;
} cdf_conv2d;

typedef struct cdf_linear {
    cdf_param weight; /* [out, in] */
    cdf_param bias;   /* [out] or absent */
    int in, out;
} cdf_linear;

typedef struct cdf_groupnorm {
    cdf_param weight; /* [channels] */
    cdf_param bias;   /* [channels] */
    int groups, channels;
    float eps;
} cdf_groupnorm;

typedef struct cdf_layernorm {
    cdf_param weight; /* [dim] (absent without elementwise affine) */
    cdf_param bias;   /* [dim] */
    int dim;
    double eps;
} cdf_layernorm;

cdf_status cdf_conv2d_load(cdf_loader *ld, const char *prefix, int cin, int cout, int k, int stride, int pad,
                           int has_bias, cdf_conv2d *m);
cdf_status cdf_linear_load(cdf_loader *ld, const char *prefix, int in, int out, int has_bias, cdf_linear *m);
cdf_status cdf_groupnorm_load(cdf_loader *ld, const char *prefix, int groups, int channels, float eps,
                              cdf_groupnorm *m);

cdf_status cdf_layernorm_load(cdf_loader *ld, const char *prefix, int dim, double eps, int affine, cdf_layernorm *m);
/* x, y: [rows, dim] (may alias). */
cdf_status cdf_layernorm_forward(cdf_exec *ex, const cdf_layernorm *m, const float *x, int64_t rows, float *y);

/* x: [batch, cin, h, w] -> y: [batch, cout, ho, wo] (symmetric padding m->pad);
 * cdf_conv2d_forward_pad takes asymmetric padding. */
cdf_status cdf_conv2d_forward(cdf_exec *ex, const cdf_conv2d *m, const float *x, int batch, int h, int w, float *y);
/* Same with explicit top/left/bottom/right padding. */
cdf_status cdf_conv2d_forward_pad(cdf_exec *ex, const cdf_conv2d *m, const float *x, int batch, int h, int w,
                                  int pad_t, int pad_l, int pad_b, int pad_r, float *y);
/* x: [rows, in] -> y: [rows, out].  Each row's result does not depend on the
 * other rows (cdf_gemm's contract), so batches may share one call. */
cdf_status cdf_linear_forward(cdf_exec *ex, const cdf_linear *m, const float *x, int rows, float *y);
/* x, y: [batch, channels, hw] (may alias); act applied after the affine. */
cdf_status cdf_groupnorm_forward(cdf_exec *ex, const cdf_groupnorm *m, const float *x, int batch, int64_t hw,
                                 cdf_act act, float *y);

#endif
