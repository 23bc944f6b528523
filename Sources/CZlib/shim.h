#ifndef NN_CZLIB_SHIM_H
#define NN_CZLIB_SHIM_H
#include <zlib.h>

/* zlib's init functions are macros that pass the library version and the
   struct size; Swift cannot call macros, so these wrappers do it. */
static inline int nn_inflateInit2(z_stream *strm, int windowBits) {
    return inflateInit2(strm, windowBits);
}
static inline int nn_deflateInit2(z_stream *strm, int level, int windowBits) {
    return deflateInit2(strm, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY);
}
#endif
