/* .npy reading on arbitrary files; an accepted array must have exactly the
 * header's byte count, and writing it back then reading it again gives the
 * same dtype, shape and bytes. */
#include "fuzz_util.h"
#include "io/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_path(0, "in.npy");
    fz_write(path, data, size);
    cdf_error err = {0};
    cdf_tensor t;
    cdf_status s = cdf_npy_read(path, &t, &err);
    FZ_CHECK_STATUS(s, err);
    if (s != CDF_OK) {
        FZ_CHECK(t.data == NULL);
        return 0;
    }
    FZ_CHECK(t.ndim >= 0 && t.ndim <= CDF_MAX_DIMS);
    size_t nbytes = (size_t)cdf_tensor_numel(&t) * cdf_dtype_size(t.dtype);
    FZ_CHECK(nbytes <= size);
    FZ_CHECK(nbytes == 0 || memcmp(t.data, data + size - nbytes, nbytes) == 0);
    const char *out = fz_path(1, "out.npy");
    s = cdf_npy_write(out, &t, &err);
    FZ_CHECK(s == CDF_OK);
    cdf_tensor b;
    s = cdf_npy_read(out, &b, &err);
    FZ_CHECK(s == CDF_OK);
    FZ_CHECK(b.dtype == t.dtype && b.ndim == t.ndim);
    FZ_CHECK(memcmp(b.shape, t.shape, sizeof t.shape[0] * (size_t)t.ndim) == 0);
    FZ_CHECK(nbytes == 0 || memcmp(b.data, t.data, nbytes) == 0);
    cdf_free(b.data);
    cdf_free(t.data);
    return 0;
}
