#!/usr/bin/env python3
"""Writes the cross-tool fixtures in Fixtures/crosstool/: safetensors files written by the real
`safetensors` package in PyTorch's nn.Linear naming and orientation (weight (out, in), bias
(out)), ONNX graphs built with `onnx.helper` the way exporters build them, the files that must
be rejected, and `manifest.json` describing each with inputs and the reference outputs
(numpy for safetensors state dicts, onnxruntime for ONNX graphs).

    pip install numpy ml_dtypes safetensors onnx onnxruntime
    python3 Fixtures/generate_crosstool.py

No PyTorch is needed: a state dict is a name -> array map, which safetensors.numpy writes in the
same bytes torch's save_file does (bfloat16 comes from ml_dtypes, which onnx already needs).
Every random number comes from a seeded np.random.default_rng, so the output is a pure function
of the code and the package versions. The directory is rewritten whole on each run; do not edit
files in it by hand. Every "bad" safetensors file is checked to be rejected by the reference
implementation too, and every ONNX graph that should load passes onnx.checker. Prints one
summary line.
"""

import json
import os
import shutil
import struct
import tempfile

import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort
import safetensors
from onnx import TensorProto, helper, numpy_helper
from safetensors import safe_open
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "crosstool")


def relu(z):
    return np.maximum(z, 0)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


ACTIVATIONS = {"relu": relu, "sigmoid": sigmoid, "tanh": np.tanh, "softmax": softmax, "identity": lambda z: z}


def forward_linear(x, layers, activations):
    """PyTorch's nn.Linear chain in float64: x @ W.T + b, W (out, in)."""
    a = x.astype(np.float64)
    for (w, b), act in zip(layers, activations):
        a = a @ w.astype(np.float64).T
        if b is not None:
            a = a + b.astype(np.float64)
        a = ACTIVATIONS[act](a)
    return a


class Writer:
    def __init__(self, directory):
        self.directory = directory
        self.fixtures = []

    def path(self, name):
        return os.path.join(self.directory, name)

    def add(self, **entry):
        self.fixtures.append(entry)

    # --- safetensors -------------------------------------------------------------------------

    def state_dict(self, fid, tensors, layers, activations, x, *, options=None, atol=1e-5, metadata=None,
                   note=""):
        """A PyTorch-style state dict; `layers` names (weight, bias) keys in true order."""
        name = f"{fid}.safetensors"
        save_file(tensors, self.path(name), metadata=metadata)
        # Read back through the reference reader, as a user's loader would.
        with safe_open(self.path(name), framework="np") as f:
            assert sorted(f.keys()) == sorted(tensors)
        params = [(tensors[w].astype(np.float64), None if b is None else tensors[b].astype(np.float64)) for w, b in layers]
        y = forward_linear(x, params, activations)
        self.add(id=fid, file=name, kind="safetensors", expect="load", options=options or {},
                 input=x.tolist(), output=y.tolist(), atol=atol, note=note)

    def bad_safetensors(self, fid, header, data, error, *, length=None, reference_rejects=True, note=""):
        """A hand-built file (the package cannot write broken ones); the reference must agree."""
        name = f"{fid}.safetensors"
        raw = header.encode() if isinstance(header, str) else header
        with open(self.path(name), "wb") as f:
            f.write(struct.pack("<Q", len(raw) if length is None else length))
            f.write(raw)
            f.write(data)
        try:
            with safe_open(self.path(name), framework="np") as f:
                for k in f.keys():
                    f.get_tensor(k)
            rejected = False
        except Exception:  # noqa: BLE001 - any rejection counts
            rejected = True
        assert rejected == reference_rejects, f"{fid}: reference rejected={rejected}"
        self.add(id=fid, file=name, kind="safetensors", expect="error", error=error,
                 reference_rejects=reference_rejects, note=note)

    # --- ONNX ----------------------------------------------------------------------------------

    def onnx_model(self, fid, graph, opset, x, *, atol=1e-5, ir_version=None, note="", check=True):
        name = f"{fid}.onnx"
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="generate_crosstool")
        if ir_version is not None:
            model.ir_version = ir_version
        if check:
            onnx.checker.check_model(model, full_check=True)
        data = model.SerializeToString()
        with open(self.path(name), "wb") as f:
            f.write(data)
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        feed_name = session.get_inputs()[0].name
        y = session.run(None, {feed_name: x})[0]
        self.add(id=fid, file=name, kind="onnx", expect="load", opset=opset,
                 input=x.reshape(x.shape[0], -1).astype(np.float64).tolist(), output=y.astype(np.float64).tolist(),
                 atol=atol, note=note)

    def bad_onnx(self, fid, data_or_graph, error, *, opset=13, note=""):
        name = f"{fid}.onnx"
        if isinstance(data_or_graph, bytes):
            data = data_or_graph
        else:
            data = helper.make_model(data_or_graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()
        with open(self.path(name), "wb") as f:
            f.write(data)
        self.add(id=fid, file=name, kind="onnx", expect="error", error=error, note=note)


def value(name, elem, dims):
    return helper.make_tensor_value_info(name, elem, dims)


def init(name, array, raw=True):
    """An initializer in raw_data (as torch.onnx writes) or in the typed field (float_data, ...)."""
    if raw:
        return numpy_helper.from_array(array, name)
    elem = helper.np_dtype_to_tensor_dtype(array.dtype)
    return helper.make_tensor(name, elem, array.shape, array.flatten().tolist())


def generate(w):
    rng = np.random.default_rng(20240611)

    def randn(*shape, dtype=np.float32, scale=0.5):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    # nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(dim=1)): keys 0.*, 2.*.
    t = {"0.weight": randn(8, 12), "0.bias": randn(8), "2.weight": randn(3, 8), "2.bias": randn(3)}
    w.state_dict("st_sequential_f32", t, [("0.weight", "0.bias"), ("2.weight", "2.bias")], ["relu", "softmax"],
                 randn(4, 12, scale=1.0), metadata={"format": "pt"},
                 note="nn.Sequential naming, default activations (ReLU hidden, softmax output)")

    # layers.0 ... layers.10: the file lists 0, 1, 10, 2, ...; only numeric order chains.
    widths = [6, 5, 7, 4, 6, 5, 7, 4, 6, 5, 7, 3]
    t, layers = {}, []
    for i in range(11):
        t[f"layers.{i}.weight"] = randn(widths[i + 1], widths[i], dtype=np.float64)
        t[f"layers.{i}.bias"] = randn(widths[i + 1], dtype=np.float64)
        layers.append((f"layers.{i}.weight", f"layers.{i}.bias"))
    acts = ["tanh"] * 10 + ["identity"]
    w.state_dict("st_layers_numeric_f64", t, layers, acts, randn(3, 6, scale=1.0, dtype=np.float64),
                 options={"activations": acts}, note="11 layers: ordered by number, not by the header's text order")

    # fc1, fc2, fc3 in float16: no numbers to sort by; the shapes chain in one order only.
    t = {"fc2.weight": randn(10, 16, dtype=np.float16), "fc3.bias": randn(4, dtype=np.float16),
         "fc1.weight": randn(16, 12, dtype=np.float16), "fc1.bias": randn(16, dtype=np.float16),
         "fc3.weight": randn(4, 10, dtype=np.float16), "fc2.bias": randn(10, dtype=np.float16)}
    w.state_dict("st_named_fc_f16", t, [("fc1.weight", "fc1.bias"), ("fc2.weight", "fc2.bias"), ("fc3.weight", "fc3.bias")],
                 ["relu", "relu", "softmax"], randn(3, 12, scale=1.0), atol=1e-4,
                 note="fc1/fc2/fc3 float16, ordered by chaining shapes")

    # bfloat16 without biases (nn.Linear(bias=False)), sigmoid everywhere, given on the command line.
    bf = ml_dtypes.bfloat16
    t = {"net.0.weight": randn(5, 12).astype(bf), "net.2.weight": randn(2, 5).astype(bf)}
    w.state_dict("st_bf16_nobias", t, [("net.0.weight", None), ("net.2.weight", None)], ["sigmoid", "sigmoid"],
                 randn(3, 12, scale=1.0), options={"activations": ["sigmoid", "sigmoid"]},
                 note="bfloat16 weights, no biases")

    # Two square layers with names that carry no order: either order chains.
    t = {"encoder.weight": randn(4, 4), "decoder.weight": randn(4, 4), "encoder.bias": randn(4), "decoder.bias": randn(4)}
    save_file(t, w.path("st_ambiguous_square.safetensors"))
    w.add(id="st_ambiguous_square", file="st_ambiguous_square.safetensors", kind="safetensors", expect="error",
          error="pass --layer-order", note="square layers named encoder/decoder: the order is ambiguous")

    # A convolution alone: a CNN state dict needs the Linear layers that end it.
    save_file({"conv.weight": randn(4, 1, 3, 3), "conv.bias": randn(4)}, w.path("st_conv_weight.safetensors"))
    w.add(id="st_conv_weight", file="st_conv_weight.safetensors", kind="safetensors", expect="error",
          error="the state dict has convolutions (conv) but no nn.Linear layer to end the model", note="a Conv2d state dict")

    # Broken files, each also rejected by the reference implementation.
    f32x2 = '{"dtype":"F32","shape":[2],"data_offsets":[%d,%d]}'
    one = '{"a":' + f32x2 % (0, 8) + "}"
    w.bad_safetensors("bad_header_length", one, b"\0" * 8, length=4096,
                      error="header length 4096 bytes is larger than the", note="the length field exceeds the file")
    w.bad_safetensors("bad_header_too_large", one, b"\0" * 8, length=200_000_000,
                      error="exceeds the safetensors limit of 100000000 bytes", note="header over 100 MB")
    w.bad_safetensors("bad_overlap", '{"a":' + f32x2 % (0, 8) + ',"b":' + f32x2 % (4, 12) + "}", b"\0" * 12,
                      error="tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]", note="overlapping offsets")
    w.bad_safetensors("bad_gap", '{"a":' + f32x2 % (0, 8) + ',"b":' + f32x2 % (12, 20) + "}", b"\0" * 20,
                      error="leave bytes 8..<12 of the data buffer to no tensor", note="a hole between tensors")
    w.bad_safetensors("bad_reversed_offsets", '{"a":' + f32x2 % (8, 0) + "}", b"\0" * 8,
                      error="data_offsets [8, 0] end before they begin", note="unordered offsets")
    w.bad_safetensors("bad_trailing_bytes", one, b"\0" * 12,
                      error="the tensors cover 8 bytes of the 12-byte data buffer", note="data not fully covered")
    w.bad_safetensors("bad_unknown_dtype", '{"a":{"dtype":"F128","shape":[2],"data_offsets":[0,8]}}', b"\0" * 8,
                      error="unknown dtype 'F128'", note="a dtype the format does not define")
    w.bad_safetensors("bad_shape_bytes", '{"a":{"dtype":"F32","shape":[3,3],"data_offsets":[0,32]}}', b"\0" * 32,
                      error="shape 3x3 of F32 needs 36 bytes, but data_offsets [0, 32] hold 32",
                      note="shape x dtype size != byte length")
    w.bad_safetensors("bad_duplicate_name", '{"a":' + f32x2 % (0, 8) + ',"a":' + f32x2 % (8, 16) + "}", b"\0" * 16,
                      error='duplicate tensor name "a"', note="the same name twice")
    w.bad_safetensors("bad_not_json", "[1, 2, 3]  ", b"", error="the header does not start with '{'",
                      note="a header that is not a JSON object")
    w.bad_safetensors("bad_metadata_value", '{"__metadata__":{"k":1},"a":' + f32x2 % (0, 8) + "}", b"\0" * 8,
                      error="__metadata__ 'k' must be a string", note="__metadata__ must map strings to strings")

    # --- ONNX ------------------------------------------------------------------------------

    # What torch.onnx writes for nn.Linear: Gemm with transB=1 and W (out, in), raw_data.
    W1, b1, W2, b2 = randn(8, 12), randn(8), randn(3, 8), randn(3)
    g = helper.make_graph(
        [helper.make_node("Gemm", ["input", "fc1.weight", "fc1.bias"], ["h1"], name="/fc1/Gemm", transB=1),
         helper.make_node("Relu", ["h1"], ["a1"], name="/relu/Relu"),
         helper.make_node("Gemm", ["a1", "fc2.weight", "fc2.bias"], ["z2"], name="/fc2/Gemm", alpha=1.0, beta=1.0, transB=1),
         helper.make_node("Softmax", ["z2"], ["output"], name="/softmax/Softmax", axis=1)],
        "torch_jit", [value("input", TensorProto.FLOAT, ["batch", 12])], [value("output", TensorProto.FLOAT, ["batch", 3])],
        [init("fc1.weight", W1), init("fc1.bias", b1), init("fc2.weight", W2), init("fc2.bias", b2)])
    w.onnx_model("onnx_gemm_transb", g, 13, randn(4, 12, scale=1.0), note="torch.onnx style Gemm transB=1, raw_data")

    # MatMul + Add (bias as the Add's first input), Sigmoid, then Tanh; weights in float_data.
    W1, b1, W2, b2 = randn(12, 6), randn(6), randn(6, 4), randn(4)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W1"], ["xw1"], name="matmul1"),
         helper.make_node("Add", ["b1", "xw1"], ["z1"], name="add1"),
         helper.make_node("Sigmoid", ["z1"], ["a1"], name="sigmoid1"),
         helper.make_node("MatMul", ["a1", "W2"], ["xw2"], name="matmul2"),
         helper.make_node("Add", ["xw2", "b2"], ["z2"], name="add2"),
         helper.make_node("Tanh", ["z2"], ["y"], name="tanh2")],
        "matmul_add", [value("x", TensorProto.FLOAT, [None, 12])], [value("y", TensorProto.FLOAT, [None, 4])],
        [init("W1", W1, raw=False), init("b1", b1, raw=False), init("W2", W2, raw=False), init("b2", b2, raw=False)])
    w.onnx_model("onnx_matmul_add_float_data", g, 11, randn(3, 12, scale=1.0), note="MatMul+Add, float_data, opset 11")

    # An MNIST-shaped graph with its preprocessing: Reshape [N,1,28,28] -> [N,784], Div 255,
    # Sub mean, Div std, Gemm (transB 0), Relu, Gemm with C [1, 10], Softmax(axis=-1).
    pixels = rng.integers(0, 256, size=(64, 784)).astype(np.float32) / np.float32(255)
    mean = pixels.mean(axis=0).astype(np.float32)
    std = (pixels.std(axis=0) + np.float32(0.05)).astype(np.float32)
    W1, b1, W2, b2 = randn(784, 16, scale=0.05), randn(16), randn(16, 10), randn(1, 10)
    g = helper.make_graph(
        [helper.make_node("Reshape", ["image", "flat_shape"], ["flat"], name="flatten"),
         helper.make_node("Div", ["flat", "c255"], ["scaled"], name="to_unit"),
         helper.make_node("Sub", ["scaled", "mean"], ["centred"], name="centre"),
         helper.make_node("Div", ["centred", "std"], ["normalized"], name="normalize"),
         helper.make_node("Gemm", ["normalized", "W1", "b1"], ["z1"], name="dense1"),
         helper.make_node("Relu", ["z1"], ["a1"], name="relu1"),
         helper.make_node("Gemm", ["a1", "W2", "b2"], ["z2"], name="dense2"),
         helper.make_node("Softmax", ["z2"], ["probabilities"], name="softmax", axis=-1)],
        "mnist_mlp", [value("image", TensorProto.FLOAT, ["N", 1, 28, 28])], [value("probabilities", TensorProto.FLOAT, ["N", 10])],
        [init("flat_shape", np.array([-1, 784], dtype=np.int64)), init("c255", np.array(255, dtype=np.float32)),
         init("mean", mean), init("std", std), init("W1", W1), init("b1", b1), init("W2", W2), init("b2", b2)])
    images = rng.integers(0, 256, size=(2, 1, 28, 28)).astype(np.float32)
    w.onnx_model("onnx_mnist_preprocessing", g, 17, images, note="Reshape, Div 255, Sub mean, Div std, Gemm, Softmax(-1)")

    # Double precision with Flatten, Identity and Dropout (no-ops at inference); double_data.
    W1, b1, W2, b2 = randn(12, 5, dtype=np.float64), randn(5, dtype=np.float64), randn(5, 3, dtype=np.float64), randn(3, dtype=np.float64)
    g = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["flat"], name="flatten", axis=1),
         helper.make_node("Gemm", ["flat", "W1", "b1"], ["z1"], name="dense1"),
         helper.make_node("Tanh", ["z1"], ["a1"], name="tanh1"),
         helper.make_node("Dropout", ["a1"], ["d1"], name="dropout1"),
         helper.make_node("Gemm", ["d1", "W2", "b2"], ["z2"], name="dense2"),
         helper.make_node("Identity", ["z2"], ["y"], name="identity")],
        "double_mlp", [value("x", TensorProto.DOUBLE, ["batch", 3, 4])], [value("y", TensorProto.DOUBLE, ["batch", 3])],
        [init("W1", W1, raw=False), init("b1", b1, raw=False), init("W2", W2, raw=False), init("b2", b2, raw=False)])
    w.onnx_model("onnx_double_flatten_dropout", g, 13, randn(3, 3, 4, dtype=np.float64, scale=1.0), atol=1e-9,
                 note="double_data, Flatten, Dropout and Identity pass-through")

    # Weights from Constant nodes, opset 9 (Gemm's C required, Softmax's default axis 1), and a
    # scale + offset preprocessing (Mul then Add by scalars).
    W1, b1, W2, b2 = randn(6, 5), randn(5), randn(5, 3), randn(3)
    constant = lambda name, a: helper.make_node("Constant", [], [name], name=f"const_{name}", value=numpy_helper.from_array(a, name))
    g = helper.make_graph(
        [constant("W1", W1), constant("b1", b1), constant("W2", W2), constant("b2", b2),
         constant("factor", np.array(0.5, dtype=np.float32)), constant("offset", np.array(-0.25, dtype=np.float32)),
         helper.make_node("Mul", ["x", "factor"], ["xs"], name="scale"),
         helper.make_node("Add", ["xs", "offset"], ["xo"], name="shift"),
         helper.make_node("Gemm", ["xo", "W1", "b1"], ["z1"], name="dense1"),
         helper.make_node("Relu", ["z1"], ["a1"], name="relu1"),
         helper.make_node("Gemm", ["a1", "W2", "b2"], ["z2"], name="dense2"),
         helper.make_node("Softmax", ["z2"], ["y"], name="softmax")],
        "constants", [value("x", TensorProto.FLOAT, ["batch", 6])], [value("y", TensorProto.FLOAT, ["batch", 3])])
    w.onnx_model("onnx_constant_nodes_opset9", g, 9, randn(3, 6, scale=1.0), note="Constant nodes, Mul+Add scale, opset 9")

    # Unsupported: a convolution, with the node name the error must give.
    conv = helper.make_graph(
        [helper.make_node("Conv", ["x", "k"], ["c"], name="conv1"),
         helper.make_node("Flatten", ["c"], ["f"]),
         helper.make_node("Gemm", ["f", "W"], ["y"], name="fc")],
        "conv", [value("x", TensorProto.FLOAT, ["N", 1, 4, 4])], [value("y", TensorProto.FLOAT, ["N", 2])],
        [init("k", randn(1, 1, 3, 3)), init("W", randn(4, 2))])
    w.bad_onnx("bad_conv", conv, "node 'conv1' uses op Conv, which is not supported (supported: Gemm, MatMul, Add")
    relu_only = lambda: helper.make_graph(
        [helper.make_node("Gemm", ["x", "W"], ["z"], name="fc"), helper.make_node("Relu", ["z"], ["y"])],
        "g", [value("x", TensorProto.FLOAT, ["N", 3])], [value("y", TensorProto.FLOAT, ["N", 2])], [init("W", randn(3, 2))])
    w.bad_onnx("bad_opset6", relu_only(), "opset 6 is not supported (supported: ai.onnx opsets 7 to 28)", opset=6)
    w.bad_onnx("bad_opset99", relu_only(), "opset 99 is not supported", opset=99)
    # A branch: the hidden activation feeds two nodes whose results are added.
    branch = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W"], ["z"], name="fc"), helper.make_node("Relu", ["z"], ["a"], name="relu"),
         helper.make_node("Sigmoid", ["a"], ["s"], name="gate"), helper.make_node("Tanh", ["a"], ["t"], name="candidate"),
         helper.make_node("Add", ["s", "t"], ["y"], name="merge")],
        "g", [value("x", TensorProto.FLOAT, ["N", 3])], [value("y", TensorProto.FLOAT, ["N", 2])], [init("W", randn(3, 2))])
    w.bad_onnx("bad_branch", branch, "'a' feeds 2 nodes (node 'gate', node 'candidate'); only a chain of nodes is supported")
    # A truncated download: the ModelProto ends inside the graph field.
    good = open(w.path("onnx_gemm_transb.onnx"), "rb").read()
    cut = good[: len(good) * 2 // 3]
    try:
        onnx.load_model_from_string(cut)
        raise AssertionError("onnx accepted the truncated model")
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError
        assert "Error parsing message" in str(e) or "Truncated" in str(e), e
    w.bad_onnx("bad_truncated", cut, "not a valid ONNX model: the protobuf data is truncated")


def main():
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".crosstool-", dir=os.path.dirname(OUT))
    try:
        w = Writer(tmp)
        generate(w)
        manifest = {
            "generator": "Fixtures/generate_crosstool.py",
            "versions": {"numpy": np.__version__, "safetensors": safetensors.__version__, "onnx": onnx.__version__,
                         "onnxruntime": ort.__version__, "ml_dtypes": ml_dtypes.__version__},
            "fixtures": w.fixtures,
        }
        with open(os.path.join(tmp, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)
            f.write("\n")
        # mkdtemp makes 0700 and the Rust writer 0600 files: fixtures are ordinary documents.
        os.chmod(tmp, 0o755)
        for n in os.listdir(tmp):
            os.chmod(os.path.join(tmp, n), 0o644)
        if os.path.exists(OUT):
            shutil.rmtree(OUT)
        os.rename(tmp, OUT)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {len(w.fixtures)} fixtures to {os.path.relpath(OUT)} ({total} bytes)")


if __name__ == "__main__":
    main()
