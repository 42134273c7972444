/* PNG reading (pixels and the "parameters" text chunk regenerate reads) on
 * arbitrary files.  Before writing the input to disk the harness recomputes
 * every chunk's CRC, so mutations reach the chunk parsers instead of failing
 * the CRC check (the first 8 bytes are forced to the PNG signature when the
 * input is long enough).  An image that decodes is written back through
 * cdf_png_write with the text and read again: pixels and text must survive. */
#include "fuzz_util.h"
#include "io/png.h"

static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* Rewrites the CRC of every complete chunk of buf[0..n). */
static void fix_crcs(uint8_t *buf, size_t n) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (n < 8) return;
    memcpy(buf, sig, 8);
    size_t at = 8;
    while (n - at >= 12) {
        uint32_t len = (uint32_t)buf[at] << 24 | (uint32_t)buf[at + 1] << 16 | (uint32_t)buf[at + 2] << 8 | buf[at + 3];
        if (len > n - at - 12) break;
        uint32_t c = crc32_of(buf + at + 4, (size_t)len + 4);
        uint8_t *q = buf + at + 8 + len;
        q[0] = (uint8_t)(c >> 24), q[1] = (uint8_t)(c >> 16), q[2] = (uint8_t)(c >> 8), q[3] = (uint8_t)c;
        at += 12 + (size_t)len;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    crc_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) abort();
    memcpy(buf, data, size);
    fix_crcs(buf, size);
    const char *path = fz_path(0, "in.png");
    fz_write(path, buf, size);
    free(buf);

    cdf_error err = {0};
    char *text = NULL;
    cdf_status s = cdf_png_read_text(path, "parameters", &text, &err);
    FZ_CHECK_STATUS(s, err);
    FZ_CHECK((s == CDF_OK) == (text != NULL));

    cdf_image img;
    cdf_error e2 = {0};
    s = cdf_png_read(path, &img, &e2);
    FZ_CHECK_STATUS(s, e2);
    if (s == CDF_OK) {
        FZ_CHECK(img.width >= 1 && img.height >= 1 && img.width <= CDF_PNG_MAX_DIM && img.height <= CDF_PNG_MAX_DIM);
        FZ_CHECK((size_t)img.width * (size_t)img.height <= CDF_PNG_MAX_PIXELS);
        FZ_CHECK(img.channels == 3 || img.channels == 4);
        FZ_CHECK(img.pixels != NULL);
        if ((size_t)img.width * (size_t)img.height <= 4096) {
            /* round trip through the writer */
            const char *out = fz_path(1, "out.png");
            const char *keys[1] = {"parameters"};
            const char *vals[1] = {text};
            cdf_error e3 = {0};
            s = cdf_png_write(out, &img, keys, vals, text ? 1 : 0, &e3);
            FZ_CHECK_STATUS(s, e3);
            if (s == CDF_OK) {
                cdf_image back;
                FZ_CHECK(cdf_png_read(out, &back, &e3) == CDF_OK);
                FZ_CHECK(back.width == img.width && back.height == img.height && back.channels == img.channels);
                FZ_CHECK(memcmp(back.pixels, img.pixels, (size_t)img.width * img.height * img.channels) == 0);
                cdf_image_free(&back);
                if (text) {
                    char *t2 = NULL;
                    FZ_CHECK(cdf_png_read_text(out, "parameters", &t2, &e3) == CDF_OK);
                    FZ_CHECK(strcmp(t2, text) == 0);
                    cdf_free(t2);
                }
            } else {
                /* only a text value that is not UTF-8 may be refused */
                FZ_CHECK(s == CDF_ERR_ARG && text != NULL);
            }
        }
        cdf_image_free(&img);
    }
    cdf_free(text);
    return 0;
}
