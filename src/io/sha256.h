/* SHA-256 (FIPS 180-4): the digest the PNG parameters record for input
 * pictures, the one `sha256sum` prints. */
#ifndef CDF_IO_SHA256_H
#define CDF_IO_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "cdiffusers/core.h"

typedef struct cdf_sha256 {
    uint32_t h[8];      /* chaining state */
    uint64_t bytes;     /* message length so far */
    uint8_t block[64];  /* pending input */
    size_t fill;        /* bytes in block */
} cdf_sha256;

void cdf_sha256_init(cdf_sha256 *c);
void cdf_sha256_update(cdf_sha256 *c, const void *data, size_t n);
/* The digest as 64 lower-case hex digits and a NUL in hex[65]. */
void cdf_sha256_hex(cdf_sha256 *c, char hex[65]);
/* The SHA-256 of a whole file into hex[65]; CDF_ERR_IO naming the file. */
cdf_status cdf_sha256_file(const char *path, char hex[65], cdf_error *err);

#endif
