"""What the framework adapters share, computed with NumPy alone: each layer's padding and
kernel, and the PyTorch layout (modules and state dict) that `nnm.torch` instantiates, so that
the layout is tested against `nnconv export model.pth` even where PyTorch is not installed."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from . import metadata as md

#: One PyTorch module: the name of its class in `torch.nn` and its keyword arguments.
Module = Tuple[str, Dict[str, Any]]


def pads(g: md.Geometry) -> List[int]:
    """[top, left, bottom, right] zero rows and columns of a window layer."""
    if isinstance(g.padding, list):
        return list(g.padding)
    if g.padding == "valid":
        return [0, 0, 0, 0]
    top, left = g.padding_before()
    total = [max((g.output_shape[a] - 1) * g.strides[a] + g.window[a] - g.input_shape[a], 0) for a in (0, 1)]
    return [top, left, total[0] - top, total[1] - left]


def kernel(model, layer: md.LayerInfo) -> np.ndarray:
    """A conv2d kernel [height, width, in, out] in cross-correlation form (what Keras and
    PyTorch compute): turned by 180 degrees when the file stores a true convolution."""
    w = model.array(layer.weight, widen=True)
    return w[::-1, ::-1] if layer.geometry.convention == "convolution" else w


def spatial_input(meta: md.ParsedMetadata) -> Optional[List[int]]:
    """[height, width, channels] when the first layer takes an image, else None (it takes a vector)."""
    first = meta.layers[0]
    if first.geometry is not None and len(first.geometry.input_shape) == 3 and first.kind != "flatten":
        return list(first.geometry.input_shape)
    return None


def _torch_activation(act: md.Activation) -> Optional[Module]:
    name, p = act
    if name == "identity":
        return None
    if name == "relu":
        return ("Hardtanh", {"min_val": 0.0, "max_val": p["max_value"]}) if "max_value" in p else ("ReLU", {})
    simple = {"sigmoid": "Sigmoid", "tanh": "Tanh", "selu": "SELU", "softplus": "Softplus", "swish": "SiLU",
              "hard_sigmoid": "Hardsigmoid", "relu6": "ReLU6"}
    if name in simple:
        return (simple[name], {})
    if name == "softmax":
        return ("Softmax", {"dim": 1})
    if name == "log_softmax":
        return ("LogSoftmax", {"dim": 1})
    if name == "leaky_relu":
        return ("LeakyReLU", {"negative_slope": p["alpha"]})
    if name == "elu":
        return ("ELU", {"alpha": p["alpha"]})
    if name == "gelu":
        return ("GELU", {"approximate": "tanh" if p.get("approximate") == "tanh" else "none"})
    raise ValueError(f"no PyTorch module for the activation {name}")


def torch_layout(model) -> Tuple[List[Module], List[Tuple[str, Callable[[], np.ndarray]]]]:
    """The modules of the `nn.Sequential` that computes the model's layers and, per state-dict
    key (the module's index, `"0.weight"`), how to make its array: the layout of
    Sources/NNPyTorch/PyTorchLayout.swift. Raises ValueError, naming the layer, for what no
    standard module computes."""
    meta = md.parse(model.metadata)
    modules: List[Module] = []
    entries: List[Tuple[str, Callable[[], np.ndarray]]] = []
    flattened: Optional[List[int]] = None  # the [h, w, c] map a flatten just turned into a vector

    def t(name: str) -> Callable[[], np.ndarray]:
        return lambda: model.array(name, widen=True)

    for i, layer in enumerate(meta.layers):
        g = layer.geometry

        def refuse(why: str) -> ValueError:
            return ValueError(f"layers[{i}] ({layer.kind}): {why}; PyTorch has no standard module for it")

        if layer.kind == "dense":
            if flattened is not None and len(flattened) == 3:
                # nn.Flatten gives CHW order; the file's weight rows are in HWC order.
                h, w, c = flattened
                weight = (lambda name=layer.weight, h=h, w=w, c=c, n=layer.outputs:
                          model.array(name, widen=True).reshape(h, w, c, n).transpose(3, 2, 0, 1).reshape(n, -1))
            else:
                weight = (lambda name=layer.weight: model.array(name, widen=True).T)
            flattened = None
            key = len(modules)
            modules.append(("Linear", {"in_features": layer.inputs, "out_features": layer.outputs, "bias": layer.bias is not None}))
            entries.append((f"{key}.weight", weight))
            if layer.bias is not None:
                entries.append((f"{key}.bias", t(layer.bias)))
        elif layer.kind == "conv2d":
            p = pads(g)
            padding = (p[0], p[1])
            if p[0] != p[2] or p[1] != p[3]:
                modules.append(("ZeroPad2d", {"padding": (p[1], p[3], p[0], p[2])}))
                padding = (0, 0)
            key = len(modules)
            modules.append(("Conv2d", {"in_channels": g.input_shape[2], "out_channels": g.output_shape[2],
                                       "kernel_size": tuple(g.window), "stride": tuple(g.strides), "padding": padding,
                                       "bias": layer.bias is not None}))
            entries.append((f"{key}.weight", lambda layer=layer: np.ascontiguousarray(kernel(model, layer).transpose(3, 2, 0, 1))))
            if layer.bias is not None:
                entries.append((f"{key}.bias", t(layer.bias)))
        elif layer.kind in ("max_pool2d", "avg_pool2d"):
            p = pads(g)
            average = layer.kind == "avg_pool2d"
            # PyTorch pads both sides equally, by at most half the window.
            symmetric = p[0] == p[2] and p[1] == p[3] and p[0] * 2 <= g.window[0] and p[1] * 2 <= g.window[1]
            padding = (p[0], p[1])
            if not symmetric:
                if average and not layer.count_include_pad:
                    raise refuse(f"padding {p} is not symmetric or exceeds half the window, and padded cells do not count in the average")
                sides = (p[1], p[3], p[0], p[2])
                modules.append(("ZeroPad2d", {"padding": sides}) if average
                               else ("ConstantPad2d", {"padding": sides, "value": float("-inf")}))
                padding = (0, 0)
            if average:
                modules.append(("AvgPool2d", {"kernel_size": tuple(g.window), "stride": tuple(g.strides), "padding": padding,
                                              "count_include_pad": bool(layer.count_include_pad or padding == (0, 0))}))
            else:
                modules.append(("MaxPool2d", {"kernel_size": tuple(g.window), "stride": tuple(g.strides), "padding": padding}))
        elif layer.kind in ("global_avg_pool2d", "global_max_pool2d"):
            modules.append(("AdaptiveAvgPool2d" if layer.kind == "global_avg_pool2d" else "AdaptiveMaxPool2d", {"output_size": 1}))
            modules.append(("Flatten", {}))
        elif layer.kind == "flatten":
            flattened = g.input_shape
            modules.append(("Flatten", {}))
        elif layer.kind == "batch_norm":
            shape = g.input_shape
            if flattened is not None and len(flattened) == 3 and len(shape) == 1:
                h, w, c = flattened
                arrange: Callable[[np.ndarray], np.ndarray] = lambda v, h=h, w=w, c=c: v.reshape(h, w, c).transpose(2, 0, 1).reshape(-1)
            else:
                arrange = lambda v: v
            key = len(modules)
            modules.append(("BatchNorm2d" if len(shape) == 3 else "BatchNorm1d", {"num_features": shape[-1], "eps": layer.epsilon}))
            like = layer.moving_mean

            def vector(name: Optional[str], fill: float, arrange=arrange, like=like) -> Callable[[], np.ndarray]:
                if name is None:  # PyTorch has both gamma and beta or neither: a missing one is neutral
                    return lambda: np.full(model.array(like).shape, fill, dtype=model.array(like, widen=True).dtype)
                return lambda: arrange(model.array(name, widen=True))
            entries.append((f"{key}.weight", vector(layer.gamma, 1.0)))
            entries.append((f"{key}.bias", vector(layer.beta, 0.0)))
            entries.append((f"{key}.running_mean", vector(layer.moving_mean, 0.0)))
            entries.append((f"{key}.running_var", vector(layer.moving_variance, 1.0)))
            entries.append((f"{key}.num_batches_tracked", lambda: np.array(0, dtype=np.int64)))
        module = _torch_activation(layer.activation)
        if module is not None:
            modules.append(module)
    return modules, entries


def torch_state_arrays(model) -> "OrderedDict[str, np.ndarray]":
    """The state dict of `nnm.torch.sequential(model)` as C-contiguous NumPy arrays."""
    _, entries = torch_layout(model)
    return OrderedDict((key, np.asarray(make(), order="C")) for key, make in entries)
