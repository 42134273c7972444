/* All tensors of one model component (one safetensors file or a sharded
 * set), with lookup by name and tracking of which tensors the model used. */
#ifndef CDF_IO_WEIGHTS_H
#define CDF_IO_WEIGHTS_H

#include "io/safetensors.h"

typedef struct cdf_weights cdf_weights;

/* Opens the weights of a component folder (e.g. MODEL/unet); caller owns *out
 * (cdf_weights_close).  For base in {"diffusion_pytorch_model", "model"} it
 * tries, first match wins:
 *   when variant != NULL (e.g. "fp16"):
 *     <base>.<variant>.safetensors,
 *     <base>.safetensors.index.<variant>.json (diffusers/transformers naming),
 *     <base>.<variant>.safetensors.index.json (legacy naming);
 *   then <base>.safetensors, <base>.safetensors.index.json.
 * Falling back from a requested variant to plain files sends a notice.  An
 * index's weight_map maps tensor names to shard files in the same folder; each
 * shard is opened once and must hold exactly the tensors mapped to it.
 * Nothing found -> CDF_ERR_MISSING naming the folder and the names tried;
 * only PyTorch .bin files -> CDF_ERR_UNSUPPORTED. */
cdf_status cdf_weights_open_dir(const char *dir, const char *variant, cdf_weights **out, cdf_error *err);
/* Opens one safetensors file as a component; caller owns *out. */
cdf_status cdf_weights_open_file(const char *path, cdf_weights **out, cdf_error *err);
/* Looks up a tensor and marks it used; NULL when absent.  Owned by w. */
const cdf_st_tensor *cdf_weights_get(cdf_weights *w, const char *name);
/* Same without marking. */
const cdf_st_tensor *cdf_weights_peek(const cdf_weights *w, const char *name);
/* CDF_ERR_FORMAT naming the file and the first few tensors never fetched with
 * cdf_weights_get (unexpected tensors); CDF_OK when all were used. */
cdf_status cdf_weights_check_all_used(const cdf_weights *w, cdf_error *err);
/* Number of tensors over all files. */
size_t cdf_weights_count(const cdf_weights *w);
/* Tensor i: files in order (shards sorted by file name), each in data-offset order.  Owned by w. */
const cdf_st_tensor *cdf_weights_at(const cdf_weights *w, size_t i);
/* Path of the file holding t (for error messages), NULL when t is not from w.  Owned by w. */
const char *cdf_weights_file_of(const cdf_weights *w, const cdf_st_tensor *t);
/* Path of the single file or of the shard index the weights came from.  Owned by w. */
const char *cdf_weights_source(const cdf_weights *w);
/* Total bytes of tensor data (for memory reports). */
size_t cdf_weights_nbytes(const cdf_weights *w);
/* Unmaps everything (NULL is fine); all tensor pointers from w die. */
void cdf_weights_close(cdf_weights *w);
/* cdf_st_release_pages for every file of w: the weights stay usable. */
void cdf_weights_release_pages(const cdf_weights *w);
/* Folds every tensor (name, dtype, shape, bytes; in name order) into the
 * running hash h and returns it.  Reads all the mapped data. */
uint64_t cdf_weights_hash(const cdf_weights *w, uint64_t h);

#endif
