#!/usr/bin/env python3
"""Writes the interop fixtures in Fixtures/interop/: small weight files in the layouts that
NumPy blog code, Nielsen-style code, h5py, NumPy and Keras (3, and tf.keras 2 rebuilt by hand)
produce (including a small Keras 3 CNN, k3_cnn*), the files that must be rejected, `expected.h5` (input batches and NumPy reference
outputs, samples as rows) and `manifest.json` describing every file.

    pip install numpy h5py keras jax      # Keras 3 runs on the JAX backend (CPU)
    python3 Fixtures/generate_interop.py

The output is a pure function of the code and the package versions: every random number comes
from a seeded np.random.default_rng, and the two nondeterministic things Keras 3 puts in a
`.keras` zip (the save time, and Python object ids as "shared_object_id") are normalised.
The whole directory is regenerated on each run (written to a temporary directory, verified,
then swapped in), so do not edit files in it by hand. Prints one summary line.
"""

import os

# The backend must be chosen before keras is imported; JAX on the CPU, with float64 enabled
# so that the float64 Keras fixtures really compute in float64.
os.environ["KERAS_BACKEND"] = "jax"
os.environ["JAX_PLATFORMS"] = "cpu"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import contextlib
import hashlib
import io
import json
import logging
import re
import shutil
import struct
import tempfile
import warnings
import zipfile

import numpy as np
import h5py

warnings.simplefilter("ignore")
logging.getLogger("absl").setLevel(logging.ERROR)

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import keras  # noqa: E402

try:
    import absl.logging  # noqa: E402

    absl.logging.set_verbosity(absl.logging.ERROR)
except ImportError:  # pragma: no cover
    pass

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "interop")
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
FIXED_DATE_SAVED = "1980-01-01@00:00:00"

# Tolerances for comparing an implementation's outputs with expected.h5 (absolute, on
# probabilities in [0, 1]). Expected outputs are always computed in float64 from the stored
# values; an importer that computes in float32 must stay within the float32 tolerance.
TOL = {"float64": 1e-10, "float32": 1e-5}

FIXTURES = []   # manifest entries, in order
EXPECTED = {}   # expected.h5 group name -> {dataset name: float64 array}
WORK = None     # the directory being written


def path(name):
    return os.path.join(WORK, name)


# ----------------------------------------------------------------------------------------------
# Reference mathematics (NumPy, float64)

def activate(name, z, axis):
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "softmax":
        e = np.exp(z - np.max(z, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)
    if name in ("linear", None):
        return z
    raise ValueError(name)


def forward(x_rows, layers, activations, orientation):
    """x_rows (n, features); layers [(W, b)] as stored; returns (n, classes) float64.

    rows:    Z = A @ W + b, W (in, out), b (1, out) or (out,)
    columns: Z = W @ A + b, W (out, in), b (out, 1) or (out,), A has samples as columns
    """
    if orientation == "rows":
        a = np.asarray(x_rows, dtype=np.float64)
        for (w, b), act in zip(layers, activations):
            w = np.asarray(w, dtype=np.float64)
            b = np.asarray(b, dtype=np.float64).reshape(1, -1)
            a = activate(act, a @ w + b, axis=1)
        return a
    if orientation == "columns":
        a = np.asarray(x_rows, dtype=np.float64).T
        for (w, b), act in zip(layers, activations):
            w = np.asarray(w, dtype=np.float64)
            b = np.asarray(b, dtype=np.float64).reshape(-1, 1)
            a = activate(act, w @ a + b, axis=0)
        return np.ascontiguousarray(a.T)
    raise ValueError(orientation)


def forward_f32(x_rows, layers, activations, orientation):
    """The same network computed entirely in float32, to check the float32 tolerance."""
    x = np.asarray(x_rows, dtype=np.float32)
    if orientation == "rows":
        a = x
        for (w, b), act in zip(layers, activations):
            a = activate(act, a @ np.float32(w) + np.float32(b).reshape(1, -1), axis=1)
        return a
    a = x.T
    for (w, b), act in zip(layers, activations):
        a = activate(act, np.float32(w) @ a + np.float32(b).reshape(-1, 1), axis=0)
    return a.T


def rows_layers(rng, sizes, dtype, bias_shape="row"):
    """Blog convention: W (in, out) = randn / sqrt(in); b (1, out) (or (out,)), nonzero."""
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype)
        b = (0.5 * rng.standard_normal((1, n_out) if bias_shape == "row" else (n_out,))).astype(dtype)
        layers.append((w, b))
    return layers


def column_layers(rng, sizes, dtype, bias_shape="column"):
    """Nielsen / course convention: W (out, in) = randn / sqrt(in); b (out, 1) (or (out,))."""
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(dtype)
        b = (0.5 * rng.standard_normal((n_out, 1) if bias_shape == "column" else (n_out,))).astype(dtype)
        layers.append((w, b))
    return layers


# Input batches: samples as rows, float64; one per input width, shared by the fixtures.
INPUTS = {
    12: np.random.default_rng(1001).standard_normal((5, 12)),
    8: np.random.default_rng(1002).standard_normal((4, 8)),
    784: np.random.default_rng(1003).random((4, 784)),   # pixel-like values in [0, 1)
}


# ----------------------------------------------------------------------------------------------
# Describing files for the manifest

def sha256(p):
    with open(p, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _string_type_info(tid):
    info = {"class": "string"}
    info["variable_length"] = bool(tid.is_variable_str())
    info["cset"] = "utf8" if tid.get_cset() == h5py.h5t.CSET_UTF8 else "ascii"
    if not tid.is_variable_str():
        info["fixed_size"] = int(tid.get_size())
    info["strpad"] = {h5py.h5t.STR_NULLTERM: "nullterm", h5py.h5t.STR_NULLPAD: "nullpad",
                      h5py.h5t.STR_SPACEPAD: "spacepad"}[tid.get_strpad()]
    return info


def _type_info(tid, np_dtype):
    if isinstance(tid, h5py.h5t.TypeStringID):
        return _string_type_info(tid)
    if isinstance(tid, h5py.h5t.TypeFloatID):
        return {"class": "float", "dtype": np_dtype.str}
    if isinstance(tid, h5py.h5t.TypeIntegerID):
        return {"class": "integer", "dtype": np_dtype.str}
    return {"class": type(tid).__name__}


def _short(v):
    if isinstance(v, bytes):
        v = v.decode("utf8", "replace")
    if isinstance(v, str):
        return v if len(v) <= 160 else {"prefix": v[:80], "length": len(v)}
    if isinstance(v, np.ndarray):
        return [_short(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_short(x) for x in v]
    if isinstance(v, (np.generic,)):
        return v.item()
    return v


def describe_h5(p_or_file):
    """Every group, dataset and attribute of an HDF5 file, with exact string encodings."""
    out = {"groups": [], "datasets": [], "attributes": []}
    f = h5py.File(p_or_file, "r")
    try:
        def attrs_of(obj, name):
            for k in sorted(obj.attrs.keys()):
                aid = obj.attrs.get_id(k)
                entry = {"object": name, "name": k, "shape": list(aid.shape)}
                entry.update(_type_info(aid.get_type(), aid.dtype))
                entry["value"] = _short(obj.attrs[k])
                out["attributes"].append(entry)

        attrs_of(f, "/")

        def visit(name, obj):
            full = "/" + name
            if isinstance(obj, h5py.Group):
                out["groups"].append(full)
            else:
                d = {"path": full, "shape": list(obj.shape)}
                d.update(_type_info(obj.id.get_type(), obj.dtype))
                d["layout"] = "chunked" if obj.chunks else "contiguous"
                if obj.compression:
                    d["compression"] = obj.compression
                out["datasets"].append(d)
            attrs_of(obj, full)

        f.visititems(visit)
    finally:
        f.close()
    return out


def describe_npz(p):
    with zipfile.ZipFile(p) as z:
        members = []
        for info in z.infolist():
            with z.open(info) as m:
                raw = m.read()
            arr = np.load(io.BytesIO(raw), allow_pickle=False)
            members.append({"name": info.filename, "shape": list(arr.shape), "dtype": arr.dtype.str,
                            "npy_version": [raw[6], raw[7]],
                            "zip_method": "deflate" if info.compress_type == zipfile.ZIP_DEFLATED else "stored"})
    return {"members": members}


def describe_npy(p):
    with open(p, "rb") as f:
        raw = f.read()
    major, minor = raw[6], raw[7]
    if major == 1:
        hlen = struct.unpack("<H", raw[8:10])[0]
        start = 10
    else:
        hlen = struct.unpack("<I", raw[8:12])[0]
        start = 12
    header = raw[start:start + hlen].decode("utf8" if major >= 3 else "latin1")
    return {"npy_version": [major, minor], "header": header.rstrip(), "data_offset": start + hlen}


# ----------------------------------------------------------------------------------------------
# Registering fixtures

def add(fid, file, fmt, layout, *, x=None, y=None, arch=None, orientation=None, dtype=None,
        expect="load", error=None, needs=None, hints=None, notes=None, describe=None,
        expected_group=None, extra=None):
    entry = {"id": fid, "file": file, "format": fmt, "layout": layout, "expect": expect}
    if dtype:
        entry["dtype"] = dtype
    if orientation:
        entry["orientation"] = orientation
    if arch:
        entry["architecture"] = arch
    if error:
        entry["error"] = error
    if needs:
        entry["needs"] = needs
    if hints:
        entry["cli_hints"] = hints
    if y is not None:
        group = expected_group or fid
        EXPECTED[group] = {"input": np.asarray(x, np.float64), "output": np.asarray(y, np.float64)}
        entry["expected"] = {"file": "expected.h5", "group": group, "input": f"{group}/input",
                             "output": f"{group}/output",
                             "atol": TOL[dtype] if dtype in TOL else TOL["float32"]}
    if notes:
        entry["notes"] = notes
    if extra:
        entry.update(extra)
    if describe is not None:
        entry["contents"] = describe
    FIXTURES.append(entry)
    return entry


def arch(sizes, activations, **more):
    a = {"sizes": list(sizes), "activations": list(activations)}
    a.update(more)
    return a


def write_h5(fname, datasets, **create_kw):
    """A plain h5py file: {path: array}; paths with '/' create intermediate groups."""
    with h5py.File(path(fname), "w") as f:
        for name, value in datasets.items():
            f.create_dataset(name, data=value, **create_kw)


# ----------------------------------------------------------------------------------------------
# 1-4: blog, Nielsen and ambiguous HDF5 layouts

def blog_names(layers):
    d = {}
    for i, (w, b) in enumerate(layers, start=1):
        d[f"W{i}"] = w
        d[f"b{i}"] = b
    return d


def gen_blog_rows():
    specs = [
        ("blog_rows_2layer_f32", [12, 6, 3], np.float32, "row", {}),
        ("blog_rows_2layer_f64", [12, 6, 3], np.float64, "row", {}),
        ("blog_rows_3layer_f32", [12, 6, 4, 3], np.float32, "row", {}),
        ("blog_rows_3layer_f64", [12, 6, 4, 3], np.float64, "row", {}),
        ("blog_rows_2layer_bias1d_f64", [12, 6, 3], np.float64, "flat", {}),
        ("blog_rows_2layer_gzip_f32", [12, 6, 3], np.float32, "row",
         {"compression": "gzip", "compression_opts": 4, "chunks": True}),
        ("blog_rows_mnist_784_16_10_f32", [784, 16, 10], np.float32, "row", {}),
    ]
    for seed, (fid, sizes, dt, bias, kw) in enumerate(specs):
        rng = np.random.default_rng(1234 + seed)
        layers = rows_layers(rng, sizes, dt, bias)
        acts = ["relu"] * (len(sizes) - 2) + ["softmax"]
        fname = fid + ".h5"
        write_h5(fname, blog_names(layers), **kw)
        x = INPUTS[sizes[0]]
        notes = ["Root datasets W1, b1, W2, b2[, W3, b3]; Z = X @ W + b (seed documents 000/002)."]
        if bias == "flat":
            notes.append("Biases stored 1-D (out,) instead of (1, out).")
        if kw:
            notes.append("Datasets are chunked and gzip-compressed (HDF5 deflate filter).")
        add(fid, fname, "hdf5", "blog-rows", x=x, y=forward(x, layers, acts, "rows"),
            arch=arch(sizes, acts), orientation="rows", dtype=np.dtype(dt).name,
            hints={"layout": "rows", "activations": acts}, notes=" ".join(notes),
            describe=describe_h5(path(fname)))


def gen_blog_columns():
    specs = [
        ("blog_cols_2layer_binary_f32", [12, 5, 1], np.float32),
        ("blog_cols_2layer_binary_f64", [12, 5, 1], np.float64),
        ("blog_cols_3layer_f32", [12, 6, 4, 3], np.float32),
        ("blog_cols_3layer_f64", [12, 6, 4, 3], np.float64),
    ]
    for seed, (fid, sizes, dt) in enumerate(specs):
        rng = np.random.default_rng(2234 + seed)
        layers = column_layers(rng, sizes, dt)
        acts = ["sigmoid"] * (len(sizes) - 1)
        fname = fid + ".h5"
        write_h5(fname, blog_names(layers))
        x = INPUTS[12]
        add(fid, fname, "hdf5", "blog-columns", x=x, y=forward(x, layers, acts, "columns"),
            arch=arch(sizes, acts), orientation="columns", dtype=np.dtype(dt).name,
            hints={"layout": "columns", "activations": acts},
            notes="Root datasets W1 (out,in), b1 (out,1), ...; Z = W @ X + b with samples as columns; "
                  "sigmoid on every layer (seed documents 001/003; the 2-layer one is the binary "
                  "12-5-1 homework shape: predict class 1 when the output > 0.5). "
                  "expected.h5 stores input and output with samples as rows.",
            describe=describe_h5(path(fname)))


def gen_nielsen():
    # Datasets weights_<i>, biases_<i>.
    for seed, (fid, dt) in enumerate([("nielsen_datasets_f64", np.float64),
                                      ("nielsen_datasets_f32", np.float32)]):
        rng = np.random.default_rng(3234 + seed)
        sizes = [12, 6, 3]
        layers = column_layers(rng, sizes, dt)
        acts = ["sigmoid", "sigmoid"]
        fname = fid + ".h5"
        d = {}
        for i, (w, b) in enumerate(layers):
            d[f"weights_{i}"] = w
            d[f"biases_{i}"] = b
        write_h5(fname, d)
        x = INPUTS[12]
        add(fid, fname, "hdf5", "nielsen-datasets", x=x, y=forward(x, layers, acts, "columns"),
            arch=arch(sizes, acts), orientation="columns", dtype=np.dtype(dt).name,
            hints={"layout": "columns", "activations": acts},
            notes="Root datasets weights_0, biases_0, weights_1, biases_1: the Nielsen "
                  "MultilayerPerceptron lists (W (out,in), b (out,1), sigmoid everywhere).",
            describe=describe_h5(path(fname)))

    # Groups weights/<i>, biases/<i>.
    rng = np.random.default_rng(3300)
    sizes = [12, 6, 4, 3]
    layers = column_layers(rng, sizes, np.float64)
    acts = ["sigmoid"] * 3
    d = {}
    for i, (w, b) in enumerate(layers):
        d[f"weights/{i}"] = w
        d[f"biases/{i}"] = b
    write_h5("nielsen_groups_f64.h5", d)
    x = INPUTS[12]
    add("nielsen_groups_f64", "nielsen_groups_f64.h5", "hdf5", "nielsen-groups", x=x,
        y=forward(x, layers, acts, "columns"), arch=arch(sizes, acts), orientation="columns",
        dtype="float64", hints={"layout": "columns", "activations": acts},
        notes="Groups weights/ and biases/ with datasets named 0, 1, 2 (one per layer).",
        describe=describe_h5(path("nielsen_groups_f64.h5")))

    # 11 layers: weights_10 sorts before weights_2 as text; the order must be numeric.
    rng = np.random.default_rng(3301)
    sizes = [12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 5, 2]
    layers = column_layers(rng, sizes, np.float64)
    acts = ["sigmoid"] * (len(sizes) - 1)
    d = {}
    for i, (w, b) in enumerate(layers):
        d[f"weights_{i}"] = w
        d[f"biases_{i}"] = b
    write_h5("nielsen_deep_11layer_f64.h5", d)
    add("nielsen_deep_11layer_f64", "nielsen_deep_11layer_f64.h5", "hdf5", "nielsen-datasets", x=x,
        y=forward(x, layers, acts, "columns"), arch=arch(sizes, acts), orientation="columns",
        dtype="float64", hints={"layout": "columns", "activations": acts},
        notes="11 layers, weights_0 .. weights_10: layer order must be numeric (weights_10 sorts "
              "between weights_1 and weights_2 as text, and HDF5 lists links by name).",
        describe=describe_h5(path("nielsen_deep_11layer_f64.h5")))


def gen_ambiguous():
    rng = np.random.default_rng(4234)
    sizes = [8, 8, 8]
    layers = []
    for _ in range(2):
        layers.append((rng.standard_normal((8, 8)) / np.sqrt(8), 0.5 * rng.standard_normal(8)))
    acts = ["relu", "softmax"]
    fname = "ambiguous_square_8x8_f64.h5"
    write_h5(fname, blog_names(layers))
    x = INPUTS[8]
    desc = describe_h5(path(fname))
    note = ("W1, W2 are (8, 8) and b1, b2 are 1-D (8,): nothing in the file tells rows from "
            "columns, so an importer must refuse to guess and ask for --layout. The same file is "
            "listed twice, once per --layout value, with the outputs each reading gives (the "
            "activations are the same, relu then softmax, in both).")
    for orient in ("rows", "columns"):
        add(f"ambiguous_square_8x8_as_{orient}", fname, "hdf5", "blog-ambiguous", x=x,
            y=forward(x, layers, acts, orient), arch=arch(sizes, acts), orientation=orient,
            dtype="float64", needs=["layout"], hints={"layout": orient, "activations": acts},
            notes=note, describe=desc,
            extra={"without_layout_flag": {"expect": "error", "error": "ambiguous_orientation"}})


# ----------------------------------------------------------------------------------------------
# 5: NumPy .npz / .npy

def gen_numpy():
    x = INPUTS[12]
    # np.savez, rows layout, names W1, b1, ...
    rng = np.random.default_rng(5234)
    sizes = [12, 6, 3]
    layers = rows_layers(rng, sizes, np.float64)
    acts = ["relu", "softmax"]
    np.savez(path("npz_blog_rows_2layer_f64.npz"), **blog_names(layers))
    add("npz_blog_rows_2layer_f64", "npz_blog_rows_2layer_f64.npz", "npz", "blog-rows", x=x,
        y=forward(x, layers, acts, "rows"), arch=arch(sizes, acts), orientation="rows",
        dtype="float64", hints={"layout": "rows", "activations": acts},
        notes="np.savez (zip, members stored): W1.npy, b1.npy, W2.npy, b2.npy.",
        describe=describe_npz(path("npz_blog_rows_2layer_f64.npz")))
    npz_keep = path("npz_blog_rows_2layer_f64.npz")

    rng = np.random.default_rng(5235)
    sizes = [12, 6, 4, 3]
    layers = rows_layers(rng, sizes, np.float32)
    acts = ["relu", "relu", "softmax"]
    np.savez_compressed(path("npz_blog_rows_3layer_f32_compressed.npz"), **blog_names(layers))
    add("npz_blog_rows_3layer_f32_compressed", "npz_blog_rows_3layer_f32_compressed.npz", "npz",
        "blog-rows", x=x, y=forward(x, layers, acts, "rows"), arch=arch(sizes, acts),
        orientation="rows", dtype="float32", hints={"layout": "rows", "activations": acts},
        notes="np.savez_compressed (members deflated).",
        describe=describe_npz(path("npz_blog_rows_3layer_f32_compressed.npz")))

    rng = np.random.default_rng(5236)
    sizes = [12, 6, 3]
    layers = column_layers(rng, sizes, np.float64)
    acts = ["sigmoid", "sigmoid"]
    d = {}
    for i, (w, b) in enumerate(layers):
        d[f"weights_{i}"] = w
        d[f"biases_{i}"] = b
    np.savez(path("npz_nielsen_f64.npz"), **d)
    add("npz_nielsen_f64", "npz_nielsen_f64.npz", "npz", "nielsen-datasets", x=x,
        y=forward(x, layers, acts, "columns"), arch=arch(sizes, acts), orientation="columns",
        dtype="float64", hints={"layout": "columns", "activations": acts},
        notes="np.savez of the Nielsen lists: weights_0, biases_0, weights_1, biases_1.",
        describe=describe_npz(path("npz_nielsen_f64.npz")))

    # Single .npy arrays in every format version, plus Fortran order and big-endian data.
    rng = np.random.default_rng(5237)
    base = rng.standard_normal((12, 6))
    singles = [
        ("npy_v1_0_f32", base.astype(np.float32), (1, 0), "NPY 1.0: 2-byte header length, latin1 header."),
        ("npy_v2_0_f64", base, (2, 0), "NPY 2.0: 4-byte header length."),
        ("npy_v3_0_f64", base, (3, 0), "NPY 3.0: 4-byte header length, header text is UTF-8 "
                                       "(identical to 2.0 here apart from the version bytes)."),
        ("npy_v1_0_fortran_f64", np.asfortranarray(base), (1, 0),
         "fortran_order True: the data are column-major; the array value is the same as the others."),
        ("npy_v1_0_bigendian_f64", base.astype(">f8"), (1, 0), "descr '>f8': big-endian data."),
    ]
    for fid, arr, version, note in singles:
        fname = fid + ".npy"
        with open(path(fname), "wb") as f:
            np.lib.format.write_array(f, arr, version=version, allow_pickle=False)
        EXPECTED[fid] = {"value": np.asarray(arr, dtype=np.float64)}
        add(fid, fname, "npy", "single-array", dtype=arr.dtype.name, notes=note,
            describe=describe_npy(path(fname)),
            extra={"shape": list(arr.shape),
                   "expected": {"file": "expected.h5", "group": fid, "value": f"{fid}/value",
                                "atol": 0.0}})
    return npz_keep


# ----------------------------------------------------------------------------------------------
# 6: Keras 3 (real keras, JAX backend)

def zip_member_headers(p):
    """(flag, method, versions, extra field, external attributes) of each member, both the
    local header and the central directory view, for checking a rewritten zip."""
    with open(p, "rb") as f:
        raw = f.read()
    out = []
    with zipfile.ZipFile(p) as z:
        for i in z.infolist():
            off = i.header_offset
            (_, ver, flag, meth, _t, _d, _crc, _cs, _us, n, m) = struct.unpack("<IHHHHHIIIHH", raw[off:off + 30])
            out.append((i.filename, ver, flag, meth, raw[off + 30 + n:off + 30 + n + m], i.extra,
                        i.create_version, i.create_system, i.external_attr, i.compress_type))
    return out


def normalise_keras_zip(p):
    """Rewrites a .keras zip as Keras wrote it, minus the nondeterminism: the save time in
    metadata.json and model.weights.h5's zip timestamp become 1980-01-01, and the Python
    object ids Keras writes as "shared_object_id" are renumbered 1, 2, ... in order of first
    appearance. Member order, contents otherwise, compression, flags and attributes are kept."""
    before = zip_member_headers(p)
    with zipfile.ZipFile(p) as z:
        members = [(i, z.read(i.filename)) for i in z.infolist()]
    ids = {}

    def renumber(m):
        new_id = ids.setdefault(m.group(2), str(len(ids) + 1).encode())
        return m.group(1) + new_id

    with zipfile.ZipFile(p, "w") as z:
        for info, data in members:
            if info.filename == "metadata.json":
                assert "date_saved" in json.loads(data)
                data = re.sub(rb'("date_saved": ")[^"]*(")',
                              lambda m: m.group(1) + FIXED_DATE_SAVED.encode() + m.group(2), data)
            elif info.filename == "config.json":
                data = re.sub(rb'("shared_object_id": )(\d+)', renumber, data)
            zi = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            zi.compress_type = info.compress_type
            zi.external_attr = info.external_attr
            zi.create_system = info.create_system
            with z.open(zi, "w") as w:
                w.write(data)
    after = zip_member_headers(p)
    assert before == after, (before, after)
    return len(ids)


def dense_weights(rng, n_in, n_out, dtype):
    w = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype)
    b = (0.5 * rng.standard_normal(n_out)).astype(dtype)
    return w, b


def set_dense_weights(model, rng, dtype):
    """Sets every Dense layer's kernel and bias from rng; returns [(W, b)] in order."""
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            n_in, n_out = layer.kernel.shape
            w, b = dense_weights(rng, n_in, n_out, dtype)
            layer.set_weights([w, b])
            out.append((w, b))
    return out


def keras_check(model_or_path, x, y, dtype, what):
    m = keras.saving.load_model(model_or_path) if isinstance(model_or_path, str) else model_or_path
    atol = TOL[dtype] if dtype == "float64" else TOL["float32"]
    got = np.asarray(m(np.asarray(x, dtype=dtype)), dtype=np.float64)
    assert got.shape == y.shape and np.allclose(got, y, rtol=0, atol=atol), (what, np.abs(got - y).max())
    # predict() feeds float32 (keras floatx) even to a float64 model, so it gets the float32 tolerance.
    pred = np.asarray(m.predict(x, verbose=0), dtype=np.float64)
    assert np.allclose(pred, y, rtol=0, atol=TOL["float32"]), (what, "predict", np.abs(pred - y).max())
    return m


def snake_case(name):
    """keras.src.utils.naming.to_snake_case."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _attr_strings(obj, name):
    """A Keras name-list attribute as a list of str: variable- or fixed-length strings, or the
    float64 empty array Keras writes for an empty list."""
    if name not in obj.attrs:
        return []
    v = obj.attrs[name]
    if isinstance(v, np.ndarray) and v.dtype.kind == "f":
        assert v.size == 0
        return []
    return [x.decode("utf8") if isinstance(x, bytes) else str(x) for x in np.asarray(v).reshape(-1)]


def legacy_layer_weights(p):
    """Reads a Keras legacy HDF5 file (model.save('.h5') or save_weights('.h5'), Keras 2 or 3)
    the way an importer must: model_weights (or the root) -> layer_names -> each layer group's
    weight_names -> datasets. Returns [(layer name, class name or None, [(path, array)])]."""
    with h5py.File(p, "r") as f:
        g = f["model_weights"] if "model_weights" in f else f
        classes = {}
        if "model_config" in f.attrs:
            cfg = json.loads(f.attrs["model_config"])
            layers = cfg["config"]["layers"] if isinstance(cfg["config"], dict) else cfg["config"]
            classes = {l["config"]["name"]: l["class_name"] for l in layers}
        out = []
        for lname in _attr_strings(g, "layer_names"):
            lg = g[lname]
            ws = [(f"{lg.name}/{w}", lg[w][()]) for w in _attr_strings(lg, "weight_names")]
            out.append((lname, classes.get(lname), ws))
        return out


def keras3_layer_weights(p, layer_classes=None):
    """Reads a .keras zip (or a Keras 3 .weights.h5 with layer_classes given) the way an importer
    must: the layer list from config.json (Sequential: without the InputLayer; Functional: all),
    each layer's group named by snake_case(class name) plus a per-class counter, vars/0, vars/1."""
    if p.endswith(".keras"):
        with zipfile.ZipFile(p) as z:
            cfg = json.loads(z.read("config.json"))
            h5bytes = z.read("model.weights.h5")
        layers = cfg["config"]["layers"]
        if cfg["class_name"] == "Sequential":
            layers = [l for l in layers if l["class_name"] != "InputLayer"]
        layer_classes = [(l["config"]["name"], l["class_name"]) for l in layers]
        src = io.BytesIO(h5bytes)
    else:
        src = p
    used, out = {}, []
    with h5py.File(src, "r") as f:
        for lname, cls in layer_classes:
            key = snake_case(cls)
            used[key] = used.get(key, -1) + 1
            store = key if used[key] == 0 else f"{key}_{used[key]}"
            vg = f[f"layers/{store}/vars"]
            assert vg.attrs.get("name", lname) == lname, (p, store, lname)
            ws = [(f"/layers/{store}/vars/{i}", vg[str(i)][()]) for i in range(len(vg))]
            out.append((lname, cls, ws))
    return out


def check_keras_file_by_hand(p, fmt, x, y, acts, layer_classes):
    """Recomputes the expected outputs from the arrays read with h5py alone."""
    if fmt in ("keras-v3", "keras-weights-h5"):
        layers = keras3_layer_weights(p, layer_classes if fmt == "keras-weights-h5" else None)
    else:
        layers = legacy_layer_weights(p)
    dense = [ws for (_, cls, ws) in layers if ws and (cls in (None, "Dense"))]
    paths = [[w[0] for w in ws] for ws in dense]
    if all(cls in (None, "Dense", "Dropout", "InputLayer") for (_, cls, _) in layers):
        got = forward(x, [(ws[0][1], ws[1][1]) for ws in dense], acts, "rows")
        assert np.array_equal(got, y), (p, np.abs(got - y).max())
    return paths


def keras_entry(fid, fname, fmt, x, y, sizes, acts, dtype, notes, layer_names=None, expect="load",
                error=None, needs=None):
    p = path(fname)
    desc = keras_description(p, fmt)
    # The layers as the file lists them (names as given to or generated by Keras; the classes
    # follow from the names in these fixtures).
    cls_of = lambda n: ("InputLayer" if n == "features" else "Dropout" if n.startswith("dropout") else
                        "BatchNormalization" if n.startswith("batch_norm") else "Dense")
    layer_classes = [(n, cls_of(n)) for n in layer_names]
    a = arch(sizes, acts, layer_names=layer_names, layer_classes=[c for (_, c) in layer_classes])
    paths = check_keras_file_by_hand(p, fmt, x, y, acts, layer_classes)
    return add(fid, fname, fmt, "keras", x=x, y=y, arch=a, orientation="rows", dtype=dtype,
               expect=expect, error=error, needs=needs, notes=notes, describe=desc,
               extra={"dense_weight_paths": paths,
                      **({"weight_paths_inside": "model.weights.h5"} if fmt == "keras-v3" else {})})


def gen_keras3():
    x = INPUTS[12]
    Dense, Input = keras.layers.Dense, keras.layers.Input
    # A: 12-6-3 relu/softmax; .keras, legacy .h5 and .weights.h5
    keras.backend.clear_session()
    m = keras.Sequential([Input(shape=(12,)), Dense(6, activation="relu"), Dense(3, activation="softmax")])
    layers = set_dense_weights(m, np.random.default_rng(6234), np.float32)
    y = forward(x, layers, ["relu", "softmax"], "rows")
    keras_check(m, x, y, "float32", "k3 A in memory")
    m.save(path("k3_relu_softmax.keras"))
    m.save(path("k3_relu_softmax_legacy.h5"))
    m.save_weights(path("k3_relu_softmax.weights.h5"))
    normalise_keras_zip(path("k3_relu_softmax.keras"))
    keras_check(path("k3_relu_softmax.keras"), x, y, "float32", "k3_relu_softmax.keras")
    keras_check(path("k3_relu_softmax_legacy.h5"), x, y, "float32", "k3_relu_softmax_legacy.h5")
    keras.backend.clear_session()
    fresh = keras.Sequential([Input(shape=(12,)), Dense(6, activation="relu"), Dense(3, activation="softmax")])
    fresh.load_weights(path("k3_relu_softmax.weights.h5"))
    keras_check(fresh, x, y, "float32", "k3_relu_softmax.weights.h5")
    sizes, acts = [12, 6, 3], ["relu", "softmax"]
    keras_entry("k3_relu_softmax_keras", "k3_relu_softmax.keras", "keras-v3", x, y, sizes, acts, "float32",
                "model.save('x.keras'): zip of metadata.json, config.json, model.weights.h5 (members "
                "stored). Weights at layers/dense/vars/0 (kernel, (in,out)) and vars/1 (bias).",
                layer_names=["dense", "dense_1"])
    keras_entry("k3_relu_softmax_legacy_h5", "k3_relu_softmax_legacy.h5", "keras-legacy-h5", x, y, sizes,
                acts, "float32",
                "model.save('x.h5') in Keras 3 (legacy HDF5): root attr model_config (JSON), group "
                "model_weights; weights at model_weights/<layer>/<model name>/<layer>/kernel (no ':0').",
                layer_names=["dense", "dense_1"])
    keras_entry("k3_relu_softmax_weights_h5", "k3_relu_softmax.weights.h5", "keras-weights-h5", x, y, sizes,
                acts, "float32",
                "model.save_weights('x.weights.h5') in Keras 3: the same HDF5 as model.weights.h5 inside a "
                ".keras zip; there is no architecture in the file (no config, no activations).",
                needs=["activations"], layer_names=["dense", "dense_1"])
    FIXTURES[-1]["cli_hints"] = {"activations": acts}

    # B: named model and layers, sigmoid, binary 12-5-1
    keras.backend.clear_session()
    m = keras.Sequential([Input(shape=(12,), name="pixels"),
                          Dense(5, activation="sigmoid", name="hidden"),
                          Dense(1, activation="sigmoid", name="output")], name="mlp_named")
    layers = set_dense_weights(m, np.random.default_rng(6235), np.float32)
    y = forward(x, layers, ["sigmoid", "sigmoid"], "rows")
    m.save(path("k3_named_sigmoid.keras"))
    m.save(path("k3_named_sigmoid_legacy.h5"))
    normalise_keras_zip(path("k3_named_sigmoid.keras"))
    keras_check(path("k3_named_sigmoid.keras"), x, y, "float32", "k3_named_sigmoid.keras")
    keras_check(path("k3_named_sigmoid_legacy.h5"), x, y, "float32", "k3_named_sigmoid_legacy.h5")
    sizes, acts = [12, 5, 1], ["sigmoid", "sigmoid"]
    keras_entry("k3_named_sigmoid_keras", "k3_named_sigmoid.keras", "keras-v3", x, y, sizes, acts, "float32",
                "Sequential(name='mlp_named') with layers named 'hidden' and 'output'. In "
                "model.weights.h5 the groups are still layers/dense and layers/dense_1 (class-name "
                "based); the layer's own name is only in the vars group's 'name' attribute and in "
                "config.json.", layer_names=["hidden", "output"])
    keras_entry("k3_named_sigmoid_legacy_h5", "k3_named_sigmoid_legacy.h5", "keras-legacy-h5", x, y, sizes,
                acts, "float32",
                "Legacy .h5 of the named model: model_weights/hidden/mlp_named/hidden/kernel, ...",
                layer_names=["hidden", "output"])

    # B2: layer names that collide with the storage names of the other layer
    keras.backend.clear_session()
    m = keras.Sequential([Input(shape=(12,)), Dense(6, activation="relu", name="dense_1"),
                          Dense(3, activation="softmax", name="dense")])
    layers = set_dense_weights(m, np.random.default_rng(6242), np.float32)
    y = forward(x, layers, ["relu", "softmax"], "rows")
    m.save(path("k3_swapped_names.keras"))
    m.save(path("k3_swapped_names_legacy.h5"))
    normalise_keras_zip(path("k3_swapped_names.keras"))
    keras_check(path("k3_swapped_names.keras"), x, y, "float32", "k3_swapped_names.keras")
    keras_check(path("k3_swapped_names_legacy.h5"), x, y, "float32", "k3_swapped_names_legacy.h5")
    sizes, acts = [12, 6, 3], ["relu", "softmax"]
    keras_entry("k3_swapped_names_keras", "k3_swapped_names.keras", "keras-v3", x, y, sizes, acts, "float32",
                "The first Dense is NAMED 'dense_1' and the second 'dense'. In model.weights.h5 the "
                "first layer's weights are under layers/dense (12x6) and the second's under "
                "layers/dense_1 (6x3): storage names come from class name + position, never from "
                "layer.name. An importer that looks groups up by layer name gets the shapes wrong.",
                layer_names=["dense_1", "dense"])
    keras_entry("k3_swapped_names_legacy_h5", "k3_swapped_names_legacy.h5", "keras-legacy-h5", x, y, sizes,
                acts, "float32",
                "Legacy .h5 of the same model: here groups ARE by layer name (model_weights/dense_1 is "
                "the first layer, 12x6) and layer order comes from the layer_names attribute, not "
                "from the (alphabetical) group listing.", layer_names=["dense_1", "dense"])

    # C: float64
    keras.backend.clear_session()
    m = keras.Sequential([Input(shape=(12,), dtype="float64"),
                          Dense(6, activation="relu", dtype="float64"),
                          Dense(3, activation="softmax", dtype="float64")])
    layers = set_dense_weights(m, np.random.default_rng(6236), np.float64)
    y = forward(x, layers, ["relu", "softmax"], "rows")
    m.save(path("k3_f64.keras"))
    m.save(path("k3_f64_legacy.h5"))
    normalise_keras_zip(path("k3_f64.keras"))
    keras_check(path("k3_f64.keras"), x, y, "float64", "k3_f64.keras")
    keras_check(path("k3_f64_legacy.h5"), x, y, "float64", "k3_f64_legacy.h5")
    sizes, acts = [12, 6, 3], ["relu", "softmax"]
    keras_entry("k3_f64_keras", "k3_f64.keras", "keras-v3", x, y, sizes, acts, "float64",
                "Dense layers with dtype='float64' (a DTypePolicy dict in config.json); float64 datasets.",
                layer_names=["dense", "dense_1"])
    keras_entry("k3_f64_legacy_h5", "k3_f64_legacy.h5", "keras-legacy-h5", x, y, sizes, acts, "float64",
                "float64 legacy .h5.", layer_names=["dense", "dense_1"])

    # D: Dropout (no weights, identity at inference) — must be accepted
    keras.backend.clear_session()
    m = keras.Sequential([Input(shape=(12,)), Dense(6, activation="relu"), keras.layers.Dropout(0.2),
                          Dense(3, activation="softmax")])
    layers = set_dense_weights(m, np.random.default_rng(6237), np.float32)
    y = forward(x, layers, ["relu", "softmax"], "rows")
    m.save(path("k3_dropout.keras"))
    m.save(path("k3_dropout_legacy.h5"))
    normalise_keras_zip(path("k3_dropout.keras"))
    keras_check(path("k3_dropout.keras"), x, y, "float32", "k3_dropout.keras")
    keras_check(path("k3_dropout_legacy.h5"), x, y, "float32", "k3_dropout_legacy.h5")
    keras_entry("k3_dropout_keras", "k3_dropout.keras", "keras-v3", x, y, sizes, acts, "float32",
                "Dense, Dropout(0.2), Dense: Dropout is the identity at inference and has no weights "
                "(its vars group is empty); the importer must skip it.",
                layer_names=["dense", "dropout", "dense_1"])
    keras_entry("k3_dropout_legacy_h5", "k3_dropout_legacy.h5", "keras-legacy-h5", x, y, sizes, acts,
                "float32",
                "Legacy .h5 with Dropout: model_weights/dropout exists with an EMPTY weight_names "
                "attribute that is a float64 array of shape (0,), not a string array.",
                layer_names=["dense", "dropout", "dense_1"])

    # E: compiled, with optimizer state (as after training) that must be ignored. The state is
    # assigned from a seeded rng rather than made by fit(): XLA's CPU reductions are not
    # bit-reproducible, and the fixture files must be.
    keras.backend.clear_session()
    m = keras.Sequential([Input(shape=(12,)), Dense(6, activation="relu"), Dense(3, activation="softmax")])
    layers = set_dense_weights(m, np.random.default_rng(6238), np.float32)
    m.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="categorical_crossentropy",
              metrics=["accuracy"])
    m.optimizer.build(m.trainable_variables)
    orng = np.random.default_rng(6241)
    for v in m.optimizer.variables:
        if v.path.endswith("/iteration"):
            v.assign(np.array(20, dtype=v.dtype))
        elif v.path.endswith("_momentum") or v.path.endswith("_velocity"):
            scale = 1e-2 if v.path.endswith("_momentum") else 1e-4
            v.assign((scale * np.abs(orng.standard_normal(tuple(v.shape)))).astype(v.dtype))
    y = forward(x, layers, ["relu", "softmax"], "rows")
    m.save(path("k3_compiled.keras"))
    m.save(path("k3_compiled_legacy.h5"))
    normalise_keras_zip(path("k3_compiled.keras"))
    keras_check(path("k3_compiled.keras"), x, y, "float32", "k3_compiled.keras")
    keras_check(path("k3_compiled_legacy.h5"), x, y, "float32", "k3_compiled_legacy.h5")
    keras_entry("k3_compiled_keras", "k3_compiled.keras", "keras-v3", x, y, sizes, acts, "float32",
                "Compiled (Adam) with optimizer state as after 20 steps, so the state is saved "
                "(model.weights.h5 has an optimizer/ group, config.json a compile_config); the "
                "importer must ignore it.",
                layer_names=["dense", "dense_1"])
    keras_entry("k3_compiled_legacy_h5", "k3_compiled_legacy.h5", "keras-legacy-h5", x, y, sizes, acts,
                "float32",
                "Legacy .h5 of a compiled model with optimizer state: root attr training_config and root group "
                "optimizer_weights beside model_weights; both must be ignored.",
                layer_names=["dense", "dense_1"])

    # F: functional model
    keras.backend.clear_session()
    inp = Input(shape=(12,), name="features")
    h = Dense(6, activation="relu")(inp)
    h = Dense(4, activation="relu")(h)
    out = Dense(3, activation="softmax")(h)
    m = keras.Model(inp, out, name="functional_mlp")
    layers = set_dense_weights(m, np.random.default_rng(6239), np.float32)
    y = forward(x, layers, ["relu", "relu", "softmax"], "rows")
    m.save(path("k3_functional.keras"))
    normalise_keras_zip(path("k3_functional.keras"))
    keras_check(path("k3_functional.keras"), x, y, "float32", "k3_functional.keras")
    keras_entry("k3_functional_keras", "k3_functional.keras", "keras-v3", x, y, [12, 6, 4, 3],
                ["relu", "relu", "softmax"], "float32",
                "Functional model (config class_name 'Functional', layers with inbound_nodes) that is "
                "a plain chain; an importer may support it or reject it as 'unsupported model class'.",
                layer_names=["features", "dense", "dense_1", "dense_2"])
    FIXTURES[-1]["expect"] = "load_or_error"
    FIXTURES[-1]["error"] = "unsupported_model_class"

    # G: BatchNormalization after Dense (was refused before format 1.2; the file names keep that history)
    keras.backend.clear_session()
    m = keras.Sequential([Input(shape=(12,)), Dense(6, activation="relu"), keras.layers.BatchNormalization(),
                          Dense(3, activation="softmax")])
    rng = np.random.default_rng(6240)
    layers = set_dense_weights(m, rng, np.float32)
    bn = m.layers[1]
    gamma, beta = (1 + 0.1 * rng.standard_normal(6)).astype(np.float32), (0.1 * rng.standard_normal(6)).astype(np.float32)
    mean, var = (0.2 * rng.standard_normal(6)).astype(np.float32), (0.5 + rng.random(6)).astype(np.float32)
    bn.set_weights([gamma, beta, mean, var])
    h = np.maximum(x @ np.float64(layers[0][0]) + np.float64(layers[0][1]), 0)
    h = (h - np.float64(mean)) / np.sqrt(np.float64(var) + bn.epsilon) * np.float64(gamma) + np.float64(beta)
    y = activate("softmax", h @ np.float64(layers[1][0]) + np.float64(layers[1][1]), axis=1)
    m.save(path("k3_unsupported_batchnorm.keras"))
    m.save(path("k3_unsupported_batchnorm_legacy.h5"))
    normalise_keras_zip(path("k3_unsupported_batchnorm.keras"))
    keras_check(path("k3_unsupported_batchnorm.keras"), x, y, "float32", "k3_unsupported_batchnorm.keras")
    keras_check(path("k3_unsupported_batchnorm_legacy.h5"), x, y, "float32", "k3_unsupported_batchnorm_legacy.h5")
    for fid, fname, fmt in [("k3_unsupported_batchnorm_keras", "k3_unsupported_batchnorm.keras", "keras-v3"),
                            ("k3_unsupported_batchnorm_legacy_h5", "k3_unsupported_batchnorm_legacy.h5",
                             "keras-legacy-h5")]:
        keras_entry(fid, fname, fmt, x, y, [12, 6, 3], ["relu", "softmax"], "float32",
                    "Dense, BatchNormalization, Dense (format 1.2's batch_norm after a dense layer): "
                    "imports; expected outputs are Keras inference with the moving statistics, "
                    "epsilon 0.001.",
                    layer_names=["dense", "batch_normalization", "dense_1"])


# 6b: a Keras 3 CNN (Conv2D, MaxPooling2D, Flatten, Dense), the layout the Swift side implements
# (notes/cnn-contract.md): HWC activations, kernels HWIO, cross-correlation, Keras 'same' padding.

def cnn_reference(x_rows, input_shape, layers, dtype=np.float64):
    """x_rows (n, H*W*C), each row an HWC image; layers: dicts with kind 'conv2d' (kernel HWIO,
    bias, strides, padding, activation), 'max_pool2d' (pool, strides, padding), 'flatten',
    'dense' (kernel (in, out), bias, activation). Conv is a cross-correlation on the zero-padded
    input, z[y, x, f] = b[f] + sum_{u,v,c} in[y*s + u, x*s + v, c] * W[u, v, c, f]; 'same'
    padding is Keras's (out = ceil(in / s), pad_total = max((out-1)*s + k - in, 0), the smaller
    half before); pooling ignores padded positions. Returns (n, classes) in `dtype`."""
    a = np.asarray(x_rows, dtype=dtype).reshape((-1,) + tuple(input_shape))
    for layer in layers:
        kind = layer["kind"]
        if kind in ("conv2d", "max_pool2d"):
            n, h, w, c = a.shape
            kh, kw = layer["kernel"].shape[:2] if kind == "conv2d" else layer["pool"]
            sh, sw = layer["strides"]
            if layer["padding"] == "valid":
                oh, ow, pads = (h - kh) // sh + 1, (w - kw) // sw + 1, ((0, 0), (0, 0))
            else:
                oh, ow = -(-h // sh), -(-w // sw)
                th, tw = max((oh - 1) * sh + kh - h, 0), max((ow - 1) * sw + kw - w, 0)
                pads = ((th // 2, th - th // 2), (tw // 2, tw - tw // 2))
            fill = 0.0 if kind == "conv2d" else -np.inf
            ap = np.pad(a, ((0, 0),) + pads + ((0, 0),), constant_values=fill)
            if kind == "conv2d":
                k = np.asarray(layer["kernel"], dtype=dtype)
                z = np.zeros((n, oh, ow, k.shape[3]), dtype=dtype)
                for u in range(kh):
                    for v in range(kw):
                        z += ap[:, u:u + (oh - 1) * sh + 1:sh, v:v + (ow - 1) * sw + 1:sw, :] @ k[u, v]
                a = activate(layer["activation"], z + np.asarray(layer["bias"], dtype=dtype), axis=-1)
            else:
                z = np.full((n, oh, ow, c), -np.inf, dtype=dtype)
                for u in range(kh):
                    for v in range(kw):
                        z = np.maximum(z, ap[:, u:u + (oh - 1) * sh + 1:sh, v:v + (ow - 1) * sw + 1:sw, :])
                a = z
        elif kind == "flatten":
            a = a.reshape(a.shape[0], -1)  # HWC order
        else:
            z = a @ np.asarray(layer["kernel"], dtype=dtype) + np.asarray(layer["bias"], dtype=dtype)
            a = activate(layer["activation"], z, axis=1)
    return a


def check_cnn_file_by_hand(p, fmt, x, y, input_shape, spec):
    """Reads the weights with h5py alone (as an importer must) and recomputes the outputs;
    returns the [kernel, bias] paths of the Conv2D and of the Dense layers."""
    layers = keras3_layer_weights(p) if fmt == "keras-v3" else legacy_layer_weights(p)
    weighted = [(cls, ws) for (_, cls, ws) in layers if ws]
    assert [cls for cls, _ in weighted] == [s["class"] for s in spec if "kernel" in s], (p, weighted)
    it = iter(weighted)
    ref = []
    for s in spec:
        s = dict(s)
        if "kernel" in s:
            _, ws = next(it)
            assert ws[0][1].shape == s["kernel"].shape and ws[0][1].dtype == s["kernel"].dtype, p
            s["kernel"], s["bias"] = ws[0][1], ws[1][1]
        ref.append(s)
    got = cnn_reference(x, input_shape, ref)
    assert np.array_equal(got, y), (p, np.abs(got - y).max())
    conv = [[w[0] for w in ws] for cls, ws in weighted if cls == "Conv2D"]
    dense = [[w[0] for w in ws] for cls, ws in weighted if cls == "Dense"]
    return conv, dense


def keras_description(p, fmt):
    if fmt == "keras-v3":
        with zipfile.ZipFile(p) as z:
            inner = z.read("model.weights.h5")
            members = [{"name": i.filename, "size": i.file_size,
                        "zip_method": "deflate" if i.compress_type == zipfile.ZIP_DEFLATED else "stored"}
                       for i in z.infolist()]
            metadata = json.loads(z.read("metadata.json"))
        return {"zip_members": members, "metadata.json": metadata,
                "model.weights.h5": describe_h5(io.BytesIO(inner))}
    return describe_h5(p)


def gen_keras3_cnn():
    x = INPUTS[784]  # 4 pixel-like rows; each row is a 28x28x1 image in HWC (row-major) order
    n = x.shape[0]
    input_shape = (28, 28, 1)
    L = keras.layers
    keras.backend.clear_session()
    m = keras.Sequential([L.Input(shape=input_shape),
                          L.Conv2D(4, 3, activation="relu"),
                          L.MaxPooling2D(2),
                          L.Conv2D(6, 3, strides=2, padding="same", activation="relu"),
                          L.Flatten(),
                          L.Dense(10, activation="softmax")])
    rng = np.random.default_rng(6243)
    spec = []
    for layer in m.layers:
        if isinstance(layer, L.Conv2D):
            kshape = tuple(layer.kernel.shape)  # (kh, kw, cin, cout): HWIO
            k = (rng.standard_normal(kshape) / np.sqrt(np.prod(kshape[:3]))).astype(np.float32)
            b = (0.2 * rng.standard_normal(kshape[3])).astype(np.float32)
            layer.set_weights([k, b])
            spec.append({"kind": "conv2d", "class": "Conv2D", "kernel": k, "bias": b,
                         "strides": tuple(layer.strides), "padding": layer.padding,
                         "activation": layer.activation.__name__})
        elif isinstance(layer, L.MaxPooling2D):
            spec.append({"kind": "max_pool2d", "class": "MaxPooling2D", "pool": tuple(layer.pool_size),
                         "strides": tuple(layer.strides), "padding": layer.padding})
        elif isinstance(layer, L.Flatten):
            spec.append({"kind": "flatten", "class": "Flatten"})
        else:
            w, b = dense_weights(rng, layer.kernel.shape[0], layer.kernel.shape[1], np.float32)
            layer.set_weights([w, b])
            spec.append({"kind": "dense", "class": "Dense", "kernel": w, "bias": b,
                         "activation": layer.activation.__name__})
    y = cnn_reference(x, input_shape, spec)
    # The outputs depend on the input, and a float32 computation is well inside atol.
    y32 = cnn_reference(x, input_shape, spec, np.float32)
    assert np.abs(y32 - y).max() < TOL["float32"] / 5, np.abs(y32 - y).max()
    assert np.ptp(y, axis=0).max() > 1e-2, "the CNN fixture's outputs do not depend on the input"
    ximg = x.reshape((n,) + input_shape)
    keras_check(m, ximg, y, "float32", "k3 cnn in memory")
    m.save(path("k3_cnn.keras"))
    m.save(path("k3_cnn_legacy.h5"))
    normalise_keras_zip(path("k3_cnn.keras"))
    keras_check(path("k3_cnn.keras"), ximg, y, "float32", "k3_cnn.keras")
    keras_check(path("k3_cnn_legacy.h5"), ximg, y, "float32", "k3_cnn_legacy.h5")

    # The layers in the contract's .nnm form (feature counts, HWC shapes).
    shapes = [input_shape] + [tuple(int(d) for d in l.output.shape[1:]) for l in m.layers]
    layer_names = [l.name for l in m.layers]
    layer_classes = [s["class"] for s in spec]
    cnn_layers = []
    for i, s in enumerate(spec):
        d = {"name": layer_names[i], "class": s["class"], "kind": s["kind"],
             "in": int(np.prod(shapes[i])), "out": int(np.prod(shapes[i + 1])),
             "input_shape": list(shapes[i]), "output_shape": list(shapes[i + 1]),
             "activation": s.get("activation", "identity")}
        if s["kind"] == "conv2d":
            d.update(kernel=list(s["kernel"].shape[:2]), filters=int(s["kernel"].shape[3]),
                     strides=list(s["strides"]), padding=s["padding"], convention="cross-correlation",
                     weight_shape=list(s["kernel"].shape))
        elif s["kind"] == "max_pool2d":
            d.update(pool=list(s["pool"]), strides=list(s["strides"]), padding=s["padding"])
        elif s["kind"] == "dense":
            d.update(weight_shape=list(s["kernel"].shape))
        cnn_layers.append(d)
    sizes = [int(np.prod(sh)) for sh in shapes]
    acts = [d["activation"] for d in cnn_layers]
    layout = ("Conv2D kernel HWIO (kh, kw, in_channels, out_channels), bias (out_channels,); "
              "cross-correlation (Keras: the kernel is NOT flipped); 'same' padding by Keras's rule "
              "(out = ceil(in / stride), pad_total = max((out - 1) * stride + k - in, 0), pad_before = "
              "pad_total // 2); MaxPooling2D ignores padded positions; activations channels_last (HWC); "
              "Flatten in HWC order, so Dense's kernel rows are indexed (y * W + x) * C + c; Dense "
              "kernel (in, out). expected.h5 input rows are the 28x28x1 images flattened in HWC order.")
    for fid, fname, fmt, note in [
            ("k3_cnn_keras", "k3_cnn.keras", "keras-v3",
             "A CNN saved with model.save('x.keras'): Input((28, 28, 1)), Conv2D(4, 3, relu) -> 26x26x4, "
             "MaxPooling2D(2) -> 13x13x4, Conv2D(6, 3, strides=2, padding='same', relu) -> 7x7x6 (pads 1/1), "
             "Flatten -> 294, Dense(10, softmax). Weights at layers/conv2d/vars/{0,1}, "
             "layers/conv2d_1/vars/{0,1}, layers/dense/vars/{0,1}; max_pooling2d and flatten have "
             "empty vars groups."),
            ("k3_cnn_legacy_h5", "k3_cnn_legacy.h5", "keras-legacy-h5",
             "The same CNN saved with model.save('x.h5') (legacy HDF5): model_config JSON gives the "
             "Conv2D/MaxPooling2D/Flatten configs (kernel_size, strides, padding, data_format "
             "channels_last); weights at model_weights/<layer>/sequential/<layer>/{kernel, bias}; "
             "max_pooling2d and flatten have empty weight_names.")]:
        conv_paths, dense_paths = check_cnn_file_by_hand(path(fname), fmt, x, y, input_shape, spec)
        a = arch(sizes, acts, layer_names=layer_names, layer_classes=layer_classes,
                 input_shape=list(input_shape), layers=cnn_layers)
        add(fid, fname, fmt, "keras", x=x, y=y, arch=a, orientation="rows", dtype="float32",
            notes=note, describe=keras_description(path(fname), fmt),
            extra={"layout_notes": layout, "conv_weight_paths": conv_paths, "dense_weight_paths": dense_paths,
                   **({"weight_paths_inside": "model.weights.h5"} if fmt == "keras-v3" else {})})


# ----------------------------------------------------------------------------------------------
# 7: tf.keras 2 legacy files written by hand with h5py, as Keras 2 code writes them

def tf2_dense_config(name, units, activation, dtype, initializer_style):
    if initializer_style == "2.15":
        kinit = {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": None},
                 "registered_name": None}
        binit = {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": None}
    elif initializer_style == "2.4":
        kinit = {"class_name": "GlorotUniform", "config": {"seed": None}}
        binit = {"class_name": "Zeros", "config": {}}
    else:  # standalone Keras 2.2
        kinit = {"class_name": "VarianceScaling",
                 "config": {"scale": 1.0, "mode": "fan_avg", "distribution": "uniform", "seed": None}}
        binit = {"class_name": "Zeros", "config": {}}
    return {"name": name, "trainable": True, "dtype": dtype, "units": units, "activation": activation,
            "use_bias": True, "kernel_initializer": kinit, "bias_initializer": binit,
            "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
            "kernel_constraint": None, "bias_constraint": None}


def tf2_write_weights_group(g, layer_names, weights_by_layer, names_as, top_level):
    """save_weights_to_hdf5_group: layer_names, backend, keras_version, one group per layer
    (sorted by name) with weight_names and datasets named by the weight names (their '/'
    makes the inner group), and top_level_model_weights (tf.keras >= 2.5)."""
    def names_attr(values):
        if names_as == "vlen":
            return list(values)          # h5py 3: list of bytes -> variable-length ASCII array
        return np.asarray(list(values))  # h5py 2: numpy 'S' array -> fixed-length, NULLPAD

    g.attrs["layer_names"] = names_attr(n.encode("utf8") for n in layer_names)
    g.attrs["backend"] = b"tensorflow"
    g.attrs["keras_version"] = KERAS2_VERSION[0].encode("utf8")
    for name in sorted(layer_names):
        lg = g.create_group(name)
        wnames = [f"{name}/kernel:0".encode("utf8"), f"{name}/bias:0".encode("utf8")]
        lg.attrs["weight_names"] = names_attr(wnames)
        for wn, val in zip(wnames, weights_by_layer[name]):
            ds = lg.create_dataset(wn, val.shape, dtype=val.dtype)
            ds[:] = val
    if top_level:
        tl = g.create_group("top_level_model_weights")
        tl.attrs["weight_names"] = []    # what Keras writes for "no weights": float64, shape (0,)


KERAS2_VERSION = ["2.15.0"]


def gen_tf_keras2():
    x = INPUTS[12]
    sizes, acts = [12, 6, 3], ["relu", "softmax"]

    variants = [
        # fid, keras_version, names_as, dtype, initializer style, top_level group, note
        ("tfkeras2_model", "2.15.0", "vlen", np.float32, "2.15", True,
         "tf.keras 2.15 model.save('m.h5') as written with h5py 3 (the normal case since 2020): "
         "layer_names / weight_names are arrays of VARIABLE-length ASCII strings."),
        ("tfkeras2_model_f64", "2.15.0", "vlen", np.float64, "2.15", True,
         "As tfkeras2_model with float64 layers (config dtype 'float64', float64 datasets)."),
        ("tfkeras2_model_fixedstr", "2.4.0", "fixed", np.float32, "2.4", False,
         "tf.keras 2.4 (TensorFlow 2.3) as written with h5py 2.10: layer_names / weight_names are "
         "arrays of FIXED-length, NULLPAD ASCII strings (np.array of bytes); no "
         "top_level_model_weights group yet."),
    ]
    for seed, (fid, kv, names_as, dt, style, top, note) in enumerate(variants):
        KERAS2_VERSION[0] = kv
        rng = np.random.default_rng(7234 + seed)
        layers = [dense_weights(rng, a, b, dt) for a, b in zip(sizes[:-1], sizes[1:])]
        dtname = np.dtype(dt).name
        layer_names = ["dense", "dense_1"]
        config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
            {"class_name": "InputLayer",
             "config": {"batch_input_shape": [None, 12], "dtype": dtname, "sparse": False, "ragged": False,
                        "name": "input_1"}},
            {"class_name": "Dense", "config": tf2_dense_config("dense", 6, "relu", dtname, style)},
            {"class_name": "Dense", "config": tf2_dense_config("dense_1", 3, "softmax", dtname, style)},
        ]}}
        if style == "2.15":
            optimizer = {"class_name": "Custom>Adam", "config": {
                "name": "Adam", "weight_decay": None, "clipnorm": None, "global_clipnorm": None,
                "clipvalue": None, "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                "jit_compile": False, "is_legacy_optimizer": False, "learning_rate": 0.0010000000474974513,
                "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False}}
        else:
            optimizer = {"class_name": "Adam", "config": {
                "name": "Adam", "learning_rate": 0.0010000000474974513, "decay": 0.0, "beta_1": 0.9,
                "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False}}
        training = {"loss": "categorical_crossentropy", "metrics": None, "weighted_metrics": None,
                    "loss_weights": None, "optimizer_config": optimizer}
        fname = fid + ".h5"
        with h5py.File(path(fname), "w") as f:
            # save_model_to_hdf5: model_metadata() gives keras_version and backend as str
            # (h5py: variable-length UTF-8) and the configs as dicts, dumped to JSON and encoded
            # to bytes (h5py: variable-length ASCII).
            f.attrs["keras_version"] = kv
            f.attrs["backend"] = "tensorflow"
            f.attrs["model_config"] = json.dumps(config).encode("utf8")
            f.attrs["training_config"] = json.dumps(training).encode("utf8")
            g = f.create_group("model_weights")
            tf2_write_weights_group(g, layer_names, dict(zip(layer_names, layers)), names_as, top)
        y = forward(x, layers, acts, "rows")
        # Keras 3's own legacy loader must read it, like a real tf.keras 2 file.
        keras.backend.clear_session()
        keras_check(keras.saving.load_model(path(fname), compile=False), x, y, dtname, fname)
        keras_entry(fid, fname, "keras2-legacy-h5", x, y, sizes, acts, dtname,
                    note + " Written by this script with h5py following tf.keras's "
                           "save_model_to_hdf5 / save_weights_to_hdf5_group; weights at "
                           "model_weights/dense/dense/kernel:0. Keras 3's load_model reads it.",
                    layer_names=layer_names)

    # tf.keras 2 model.save_weights('w.h5'): the weights group is the file's root, no model_config.
    KERAS2_VERSION[0] = "2.15.0"
    rng = np.random.default_rng(7240)
    layers = [dense_weights(rng, a, b, np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
    with h5py.File(path("tfkeras2_save_weights.h5"), "w") as f:
        tf2_write_weights_group(f, ["dense", "dense_1"], dict(zip(["dense", "dense_1"], layers)), "vlen", True)
    y = forward(x, layers, acts, "rows")
    keras.backend.clear_session()
    m = keras.Sequential([keras.layers.Input(shape=(12,)), keras.layers.Dense(6, activation="relu"),
                          keras.layers.Dense(3, activation="softmax")])
    m.load_weights(path("tfkeras2_save_weights.h5"))
    keras_check(m, x, y, "float32", "tfkeras2_save_weights.h5")
    keras_entry("tfkeras2_save_weights", "tfkeras2_save_weights.h5", "keras2-weights-h5", x, y, sizes, acts,
                "float32",
                "tf.keras 2.15 model.save_weights('w.h5'): root attrs layer_names, backend, "
                "keras_version and the layer groups at the root; no model_config, so activations "
                "must come from the command line.", layer_names=["dense", "dense_1"], needs=["activations"])
    FIXTURES[-1]["cli_hints"] = {"activations": acts}

    # Standalone Keras 2.2.2 (h5py 2): Sequential config is a LIST of layers, layer names start at
    # dense_1, the first Dense carries batch_input_shape, no InputLayer entry.
    KERAS2_VERSION[0] = "2.2.2"
    rng = np.random.default_rng(7241)
    layers = [dense_weights(rng, a, b, np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
    c1 = tf2_dense_config("dense_1", 6, "relu", "float32", "2.2")
    c1 = {"name": "dense_1", "trainable": True, "batch_input_shape": [None, 12],
          **{k: v for k, v in c1.items() if k not in ("name", "trainable")}}
    config = {"class_name": "Sequential", "config": [
        {"class_name": "Dense", "config": c1},
        {"class_name": "Dense", "config": tf2_dense_config("dense_2", 3, "softmax", "float32", "2.2")}]}
    with h5py.File(path("keras222_list_config.h5"), "w") as f:
        f.attrs["keras_version"] = b"2.2.2"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(config).encode("utf8")
        g = f.create_group("model_weights")
        tf2_write_weights_group(g, ["dense_1", "dense_2"], dict(zip(["dense_1", "dense_2"], layers)),
                                "fixed", False)
    y = forward(x, layers, acts, "rows")
    keras_entry("keras222_list_config", "keras222_list_config.h5", "keras2-legacy-h5", x, y, sizes, acts,
                "float32",
                "Standalone Keras <= 2.2.2 model.save (h5py 2): model_config's 'config' is a list of "
                "layers (not {'name', 'layers'}), root keras_version/backend are bytes (variable-length "
                "ASCII), names fixed-length; weights at model_weights/dense_1/dense_1/kernel:0.",
                layer_names=["dense_1", "dense_2"])


# ----------------------------------------------------------------------------------------------
# 8: inputs that must be rejected (and one that must be converted)

def gen_bad(npz_source):
    x = INPUTS[12]
    rng = np.random.default_rng(8234)
    layers = rows_layers(rng, [12, 6, 3], np.float64)
    W1, b1, W2, b2 = layers[0][0], layers[0][1], layers[1][0], layers[1][1]

    with open(path("bad_text.h5"), "w") as f:
        f.write("W1,b1,W2,b2\n0.1,0.2,0.3\nthis is a text file, not HDF5\n")
    add("bad_text_h5", "bad_text.h5", "text", "none", expect="error", error="not_hdf5",
        notes="A text file with an .h5 extension (no HDF5 signature).")

    open(path("bad_empty.h5"), "wb").close()
    add("bad_empty_h5", "bad_empty.h5", "empty", "none", expect="error", error="not_hdf5",
        notes="A zero-byte file.")

    write_h5("bad_missing_b2.h5", {"W1": W1, "b1": b1, "W2": W2})
    add("bad_missing_b2", "bad_missing_b2.h5", "hdf5", "blog-rows", expect="error", error="missing_tensor",
        notes="W1, b1, W2 but no b2.", describe=describe_h5(path("bad_missing_b2.h5")))

    write_h5("bad_extra_dataset.h5", {"W1": W1, "b1": b1, "W2": W2, "b2": b2,
                                       "loss_history": np.linspace(2.3, 0.4, 20)})
    add("bad_extra_dataset", "bad_extra_dataset.h5", "hdf5", "blog-rows", x=x,
        y=forward(x, layers, ["relu", "softmax"], "rows"), arch=arch([12, 6, 3], ["relu", "softmax"]),
        orientation="rows", dtype="float64", expect="error", error="unexpected_tensor",
        notes="A valid 12-6-3 blog-rows model plus an unrelated root dataset 'loss_history' (20,). "
              "Strict reading rejects it naming the dataset; an importer that chooses to ignore "
              "unknown datasets (with a warning) must produce the expected outputs given.",
        describe=describe_h5(path("bad_extra_dataset.h5")))

    write_h5("bad_shapes_dont_chain.h5", {"W1": W1, "b1": b1, "W2": rng.standard_normal((5, 3)),
                                           "b2": rng.standard_normal((1, 3))})
    add("bad_shapes_dont_chain", "bad_shapes_dont_chain.h5", "hdf5", "blog-rows", expect="error",
        error="shape_mismatch", notes="W1 (12,6) then W2 (5,3): layer 1's output width 6 does not match "
                                       "layer 2's input width 5 in either orientation.",
        describe=describe_h5(path("bad_shapes_dont_chain.h5")))

    write_h5("bad_3d_weight.h5", {"W1": rng.standard_normal((2, 12, 6)), "b1": b1, "W2": W2, "b2": b2})
    add("bad_3d_weight", "bad_3d_weight.h5", "hdf5", "blog-rows", expect="error", error="bad_rank",
        notes="W1 has rank 3 (2, 12, 6).", describe=describe_h5(path("bad_3d_weight.h5")))

    with h5py.File(path("bad_string_W1.h5"), "w") as f:
        f.create_dataset("W1", data=np.array2string(W1, precision=4), dtype=h5py.string_dtype())
        f["b1"], f["W2"], f["b2"] = b1, W2, b2
    add("bad_string_W1", "bad_string_W1.h5", "hdf5", "blog-rows", expect="error", error="bad_dtype",
        notes="W1 is a scalar variable-length UTF-8 string dataset (str(W1)), not numbers.",
        describe=describe_h5(path("bad_string_W1.h5")))

    irng = np.random.default_rng(8235)
    iw1, ib1 = irng.integers(-3, 4, (12, 6)).astype(np.int32), irng.integers(-2, 3, (1, 6)).astype(np.int32)
    iw2, ib2 = irng.integers(-3, 4, (6, 3)).astype(np.int32), irng.integers(-2, 3, (1, 3)).astype(np.int32)
    write_h5("int_weights_i32.h5", {"W1": iw1, "b1": ib1, "W2": iw2, "b2": ib2})
    ilayers = [(iw1, ib1), (iw2, ib2)]
    # Softmax of integer-weight logits saturates; scale the input down to keep outputs informative.
    xi = x * 0.1
    add("int_weights_i32", "int_weights_i32.h5", "hdf5", "blog-rows", x=xi,
        y=forward(xi, ilayers, ["relu", "softmax"], "rows"), arch=arch([12, 6, 3], ["relu", "softmax"]),
        orientation="rows", dtype="float32", expect="convert", extra={"stored_dtype": "int32"},
        hints={"layout": "rows", "activations": ["relu", "softmax"]},
        notes="All four datasets are int32 (small integers in [-3, 3]). Policy: CONVERT (exactly, as "
              "NumPy would compute X @ W + b) to the model's float type, with a warning; the "
              "expected outputs are those of the converted model. The input batch is 0.1 * the "
              "shared 12-feature batch.",
        describe=describe_h5(path("int_weights_i32.h5")))

    with open(npz_source, "rb") as f:
        raw = f.read()
    with open(path("bad_truncated.npz"), "wb") as f:
        f.write(raw[:len(raw) // 2])
    add("bad_truncated_npz", "bad_truncated.npz", "npz", "none", expect="error", error="corrupt_zip",
        notes=f"The first {len(raw) // 2} of {len(raw)} bytes of npz_blog_rows_2layer_f64.npz "
              "(no end-of-central-directory record).")

    with zipfile.ZipFile(path("bad_member_not_npy.npz"), "w") as z:
        for name, data in [("W1.npy", b"this member is not a .npy array\n" * 4),
                           ("b1.npy", None), ("W2.npy", None), ("b2.npy", None)]:
            if data is None:
                buf = io.BytesIO()
                np.lib.format.write_array(buf, {"b1": b1, "W2": W2, "b2": b2}[name[:-4]])
                data = buf.getvalue()
            z.writestr(zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME), data)
    add("bad_member_not_npy", "bad_member_not_npy.npz", "npz", "blog-rows", expect="error",
        error="bad_npy", notes="A valid zip whose member W1.npy does not start with the \\x93NUMPY magic "
                               "(np.load returns such a member as raw bytes instead of failing).")

    with zipfile.ZipFile(npz_source) as z:
        start_dir = z.start_dir
    bad = bytearray(raw)
    assert bad[start_dir:start_dir + 4] == b"PK\x01\x02"
    bad[start_dir:start_dir + 4] = b"XX\x01\x02"
    with open(path("bad_corrupt_central_dir.npz"), "wb") as f:
        f.write(bytes(bad))
    add("bad_corrupt_central_dir", "bad_corrupt_central_dir.npz", "npz", "none", expect="error",
        error="corrupt_zip",
        notes=f"npz_blog_rows_2layer_f64.npz with the first central-directory header's signature "
              f"(offset {start_dir}) overwritten; local headers and data are intact, so only a "
              "reader that trusts the central directory notices.")

    weights, biases = np.empty(2, dtype=object), np.empty(2, dtype=object)
    weights[0], weights[1], biases[0], biases[1] = W1, W2, b1, b2
    np.savez(path("bad_object_pickle.npz"), weights=weights, biases=biases)
    add("bad_object_pickle_npz", "bad_object_pickle.npz", "npz", "nielsen-lists", expect="error",
        error="pickle_required",
        notes="np.savez of object arrays (lists of matrices): members are pickles (descr '|O'); "
              "they must be rejected, never unpickled.")


# ----------------------------------------------------------------------------------------------
# Verification: every file read back

def read_named(getter, names):
    return {n: np.asarray(getter(n)) for n in names}


def verify():
    for e in FIXTURES:
        p = path(e["file"])
        assert os.path.exists(p), p
        fmt, layout = e["format"], e["layout"]
        if fmt in ("text", "empty"):
            try:
                h5py.File(p, "r").close()
            except OSError:
                pass
            else:
                raise AssertionError(f"{p} opened as HDF5")
            continue
        if e["expect"] == "error" and fmt == "npz":
            try:
                with np.load(p, allow_pickle=False) as z:
                    for k in z.files:
                        # NumPy hands back a member without the .npy magic as raw bytes.
                        assert isinstance(z[k], np.ndarray), "not an array"
            except Exception:
                continue
            raise AssertionError(f"{p} loaded")
        if "expected" not in e or "output" not in e.get("expected", {}):
            if fmt == "npy":
                arr = np.load(p, allow_pickle=False)
                assert np.array_equal(arr.astype(np.float64), EXPECTED[e["id"]]["value"]), p
                assert describe_npy(p)["npy_version"][0] == int(e["id"].split("_v")[1][0]), p
            else:
                # The defect each bad HDF5 file is meant to have is really there.
                assert fmt == "hdf5" and e["expect"] == "error", p
                with h5py.File(p, "r") as f:
                    kind = e["error"]
                    if kind == "missing_tensor":
                        assert sorted(f.keys()) == ["W1", "W2", "b1"], p
                    elif kind == "shape_mismatch":
                        assert f["W1"].shape[1] != f["W2"].shape[0] and f["W1"].shape[0] != f["W2"].shape[1], p
                    elif kind == "bad_rank":
                        assert f["W1"].ndim == 3, p
                    elif kind == "bad_dtype":
                        assert h5py.check_string_dtype(f["W1"].dtype) is not None, p
                    else:
                        raise AssertionError(kind)
            continue
        if fmt not in ("hdf5", "npz"):
            continue  # Keras files: checked with keras and by hand with h5py when written
        g = EXPECTED[e["expected"]["group"]]
        acts = e["architecture"]["activations"]
        n = len(acts)
        if fmt == "hdf5":
            f = h5py.File(p, "r")
            get = lambda k: f[k][()]
        else:
            f = np.load(p, allow_pickle=False)
            get = lambda k: f[k]
        try:
            if layout.startswith("blog"):
                t = read_named(get, [f"{k}{i}" for i in range(1, n + 1) for k in "Wb"])
                layers = [(t[f"W{i}"], t[f"b{i}"]) for i in range(1, n + 1)]
            elif layout == "nielsen-groups":
                layers = [(get(f"weights/{i}"), get(f"biases/{i}")) for i in range(n)]
            else:
                layers = [(get(f"weights_{i}"), get(f"biases_{i}")) for i in range(n)]
            if e["dtype"] in ("float32", "float64") and e["expect"] != "convert":
                for w, b in layers:
                    assert w.dtype == np.dtype(e["dtype"]) and b.dtype == np.dtype(e["dtype"]), p
            if e.get("error") == "unexpected_tensor":
                assert set(f.keys()) - {f"{k}{i}" for i in range(1, n + 1) for k in "Wb"}, p
            y = forward(g["input"], layers, acts, e["orientation"])
            assert np.array_equal(y, g["output"]), p
            y32 = forward_f32(g["input"], layers, acts, e["orientation"])
            assert np.abs(y32 - y).max() < TOL["float32"] / 5, (p, np.abs(y32 - y).max())
        finally:
            f.close()

    # expected.h5 read back
    with h5py.File(path("expected.h5"), "r") as f:
        for gname, arrays in EXPECTED.items():
            for k, v in arrays.items():
                assert f[gname][k].dtype == np.float64 and np.array_equal(f[gname][k][()], v)


# ----------------------------------------------------------------------------------------------

def to_json(value, indent=0, width=110):
    """Indented JSON in which any list or object that fits on one line is written on one line."""
    flat = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, (dict, list)) or len(flat) + indent <= width or not value:
        return flat
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(value, list):
        items = [inner + to_json(v, indent + 1, width) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    items = [inner + json.dumps(k, ensure_ascii=False) + ": " + to_json(v, indent + 1, width).lstrip()
             for k, v in value.items()]
    return "{\n" + ",\n".join(items) + "\n" + pad + "}"


def main():
    global WORK
    parent = os.path.dirname(OUT_DIR)
    WORK = tempfile.mkdtemp(prefix=".interop-", dir=parent)
    try:
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            gen_blog_rows()
            gen_blog_columns()
            gen_nielsen()
            gen_ambiguous()
            npz_source = gen_numpy()
            gen_keras3()
            gen_keras3_cnn()
            gen_tf_keras2()
            gen_bad(npz_source)

            # HDF5 1.8 object format (compact groups): a third smaller than 'earliest', and
            # readable by any HDF5 >= 1.8 (Debian's is 1.10.8).
            with h5py.File(path("expected.h5"), "w", libver=("v108", "v108")) as f:
                for gname in sorted(EXPECTED):
                    g = f.create_group(gname)
                    for k, v in EXPECTED[gname].items():
                        g.create_dataset(k, data=np.ascontiguousarray(v, dtype=np.float64))
            verify()

        files = {}
        for e in FIXTURES:
            p = path(e["file"])
            files[e["file"]] = {"bytes": os.path.getsize(p), "sha256": sha256(p)}
            e["bytes"] = files[e["file"]]["bytes"]
            e["sha256"] = files[e["file"]]["sha256"]
        files["expected.h5"] = {"bytes": os.path.getsize(path("expected.h5")), "sha256": sha256(path("expected.h5"))}
        manifest = {
            "manifest_version": 1,
            "generator": "Fixtures/generate_interop.py",
            "packages": {"numpy": np.__version__, "h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version,
                         "keras": keras.__version__, "jax": jax.__version__},
            "conventions": {
                "expected_file": "expected.h5: one group per fixture id; 'input' (n, features) and "
                                 "'output' (n, classes) float64 with samples as ROWS whatever the "
                                 "file's own orientation; single-array fixtures have 'value' instead.",
                "orientation": "rows: W (in,out), Z = X @ W + b; columns: W (out,in), Z = W @ X + b "
                               "with samples as columns.",
                "expect": "load: must import and reproduce the outputs within atol; convert: must "
                          "import after converting the element type; load_or_error: either is "
                          "acceptable; error: must be rejected with the given error kind.",
                "architecture": "sizes and activations describe the Dense chain the importer must "
                                "produce (activations per Dense layer); for Keras files, layer_names "
                                "and layer_classes list the layers as the file has them (Dropout, "
                                "BatchNormalization, InputLayer included where the file lists them) and "
                                "dense_weight_paths the [kernel, bias] HDF5 paths of each Dense layer. "
                                "CNN entries (k3_cnn_*): sizes are the feature counts before and after "
                                "each layer, activations one per layer ('identity' for pooling and "
                                "flatten), plus input_shape (HWC) and layers (one object per layer as in "
                                "the .nnm layer list: kind, in, out, input_shape, output_shape, kernel, "
                                "strides, padding, convention, activation); conv_weight_paths lists each "
                                "Conv2D's [kernel (HWIO), bias] paths and layout_notes the conventions.",
                "needs": "information the file does not carry and the command line must give "
                         "(cli_hints holds the values to pass).",
                "tolerance": TOL,
                "normalised": "Keras .keras zips are rewritten with metadata.json date_saved = "
                              f"{FIXED_DATE_SAVED}, zip times 1980-01-01 and shared_object_id "
                              "renumbered from 1; nothing else is changed.",
            },
            "inputs": {str(k): {"shape": list(v.shape)} for k, v in INPUTS.items()},
            "fixtures": FIXTURES,
            "total_bytes": sum(v["bytes"] for v in files.values()),
        }
        with open(path("manifest.json"), "w") as f:
            f.write(to_json(manifest) + "\n")
        total = sum(os.path.getsize(os.path.join(WORK, n)) for n in os.listdir(WORK))

        if os.path.isdir(OUT_DIR):
            shutil.rmtree(OUT_DIR)
        os.rename(WORK, OUT_DIR)
        os.chmod(OUT_DIR, 0o755)
        WORK = None
    finally:
        if WORK and os.path.isdir(WORK):
            shutil.rmtree(WORK)
    n_files = len(os.listdir(OUT_DIR))
    print(f"interop fixtures: {len(FIXTURES)} fixtures in {n_files} files, {total} bytes, "
          f"all read back and verified -> {os.path.relpath(OUT_DIR)}")


if __name__ == "__main__":
    main()
