#!/usr/bin/env python3
"""Writes the seed corpora in Fuzz/corpus/<harness>/ (small valid and interesting files).

Run from the repository root: python3 Fuzz/make_corpus.py. Needs numpy and h5py (`make setup`).
The .nnm seeds are written here from the spec (Schemas/nnm-v1.md) rather than by the Swift
writer, so the corpus does not depend on a build. Seeds of fuzz-nnm, fuzz-idx and fuzz-npy
start with the mode byte their harness reads (see each harness's comment).
"""
import gzip
import io
import json
import os
import shutil
import struct
import zipfile
import zlib

import h5py
import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Fixtures")


def out(harness, name, data):
    directory = os.path.join(ROOT, harness)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


# --- .nnm -------------------------------------------------------------------------------------

def nnm(layers, input_shape, dtype="f32", extra_tensors=(), training=None, preprocessing=None,
        classes=None):
    """A .nnm file: layers is [(in, out, activation, bias?)], weights filled deterministically."""
    np_type = {"f32": "<f4", "f64": "<f8", "f16": "<f2"}[dtype]
    tensors = []
    meta_layers = []
    for i, (n_in, n_out, activation, bias) in enumerate(layers):
        w = (np.arange(n_in * n_out, dtype=np.float64).reshape(n_in, n_out) % 7 - 3) / 8
        tensors.append((f"layers.{i}.weight", w.astype(np_type), dtype))
        layer = {"kind": "dense", "in": n_in, "out": n_out, "activation": activation,
                 "weight": f"layers.{i}.weight"}
        if bias:
            tensors.append((f"layers.{i}.bias", (np.arange(n_out) / 10).astype(np_type), dtype))
            layer["bias"] = f"layers.{i}.bias"
        meta_layers.append(layer)
    tensors += list(extra_tensors)
    header = {"input": {"shape": input_shape, "features": int(np.prod(input_shape))},
              "layers": meta_layers, "preprocessing": preprocessing or [], "classes": classes or []}
    if training:
        header["training"] = training
    return container(header, tensors)


def container(header, tensors, minor=0):
    """The .nnm bytes of `header` (without provenance and tensor table) and (name, array, dtype) tensors."""
    header["provenance"] = {"tool": "make_corpus.py", "created": "2026-11-24T00:00:00Z"}
    data = b""
    table = []
    for name, array, dt in tensors:
        raw = np.ascontiguousarray(array).tobytes()
        data += b"\0" * (-len(data) % 64)
        table.append({"name": name, "dtype": dt, "shape": list(array.shape), "offset": len(data),
                      "length": len(raw), "crc32": zlib.crc32(raw)})
        data += raw
    data += b"\0" * (-len(data) % 64)
    header["tensors"] = table
    text = json.dumps(header, indent=1).encode()
    data_offset = (48 + len(text) + 63) // 64 * 64
    pre = b"\x89NNM\r\n\x1a\n" + struct.pack("<HHIQQQI", 1, minor, 0, len(text), data_offset, len(data),
                                              zlib.crc32(text))
    pre += struct.pack("<I", zlib.crc32(pre))
    return pre + text + b"\0" * (data_offset - 48 - len(text)) + data, text, data


def cnn_nnm():
    """A 1.1 file with every spatial layer: 6x6x1 -> conv2d 3x3 x2 (same, stride 2, true
    convolution) -> max_pool2d 2x2 -> flatten -> dense 2 softmax."""
    kernel = ((np.arange(18).reshape(3, 3, 1, 2) % 5 - 2) / 4).astype("<f4")
    dense = ((np.arange(4).reshape(2, 2) % 3 - 1) / 2).astype("<f4")
    layers = [
        {"kind": "conv2d", "in": 36, "out": 18, "input_shape": [6, 6, 1], "output_shape": [3, 3, 2], "kernel": [3, 3],
         "strides": [2, 2], "padding": "same", "convention": "convolution", "activation": "relu",
         "weight": "layers.0.weight", "bias": "layers.0.bias"},
        {"kind": "max_pool2d", "in": 18, "out": 2, "input_shape": [3, 3, 2], "output_shape": [1, 1, 2], "pool": [2, 2],
         "strides": [2, 2], "padding": "valid", "activation": "identity"},
        {"kind": "flatten", "in": 2, "out": 2, "input_shape": [1, 1, 2], "activation": "identity"},
        {"kind": "dense", "in": 2, "out": 2, "activation": "softmax", "weight": "layers.3.weight", "bias": "layers.3.bias"},
    ]
    header = {"input": {"shape": [6, 6], "features": 36}, "layers": layers, "preprocessing": [], "classes": []}
    return container(header, [("layers.0.weight", kernel, "f32"), ("layers.0.bias", np.array([0.5, -0.25], "<f4"), "f32"),
                              ("layers.3.weight", dense, "f32"), ("layers.3.bias", np.zeros(2, "<f4"), "f32")], minor=1)


def nnm_seeds():
    tiny, tiny_header, tiny_data = nnm([(4, 3, "relu", True), (3, 2, "softmax", True)], [2, 2],
                                       preprocessing=[{"op": "scale", "factor": 1 / 255, "offset": 0}],
                                       classes=["no", "yes"])
    mean = np.linspace(0, 1, 6).astype("<f4")
    std = np.linspace(1, 2, 6).astype("<f4")
    velocity = (np.arange(18).reshape(6, 3) / 100).astype("<f4")
    trained, trained_header, trained_data = nnm(
        [(6, 3, "sigmoid", True), (3, 1, "sigmoid", False)], [6],
        extra_tensors=[("preprocessing.mean", mean, "f32"), ("preprocessing.std", std, "f32"),
                       ("optimizer.velocity.layers.0.weight", velocity, "f32")],
        preprocessing=[{"op": "zscore", "mean": "preprocessing.mean", "std": "preprocessing.std"}],
        training={"loss": "cross-entropy", "optimizer": "momentum",
                  "hyperparameters": {"lr": 0.1, "momentum": 0.9}, "epochs": 2,
                  "dataset": {"name": "seed"},
                  "history": [{"epoch": 1, "train_loss": 0.7, "test_accuracy": 0.5}],
                  "optimizer_state": {"step": 10, "tensors": {
                      "layers.0.weight": "optimizer.velocity.layers.0.weight"}}})
    half, half_header, half_data = nnm([(2, 2, "tanh", True)], [2], dtype="f16")
    wide, _, _ = nnm([(3, 2, "identity", True)], [3], dtype="f64")
    cnn, cnn_header, cnn_data = cnn_nnm()
    for name, (whole, header, data) in {"tiny": (tiny, tiny_header, tiny_data),
                                        "trained": (trained, trained_header, trained_data),
                                        "f16": (half, half_header, half_data),
                                        "cnn": (cnn, cnn_header, cnn_data)}.items():
        out("fuzz-nnm", f"0-{name}.nnm", b"\x00" + whole)
        out("fuzz-nnm", f"1-{name}.nnm", b"\x01" + whole)
        out("fuzz-nnm", f"2-{name}.envelope", b"\x02" + header + b"\x00" + data)
    out("fuzz-nnm", "0-f64.nnm", b"\x00" + wide)
    out("fuzz-nnm", "0-truncated.nnm", b"\x00" + tiny[:100])
    out("fuzz-nnm", "2-empty-object.envelope", b"\x02{}\x00")
    out("fuzz-import", "tiny.nnm", tiny)
    out("fuzz-import", "trained.nnm", trained)
    out("fuzz-import", "cnn.nnm", cnn)


# --- IDX --------------------------------------------------------------------------------------

def idx(array, code):
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def idx_seeds():
    images = (np.arange(3 * 4 * 4) * 5 % 256).astype(np.uint8).reshape(3, 4, 4)
    labels = np.array([7, 2, 1], dtype=np.uint8)
    files = {
        "images-u8": idx(images, 0x08),
        "labels-u8": idx(labels, 0x08),
        "i8": idx(np.array([[-1, 2], [3, -4]], dtype=np.int8), 0x09),
        "i16": idx(np.array([-300, 2, 30000], dtype=np.int16), 0x0B),
        "i32": idx(np.array([[1 << 20, -5]], dtype=np.int32), 0x0C),
        "f32": idx(np.array([[0.5, -1.25], [3.0, 1e-3]], dtype=np.float32), 0x0D),
        "f64-rank4": idx(np.arange(2 * 2 * 2 * 3, dtype=np.float64).reshape(2, 2, 2, 3) / 3, 0x0E),
        "empty": idx(np.zeros((0, 28, 28), dtype=np.uint8), 0x08),
    }
    for name, data in files.items():
        out("fuzz-idx", f"0-{name}.idx", b"\x00" + data)
        out("fuzz-idx", f"2-{name}.idx", b"\x02" + data)
        out("fuzz-idx", f"3-{name}.idx", b"\x03" + data)
    for name in ["images-u8", "labels-u8", "f32"]:
        compressed = gzip.compress(files[name], mtime=0)
        out("fuzz-idx", f"1-{name}.idx.gz", b"\x01" + compressed)
        out("fuzz-idx", f"2-{name}.idx.gz", b"\x02" + compressed)
    two_members = gzip.compress(files["labels-u8"][:6], mtime=0) + gzip.compress(files["labels-u8"][6:], mtime=0)
    out("fuzz-idx", "2-two-members.idx.gz", b"\x02" + two_members)
    out("fuzz-idx", "2-truncated.idx.gz", b"\x02" + gzip.compress(files["images-u8"], mtime=0)[:-6])


# --- NumPy ------------------------------------------------------------------------------------

def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def npz(arrays, compressed=False):
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def npy_seeds():
    arrays = {
        "f32": np.arange(6, dtype="<f4").reshape(2, 3) / 4,
        "f64-fortran": np.asfortranarray(np.arange(12, dtype="<f8").reshape(3, 4)),
        "f16": np.array([1.5, -2.0], dtype="<f2"),
        "big-endian-f4": np.arange(4, dtype=">f4"),
        "i1": np.array([-1, 5], dtype="|i1"),
        "u2": np.array([65535, 1], dtype="<u2"),
        "u8": np.array([1, 2], dtype="<u8"),
        "bool": np.array([True, False]),
        "scalar": np.array(3.5, dtype="<f8"),
        "empty": np.zeros((0, 3), dtype="<f4"),
        "unicode": np.array("hello \u00e9", dtype="<U8"),
    }
    for name, array in arrays.items():
        data = npy(array)
        out("fuzz-npy", f"0-{name}.npy", b"\x00" + data)
        out("fuzz-npy", f"3-{name}.npy", b"\x03" + data)
    out("fuzz-npy", "4-f32.npy", b"\x04" + npy(arrays["f32"]))
    v2 = bytearray(npy(arrays["i1"]))
    out("fuzz-npy", "1-i1.npy", b"\x01" + bytes(v2))
    blog = {"W1": np.arange(12, dtype="<f4").reshape(4, 3) / 10, "b1": np.zeros((1, 3), dtype="<f4"),
            "W2": np.arange(6, dtype="<f4").reshape(3, 2) / 10, "b2": np.zeros((1, 2), dtype="<f4")}
    out("fuzz-npy", "2-blog.npz", b"\x02" + npz(blog))
    out("fuzz-npy", "2-blog-compressed.npz", b"\x02" + npz(blog, compressed=True))
    out("fuzz-npy", "2-mixed.npz", b"\x02" + npz({"a": arrays["f16"], "nnm_metadata": arrays["unicode"]}))
    out("fuzz-import", "blog.npz", npz(blog))
    out("fuzz-import", "blog-compressed.npz", npz(blog, compressed=True))
    for name in ["bad_truncated.npz", "bad_object_pickle.npz"]:
        with open(os.path.join(FIXTURES, "interop", name), "rb") as f:
            out("fuzz-npy", "2-" + name, b"\x02" + f.read())


# --- Keras configurations, and importer inputs --------------------------------------------------

def keras_seeds():
    interop = os.path.join(FIXTURES, "interop")
    for name in ["k3_relu_softmax", "k3_functional", "k3_dropout", "k3_unsupported_batchnorm", "k3_cnn"]:
        with zipfile.ZipFile(os.path.join(interop, name + ".keras")) as z:
            out("fuzz-keras-config", name + ".config.json", z.read("config.json"))
    for name in ["k3_named_sigmoid_legacy.h5", "keras222_list_config.h5"]:
        with h5py.File(os.path.join(interop, name), "r") as f:
            config = f.attrs["model_config"]
            out("fuzz-keras-config", name.replace(".h5", ".model_config.json"),
                config.encode() if isinstance(config, str) else bytes(config))
    out("fuzz-keras-config", "activation-object.json", json.dumps({
        "class_name": "Sequential", "config": {"name": "s", "layers": [
            {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "in"}},
            {"class_name": "Dense", "config": {"name": "d", "units": 2, "use_bias": False,
                                                "activation": {"class_name": "function", "config": "relu"}}},
            {"class_name": "Activation", "config": {"name": "a", "activation": "softmax"}}]}}).encode())
    out("fuzz-keras-config", "json-escapes.json",
        b'{"s": "\\u00e9\\ud83d\\ude00\\n\\t", "n": [-0, 1e308, -9223372036854775808, 0.5e-3], "o": {"": null}}')
    for name in ["k3_relu_softmax.keras", "k3_cnn.keras", "blog_rows_2layer_f32.h5", "nielsen_groups_f64.h5"]:
        shutil.copy(os.path.join(interop, name), os.path.join(ROOT, "fuzz-import", name))
    for name in ["st_sequential_f32.safetensors", "st_bf16_nobias.safetensors"]:
        shutil.copy(os.path.join(FIXTURES, "crosstool", name), os.path.join(ROOT, "fuzz-import", name))


# --- pickles and torch checkpoints -----------------------------------------------------------------

def pickle_seeds():
    """CPython's pickles from NNPickleTests' fixtures (make_pickles.py): plain data, torch-like state
    dicts and whole models (data.pkl, with the mode byte of fuzz-pickle), and legacy files."""
    resources = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "NNPickleTests", "Resources")

    def read(name):
        with open(os.path.join(resources, name), "rb") as f:
            return f.read()

    for p in range(6):
        out("fuzz-pickle", f"0-plain-p{p}.pkl", b"\x00" + read(f"plain-p{p}.pkl"))
    for name in ["state_dict", "checkpoint", "out_of_range"]:
        out("fuzz-pickle", f"0-{name}.pkl", b"\x00" + read(f"{name}/data.pkl"))
    for name in ["model", "model_lstm", "custom_net"]:
        out("fuzz-pickle", f"1-{name}.pkl", b"\x01" + read(f"{name}/data.pkl"))
    out("fuzz-pickle", "0-hostile-exec-p4.pkl", b"\x00" + read("hostile-exec-p4.pkl"))
    for name in ["state_dict_legacy.pt", "model_legacy.pt"]:
        out("fuzz-pickle", f"2-{name}", b"\x02" + read(name))


def image_seeds():
    """fuzz-image: the 3x1 pictures of every pixel kind (Fixtures/photos/kinds, made by
    Fixtures/generate_photos.py) after mode byte 0, and small Kaggle CSVs after mode byte 1."""
    kinds = os.path.join(FIXTURES, "photos", "kinds")
    for name in sorted(os.listdir(kinds)):
        if name.endswith(".json"):
            continue
        with open(os.path.join(kinds, name), "rb") as f:
            out("fuzz-image", "0-" + name, b"\x00" + f.read())
    out("fuzz-image", "1-train.csv", b"\x01label,pixel0,pixel1,pixel2,pixel3\n7,0,1,2,255\r\n\n3,4,5,6,7\n")
    out("fuzz-image", "1-test.csv", b"\x01pixel0,pixel1,pixel2,pixel3\n0,1,2.5,3e1\n")
    out("fuzz-image", "1-bare.csv", b"\x019,0,1,2,3\n1,2,3,4,5\n")


if __name__ == "__main__":
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    nnm_seeds()
    idx_seeds()
    npy_seeds()
    keras_seeds()
    pickle_seeds()
    image_seeds()
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(ROOT) for f in fs)
    count = sum(len(fs) for _, _, fs in os.walk(ROOT))
    print(f"wrote {count} seed files, {total} bytes, in {ROOT}")
