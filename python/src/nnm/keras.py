"""Keras adapter (used only when Keras 3 is installed): a `.nnm` model as a `keras.Sequential`
and its weights in the order and orientation Keras expects.

    import nnm, nnm.keras
    model = nnm.load("model.nnm")
    net = nnm.keras.sequential(model)             # keras.Sequential with the weights set
    out = net.predict(nnm.keras.inputs(model, images))

Keras's layouts are the file's: Dense kernels (in, out), Conv2D kernels HWIO (a true
convolution is turned by 180 degrees), channels-last images, so `Flatten` gives the file's HWC
order; BatchNormalization holds [gamma, beta, moving_mean, moving_variance] (without gamma or
beta for `scale=False`, `center=False`). Explicit padding becomes a `ZeroPadding2D` layer in
front; what Keras cannot express (padded cells counted in an average, asymmetric padding of a
maximum) is refused with the layer named.
"""

from __future__ import annotations

from typing import Any, List

import numpy as np

from . import metadata as md
from ._layout import kernel, pads, spatial_input

try:
    import keras as _keras
except ImportError as _error:  # pragma: no cover - depends on the environment
    raise ImportError("nnm.keras needs Keras 3 (pip install keras and a backend such as jax)") from _error


def _activation_layers(act: md.Activation) -> List[Any]:
    name, p = act
    L = _keras.layers
    if name == "identity":
        return []
    if name == "relu" and "max_value" in p:
        return [L.ReLU(max_value=p["max_value"])]
    if name == "leaky_relu":
        return [L.LeakyReLU(negative_slope=p["alpha"])]
    if name == "elu" and p["alpha"] != 1:
        return [L.ELU(alpha=p["alpha"])]
    if name == "gelu":
        approximate = p.get("approximate") == "tanh"
        return [L.Activation(lambda x: _keras.activations.gelu(x, approximate=approximate))]
    names = {"swish": "silu"}
    return [L.Activation(names.get(name, name))]


def weights(model) -> List[np.ndarray]:
    """The model's parameters in the order `sequential(model).get_weights()` lists them."""
    meta = md.parse(model.metadata)
    out: List[np.ndarray] = []
    for layer in meta.layers:
        if layer.kind == "dense":
            out.append(model.array(layer.weight, widen=True))
        elif layer.kind == "conv2d":
            out.append(np.ascontiguousarray(kernel(model, layer)))
        elif layer.kind == "batch_norm":
            for name in (layer.gamma, layer.beta):
                if name is not None:
                    out.append(model.array(name, widen=True))
            out += [model.array(layer.moving_mean, widen=True), model.array(layer.moving_variance, widen=True)]
            continue
        else:
            continue
        if layer.bias is not None:
            out.append(model.array(layer.bias, widen=True))
    return out


def sequential(model, dtype: str = "float32") -> "_keras.Sequential":
    """A `keras.Sequential` that computes the model's layers (not its preprocessing: see
    `inputs`), with `weights(model)` set."""
    meta = md.parse(model.metadata)
    L = _keras.layers
    image = spatial_input(meta)
    shape = tuple(image) if image is not None else (meta.features,)
    layers: List[Any] = [_keras.Input(shape=shape, dtype=dtype)]
    for i, layer in enumerate(meta.layers):
        g = layer.geometry

        def refuse(why: str) -> ValueError:
            return ValueError(f"layers[{i}] ({layer.kind}): {why}; Keras has no standard layer for it")

        if layer.kind in ("conv2d", "max_pool2d", "avg_pool2d"):
            padding = g.padding
            if isinstance(padding, list):
                p = pads(g)
                if layer.kind == "max_pool2d" and any(p):
                    raise refuse(f"explicit padding {p} of a maximum")
                if layer.kind == "avg_pool2d" and any(p) and not layer.count_include_pad:
                    raise refuse(f"explicit padding {p} whose cells do not count in the average")
                if any(p):
                    layers.append(L.ZeroPadding2D(((p[0], p[2]), (p[1], p[3])), dtype=dtype))
                padding = "valid"
            elif padding == "same" and layer.kind == "avg_pool2d" and layer.count_include_pad and any(pads(g)):
                raise refuse("'same' padding whose cells count in the average")
            if layer.kind == "conv2d":
                layers.append(L.Conv2D(g.output_shape[2], tuple(g.window), strides=tuple(g.strides), padding=padding,
                                       use_bias=layer.bias is not None, dtype=dtype))
            elif layer.kind == "max_pool2d":
                layers.append(L.MaxPooling2D(tuple(g.window), strides=tuple(g.strides), padding=padding, dtype=dtype))
            else:
                layers.append(L.AveragePooling2D(tuple(g.window), strides=tuple(g.strides), padding=padding, dtype=dtype))
        elif layer.kind == "dense":
            layers.append(L.Dense(layer.outputs, use_bias=layer.bias is not None, dtype=dtype))
        elif layer.kind == "flatten":
            layers.append(L.Flatten(dtype=dtype))
        elif layer.kind == "global_avg_pool2d":
            layers.append(L.GlobalAveragePooling2D(dtype=dtype))
        elif layer.kind == "global_max_pool2d":
            layers.append(L.GlobalMaxPooling2D(dtype=dtype))
        elif layer.kind == "batch_norm":
            layers.append(L.BatchNormalization(epsilon=layer.epsilon, scale=layer.gamma is not None,
                                               center=layer.beta is not None, dtype=dtype))
        layers += _activation_layers(layer.activation)
    net = _keras.Sequential(layers)
    net.set_weights(weights(model))
    return net


def inputs(model, x: Any, dtype: str = "float32") -> np.ndarray:
    """Raw samples (N, features) or (N, *input_shape) with the model's preprocessing applied,
    shaped as `sequential(model)` takes them: (N, height, width, channels) when the first
    layer is spatial, else (N, features)."""
    from .reference import preprocess
    meta = md.parse(model.metadata)
    a = preprocess(model, np.asarray(x, dtype=np.float64).reshape(-1, meta.features))
    image = spatial_input(meta)
    if image is not None:
        a = a.reshape(-1, *image)
    return a.astype(dtype)
