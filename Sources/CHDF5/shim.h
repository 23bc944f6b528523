#ifndef NN_CHDF5_SHIM_H
#define NN_CHDF5_SHIM_H
#include <hdf5.h>
#include <string.h>

/* HDF5 exposes its type and property-list constants as macros over global
   variables that Swift 6 cannot import; these inline functions return them.
   The wrappers further down hide differences between HDF5 1.10, 1.12 and later. */

/* Property lists and special identifiers. */
static inline hid_t nn_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t nn_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t nn_H5P_LINK_ACCESS(void) { return H5P_LINK_ACCESS; }
static inline hid_t nn_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t nn_H5S_ALL(void) { return H5S_ALL; }
static inline hid_t nn_H5E_DEFAULT(void) { return H5E_DEFAULT; }
static inline hid_t nn_H5E_PLUGIN(void) { return H5E_PLUGIN; }

/* File access flags. */
static inline unsigned nn_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned nn_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline unsigned nn_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned nn_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }

/* Native (memory) types. */
static inline hid_t nn_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t nn_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t nn_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t nn_H5T_NATIVE_UINT64(void) { return H5T_NATIVE_UINT64; }

/* Standard (file) types, little- and big-endian. */
static inline hid_t nn_H5T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t nn_H5T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
static inline hid_t nn_H5T_IEEE_F32BE(void) { return H5T_IEEE_F32BE; }
static inline hid_t nn_H5T_IEEE_F64BE(void) { return H5T_IEEE_F64BE; }
static inline hid_t nn_H5T_STD_I8LE(void) { return H5T_STD_I8LE; }
static inline hid_t nn_H5T_STD_I16LE(void) { return H5T_STD_I16LE; }
static inline hid_t nn_H5T_STD_I32LE(void) { return H5T_STD_I32LE; }
static inline hid_t nn_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline hid_t nn_H5T_STD_U8LE(void) { return H5T_STD_U8LE; }
static inline hid_t nn_H5T_STD_U16LE(void) { return H5T_STD_U16LE; }
static inline hid_t nn_H5T_STD_U32LE(void) { return H5T_STD_U32LE; }
static inline hid_t nn_H5T_STD_U64LE(void) { return H5T_STD_U64LE; }

/* Strings. */
static inline hid_t nn_H5T_C_S1(void) { return H5T_C_S1; }
static inline size_t nn_H5T_VARIABLE(void) { return H5T_VARIABLE; }

/* Turns off HDF5's automatic printing of error stacks for the calling thread.
   In a thread-safe build each thread has its own error stack, and with it its
   own "auto" setting, so this has to run once on every thread that calls HDF5. */
static inline void nn_silence_errors_on_this_thread(void) {
    static _Thread_local int silenced = 0;
    if (!silenced) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        silenced = 1;
    }
}

/* Frees the memory HDF5 allocated for variable-length data read into `buf`. */
static inline herr_t nn_reclaim(hid_t type_id, hid_t space_id, void *buf) {
#if H5_VERSION_GE(1, 12, 0)
    return H5Treclaim(type_id, space_id, H5P_DEFAULT, buf);
#else
    return H5Dvlen_reclaim(type_id, space_id, H5P_DEFAULT, buf);
#endif
}

/* > 0: the file has an HDF5 signature, 0: it has not, < 0: error. */
static inline htri_t nn_is_hdf5(const char *path) {
#if H5_VERSION_GE(1, 12, 0)
    return H5Fis_accessible(path, H5P_DEFAULT);
#else
    return H5Fis_hdf5(path);
#endif
}

/* What the wrappers below report about an object, independent of the HDF5
   version (1.10 identifies objects by address, 1.12+ by token). */
typedef struct nn_object_info {
    int type;                /* an H5O_type_t */
    unsigned long fileno;
    unsigned char key[16];   /* address or token, zero-padded */
    unsigned long long num_attrs;
} nn_object_info;

#if H5_VERSION_GE(1, 12, 0)
static inline void nn_fill_object_info(const H5O_info2_t *in, nn_object_info *out) {
    memset(out, 0, sizeof(*out));
    out->type = (int)in->type;
    out->fileno = in->fileno;
    memcpy(out->key, &in->token, sizeof(in->token) < 16 ? sizeof(in->token) : 16);
    out->num_attrs = (unsigned long long)in->num_attrs;
}
#else
static inline void nn_fill_object_info(const H5O_info_t *in, nn_object_info *out) {
    memset(out, 0, sizeof(*out));
    out->type = (int)in->type;
    out->fileno = in->fileno;
    memcpy(out->key, &in->addr, sizeof(in->addr) < 16 ? sizeof(in->addr) : 16);
    out->num_attrs = (unsigned long long)in->num_attrs;
}
#endif

/* Information about the object `name` (relative to `loc`). */
static inline herr_t nn_get_object_info_by_name(hid_t loc, const char *name, hid_t lapl, nn_object_info *out) {
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info;
    herr_t status = H5Oget_info_by_name3(loc, name, &info, H5O_INFO_BASIC | H5O_INFO_NUM_ATTRS, lapl);
#elif H5_VERSION_GE(1, 10, 3)
    H5O_info_t info;
    herr_t status = H5Oget_info_by_name2(loc, name, &info, H5O_INFO_BASIC | H5O_INFO_NUM_ATTRS, lapl);
#else
    H5O_info_t info;
    herr_t status = H5Oget_info_by_name(loc, name, &info, lapl);
#endif
    if (status >= 0) nn_fill_object_info(&info, out);
    return status;
}

/* Information about the open object `obj`. */
static inline herr_t nn_get_object_info(hid_t obj, nn_object_info *out) {
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info;
    herr_t status = H5Oget_info3(obj, &info, H5O_INFO_BASIC | H5O_INFO_NUM_ATTRS);
#elif H5_VERSION_GE(1, 10, 3)
    H5O_info_t info;
    herr_t status = H5Oget_info2(obj, &info, H5O_INFO_BASIC | H5O_INFO_NUM_ATTRS);
#else
    H5O_info_t info;
    herr_t status = H5Oget_info(obj, &info);
#endif
    if (status >= 0) nn_fill_object_info(&info, out);
    return status;
}

/* The type of the link `name` (an H5L_type_t), without following it;
   H5L_TYPE_ERROR (< 0) on failure. */
static inline int nn_link_type(hid_t loc, const char *name, hid_t lapl) {
#if H5_VERSION_GE(1, 12, 0)
    H5L_info2_t info;
    if (H5Lget_info2(loc, name, &info, lapl) < 0) return (int)H5L_TYPE_ERROR;
#else
    H5L_info_t info;
    if (H5Lget_info(loc, name, &info, lapl) < 0) return (int)H5L_TYPE_ERROR;
#endif
    return (int)info.type;
}

/* External links name another file; following them while reading an
   untrusted file would open arbitrary paths. This callback refuses. */
static herr_t nn_refuse_external_link(const char *parent_file_name, const char *parent_group_name,
                                      const char *child_file_name, const char *child_object_name,
                                      unsigned *acc_flags, hid_t fapl_id, void *op_data) {
    (void)parent_file_name; (void)parent_group_name; (void)child_file_name;
    (void)child_object_name; (void)acc_flags; (void)fapl_id; (void)op_data;
    return -1;
}

/* A link access property list that never follows external links and
   limits soft-link chains to `max_soft_links`. Close it with H5Pclose. */
static inline hid_t nn_create_safe_link_access(size_t max_soft_links) {
    hid_t lapl = H5Pcreate(H5P_LINK_ACCESS);
    if (lapl < 0) return lapl;
    if (H5Pset_elink_cb(lapl, nn_refuse_external_link, NULL) < 0 ||
        H5Pset_nlinks(lapl, max_soft_links) < 0) {
        H5Pclose(lapl);
        return -1;
    }
    return lapl;
}

/* A file access property list with the given close degree. */
static inline hid_t nn_create_file_access(H5F_close_degree_t degree) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return fapl;
    if (H5Pset_fclose_degree(fapl, degree) < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

/* An attribute creation property list with UTF-8 names (as h5py writes them). */
static inline hid_t nn_create_attribute_creation_utf8(void) {
    hid_t acpl = H5Pcreate(H5P_ATTRIBUTE_CREATE);
    if (acpl < 0) return acpl;
    if (H5Pset_char_encoding(acpl, H5T_CSET_UTF8) < 0) {
        H5Pclose(acpl);
        return -1;
    }
    return acpl;
}

/* A link creation property list that creates missing intermediate groups. */
static inline hid_t nn_create_link_creation_with_parents(void) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl < 0) return lcpl;
    if (H5Pset_create_intermediate_group(lcpl, 1) < 0 ||
        H5Pset_char_encoding(lcpl, H5T_CSET_UTF8) < 0) {
        H5Pclose(lcpl);
        return -1;
    }
    return lcpl;
}

#endif
