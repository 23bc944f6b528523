"""Builders for what NumPy users hold: the blog's weight dicts (`W1, b1, W2, b2, ...`, rows or
columns layout), Nielsen's weight and bias lists, and the preprocessing steps.

They build the same model `nnconv import` builds from the same arrays saved with `np.savez`
(names `layers.<i>.weight` / `layers.<i>.bias`, weights stored as [in, out], the arrays' own
float dtype, the same default activations and input shape), so `nnm.save` then writes the bytes
`nnconv` would write, apart from the provenance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from . import metadata as md
from .model import TOOL, Model, now_iso8601

ActivationSpec = Union[str, Mapping[str, Any]]


@dataclass
class ZScore:
    """Per-feature standardization, as the blog's `normalize()`: `(x - mean) / std`, where a
    feature whose std is 0 is only centred. Stored as the tensors `preprocessing.mean` and
    `preprocessing.std` of shape [features]."""
    mean: np.ndarray
    std: np.ndarray


def scale(factor: float, offset: float = 0.0) -> Dict[str, Any]:
    """The preprocessing step `x * factor + offset`, e.g. `nnm.scale(1/255)` for pixels."""
    return {"op": "scale", "factor": float(factor), "offset": float(offset)}


def zscore(mean: Any, std: Any) -> ZScore:
    """The preprocessing step `(x - mean) / std` per feature (std 0: centred only), with the
    statistics of the training set (`X.mean(axis=0)`, `X.std(axis=0)`)."""
    return ZScore(np.asarray(mean), np.asarray(std))


def _activation_json(spec: ActivationSpec, location: str) -> Any:
    """An activation as the header writes it, from a name ("relu"), the command-line form
    ("leaky_relu(alpha=0.1)") or the header's object form."""
    if isinstance(spec, str):
        m = re.fullmatch(r"\s*(\w+)\s*\(\s*(\w+)\s*=\s*([^)]+?)\s*\)\s*", spec)
        if m:
            name, key, value = m.groups()
            v: Any = value if key == "approximate" else float(value)
            spec = {"name": name, key: v}
    return md.activation_json(md.parse_activation(spec, location))


def dense_model(weights: Sequence[Any], biases: Sequence[Optional[Any]], activations: Sequence[ActivationSpec], *,
                preprocessing: Union[None, Dict[str, Any], ZScore, Sequence[Union[Dict[str, Any], ZScore]]] = None,
                input_shape: Optional[Sequence[int]] = None, classes: Optional[Sequence[str]] = None,
                output: Optional[str] = None, training: Optional[Mapping[str, Any]] = None,
                provenance: Optional[Mapping[str, Any]] = None) -> Model:
    """A stack of dense layers from weights of shape [in, out] (samples as rows, `Z = X @ W + b`)
    and biases of [out] values (or None)."""
    ws = [np.asarray(w) for w in weights]
    if not ws:
        raise ValueError("a model needs at least one weight matrix")
    if len(biases) != len(ws):
        raise ValueError(f"{len(ws)} weight matrices but {len(biases)} biases")
    if len(activations) != len(ws):
        raise ValueError(f"{len(ws)} layers, but {len(activations)} activations were given")
    for i, w in enumerate(ws):
        if w.ndim != 2:
            raise ValueError(f"weight {i}: expected a 2-D matrix, found shape {w.shape}")
        if w.dtype.kind != "f" and w.dtype.name != "bfloat16":
            raise ValueError(f"weight {i}: expected a float array, found {w.dtype}")
    features = int(ws[0].shape[0])
    shape = list(input_shape) if input_shape is not None else ([28, 28] if features == 784 else [features])
    if int(np.prod(shape)) != features:
        raise ValueError(f"input_shape {shape} has {int(np.prod(shape))} features, but the first layer takes {features}")
    layers: List[Dict[str, Any]] = []
    tensors: Dict[str, np.ndarray] = {}
    for i, (w, b, a) in enumerate(zip(ws, biases, activations)):
        layer: Dict[str, Any] = {"kind": "dense", "in": int(w.shape[0]), "out": int(w.shape[1]),
                                 "activation": _activation_json(a, f"activations[{i}]"), "weight": f"layers.{i}.weight"}
        tensors[f"layers.{i}.weight"] = w
        if b is not None:
            layer["bias"] = f"layers.{i}.bias"
            tensors[f"layers.{i}.bias"] = np.asarray(b).reshape(-1)
        layers.append(layer)
    steps: List[Dict[str, Any]] = []
    statistics: Dict[str, np.ndarray] = {}
    if preprocessing is not None:
        items = preprocessing if isinstance(preprocessing, (list, tuple)) else [preprocessing]
        for step in items:
            if isinstance(step, ZScore):
                statistics["preprocessing.mean"] = step.mean.reshape(-1)
                statistics["preprocessing.std"] = step.std.reshape(-1)
                steps.append({"op": "zscore", "mean": "preprocessing.mean", "std": "preprocessing.std"})
            else:
                steps.append(dict(step))
    tensors.update(statistics)
    meta: Dict[str, Any] = {"input": {"shape": shape, "features": features}, "layers": layers,
                            "preprocessing": steps, "classes": list(classes or [])}
    if output is not None:
        meta["output"] = {"kind": output}
    if training is not None:
        meta["training"] = dict(training)
    meta["provenance"] = dict(provenance) if provenance is not None else {"tool": TOOL, "created": now_iso8601()}
    model = Model(md.parse(meta).json, tensors)
    return model


_NAME = re.compile(r"^(?:([WwBb])(\d{1,6})|(weights|biases)([_/])(\d{1,6}))$")


def from_blog(params: Mapping[str, Any], layout: Optional[str] = None, activations: Optional[Sequence[ActivationSpec]] = None,
              preprocessing: Any = None, input_shape: Optional[Sequence[int]] = None,
              classes: Optional[Sequence[str]] = None, **kwargs: Any) -> Model:
    """A model from the blog's parameter dict, as `nnconv import` reads it from an `np.savez` file.

    `params` maps `W1, b1, W2, b2, ...` (or Nielsen's `weights_0, biases_0, ...`) to arrays.
    `layout` is "rows" (samples as rows: `W (in, out)`, `b (1, out)`, `Z = X @ W + b`, seeds 000
    and 002) or "columns" (`W (out, in)`, `b (out, 1)`, `Z = W @ X + b`, seeds 001 and 003,
    Nielsen); None infers it from the shapes when only one fits. `activations` default to ReLU
    hidden layers and a softmax output (sigmoid for one output) for rows, sigmoid everywhere
    for columns. `preprocessing` is `nnm.scale(1/255)`, `nnm.zscore(mean, std)` or a list of
    them. `input_shape` defaults to [28, 28] for 784 inputs.

        model = nnm.from_blog({"W1": W1, "b1": b1, "W2": W2, "b2": b2}, layout="rows",
                              activations=["relu", "softmax"], preprocessing=nnm.scale(1 / 255))
        nnm.save("model.nnm", model)
    """
    weights: Dict[int, np.ndarray] = {}
    biases: Dict[int, np.ndarray] = {}
    scheme = None
    for name, value in params.items():
        m = _NAME.match(name)
        if not m:
            raise ValueError(f"{name}: blog parameters are W1, b1, W2, b2, ... (or weights_0, biases_0, ...)")
        if m.group(1):
            kind, index, this = ("W" if m.group(1) in "Ww" else "b"), int(m.group(2)), "numbered"
        else:
            kind, index, this = ("W" if m.group(3) == "weights" else "b"), int(m.group(5)), "nielsen" + m.group(4)
        if scheme is not None and scheme != this:
            raise ValueError(f"{name}: mixes two naming schemes")
        scheme = this
        (weights if kind == "W" else biases)[index] = np.asarray(value)
    if not weights:
        raise ValueError("no weight matrices found (expected W1, b1, W2, b2, ... or weights_0, biases_0, ...)")
    first = 1 if scheme == "numbered" else 0
    indices = list(range(first, first + len(weights)))
    for i in indices:
        if i not in weights:
            raise ValueError(f"weight {i} is missing: the weight matrices must be numbered consecutively from {first}")
        if i not in biases:
            raise ValueError(f"bias {i} is missing")
    if set(biases) - set(weights):
        raise ValueError("a bias without a weight matrix")
    return from_lists([weights[i] for i in indices], [biases[i] for i in indices], layout=layout, activations=activations,
                      preprocessing=preprocessing, input_shape=input_shape, classes=classes, **kwargs)


def _fits(layout: str, ws: Sequence[np.ndarray], bs: Sequence[np.ndarray]) -> bool:
    previous = None
    for w, b in zip(ws, bs):
        fan_in, fan_out = (w.shape[0], w.shape[1]) if layout == "rows" else (w.shape[1], w.shape[0])
        if previous is not None and previous != fan_in:
            return False
        if b.size != fan_out:
            return False
        if b.ndim == 2 and list(b.shape) != ([1, fan_out] if layout == "rows" else [fan_out, 1]):
            return False
        previous = fan_out
    return True


def from_lists(weights: Sequence[Any], biases: Sequence[Any], layout: Optional[str] = None,
               activations: Optional[Sequence[ActivationSpec]] = None, **kwargs: Any) -> Model:
    """A model from lists of weights and biases in the blog's rows or columns layout (see
    `from_blog`); `from_nielsen` is this with the columns layout."""
    ws = [np.asarray(w) for w in weights]
    bs = [np.asarray(b) for b in biases]
    for i, w in enumerate(ws):
        if w.ndim != 2:
            raise ValueError(f"weight {i}: expected a 2-D weight matrix, found shape {w.shape}")
    for i, b in enumerate(bs):
        if not (b.ndim == 1 or (b.ndim == 2 and 1 in b.shape)):
            raise ValueError(f"bias {i}: expected a bias vector (n), (1, n) or (n, 1), found shape {b.shape}")
    fits = [l for l in ("rows", "columns") if _fits(l, ws, bs)]
    if layout is not None:
        if layout not in ("rows", "columns"):
            raise ValueError(f"layout must be 'rows' or 'columns', not {layout!r}")
        if layout not in fits:
            raise ValueError(f"the shapes {[w.shape for w in ws]} do not chain as {layout}")
    elif len(fits) == 1:
        layout = fits[0]
    elif not fits:
        raise ValueError(f"the shapes {[w.shape for w in ws]} chain neither as rows nor as columns")
    else:
        raise ValueError(f"the shapes {[w.shape for w in ws]} chain both as rows and as columns: pass layout='rows' or 'columns'")
    if layout == "columns":
        ws = [w.T for w in ws]
    if activations is None:
        outputs = ws[-1].shape[1]
        activations = (["relu"] * (len(ws) - 1) + ["sigmoid" if outputs == 1 else "softmax"]) if layout == "rows" \
            else ["sigmoid"] * len(ws)
    return dense_model(ws, [b.reshape(-1) for b in bs], activations, **kwargs)


def from_nielsen(weights: Sequence[Any], biases: Sequence[Any], activations: Optional[Sequence[ActivationSpec]] = None,
                 **kwargs: Any) -> Model:
    """A model from Nielsen's `net.weights` (each (out, in)) and `net.biases` (each (out, 1)):
    sigmoid layers unless `activations` says otherwise."""
    return from_lists(weights, biases, layout="columns", activations=activations, **kwargs)
