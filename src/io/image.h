/* Float images to 8-bit (as diffusers numpy_to_pil) and image grids (as
 * diffusers make_image_grid). */
#ifndef CDF_IO_IMAGE_H
#define CDF_IO_IMAGE_H

#include "io/png.h"

/* numpy_to_pil's rounding of one value: (x*255).round() with the product
 * computed in float32 and rounded half to even, clamped to [0,255] (NaN and
 * negatives -> 0).  The one rounding every 8-bit output goes through. */
unsigned char cdf_u8_from_unit(float x);
/* One float32 HWC image in [0,1] (for image k of an NHWC batch pass
 * nhwc + k*height*width*channels) -> 8-bit, exactly as numpy_to_pil:
 * (x*255).round() with the product computed in float32 and rounded half to
 * even, then clamped to [0,255] (NaN -> 0).  channels 1, 3 or 4.  out->pixels
 * is cdf_malloc'd (cdf_image_free); on error *out is zeroed. */
cdf_status cdf_image_from_f32(const float *nhwc, int height, int width, int channels, cdf_image *out,
                              cdf_error *err);
/* PIL's picture.convert("L") of an 8-bit RGB or RGBA image (alpha ignored):
 * (R*19595 + G*38470 + B*7471 + 0x8000) >> 16 per pixel into out[height *
 * width]; a 1-channel image is copied. */
void cdf_image_to_luma(const cdf_image *img, unsigned char *out);
/* make_image_grid(images, rows, cols): images[i] goes to cell (i / cols,
 * i % cols), row-major.  All images must have the same size and channels
 * (error naming the mismatching image); n <= rows*cols, and cells past n stay
 * black (0, with alpha 255 for RGBA).  diffusers itself requires
 * n == rows*cols; the looser rule serves cdf_grid_shape_auto.  out->pixels is
 * cdf_malloc'd (cdf_image_free); on error *out is zeroed. */
cdf_status cdf_image_grid(const cdf_image *imgs, int n, int rows, int cols, cdf_image *out, cdf_error *err);
/* Near-square grid shape for n >= 1 images:
 *   r = floor(sqrt(n)); rows = the largest divisor of n that is <= r;
 *   if n/rows <= 2*rows the grid is exact (rows x n/rows), otherwise
 *   rows = r and cols = ceil(n/r), leaving rows*cols - n (< r) cells black.
 * e.g. 1->1x1, 2->1x2, 3->1x3, 4->2x2, 5->2x3, 6->2x3, 7->2x4, 8->2x4, 9->3x3,
 * 10->3x4, 12->3x4, 16->4x4.  n < 1 gives 0x0. */
void cdf_grid_shape_auto(int n, int *rows, int *cols);

#endif
