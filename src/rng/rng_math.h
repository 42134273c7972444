/* The elementary functions behind torch's and numpy's normals, giving the
 * results those libraries got from glibc 2.36 on x86-64.
 *   logf, sinf, cosf: our own implementation of the algorithm glibc 2.28 ..
 *     2.40 uses (table-driven, evaluated in double), equal to glibc 2.36's
 *     results for every positive float (logf) and every float in [0, 8)
 *     (sinf, cosf), with and without its FMA variant (checked exhaustively,
 *     docs/RNG.md); these carry torch's scalar float32/float16/bfloat16 noise,
 *     so that noise does not depend on the C library.
 *   log, sin, cos (double): the C library's.  glibc's double functions are not
 *     correctly rounded (about 0.1% of results differ from the correctly
 *     rounded ones), so torch's float64 noise and numpy's RandomState are only
 *     bit-exact where the C library is glibc (2.28 or later). */
#ifndef CDF_RNG_RNG_MATH_H
#define CDF_RNG_RNG_MATH_H

/* glibc 2.36 logf(x) for x > 0 (other inputs: the C library's logf). */
float cdf_rm_logf(float x);
/* glibc 2.36 sinf(x) / cosf(x) for |x| < 120 (beyond: the C library's). */
float cdf_rm_sinf(float x);
float cdf_rm_cosf(float x);
/* The C library's log, sin, cos. */
double cdf_rm_log(double x);
double cdf_rm_sin(double x);
double cdf_rm_cos(double x);

#endif
