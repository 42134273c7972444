/* PNG files through libpng, memory from the cdf allocator, libpng errors
 * turned into cdf_status (no longjmp escapes these functions). */
#ifndef CDF_IO_PNG_H
#define CDF_IO_PNG_H

#include "cdiffusers/core.h"

/* Largest width or height read. */
#define CDF_PNG_MAX_DIM 65536
/* Largest image read (width * height): 16384 x 16384.  A 60-byte file can
 * claim 65536 x 65536; past this the read is CDF_ERR_LIMIT before any
 * pixel memory is allocated. */
#define CDF_PNG_MAX_PIXELS ((size_t)1 << 28)

/* 8-bit RGB (channels 3) or gray (1) or RGBA (4) image, rows top to bottom. */
typedef struct cdf_image {
    int width, height, channels;
    unsigned char *pixels; /* [height][width][channels], cdf_malloc'd */
} cdf_image;

/* Writes img atomically (the image is only read).  text_keys[i] (1-79
 * printable ASCII characters, no leading/trailing/double spaces) and
 * text_values[i] (UTF-8) for i < ntext become tEXt chunks when the value is
 * ASCII, iTXt chunks otherwise, so PIL shows them in img.text / img.info.
 * Bad image or key -> CDF_ERR_ARG; unwritable path -> CDF_ERR_IO, no file left. */
cdf_status cdf_png_write(const char *path, const cdf_image *img, const char *const *text_keys,
                         const char *const *text_values, int ntext, cdf_error *err);
/* Reads any PNG as 8-bit RGB (3 channels) or RGBA (4 channels, when the file
 * has alpha or tRNS): palette and gray are expanded, 16-bit keeps the high
 * byte (as PIL does).  img->pixels is cdf_malloc'd: free with cdf_image_free.
 * On error *img is zeroed. */
cdf_status cdf_png_read(const char *path, cdf_image *img, cdf_error *err);
/* Value of text chunk `key` (tEXt/zTXt converted from Latin-1, iTXt as is) as
 * a cdf_malloc'd UTF-8 string the caller frees with cdf_free; the first chunk
 * with that key wins.  CDF_ERR_MISSING when absent (*value NULL). */
cdf_status cdf_png_read_text(const char *path, const char *key, char **value, cdf_error *err);
/* Frees img->pixels and zeroes img (NULL or zeroed is fine). */
void cdf_image_free(cdf_image *img);

#endif
