#ifndef NN_COPENBLAS_SHIM_H
#define NN_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
