#!/usr/bin/env python3
"""Writes the HDF5 fixtures for NNHDF5Tests with real h5py, and the values the tests expect.

Run from anywhere:  python3 Tests/NNHDF5Tests/make_fixtures.py
Output: Tests/NNHDF5Tests/Resources/{numeric,strings,keras,attrs,links,truncated}.h5,
        not_hdf5.h5, empty.h5 and expected.json.

Every expected value in expected.json comes from NumPy/h5py, never from the Swift code:
floating-point values are stored as hex bit patterns so comparisons are bit-exact.
"""
import json
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "Resources")
LIBVER = ("v108", "v108")  # readable by HDF5 1.8+ (Debian ships 1.10)


def hex_bits(array, bits):
    view = {16: np.uint16, 32: np.uint32, 64: np.uint64}[bits]
    return ["%0*x" % (bits // 4, int(v)) for v in np.ascontiguousarray(array).reshape(-1).view(view)]


def describe(array):
    """Everything the Swift tests compare against, for one numeric array."""
    a = np.asarray(array)
    entry = {
        "dtype": a.dtype.newbyteorder("=").name if a.dtype.byteorder == ">" else a.dtype.name,
        "shape": list(a.shape),
        "le_bytes": a.astype(a.dtype.newbyteorder("<")).tobytes().hex(),
    }
    if a.dtype.kind in "fiu":
        with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, as intended
            entry["f32"] = hex_bits(a.astype(np.float32), 32)
        entry["f64"] = hex_bits(a.astype(np.float64), 64)
    if a.dtype.kind in "iu":
        entry["i64"] = [str(int(v)) for v in a.reshape(-1)]
    return entry


def numeric(expected):
    rng = np.random.RandomState(1234)
    specials32 = np.array([0.0, -0.0, 1.0, -1.5, np.inf, -np.inf, np.finfo(np.float32).max,
                           np.finfo(np.float32).tiny, 1e-45, 0.1], dtype=np.float32)
    specials64 = np.array([0.0, -0.0, 0.1, 1.0 / 3.0, 1e300, -1e-300, np.inf, 5e-324,
                           float(np.finfo(np.float32).max) * 2.0, 1.0000000596046448], dtype=np.float64)
    specials16 = np.array([0.0, -0.0, 1.0, 65504.0, 2.0 ** -24, 6.1035e-05, np.inf, -np.inf,
                           0.333, -2.5], dtype=np.float16)
    data = {
        "f32_r0": np.float32(3.14159),
        "f32_r1": specials32,
        "f32_r2": rng.standard_normal((2, 3)).astype(np.float32),
        "f32_r3": rng.standard_normal((2, 3, 4)).astype(np.float32),
        "f32_r4": rng.standard_normal((2, 1, 3, 2)).astype(np.float32),
        "f64_r0": np.float64(-2.718281828459045),
        "f64_r1": specials64,
        "f64_r2": rng.standard_normal((3, 2)),
        "f64_r3": rng.standard_normal((1, 2, 3)),
        "f64_r4": rng.standard_normal((2, 2, 2, 2)),
        "f16_r0": np.float16(-0.5),
        "f16_r1": specials16,
        "f16_r2": rng.standard_normal((3, 4)).astype(np.float16),
        "i8": np.array([-128, -1, 0, 1, 127], dtype=np.int8),
        "i16": np.array([-32768, -2, 300, 32767], dtype=np.int16),
        "i32": np.array([[-2147483648, 0], [16777217, 2147483647]], dtype=np.int32),
        "i64": np.array([-(2 ** 63), -1, 2 ** 53 + 1, 2 ** 60 + 2 ** 36 + 1, 2 ** 63 - 1], dtype=np.int64),
        "u8": np.array([0, 1, 200, 255], dtype=np.uint8),
        "u16": np.array([0, 65535], dtype=np.uint16),
        "u32": np.array([0, 4294967295, 16777217], dtype=np.uint32),
        "u64": np.array([0, 2 ** 63 - 1, 12345], dtype=np.uint64),
        "u64_big": np.array([2 ** 64 - 1], dtype=np.uint64),
        "f32_be": np.array([[1.5, -2.0], [np.pi, 1e-20]], dtype=">f4"),
        "f64_be": np.array([0.1, -1e200], dtype=">f8"),
        "i32_be": np.array([1, -2, 100000], dtype=">i4"),
        "empty_f32": np.zeros((0, 3), dtype=np.float32),
    }
    with h5py.File(os.path.join(OUT, "numeric.h5"), "w", libver=LIBVER) as f:
        entries = {}
        for name, value in data.items():
            f.create_dataset(name, data=value)
            entries["/" + name] = describe(value)
        gz = rng.standard_normal((100, 10)).astype(np.float32)
        f.create_dataset("nested/deeper/gzip_f32", data=gz, chunks=(10, 10), compression="gzip",
                         compression_opts=4, shuffle=True)
        entries["/nested/deeper/gzip_f32"] = describe(gz)
        # Compressible data, so that the chunks really are filtered (LZF is optional in h5py).
        f.create_dataset("lzf_f32", data=np.arange(1000, dtype=np.float32).reshape(100, 10) // 100,
                         chunks=(10, 10), compression="lzf")
        f.create_dataset("compound", data=np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]))
        f.create_dataset("bool", data=np.array([True, False]))
        f.create_dataset("vlen_str", data=["a"], dtype=h5py.string_dtype())
        f.create_dataset("null_space", data=h5py.Empty("f4"))
        expected["numeric.h5"] = entries


def strings(expected):
    with h5py.File(os.path.join(OUT, "strings.h5"), "w", libver=LIBVER) as f:
        vlen = ["alpha", "βeta ✓", "", "tail  "]
        f.create_dataset("vlen_utf8", data=vlen, dtype=h5py.string_dtype("utf-8"))
        ascii_vlen = [b"one", b"two"]
        f.create_dataset("vlen_ascii", data=ascii_vlen, dtype=h5py.string_dtype("ascii"))
        fixed = np.array([b"ab", b"cde", b""], dtype="S5")
        f.create_dataset("fixed_nullpad", data=fixed)
        grid = np.array([["a", "b"], ["c", "dd"]], dtype=object)
        f.create_dataset("vlen_2d", data=grid, dtype=h5py.string_dtype())
        f.create_dataset("scalar_vlen", data="just one", dtype=h5py.string_dtype())
        # A null-terminated fixed-length type, as C programs write it.
        tid = h5py.h5t.C_S1.copy()
        tid.set_size(6)
        tid.set_strpad(h5py.h5t.STR_NULLTERM)
        space = h5py.h5s.create_simple((2,))
        ds = h5py.h5d.create(f.id, b"fixed_nullterm", tid, space)
        ds.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array([b"xy\0zz", b"hello"], dtype="S6"), mtype=tid)
        expected["strings.h5"] = {
            "/vlen_utf8": {"strings": vlen, "shape": [4]},
            "/vlen_ascii": {"strings": [s.decode() for s in ascii_vlen], "shape": [2]},
            "/fixed_nullpad": {"strings": [s.decode() for s in fixed], "shape": [3]},
            "/vlen_2d": {"strings": [str(s) for s in grid.reshape(-1)], "shape": [2, 2]},
            "/scalar_vlen": {"strings": ["just one"], "shape": []},
            "/fixed_nullterm": {"strings": ["xy", "hello"], "shape": [2]},
        }


def keras(expected):
    """A tf.keras 2 style legacy .h5 file (what `model.save('m.h5')` writes), built by hand."""
    rng = np.random.RandomState(7)
    model_config = json.dumps({"class_name": "Sequential", "config": {"name": "séquentiel", "layers": [
        {"class_name": "Dense", "config": {"name": "dense", "units": 3}},
        {"class_name": "Dropout", "config": {"name": "dropout", "rate": 0.5}},
        {"class_name": "Dense", "config": {"name": "dense_1", "units": 2}}]}})
    kernel0 = rng.standard_normal((4, 3)).astype(np.float32)
    bias0 = rng.standard_normal((3,)).astype(np.float32)
    kernel1 = rng.standard_normal((3, 2)).astype(np.float32)
    bias1 = rng.standard_normal((2,)).astype(np.float32)
    with h5py.File(os.path.join(OUT, "keras.h5"), "w", libver=LIBVER) as f:
        f.attrs["keras_version"] = b"2.15.0"      # bytes -> variable-length ASCII
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = model_config     # str -> variable-length UTF-8
        mw = f.create_group("model_weights")
        layer_names = [b"dense", b"dropout", b"dense_1"]
        mw.attrs["layer_names"] = np.array(layer_names)   # fixed-length S7, NULLPAD
        mw.attrs["backend"] = b"tensorflow"
        mw.attrs["keras_version"] = b"2.15.0"
        for layer, weights in (("dense", (kernel0, bias0)), ("dropout", ()), ("dense_1", (kernel1, bias1))):
            g = mw.create_group(layer)
            names = [("%s/%s:0" % (layer, w)).encode() for w in ("kernel", "bias")][:len(weights)]
            g.attrs["weight_names"] = np.asarray(names)   # an empty list gives float64 shape (0,)
            for name, value in zip(names, weights):
                g.create_dataset(name.decode(), data=value)
        # Keras 3 legacy layout, one level deeper and without ':0'.
        f.create_dataset("keras3/model_weights/dense/sequential/dense/kernel", data=kernel0)
        expected["keras.h5"] = {
            "keras_version": "2.15.0",
            "backend": "tensorflow",
            "model_config": model_config,
            "layer_names": [s.decode() for s in layer_names],
            "weight_names": {"dense": ["dense/kernel:0", "dense/bias:0"], "dropout": [],
                             "dense_1": ["dense_1/kernel:0", "dense_1/bias:0"]},
            "datasets": {
                "/model_weights/dense/dense/kernel:0": describe(kernel0),
                "/model_weights/dense/dense/bias:0": describe(bias0),
                "/model_weights/dense_1/dense_1/kernel:0": describe(kernel1),
                "/model_weights/dense_1/dense_1/bias:0": describe(bias1),
                "/keras3/model_weights/dense/sequential/dense/kernel": describe(kernel0),
            },
        }


def attrs(expected):
    with h5py.File(os.path.join(OUT, "attrs.h5"), "w", libver=LIBVER) as f:
        f.attrs["str_scalar"] = "héllo wörld"
        f.attrs["bytes_scalar"] = b"plain bytes"
        f.attrs["fixed_scalar"] = np.bytes_(b"fixed")
        f.attrs["fixed_array"] = np.array([b"a", b"bb", b"ccc"])
        f.attrs["vlen_array"] = np.array(["x", "yy", "zzz"], dtype=h5py.string_dtype())
        f.attrs["int_scalar"] = 42
        f.attrs["int_array"] = np.array([1, -2, 3], dtype=np.int32)
        f.attrs["uint_big"] = np.uint64(2 ** 64 - 1)
        f.attrs["float_scalar"] = 0.1
        f.attrs["float_array"] = np.array([1.5, -2.25, 0.1], dtype=np.float32)
        f.attrs["float_2d"] = np.arange(6.0).reshape(2, 3) / 7.0
        f.attrs["half"] = np.float16(1.5)
        f.attrs["bool_attr"] = True
        f.attrs["empty"] = h5py.Empty("f4")
        f.attrs["empty_float_array"] = np.asarray([])
        g = f.create_group("group")
        g.attrs["note"] = "on a group"
        d = f.create_dataset("dataset", data=np.arange(3, dtype=np.float32))
        d.attrs["units"] = "m/s"
        d.attrs["scale"] = np.float32(0.5)
        expected["attrs.h5"] = {
            "names": sorted(f.attrs.keys(), key=lambda s: s.encode()),
            "str_scalar": "héllo wörld",
            "bytes_scalar": "plain bytes",
            "fixed_scalar": "fixed",
            "fixed_array": ["a", "bb", "ccc"],
            "vlen_array": ["x", "yy", "zzz"],
            "int_scalar": 42,
            "int_array": [1, -2, 3],
            "float_scalar": hex_bits(np.float64(0.1), 64)[0],
            "float_array": hex_bits(np.array([1.5, -2.25, 0.1], dtype=np.float32).astype(np.float64), 64),
            "float_2d": hex_bits(np.arange(6.0) / 7.0, 64),
            "half": 1.5,
        }


def links(expected):
    with h5py.File(os.path.join(OUT, "links.h5"), "w", libver=LIBVER) as f:
        f.create_dataset("a/b/c/d/leaf", data=np.arange(4, dtype=np.float64))
        f.create_dataset("a/x", data=np.float32(1.0))
        f["soft"] = h5py.SoftLink("/a/b")
        f["dangling"] = h5py.SoftLink("/nowhere")
        f["ext"] = h5py.ExternalLink("other_file_that_does_not_exist.h5", "/x")
        f["named_type"] = np.dtype("float32")
        cyc = f.create_group("cycle/child")
        f["cycle/child/back"] = f["cycle"]           # a hard link to an ancestor
        f["cycle/alias_of_leaf"] = f["a/b/c/d/leaf"]  # the same dataset under another name
        g = f.create_group("deep")
        path = "deep"
        for _ in range(80):
            g = g.create_group("g")
            path += "/g"
        g.create_dataset("bottom", data=np.array([7], dtype=np.int16))
        members = sorted(f.keys(), key=lambda s: s.encode())
        visited = []
        f["a"].visititems(lambda name, obj: visited.append("/a/" + name) if isinstance(obj, h5py.Dataset) else None)
        expected["links.h5"] = {
            "root_members": members,
            "deep_path": "/" + path + "/bottom",
            "a_datasets": visited,
            "cycle_member_count": len(cyc.keys()),
        }


def broken():
    with open(os.path.join(OUT, "not_hdf5.h5"), "w") as f:
        f.write("This is a text file, not an HDF5 file.\n" * 40)
    open(os.path.join(OUT, "empty.h5"), "wb").close()
    path = os.path.join(OUT, "truncated.h5")
    with h5py.File(path, "w", libver=LIBVER) as f:
        f.create_dataset("data", data=np.arange(2000, dtype=np.float64))
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)


def main():
    os.makedirs(OUT, exist_ok=True)
    expected = {"h5py": h5py.version.version, "numpy": np.__version__}
    numeric(expected)
    strings(expected)
    keras(expected)
    attrs(expected)
    links(expected)
    broken()
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
