/* safetensors reader on arbitrary files: the header length, JSON header,
 * dtypes, shapes and data_offsets come from the input.  An accepted file must
 * describe tensors that tile the data area exactly, each inside the file. */
#include "fuzz_util.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_path(0, "model.safetensors");
    fz_write(path, data, size);
    cdf_error err = {0};
    cdf_st_file *f = NULL;
    cdf_status s = cdf_st_open(path, &f, &err);
    FZ_CHECK_STATUS(s, err);
    if (s != CDF_OK) {
        FZ_CHECK(f == NULL);
        return 0;
    }
    FZ_CHECK(size >= 8);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | data[i];
    FZ_CHECK(hlen <= size - 8);
    size_t n = cdf_st_count(f), total = 0;
    const unsigned char *prev_end = NULL;
    for (size_t i = 0; i < n; i++) {
        const cdf_st_tensor *t = cdf_st_at(f, i);
        FZ_CHECK(t && t->name && t->ndim >= 0 && t->ndim <= CDF_MAX_DIMS);
        if (prev_end) FZ_CHECK(t->data == prev_end);
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= (uint64_t)t->shape[d];
        FZ_CHECK(numel * cdf_dtype_size(t->dtype) == t->nbytes);
        total += t->nbytes;
        prev_end = t->data + t->nbytes;
        FZ_CHECK(cdf_st_find(f, t->name) == t);
    }
    FZ_CHECK(total == size - 8 - hlen);
    if (n > 0) {
        /* tensor 0 starts right after the header: its bytes equal the input's */
        const cdf_st_tensor *t0 = cdf_st_at(f, 0);
        const uint8_t *in = data + 8 + hlen;
        unsigned acc = 0;
        for (size_t i = 0; i < total; i++) acc += t0->data[i] == in[i];
        FZ_CHECK(acc == total);
    }
    FZ_CHECK(cdf_st_at(f, n) == NULL);
    (void)cdf_st_metadata(f, "format");
    (void)cdf_st_find(f, "");
    cdf_st_close(f);
    return 0;
}
