/* Float -> 8-bit conversion (numpy_to_pil rounding) and image grids. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "pipelines/postprocess.h"

/* float32 bit pattern -> numpy 1.24 (x * 255).round().astype(np.uint8) on a
 * float32 array.  Most x sit where the float32 product is exactly k + 0.5
 * (the float64 product is not), with both float32 neighbours. */
static const struct { uint32_t bits; unsigned char want; } k_round[] = {
    {0x3b008081u, 0}, /* 0.00196078443 */
    {0x3b008082u, 1}, /* 0.00196078466 */
    {0x3b008080u, 0}, /* 0.0019607842 */
    {0x3bc0c0c1u, 2}, /* 0.00588235306 */
    {0x3bc0c0c2u, 2}, /* 0.00588235352 */
    {0x3bc0c0c0u, 1}, /* 0.00588235259 */
    {0x3c20a0a1u, 2}, /* 0.00980392192 */
    {0x3c20a0a2u, 3}, /* 0.00980392285 */
    {0x3c20a0a0u, 2}, /* 0.00980392098 */
    {0x3c60e0e1u, 4}, /* 0.0137254903 */
    {0x3c60e0e2u, 4}, /* 0.0137254912 */
    {0x3c60e0e0u, 3}, /* 0.0137254894 */
    {0x3c909091u, 4}, /* 0.0176470596 */
    {0x3c909092u, 5}, /* 0.0176470615 */
    {0x3c909090u, 4}, /* 0.0176470578 */
    {0x3cb0b0b1u, 6}, /* 0.021568628 */
    {0x3cb0b0b2u, 6}, /* 0.0215686299 */
    {0x3cb0b0b0u, 5}, /* 0.0215686262 */
    {0x3cd0d0d1u, 6}, /* 0.0254901964 */
    {0x3cd0d0d2u, 7}, /* 0.0254901983 */
    {0x3cd0d0d0u, 6}, /* 0.0254901946 */
    {0x3cf0f0f1u, 8}, /* 0.0294117648 */
    {0x3cf0f0f2u, 8}, /* 0.0294117667 */
    {0x3cf0f0f0u, 7}, /* 0.029411763 */
    {0x3d088889u, 8}, /* 0.0333333351 */
    {0x3d08888au, 9}, /* 0.0333333388 */
    {0x3d088888u, 8}, /* 0.0333333313 */
    {0x3d189899u, 10}, /* 0.0372549035 */
    {0x3d18989au, 10}, /* 0.0372549072 */
    {0x3d189898u, 9}, /* 0.0372548997 */
    {0x3efdfdfeu, 126}, /* 0.496078432 */
    {0x3efdfdffu, 127}, /* 0.496078461 */
    {0x3efdfdfdu, 126}, /* 0.496078402 */
    {0x3f000000u, 128}, /* 0.5 */
    {0x3f000001u, 128}, /* 0.50000006 */
    {0x3effffffu, 127}, /* 0.49999997 */
    {0x3f010101u, 128}, /* 0.503921568 */
    {0x3f010102u, 129}, /* 0.503921628 */
    {0x3f010100u, 128}, /* 0.503921509 */
    {0x3f494949u, 200}, /* 0.786274493 */
    {0x3f49494au, 201}, /* 0.786274552 */
    {0x3f494948u, 200}, /* 0.786274433 */
    {0x3f4a4a4au, 202}, /* 0.790196061 */
    {0x3f4a4a4bu, 202}, /* 0.790196121 */
    {0x3f4a4a49u, 201}, /* 0.790196002 */
    {0x3f7e7e7eu, 254}, /* 0.994117618 */
    {0x3f7e7e7fu, 254}, /* 0.994117677 */
    {0x3f7e7e7du, 253}, /* 0.994117558 */
    {0x3f7f7f7fu, 254}, /* 0.998039186 */
    {0x3f7f7f80u, 254}, /* 0.998039246 */
    {0x3f7f7f7eu, 254}, /* 0.998039126 */
    {0x00000000u, 0}, /* 0 */
    {0x3f800000u, 255}, /* 1 */
    {0x3f000000u, 128}, /* 0.5 */
    {0x3b808081u, 1}, /* 0.00392156886 */
    {0x3f7efeffu, 254}, /* 0.996078432 */
    {0x3f7fffffu, 255}, /* 0.99999994 */
    {0x0da24260u, 0}, /* 1e-30 */
};

static float from_bits(uint32_t b) {
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static void test_rounding(void **state) {
    (void)state;
    size_t n = sizeof k_round / sizeof k_round[0];
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = from_bits(k_round[i].bits);
    cdf_image img;
    cdf_error err = {0};
    /* one row of n gray pixels */
    assert_int_equal(cdf_image_from_f32(x, 1, (int)n, 1, &img, &err), CDF_OK);
    assert_int_equal(img.width, (int)n);
    assert_int_equal(img.channels, 1);
    for (size_t i = 0; i < n; i++)
        if (img.pixels[i] != k_round[i].want)
            fail_msg("x=%.9g (0x%08x): got %d, numpy %d", (double)x[i], k_round[i].bits, img.pixels[i],
                     k_round[i].want);
    cdf_image_free(&img);
    /* out of range values clamp; NaN -> 0 */
    const float o[6] = {-0.25f, -0.0f, 1.5f, 1000.0f, NAN, INFINITY};
    const unsigned char ow[6] = {0, 0, 255, 255, 0, 255};
    assert_int_equal(cdf_image_from_f32(o, 2, 1, 3, &img, &err), CDF_OK);
    assert_int_equal(img.height, 2);
    assert_int_equal(img.width, 1);
    assert_memory_equal(img.pixels, ow, 6);
    cdf_image_free(&img);
    assert_int_equal(cdf_image_from_f32(o, 1, 1, 2, &img, &err), CDF_ERR_ARG);
    assert_null(img.pixels);
    assert_int_equal(cdf_image_from_f32(o, 0, 1, 3, &img, &err), CDF_ERR_ARG);
    free(x);
}

/* image i is filled with value 10*(i+1) + channel */
static void make_images(cdf_image *imgs, int n, int w, int h, int c) {
    for (int i = 0; i < n; i++) {
        imgs[i].width = w;
        imgs[i].height = h;
        imgs[i].channels = c;
        imgs[i].pixels = cdf_malloc((size_t)(w * h * c));
        for (int p = 0; p < w * h; p++)
            for (int k = 0; k < c; k++) imgs[i].pixels[p * c + k] = (unsigned char)(10 * (i + 1) + k);
    }
}

/* The pipelines' output_type "pil" path (cdf_to_uint8) rounds through the same
 * function: the same numpy table, and the out-of-range values. */
static void test_rounding_pil_output(void **state) {
    (void)state;
    size_t n = sizeof k_round / sizeof k_round[0];
    float x[sizeof k_round / sizeof k_round[0] + 6];
    unsigned char u8[sizeof x / sizeof x[0]];
    for (size_t i = 0; i < n; i++) x[i] = from_bits(k_round[i].bits);
    const float o[6] = {-0.25f, -0.0f, 1.5f, 1000.0f, NAN, INFINITY};
    const unsigned char ow[6] = {0, 0, 255, 255, 0, 255};
    memcpy(x + n, o, sizeof o);
    cdf_to_uint8(x, n + 6, u8);
    for (size_t i = 0; i < n + 6; i++) {
        unsigned char want = i < n ? k_round[i].want : ow[i - n];
        if (u8[i] != want) fail_msg("x=%.9g: cdf_to_uint8 gives %d, numpy %d", (double)x[i], u8[i], want);
    }
}

static void test_grid(void **state) {
    (void)state;
    enum { W = 3, H = 2, C = 3, N = 5 };
    cdf_image imgs[N];
    make_images(imgs, N, W, H, C);
    imgs[4].pixels[0] = 99; /* marks the top-left pixel of image 4 */
    cdf_image g;
    cdf_error err = {0};
    assert_int_equal(cdf_image_grid(imgs, N, 2, 3, &g, &err), CDF_OK);
    assert_int_equal(g.width, 3 * W);
    assert_int_equal(g.height, 2 * H);
    assert_int_equal(g.channels, C);
    for (int y = 0; y < g.height; y++)
        for (int x = 0; x < g.width; x++) {
            int cell = (y / H) * 3 + x / W; /* make_image_grid: box=(i % cols * w, i // cols * h) */
            for (int k = 0; k < C; k++) {
                int want = cell < N ? 10 * (cell + 1) + k : 0;
                if (cell == 4 && y % H == 0 && x % W == 0 && k == 0) want = 99;
                assert_int_equal(g.pixels[((size_t)y * g.width + x) * C + k], want);
            }
        }
    cdf_image_free(&g);
    /* exact fit, one row */
    assert_int_equal(cdf_image_grid(imgs, 2, 1, 2, &g, &err), CDF_OK);
    assert_int_equal(g.width, 2 * W);
    assert_int_equal(g.pixels[(size_t)W * C], 20);
    cdf_image_free(&g);
    /* errors */
    assert_int_equal(cdf_image_grid(imgs, N, 2, 2, &g, &err), CDF_ERR_ARG);
    assert_null(g.pixels);
    assert_int_equal(cdf_image_grid(imgs, 0, 1, 1, &g, &err), CDF_ERR_ARG);
    imgs[3].width = W + 1;
    assert_int_equal(cdf_image_grid(imgs, N, 2, 3, &g, &err), CDF_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "image 3"));
    imgs[3].width = W;
    imgs[2].channels = 4;
    assert_int_equal(cdf_image_grid(imgs, N, 2, 3, &g, &err), CDF_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "image 2"));
    for (int i = 0; i < N; i++) cdf_image_free(&imgs[i]);
    /* RGBA: empty cells are opaque black */
    make_images(imgs, 3, 1, 1, 4);
    assert_int_equal(cdf_image_grid(imgs, 3, 2, 2, &g, &err), CDF_OK);
    static const unsigned char want4[16] = {10, 11, 12, 13, 20, 21, 22, 23, 30, 31, 32, 33, 0, 0, 0, 255};
    assert_memory_equal(g.pixels, want4, 16);
    cdf_image_free(&g);
    for (int i = 0; i < 3; i++) cdf_image_free(&imgs[i]);
}

static void test_grid_shape_auto(void **state) {
    (void)state;
    /* the documented rule, worked by hand */
    static const int want[][2] = {{0, 0}, {1, 1}, {1, 2}, {1, 3}, {2, 2}, {2, 3}, {2, 3}, {2, 4}, {2, 4},
                                  {3, 3}, {3, 4}, {3, 4}, {3, 4}, {3, 5}, {3, 5}, {3, 5}, {4, 4}, {4, 5}};
    for (int n = 0; n < (int)(sizeof want / sizeof want[0]); n++) {
        int r = -1, c = -1;
        cdf_grid_shape_auto(n, &r, &c);
        if (r != want[n][0] || c != want[n][1]) fail_msg("n=%d: got %dx%d, want %dx%d", n, r, c, want[n][0], want[n][1]);
    }
    for (int n = 1; n <= 1000; n++) {
        int r, c;
        cdf_grid_shape_auto(n, &r, &c);
        assert_true(r >= 1 && c >= 1 && r * c >= n && r * c - n < r && r <= c);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rounding),
        cmocka_unit_test(test_rounding_pil_output),
        cmocka_unit_test(test_grid),
        cmocka_unit_test(test_grid_shape_auto),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
