"""The NumPy reference forward pass: what a `.nnm` model computes, written plainly from the
definitions in Schemas/nnm-v1.md, one layer at a time, in float64.

This is the reference, not the fast path: it is meant to be read and to check other engines
against (`nn-infer` computes the same functions with BLAS and SIMD kernels). Each layer is a few
lines of NumPy as the blog's code would write it; convolutions and pooling loop over the window.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Dict

import numpy as np

from . import metadata as md

if TYPE_CHECKING:
    from .model import Model

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _erf(z: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(z)


def activate(act: md.Activation, z: np.ndarray) -> np.ndarray:
    """An activation of the format applied to `z` (samples as rows; softmax per row)."""
    name, p = act
    if name == "identity":
        return z
    if name == "relu":
        y = np.maximum(z, 0)
        return np.minimum(y, p["max_value"]) if "max_value" in p else y
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if name == "log_softmax":
        m = z.max(axis=1, keepdims=True)
        return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    if name == "leaky_relu":
        return np.where(z >= 0, z, p["alpha"] * z)
    if name == "elu":
        return np.where(z > 0, z, p["alpha"] * np.expm1(np.minimum(z, 0)))
    if name == "selu":
        return SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0)))
    if name == "gelu":
        if p.get("approximate") == "tanh":
            return 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z ** 3)))
        return 0.5 * z * (1 + _erf(z / math.sqrt(2)))
    if name == "softplus":
        return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
    if name == "swish":
        return z / (1 + np.exp(-z))
    if name == "hard_sigmoid":
        return np.minimum(np.maximum(z + 3, 0), 6) / 6
    if name == "relu6":
        return np.minimum(np.maximum(z, 0), 6)
    raise ValueError(f"unknown activation {name}")


def preprocess(model: "Model", x: np.ndarray) -> np.ndarray:
    """The model's preprocessing steps applied in order to raw samples (rows of `x`)."""
    for step in model.preprocessing:
        if step["op"] == "scale":
            x = x * step["factor"] + step["offset"]
        else:  # zscore, as the blog's normalize(): centre every feature, divide where std != 0
            mean = model.array(step["mean"], widen=True).astype(np.float64)
            std = model.array(step["std"], widen=True).astype(np.float64)
            x = (x - mean) / np.where(std == 0, 1, std)
    return x


def _pad(x: np.ndarray, g: md.Geometry, value: float) -> np.ndarray:
    """x (N, H, W, C) with the layer's padding rows and columns around it."""
    top, left = g.padding_before()
    need_h = (g.output_shape[0] - 1) * g.strides[0] + g.window[0]
    need_w = (g.output_shape[1] - 1) * g.strides[1] + g.window[1]
    bottom = max(need_h - g.input_shape[0] - top, 0)
    right = max(need_w - g.input_shape[1] - left, 0)
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def _windows(xp: np.ndarray, g: md.Geometry):
    """For each window offset (u, v): the input cells it covers for every output position."""
    oh, ow = g.output_shape[0], g.output_shape[1]
    sh, sw = g.strides
    for u in range(g.window[0]):
        for v in range(g.window[1]):
            yield u, v, xp[:, u:u + sh * (oh - 1) + 1:sh, v:v + sw * (ow - 1) + 1:sw, :]


def conv2d(x: np.ndarray, w: np.ndarray, b: Any, g: md.Geometry) -> np.ndarray:
    """out[y, x, f] = b[f] + sum over u, v, c of in[y*sh + u - top, x*sw + v - left, c] * W[u, v, c, f];
    the kernel turned by 180 degrees for the "convolution" convention."""
    if g.convention == "convolution":
        w = w[::-1, ::-1]
    out = np.zeros((x.shape[0], g.output_shape[0], g.output_shape[1], w.shape[3]))
    for u, v, cells in _windows(_pad(x, g, 0.0), g):
        out += cells @ w[u, v]
    return out + (0 if b is None else b)


def max_pool2d(x: np.ndarray, g: md.Geometry) -> np.ndarray:
    """The maximum of each channel over each window; padded cells are ignored."""
    out = np.full((x.shape[0], *g.output_shape), -np.inf)
    for _, _, cells in _windows(_pad(x, g, -np.inf), g):
        out = np.maximum(out, cells)
    return out


def avg_pool2d(x: np.ndarray, g: md.Geometry, count_include_pad: bool) -> np.ndarray:
    """The sum of each window's cells inside the input, divided by the window's area
    (`count_include_pad`) or by the number of its cells inside the input."""
    total = np.zeros((x.shape[0], *g.output_shape))
    inside = np.zeros((1, g.output_shape[0], g.output_shape[1], 1))
    ones = _pad(np.ones((1, g.input_shape[0], g.input_shape[1], 1)), g, 0.0)
    xp = _pad(x, g, 0.0)
    for (_, _, cells), (_, _, mask) in zip(_windows(xp, g), _windows(ones, g)):
        total += cells
        inside += mask
    return total / (g.window[0] * g.window[1] if count_include_pad else inside)


def forward(model: "Model", x: Any) -> np.ndarray:
    """The model's outputs (its last layer's values) for raw inputs, in float64.

    `x` is a batch of raw samples as `nn-infer` takes them: shape (N, features) or
    (N, *input_shape), e.g. (N, 784) or (N, 28, 28) for MNIST, or one sample of the input's
    shape. The model's preprocessing is applied first (scaling, z-score), then each layer.
    """
    meta = md.parse(model.metadata)
    a = np.asarray(x, dtype=np.float64)
    shape = tuple(meta.input_shape)
    if a.shape == shape or (a.ndim == 1 and a.size == meta.features and len(shape) > 1):
        a = a.reshape(1, -1)
    if a.ndim < 2 or math.prod(a.shape[1:]) != meta.features or (a.ndim > 2 and tuple(a.shape[1:]) != shape):
        raise ValueError(f"expected samples of shape ({meta.features},) or {shape}, found an array of shape {a.shape}")
    a = preprocess(model, a.reshape(a.shape[0], -1))
    t: Dict[str, np.ndarray] = {}

    def tensor(name: str) -> np.ndarray:
        if name not in t:
            t[name] = model.array(name, widen=True).astype(np.float64)
        return t[name]

    for layer in meta.layers:
        g = layer.geometry
        if layer.kind == "dense":
            z = a @ tensor(layer.weight) + (0 if layer.bias is None else tensor(layer.bias))  # type: ignore[arg-type]
        elif layer.kind == "conv2d":
            x4 = a.reshape(-1, *g.input_shape)  # type: ignore[union-attr]
            z = conv2d(x4, tensor(layer.weight), None if layer.bias is None else tensor(layer.bias), g)  # type: ignore[arg-type]
        elif layer.kind == "max_pool2d":
            z = max_pool2d(a.reshape(-1, *g.input_shape), g)  # type: ignore[union-attr,arg-type]
        elif layer.kind == "avg_pool2d":
            z = avg_pool2d(a.reshape(-1, *g.input_shape), g, layer.count_include_pad)  # type: ignore[union-attr,arg-type]
        elif layer.kind == "flatten":
            z = a  # samples are stored flattened in HWC order: nothing moves
        elif layer.kind == "global_avg_pool2d":
            z = a.reshape(-1, *g.input_shape).mean(axis=(1, 2))  # type: ignore[union-attr]
        elif layer.kind == "global_max_pool2d":
            z = a.reshape(-1, *g.input_shape).max(axis=(1, 2))  # type: ignore[union-attr]
        elif layer.kind == "batch_norm":
            z = a.reshape(-1, *g.input_shape)  # type: ignore[union-attr]
            z = (z - tensor(layer.moving_mean)) / np.sqrt(tensor(layer.moving_variance) + layer.epsilon)  # type: ignore[arg-type]
            z = z * (1 if layer.gamma is None else tensor(layer.gamma)) + (0 if layer.beta is None else tensor(layer.beta))
        else:
            raise ValueError(f"unknown layer kind {layer.kind}")
        a = z.reshape(z.shape[0], -1)
        a = activate(layer.activation, a)
    return a


def probabilities(model: "Model", x: Any) -> np.ndarray:
    """Class probabilities as `nn-infer` reports them: the outputs of a model that ends in
    probabilities, `exp` of log-probabilities, and the softmax of logits."""
    out = forward(model, x)
    kind = model.output_kind
    if kind == "probabilities":
        return out
    if kind == "log_probabilities":
        return np.exp(out)
    e = np.exp(out - out.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
