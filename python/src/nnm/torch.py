"""PyTorch adapter (used only when torch is installed): a `.nnm` model as an `nn.Sequential` and
its state dict, in PyTorch's layouts.

    import nnm, nnm.torch
    model = nnm.load("model.nnm")
    net = nnm.torch.sequential(model)            # nn.Sequential with the weights loaded
    out = net(nnm.torch.inputs(model, images))   # preprocessing applied, NCHW for images

The layout is the one `nnconv export model.pth` writes (Sources/NNPyTorch/PyTorchLayout.swift;
computed in `nnm._layout.torch_layout`): `nn.Linear` weights (out, in); `nn.Conv2d` kernels OIHW
(ours are HWIO; a true convolution is turned by 180 degrees); images NCHW, so the first Linear
after a flatten takes its inputs channel-first and its columns are permuted from the file's HWC
order; batch normalization as `nn.BatchNorm2d`/`nn.BatchNorm1d` with `weight`, `bias`,
`running_mean`, `running_var` and `num_batches_tracked` (a missing gamma or beta becomes ones or
zeros). State-dict keys are the indices of the modules in the Sequential (`"0.weight"`,
`"2.bias"`, ...). What no standard module computes is refused with a ValueError naming the layer.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from . import metadata as md
from ._layout import spatial_input, torch_layout, torch_state_arrays

try:
    import torch as _torch
    from torch import nn as _nn
except ImportError as _error:  # pragma: no cover - depends on the environment
    raise ImportError("nnm.torch needs PyTorch (pip install torch)") from _error


def state_dict(model) -> "OrderedDict[str, _torch.Tensor]":
    """The model's parameters as the state dict of `sequential(model)`, in PyTorch's layouts
    (copies: PyTorch tensors own their memory)."""
    return OrderedDict((key, _torch.from_numpy(np.array(a, copy=True, order="C"))) for key, a in torch_state_arrays(model).items())


def sequential(model, dtype: Any = None) -> "_nn.Sequential":
    """An `nn.Sequential` that computes the model's layers (not its preprocessing: see
    `inputs`), with `state_dict(model)` loaded, in eval mode. `dtype` (e.g. `torch.float64`)
    defaults to the weights' float type."""
    modules, _ = torch_layout(model)
    net = _nn.Sequential(*(getattr(_nn, name)(**kwargs) for name, kwargs in modules))
    weights = state_dict(model)
    if dtype is None:
        dtype = next((v.dtype for v in weights.values() if v.is_floating_point()), _torch.float32)
    net = net.to(dtype)
    net.load_state_dict(weights)
    return net.eval()


def inputs(model, x: Any, dtype: Any = None) -> "_torch.Tensor":
    """Raw samples (N, features) or (N, *input_shape) with the model's preprocessing applied,
    as the tensor `sequential(model)` takes: (N, features), or NCHW when the first layer is
    spatial."""
    from .reference import preprocess
    meta = md.parse(model.metadata)
    a = preprocess(model, np.asarray(x, dtype=np.float64).reshape(-1, meta.features))
    image = spatial_input(meta)
    if image is not None:
        a = a.reshape(-1, *image).transpose(0, 3, 1, 2)
    tensor = _torch.from_numpy(np.ascontiguousarray(a))
    return tensor.to(dtype) if dtype is not None else tensor
