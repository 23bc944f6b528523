#ifndef NN_CPNG_SHIM_H
#define NN_CPNG_SHIM_H
/* libpng reports errors by longjmp. A longjmp must never cross a Swift frame, so every
   call into libpng happens inside these C functions, each of which sets its own jump
   buffer: an error returns here, is copied into `message`, and the function returns -1.
   Swift sees only return codes. */
#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint32_t width;
    uint32_t height;
    /* After expansion: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA. */
    int channels;
    /* 8 or 16 after expansion. */
    int bit_depth;
    /* The file's own colour type and depth, for messages. */
    int color_type;
    int file_bit_depth;
    char message[256];
} nn_png_info;

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t position;
} nn_png_source;

static inline void nn_png_error(png_structp png, png_const_charp text) {
    nn_png_info *info = (nn_png_info *)png_get_error_ptr(png);
    strncpy(info->message, text ? text : "unknown libpng error", sizeof info->message - 1);
    info->message[sizeof info->message - 1] = 0;
    png_longjmp(png, 1);
}

static inline void nn_png_warning(png_structp png, png_const_charp text) {
    (void)png; (void)text; /* warnings (bad ancillary chunks) do not stop decoding */
}

static inline void nn_png_read(png_structp png, png_bytep out, size_t count) {
    nn_png_source *source = (nn_png_source *)png_get_io_ptr(png);
    if (count > source->size - source->position) png_error(png, "the file is truncated");
    memcpy(out, source->data + source->position, count);
    source->position += count;
}

/* Reads the header of the PNG in `data`; when `pixels` is not NULL, also decodes the image into
   it: width*height*channels values, row-major, 8-bit values widened to 16 bits (0...255) or
   16-bit values (0...65535). Returns 0 on success, -1 with `info->message` on an error. The
   caller checks the size from a first call with `pixels` NULL before it allocates. */
static inline int nn_png_decode(const uint8_t *data, size_t size, uint16_t *pixels, nn_png_info *info) {
    memset(info, 0, sizeof *info);
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, info, nn_png_error, nn_png_warning);
    if (!png) { strcpy(info->message, "libpng could not start"); return -1; }
    png_infop pinfo = png_create_info_struct(png);
    png_bytep volatile rows = NULL;
    png_bytepp volatile row_pointers = NULL;
    nn_png_source source = { data, size, 0 };
    if (!pinfo) { png_destroy_read_struct(&png, NULL, NULL); strcpy(info->message, "libpng could not start"); return -1; }
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        free(row_pointers);
        png_destroy_read_struct(&png, &pinfo, NULL);
        return -1;
    }
    png_set_read_fn(png, &source, nn_png_read);
    png_read_info(png, pinfo);
    info->width = png_get_image_width(png, pinfo);
    info->height = png_get_image_height(png, pinfo);
    info->color_type = png_get_color_type(png, pinfo);
    info->file_bit_depth = png_get_bit_depth(png, pinfo);
    /* Palette to RGB, gray below 8 bits to 8, tRNS to an alpha channel. */
    png_set_expand(png);
    int passes = png_set_interlace_handling(png);
    (void)passes;
    png_read_update_info(png, pinfo);
    info->channels = png_get_channels(png, pinfo);
    info->bit_depth = png_get_bit_depth(png, pinfo);
    if (pixels == NULL) {
        png_destroy_read_struct(&png, &pinfo, NULL);
        return 0;
    }
    size_t rowbytes = png_get_rowbytes(png, pinfo);
    rows = (png_bytep)malloc(rowbytes * info->height);
    row_pointers = (png_bytepp)malloc(sizeof(png_bytep) * info->height);
    if (!rows || !row_pointers) png_error(png, "out of memory");
    for (uint32_t y = 0; y < info->height; y++) row_pointers[y] = rows + (size_t)y * rowbytes;
    png_read_image(png, row_pointers);
    png_read_end(png, NULL);
    size_t count = (size_t)info->width * info->height * info->channels;
    if (info->bit_depth == 16) {
        for (size_t i = 0; i < count; i++) pixels[i] = (uint16_t)((rows[2 * i] << 8) | rows[2 * i + 1]);
    } else {
        for (size_t i = 0; i < count; i++) pixels[i] = rows[i];
    }
    free(rows);
    free(row_pointers);
    png_destroy_read_struct(&png, &pinfo, NULL);
    return 0;
}

typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
    int failed;
} nn_png_sink;

static inline void nn_png_write(png_structp png, png_bytep bytes, size_t count) {
    nn_png_sink *sink = (nn_png_sink *)png_get_io_ptr(png);
    if (sink->size + count > sink->capacity) {
        size_t capacity = sink->capacity ? sink->capacity * 2 : 4096;
        while (capacity < sink->size + count) capacity *= 2;
        uint8_t *bigger = (uint8_t *)realloc(sink->data, capacity);
        if (!bigger) png_error(png, "out of memory");
        sink->data = bigger;
        sink->capacity = capacity;
    }
    memcpy(sink->data + sink->size, bytes, count);
    sink->size += count;
}

static inline void nn_png_flush(png_structp png) { (void)png; }

/* Encodes an 8-bit gray image as PNG into a buffer the caller frees with `free`. Returns 0 and
   sets *out and *out_size, or -1 with `info->message`. */
static inline int nn_png_encode_gray8(const uint8_t *pixels, uint32_t width, uint32_t height,
                                      uint8_t **out, size_t *out_size, nn_png_info *info) {
    memset(info, 0, sizeof *info);
    *out = NULL;
    *out_size = 0;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, info, nn_png_error, nn_png_warning);
    if (!png) { strcpy(info->message, "libpng could not start"); return -1; }
    png_infop pinfo = png_create_info_struct(png);
    nn_png_sink sink = { NULL, 0, 0, 0 };
    if (!pinfo) { png_destroy_write_struct(&png, NULL); strcpy(info->message, "libpng could not start"); return -1; }
    if (setjmp(png_jmpbuf(png))) {
        free(sink.data);
        png_destroy_write_struct(&png, &pinfo);
        return -1;
    }
    png_set_write_fn(png, &sink, nn_png_write, nn_png_flush);
    png_set_IHDR(png, pinfo, width, height, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, pinfo);
    for (uint32_t y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(pixels + (size_t)y * width));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &pinfo);
    *out = sink.data;
    *out_size = sink.size;
    return 0;
}
#endif
