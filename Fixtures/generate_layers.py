#!/usr/bin/env python3
"""Writes Fixtures/layers/expected.json: small models using what format 1.2 added, with inputs
and the outputs plain NumPy computes for them in float64, from the definitions in
Schemas/nnm-v1.md (never from the Swift code).

    python3 Fixtures/generate_layers.py           # regenerates Fixtures/layers/expected.json
    python3 Fixtures/generate_layers.py --check   # exits 1 unless the committed file is what it writes

Each case holds the `.nnm` header members a model needs (`input`, `layers`, optionally `output`;
the JSON forms of the spec, written here independently of the Swift writer), its tensors
(`shape` and row-major `values`), an `input` matrix (one sample per row, raw features) and the
`expected` outputs. Every tensor value and input is a float32 number, so the Swift tests can
store the same model as f32 or f64; the expected outputs are float64. Random values come from
np.random.default_rng with a fixed seed per case.
"""

import json
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "layers", "expected.json")

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


# ---- the definitions (Schemas/nnm-v1.md, "Format 1.2") ----

def erf(x):
    return np.vectorize(math.erf)(x)


def activation(name, z):
    """`name` is the header's form: a string or {"name": ..., parameters}."""
    params = name if isinstance(name, dict) else {"name": name}
    n = params["name"]
    if n == "identity":
        return z
    if n == "relu":
        y = np.maximum(z, 0)
        return np.minimum(y, params["max_value"]) if "max_value" in params else y
    if n == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if n == "tanh":
        return np.tanh(z)
    if n == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if n == "log_softmax":
        m = z.max(axis=1, keepdims=True)
        return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    if n == "leaky_relu":
        return np.where(z >= 0, z, params["alpha"] * z)
    if n == "elu":
        return np.where(z > 0, z, params.get("alpha", 1.0) * np.expm1(z))
    if n == "selu":
        return SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(z))
    if n == "gelu":
        if params.get("approximate", "none") == "tanh":
            return 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z ** 3)))
        return 0.5 * z * (1 + erf(z / math.sqrt(2)))
    if n == "softplus":
        return np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0)
    if n == "swish":
        return z / (1 + np.exp(-z))
    if n == "hard_sigmoid":
        return np.minimum(np.maximum(z + 3, 0), 6) / 6
    if n == "relu6":
        return np.minimum(np.maximum(z, 0), 6)
    raise ValueError(n)


def pads_of(padding, size, window, stride):
    """(before, after) along one axis; size, window, stride are (height, width) pairs."""
    if padding == "valid":
        return [(0, 0), (0, 0)]
    if padding == "same":
        out = []
        for i in range(2):
            o = -(-size[i] // stride[i])
            total = max((o - 1) * stride[i] + window[i] - size[i], 0)
            out.append((total // 2, total - total // 2))
        return out
    top, left, bottom, right = padding
    return [(top, bottom), (left, right)]


def windows(x, window, stride, pads, fill):
    """x: (n, h, w, c) -> (n, oh, ow, kh, kw, c) of windows over x padded with `fill`."""
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=fill)
    kh, kw = window
    oh = (xp.shape[1] - kh) // stride[0] + 1
    ow = (xp.shape[2] - kw) // stride[1] + 1
    out = np.empty((x.shape[0], oh, ow, kh, kw, x.shape[3]))
    for i in range(oh):
        for j in range(ow):
            out[:, i, j] = xp[:, i * stride[0]:i * stride[0] + kh, j * stride[1]:j * stride[1] + kw, :]
    return out


def forward(header, tensors, x):
    """The model's outputs for rows of raw features x, in float64."""
    a = x.astype(np.float64)
    for layer in header["layers"]:
        kind = layer["kind"]
        n = a.shape[0]
        if kind == "dense":
            z = a @ tensors[layer["weight"]]
            if "bias" in layer:
                z = z + tensors[layer["bias"]]
        elif kind == "conv2d":
            h, w, c = layer["input_shape"]
            k = tensors[layer["weight"]]  # HWIO
            pads = pads_of(layer["padding"], (h, w), layer["kernel"], layer["strides"])
            win = windows(a.reshape(n, h, w, c), layer["kernel"], layer["strides"], pads, 0.0)
            z = np.einsum("nyxuvc,uvcf->nyxf", win, k)
            if "bias" in layer:
                z = z + tensors[layer["bias"]]
        elif kind in ("max_pool2d", "avg_pool2d"):
            h, w, c = layer["input_shape"]
            pads = pads_of(layer["padding"], (h, w), layer["pool"], layer["strides"])
            x4 = a.reshape(n, h, w, c)
            if kind == "max_pool2d":
                z = windows(x4, layer["pool"], layer["strides"], pads, -np.inf).max(axis=(3, 4))
            else:
                sums = windows(x4, layer["pool"], layer["strides"], pads, 0.0).sum(axis=(3, 4))
                if layer["count_include_pad"]:
                    z = sums / (layer["pool"][0] * layer["pool"][1])
                else:
                    cells = windows(np.ones_like(x4), layer["pool"], layer["strides"], pads, 0.0).sum(axis=(3, 4))
                    z = sums / cells
        elif kind == "global_avg_pool2d":
            h, w, c = layer["input_shape"]
            z = a.reshape(n, h * w, c).mean(axis=1)
        elif kind == "global_max_pool2d":
            h, w, c = layer["input_shape"]
            z = a.reshape(n, h * w, c).max(axis=1)
        elif kind == "batch_norm":
            shape = layer["input_shape"]
            ch = shape[-1]
            gamma = tensors[layer["gamma"]] if "gamma" in layer else np.ones(ch)
            beta = tensors[layer["beta"]] if "beta" in layer else np.zeros(ch)
            mean, var = tensors[layer["moving_mean"]], tensors[layer["moving_variance"]]
            x3 = a.reshape(n, -1, ch)
            z = gamma * (x3 - mean) / np.sqrt(var + layer["epsilon"]) + beta
        elif kind == "flatten":
            z = a
        else:
            raise ValueError(kind)
        a = activation(layer.get("activation", "identity"), z.reshape(n, -1))
    return a


# ---- the cases ----

def f32(values):
    return np.asarray(values, dtype=np.float32).astype(np.float64)


class Case:
    def __init__(self, name, seed, input_shape):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.input_shape = input_shape
        self.layers = []
        self.tensors = {}
        self.output = None

    def tensor(self, name, shape, scale=1.0, low=None, high=None):
        if low is not None:
            values = self.rng.uniform(low, high, size=shape)
        else:
            values = self.rng.standard_normal(shape) * scale
        self.tensors[name] = f32(values)
        return name

    def dense(self, inputs, outputs, activation="identity", bias=True, scale=None):
        i = len(self.layers)
        layer = {"kind": "dense", "in": inputs, "out": outputs, "activation": activation,
                 "weight": self.tensor(f"layers.{i}.weight", (inputs, outputs), scale or 1.5 / math.sqrt(inputs))}
        if bias:
            layer["bias"] = self.tensor(f"layers.{i}.bias", (outputs,), 0.5)
        self.layers.append(layer)

    def conv(self, shape, filters, kernel, strides, padding, activation="identity", bias=True):
        i = len(self.layers)
        h, w, c = shape
        pads = pads_of(padding, (h, w), kernel, strides)
        out = [(h + sum(pads[0]) - kernel[0]) // strides[0] + 1, (w + sum(pads[1]) - kernel[1]) // strides[1] + 1, filters]
        layer = {"kind": "conv2d", "in": h * w * c, "out": math.prod(out), "input_shape": list(shape), "output_shape": out,
                 "kernel": list(kernel), "strides": list(strides), "padding": padding, "convention": "cross-correlation",
                 "activation": activation,
                 "weight": self.tensor(f"layers.{i}.weight", (kernel[0], kernel[1], c, filters), 1 / math.sqrt(kernel[0] * kernel[1] * c))}
        if bias:
            layer["bias"] = self.tensor(f"layers.{i}.bias", (filters,), 0.3)
        self.layers.append(layer)
        return out

    def pool(self, kind, shape, pool, strides, padding, count_include_pad=None, activation="identity"):
        h, w, c = shape
        pads = pads_of(padding, (h, w), pool, strides)
        out = [(h + sum(pads[0]) - pool[0]) // strides[0] + 1, (w + sum(pads[1]) - pool[1]) // strides[1] + 1, c]
        layer = {"kind": kind, "in": h * w * c, "out": math.prod(out), "input_shape": list(shape), "output_shape": out,
                 "pool": list(pool), "strides": list(strides), "padding": padding}
        if kind == "avg_pool2d":
            layer["count_include_pad"] = count_include_pad
        layer["activation"] = activation
        self.layers.append(layer)
        return out

    def global_pool(self, kind, shape, activation="identity"):
        self.layers.append({"kind": kind, "in": math.prod(shape), "out": shape[2], "input_shape": list(shape), "activation": activation})
        return [shape[2]]

    def batch_norm(self, shape, epsilon, activation="identity", scale=True, center=True, negative_variance=False):
        i = len(self.layers)
        ch = shape[-1]
        layer = {"kind": "batch_norm", "in": math.prod(shape), "out": math.prod(shape), "input_shape": list(shape),
                 "epsilon": epsilon, "activation": activation}
        if scale:
            layer["gamma"] = self.tensor(f"layers.{i}.gamma", (ch,), low=0.5, high=2.0)
        if center:
            layer["beta"] = self.tensor(f"layers.{i}.beta", (ch,), 0.5)
        layer["moving_mean"] = self.tensor(f"layers.{i}.moving_mean", (ch,), 0.7)
        layer["moving_variance"] = self.tensor(f"layers.{i}.moving_variance", (ch,), low=0.05, high=3.0)
        self.layers.append(layer)

    def flatten(self, shape):
        self.layers.append({"kind": "flatten", "in": math.prod(shape), "out": math.prod(shape), "input_shape": list(shape),
                            "activation": "identity"})

    def build(self, samples=4, low=0.0, high=1.0):
        x = f32(self.rng.uniform(low, high, size=(samples, math.prod(self.input_shape))))
        header = {"input": {"shape": self.input_shape, "features": math.prod(self.input_shape)}, "layers": self.layers}
        if self.output:
            header["output"] = {"kind": self.output}
        y = forward(header, self.tensors, x)
        return {"name": self.name, "header": header,
                "tensors": {k: {"shape": list(v.shape), "values": v.ravel().tolist()} for k, v in self.tensors.items()},
                "input": x.tolist(), "expected": y.tolist()}


ACTIVATIONS = [
    {"name": "leaky_relu", "alpha": 0.2}, {"name": "leaky_relu", "alpha": 0.01}, "elu", {"name": "elu", "alpha": 0.5},
    "selu", "gelu", {"name": "gelu", "approximate": "tanh"}, "softplus", "swish", "hard_sigmoid", "relu6",
    {"name": "relu", "max_value": 2.5}, "log_softmax",
]


def activation_id(a):
    if isinstance(a, str):
        return a
    return a["name"] + "_" + "_".join(f"{k}{v}" for k, v in a.items() if k != "name")


def cases():
    out = []
    # Each activation after a dense layer whose outputs spread over about [-9, 9] (softplus and
    # the exponentials see large arguments too).
    for i, a in enumerate(ACTIVATIONS):
        c = Case(f"activation {activation_id(a)}", 100 + i, [6])
        c.dense(6, 7, activation=a, scale=3.0)
        out.append(c.build(samples=5, low=-1.5, high=1.5))

    # Batch normalization: folded into a dense layer (relu after it), into a convolution without
    # bias, after a pooling and after flatten (not foldable), without gamma and beta.
    c = Case("batch_norm after dense, relu", 200, [10])
    c.dense(10, 8)
    c.batch_norm([8], 0.001, activation="relu")
    c.dense(8, 3, activation="softmax")
    out.append(c.build())

    c = Case("batch_norm after conv2d without bias, then max_pool2d", 201, [6, 6, 2])
    s = c.conv([6, 6, 2], 4, (3, 3), (1, 1), "same", bias=False)
    c.batch_norm(s, 1e-5, activation="relu")
    s = c.pool("max_pool2d", s, (2, 2), (2, 2), "valid")
    c.flatten(s)
    c.dense(math.prod(s), 3)
    out.append(c.build())

    c = Case("batch_norm after max_pool2d and after flatten", 202, [6, 6, 3])
    s = c.conv([6, 6, 3], 4, (3, 3), (1, 1), "valid", activation="relu")
    s = c.pool("max_pool2d", s, (2, 2), (2, 2), "valid")
    c.batch_norm(s, 0.001)
    c.flatten(s)
    c.batch_norm([math.prod(s)], 0.01, activation="tanh")
    c.dense(math.prod(s), 2, activation="sigmoid")
    out.append(c.build())

    c = Case("batch_norm without gamma and beta", 203, [5])
    c.dense(5, 4)
    c.batch_norm([4], 0.5, scale=False, center=False)
    out.append(c.build())

    # Average pooling: valid, same and explicit padding, with and without the padded cells.
    for name, padding, strides in [("valid", "valid", (2, 2)), ("same", "same", (2, 2)),
                                   ("pads 1,1,1,1", [1, 1, 1, 1], (1, 1)), ("pads 0,1,2,0", [0, 1, 2, 0], (2, 1))]:
        for include in (False, True):
            c = Case(f"avg_pool2d {name} count_include_pad {include}", 300 + len(out), [5, 5, 2])
            c.pool("avg_pool2d", [5, 5, 2], (3, 3), strides, padding, count_include_pad=include)
            out.append(c.build(samples=3))

    # Explicit padding for convolution (symmetric as PyTorch, asymmetric as TF "same" with
    # stride 2) and max pooling (padded cells ignored, even with negative inputs).
    c = Case("conv2d pads 1,1,1,1 (PyTorch padding=1)", 400, [5, 5, 2])
    s = c.conv([5, 5, 2], 3, (3, 3), (1, 1), [1, 1, 1, 1])
    out.append(c.build())
    c = Case("conv2d pads 0,0,1,1 stride 2 (TF same)", 401, [6, 6, 1])
    s = c.conv([6, 6, 1], 2, (3, 3), (2, 2), [0, 0, 1, 1], activation="relu")
    out.append(c.build())
    c = Case("conv2d pads 2,0,1,1 stride 2x1 without bias", 402, [5, 4, 2])
    s = c.conv([5, 4, 2], 2, (3, 2), (2, 1), [2, 0, 1, 1], bias=False)
    out.append(c.build())
    c = Case("max_pool2d pads 1,1,1,1 on negative inputs", 403, [4, 4, 2])
    c.pool("max_pool2d", [4, 4, 2], (3, 3), (2, 2), [1, 1, 1, 1])
    out.append(c.build(low=-2.0, high=-0.5))

    # Global pooling into a classifier; a dense layer without bias; a stated output kind.
    for kind in ("global_avg_pool2d", "global_max_pool2d"):
        c = Case(f"{kind} then dense", 500 + len(out), [4, 3, 5])
        s = c.global_pool(kind, [4, 3, 5])
        c.dense(5, 3, activation="softmax")
        out.append(c.build(low=-1.0, high=1.0))

    c = Case("dense without bias, logits stated", 600, [4])
    c.dense(4, 3, bias=False)
    c.output = "logits"
    out.append(c.build())
    return out


def render():
    doc = {"generator": "Fixtures/generate_layers.py", "numpy": np.__version__, "cases": cases()}
    return json.dumps(doc, indent=1) + "\n"


def main(argv):
    text = render()
    if "--check" in argv:
        with open(OUT) as f:
            same = f.read() == text
        print(f"{OUT}: {'matches the generator' if same else 'differs from what the generator writes'}")
        return 0 if same else 1
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {OUT}: {len(json.loads(text)['cases'])} cases, {len(text)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
