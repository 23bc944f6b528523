#ifndef NN_CHDF5_SHIM_H
#define NN_CHDF5_SHIM_H
#include <hdf5.h>

/* HDF5 exposes its type and property-list constants as macros over global
   variables that Swift 6 cannot import; these inline functions return them. */
static inline hid_t nn_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline unsigned nn_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned nn_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline hid_t nn_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t nn_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t nn_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t nn_H5T_C_S1(void) { return H5T_C_S1; }
static inline size_t nn_H5T_VARIABLE(void) { return H5T_VARIABLE; }
static inline hid_t nn_H5S_ALL(void) { return H5S_ALL; }
#endif
