/* Timestep embeddings shared by the UNets: diffusers' get_timestep_embedding
 * (Timesteps) and TimestepEmbedding (linear, act, linear, optional act). */
#ifndef CDF_MODELS_EMBEDDINGS_H
#define CDF_MODELS_EMBEDDINGS_H

#include "models/nn.h"

/* get_timestep_embedding(t, dim, flip_sin_to_cos, downscale_freq_shift) in
 * float32 as torch computes it (exp/sin/cos evaluated in double and rounded
 * once).  out: [dim]; an odd dim gets a trailing 0 as diffusers pads. */
void cdf_timestep_embedding(float t, int dim, int flip_sin_to_cos, double freq_shift, float *out);

typedef struct cdf_time_mlp {
    cdf_linear linear_1; /* in -> out */
    cdf_linear linear_2; /* out -> out */
    int act;             /* cdf_act between the linears */
    int post_act;        /* cdf_act after linear_2, CDF_ACT_NONE when absent */
} cdf_time_mlp;

/* Loads "<prefix>.linear_1" and "<prefix>.linear_2". */
cdf_status cdf_time_mlp_load(cdf_loader *ld, const char *prefix, int in, int out, int act, int post_act,
                             cdf_time_mlp *m);
/* x: [batch, in] -> y: [batch, out], one row at a time. */
cdf_status cdf_time_mlp_forward(cdf_exec *ex, const cdf_time_mlp *m, const float *x, int batch, float *y);

#endif
