/* PNG read/write with libpng.  Every setjmp lives in a small helper whose own
 * locals are not changed after it, and all state that must survive a longjmp
 * is in a struct owned by the caller. */
#include "io/png.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <string.h>

#include "io/atomic.h"

/* Largest single allocation libpng may make: a text chunk (or its
 * decompressed value) up to the chunk limit, plus slack for its own
 * structures.  Row buffers are far smaller (width <= CDF_PNG_MAX_DIM);
 * pixels are allocated outside libpng.  This bounds what a hostile chunk
 * length can make libpng allocate, whatever libpng's own limits do. */
#define PNG_MAX_CHUNK ((png_alloc_size_t)64 << 20)
#define PNG_MAX_LIB_ALLOC (PNG_MAX_CHUNK + ((png_alloc_size_t)1 << 20))

/* Shared by the libpng callbacks of one read or write. */
typedef struct png_ctx {
    const char *path;
    cdf_error *err;
    int nomem;     /* an allocation through the hook failed */
    int too_large; /* over a limit: a libpng allocation past PNG_MAX_LIB_ALLOC, or CDF_PNG_MAX_PIXELS */
    char msg[256]; /* last libpng error message */
} png_ctx;

static png_voidp mem_alloc(png_structp png, png_alloc_size_t n) {
    if (n > PNG_MAX_LIB_ALLOC) {
        png_ctx *c = png_get_mem_ptr(png);
        if (c) c->too_large = 1;
        return NULL;
    }
    void *p = cdf_malloc(n);
    if (!p) {
        png_ctx *c = png_get_mem_ptr(png);
        if (c) c->nomem = 1;
    }
    return p;
}

static void mem_free(png_structp png, png_voidp p) {
    (void)png;
    cdf_free(p);
}

static void on_error(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    if (c) snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    if (c) cdf_notice(c->err, CDF_NOTICE_INFO, "%s: libpng: %s", c->path, msg ? msg : "");
}

void cdf_image_free(cdf_image *img) {
    if (!img) return;
    cdf_free(img->pixels);
    memset(img, 0, sizeof *img);
}

/* ---- writing ---- */

/* 1 when s is valid UTF-8. */
static int utf8_ok(const unsigned char *s) {
    while (*s) {
        unsigned c = *s;
        size_t len;
        unsigned minv;
        if (c < 0x80) {
            s++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) len = 2, minv = 0x80;
        else if (c >= 0xE0 && c <= 0xEF) len = 3, minv = 0x800;
        else if (c >= 0xF0 && c <= 0xF4) len = 4, minv = 0x10000;
        else return 0;
        unsigned v = c & (0x7Fu >> len);
        for (size_t k = 1; k < len; k++) {
            if ((s[k] & 0xC0) != 0x80) return 0;
            v = (v << 6) | (s[k] & 0x3Fu);
        }
        if (v < minv || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
        s += len;
    }
    return 1;
}

/* PNG keyword rules (ASCII subset of Latin-1). */
static int key_ok(const char *k) {
    size_t n = strlen(k);
    if (n < 1 || n > 79 || k[0] == ' ' || k[n - 1] == ' ') return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c < 32 || c > 126) return 0;
        if (c == ' ' && k[i + 1] == ' ') return 0;
    }
    return 1;
}

static int is_ascii(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return 0;
    return 1;
}

static int write_body(png_structp png, png_infop info, const cdf_image *img, png_textp texts, int ntext, FILE *fp) {
    if (setjmp(png_jmpbuf(png))) return -1;
    static const int types[5] = {0, PNG_COLOR_TYPE_GRAY, 0, PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8, types[img->channels],
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (ntext > 0) png_set_text(png, info, texts, ntext);
    png_write_info(png, info);
    size_t stride = (size_t)img->width * (size_t)img->channels;
    for (int y = 0; y < img->height; y++) png_write_row(png, img->pixels + (size_t)y * stride);
    png_write_end(png, info);
    return 0;
}

cdf_status cdf_png_write(const char *path, const cdf_image *img, const char *const *text_keys,
                         const char *const *text_values, int ntext, cdf_error *err) {
    if (!img || !img->pixels || img->width < 1 || img->height < 1 || img->width > CDF_PNG_MAX_DIM ||
        img->height > CDF_PNG_MAX_DIM || (img->channels != 1 && img->channels != 3 && img->channels != 4))
        return cdf_error_set(err, CDF_ERR_ARG, "%s: cannot write a %dx%d image with %d channels as PNG", path,
                             img ? img->width : 0, img ? img->height : 0, img ? img->channels : 0);
    if (ntext < 0 || (ntext > 0 && (!text_keys || !text_values)))
        return cdf_error_set(err, CDF_ERR_ARG, "%s: invalid PNG text list", path);
    for (int i = 0; i < ntext; i++) {
        if (!text_keys[i] || !key_ok(text_keys[i]))
            return cdf_error_set(err, CDF_ERR_ARG,
                                 "%s: PNG text key \"%s\" must be 1-79 printable ASCII characters without "
                                 "leading, trailing or double spaces",
                                 path, text_keys[i] ? text_keys[i] : "(null)");
        if (!text_values[i] || !utf8_ok((const unsigned char *)text_values[i]))
            return cdf_error_set(err, CDF_ERR_ARG, "%s: PNG text '%s': value is not valid UTF-8", path,
                                 text_keys[i]);
    }
    png_textp texts = NULL;
    if (ntext > 0) {
        texts = cdf_calloc((size_t)ntext, sizeof *texts);
        if (!texts) return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", path);
        for (int i = 0; i < ntext; i++) {
            /* libpng copies these; the casts drop const only for its struct type. */
            texts[i].key = (png_charp)(uintptr_t)text_keys[i];
            texts[i].text = (png_charp)(uintptr_t)text_values[i];
            if (is_ascii(text_values[i])) {
                texts[i].compression = PNG_TEXT_COMPRESSION_NONE;
                texts[i].text_length = strlen(text_values[i]);
            } else {
                texts[i].compression = PNG_ITXT_COMPRESSION_NONE;
                texts[i].itxt_length = strlen(text_values[i]);
                texts[i].lang = (png_charp)(uintptr_t)"";
                texts[i].lang_key = (png_charp)(uintptr_t)"";
            }
        }
    }
    cdf_atomic_file af;
    cdf_status s = cdf_atomic_open(path, &af, err);
    if (s != CDF_OK) {
        cdf_free(texts);
        return s;
    }
    png_ctx ctx = {path, err, 0, 0, {0}};
    png_structp png = png_create_write_struct_2(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning, &ctx, mem_alloc,
                                                mem_free);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        cdf_atomic_abort(&af);
        cdf_free(texts);
        return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory starting libpng", path);
    }
    int rc = write_body(png, info, img, texts, ntext, af.fp);
    png_destroy_write_struct(&png, &info);
    cdf_free(texts);
    if (rc != 0) {
        cdf_atomic_abort(&af);
        if (ctx.nomem) return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory writing PNG", path);
        return cdf_error_set(err, CDF_ERR_IO, "%s: PNG write failed: %s", path, ctx.msg);
    }
    return cdf_atomic_commit(&af, err);
}

/* ---- reading ---- */

/* What a read keeps across a longjmp (owned by the caller's frame). */
typedef struct read_state {
    int want_pixels;        /* 0: decode rows only to reach trailing text chunks */
    unsigned char *pixels;  /* [height][rowbytes] or one scratch row */
    png_uint_32 width, height;
    int channels;
} read_state;

static int read_body(png_structp png, png_infop info, png_infop end_info, FILE *fp, read_state *rs) {
    if (setjmp(png_jmpbuf(png))) return -1;
    png_init_io(png, fp);
    png_set_sig_bytes(png, 8);
    png_set_user_limits(png, CDF_PNG_MAX_DIM, CDF_PNG_MAX_DIM);
    png_set_chunk_malloc_max(png, PNG_MAX_CHUNK);
    png_read_info(png, info);
    rs->width = png_get_image_width(png, info);
    rs->height = png_get_image_height(png, info);
    int color = png_get_color_type(png, info);
    int depth = png_get_bit_depth(png, info);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16) png_set_strip_16(png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    rs->channels = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if ((rs->channels != 3 && rs->channels != 4) || png_get_bit_depth(png, info) != 8 ||
        rowbytes != (size_t)rs->width * (size_t)rs->channels)
        png_error(png, "unexpected pixel layout after conversion to 8-bit RGB(A)");
    if (rs->want_pixels && (size_t)rs->width * rs->height > CDF_PNG_MAX_PIXELS) {
        png_ctx *c = png_get_error_ptr(png);
        c->too_large = 1;
        png_error(png, "image has more pixels than the limit");
    }
    size_t rows = rs->want_pixels ? rs->height : 1;
    if (rowbytes && rows > SIZE_MAX / rowbytes) png_error(png, "image too large");
    rs->pixels = cdf_malloc(rows * rowbytes);
    if (!rs->pixels) {
        png_ctx *c = png_get_error_ptr(png);
        c->nomem = 1;
        png_error(png, "out of memory for pixels");
    }
    for (int p = 0; p < passes; p++)
        for (png_uint_32 y = 0; y < rs->height; y++)
            png_read_row(png, rs->pixels + (rs->want_pixels ? (size_t)y * rowbytes : 0), NULL);
    png_read_end(png, end_info);
    return 0;
}

/* Opens path, checks the signature and decodes it; on CDF_OK the caller
 * destroys *png_out, *info_out, *end_out and frees rs->pixels. */
static cdf_status read_png(const char *path, png_ctx *ctx, read_state *rs, png_structp *png_out, png_infop *info_out,
                           png_infop *end_out, cdf_error *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return cdf_error_set(err, errno == ENOENT ? CDF_ERR_MISSING : CDF_ERR_IO, "%s: cannot open: %s", path,
                             strerror(errno));
    unsigned char sig[8];
    if (fread(sig, 1, 8, fp) != 8 || png_sig_cmp(sig, 0, 8) != 0) {
        fclose(fp);
        return cdf_error_set(err, CDF_ERR_FORMAT, "%s: not a PNG file (bad signature)", path);
    }
    png_structp png =
        png_create_read_struct_2(PNG_LIBPNG_VER_STRING, ctx, on_error, on_warning, ctx, mem_alloc, mem_free);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_infop end_info = info ? png_create_info_struct(png) : NULL;
    if (!png || !info || !end_info) {
        png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, end_info ? &end_info : NULL);
        fclose(fp);
        return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory starting libpng", path);
    }
    int rc = read_body(png, info, end_info, fp, rs);
    fclose(fp);
    if (rc != 0) {
        png_destroy_read_struct(&png, &info, &end_info);
        cdf_free(rs->pixels);
        rs->pixels = NULL;
        if (ctx->too_large)
            return cdf_error_set(err, CDF_ERR_LIMIT, "%s: PNG too large: %s (limits: %llu-byte chunks, %zu pixels)",
                                 path, ctx->msg, (unsigned long long)PNG_MAX_CHUNK, CDF_PNG_MAX_PIXELS);
        if (ctx->nomem) return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory reading PNG", path);
        return cdf_error_set(err, CDF_ERR_FORMAT, "%s: invalid PNG: %s", path, ctx->msg);
    }
    *png_out = png;
    *info_out = info;
    *end_out = end_info;
    return CDF_OK;
}

cdf_status cdf_png_read(const char *path, cdf_image *img, cdf_error *err) {
    memset(img, 0, sizeof *img);
    png_ctx ctx = {path, err, 0, 0, {0}};
    read_state rs = {1, NULL, 0, 0, 0};
    png_structp png;
    png_infop info, end_info;
    cdf_status s = read_png(path, &ctx, &rs, &png, &info, &end_info, err);
    if (s != CDF_OK) return s;
    png_destroy_read_struct(&png, &info, &end_info);
    img->width = (int)rs.width;
    img->height = (int)rs.height;
    img->channels = rs.channels;
    img->pixels = rs.pixels;
    return CDF_OK;
}

/* Copy of a text chunk's value as UTF-8 (Latin-1 converted for tEXt/zTXt). */
static char *text_value(const png_text *t) {
    if (t->compression == PNG_ITXT_COMPRESSION_NONE || t->compression == PNG_ITXT_COMPRESSION_zTXt) {
        size_t n = t->itxt_length;
        char *v = cdf_malloc(n + 1);
        if (!v) return NULL;
        if (n) memcpy(v, t->text, n);
        v[n] = 0;
        return v;
    }
    size_t n = t->text_length, out = 0;
    for (size_t i = 0; i < n; i++) out += ((unsigned char)t->text[i] >= 0x80) ? 2 : 1;
    char *v = cdf_malloc(out + 1);
    if (!v) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t->text[i];
        if (c < 0x80) {
            v[k++] = (char)c;
        } else {
            v[k++] = (char)(0xC0 | (c >> 6));
            v[k++] = (char)(0x80 | (c & 0x3F));
        }
    }
    v[k] = 0;
    return v;
}

cdf_status cdf_png_read_text(const char *path, const char *key, char **value, cdf_error *err) {
    *value = NULL;
    png_ctx ctx = {path, err, 0, 0, {0}};
    read_state rs = {0, NULL, 0, 0, 0};
    png_structp png;
    png_infop info, end_info;
    cdf_status s = read_png(path, &ctx, &rs, &png, &info, &end_info, err);
    if (s != CDF_OK) return s;
    cdf_free(rs.pixels);
    const png_text *found = NULL;
    png_infop where[2] = {info, end_info};
    for (int w = 0; w < 2 && !found; w++) {
        png_textp texts = NULL;
        int n = 0;
        png_get_text(png, where[w], &texts, &n);
        for (int i = 0; i < n && !found; i++)
            if (texts[i].key && strcmp(texts[i].key, key) == 0) found = &texts[i];
    }
    if (found) {
        *value = text_value(found);
        if (!*value) s = cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", path);
    } else if (ctx.too_large) {
        /* libpng skips a text chunk it cannot allocate, with only a warning */
        s = cdf_error_set(err, CDF_ERR_LIMIT, "%s: a PNG text chunk is over the %llu-byte limit", path,
                          (unsigned long long)PNG_MAX_LIB_ALLOC);
    } else if (ctx.nomem) {
        /* libpng drops a text chunk it has no memory for, with only a warning */
        s = cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory reading PNG text", path);
    } else {
        s = cdf_error_set(err, CDF_ERR_MISSING, "%s: no PNG text chunk '%s'", path, key);
    }
    png_destroy_read_struct(&png, &info, &end_info);
    return s;
}
