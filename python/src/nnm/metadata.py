"""The `.nnm` header's metadata: reading it with the Swift reader's checks and messages
(`ModelMetadata(json:)` in Sources/NNCore/MetadataCoding.swift), the canonical form the Swift
writer emits (`ModelMetadata.json`), and the structural validation against the tensors
(`Model.validateStructure()` in Sources/NNCore/ModelValidation.swift).

The metadata is kept as plain JSON-like dicts and lists. `canonical()` returns the form the
Swift writer would write for the same model: members in the specified order, numbers that the
format defines as real numbers as floats, defaults filled in (an empty `classes`, an
`identity` activation), unknown members kept after the known ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ._json import format_double
from .errors import ModelProblem, describe_shape

MAXIMUM_DIMENSION = (1 << 31) - 1
MAXIMUM_WINDOW = 1 << 16
INT_MAX = (1 << 63) - 1

LAYER_KINDS = ["dense", "conv2d", "max_pool2d", "flatten", "batch_norm", "avg_pool2d", "global_avg_pool2d", "global_max_pool2d"]
KIND_MINOR = {"dense": 0, "conv2d": 1, "max_pool2d": 1, "flatten": 1,
              "batch_norm": 2, "avg_pool2d": 2, "global_avg_pool2d": 2, "global_max_pool2d": 2}
ACTIVATION_NAMES = ["identity", "relu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu", "selu", "gelu",
                    "softplus", "swish", "hard_sigmoid", "relu6", "log_softmax"]
BASIC_ACTIVATIONS = {"identity", "relu", "sigmoid", "tanh", "softmax"}
OUTPUT_KINDS = ["probabilities", "log_probabilities", "logits"]
CONVENTIONS = ["cross-correlation", "convolution"]
FLOAT_DTYPES = {"f16", "bf16", "f32", "f64"}

_LAYER_KNOWN = {"kind", "in", "out", "activation", "weight", "weight_scale", "compute", "input_quantization", "bias", "input_shape", "output_shape",
                "kernel", "pool", "strides", "padding", "convention"}
_BATCH_NORM_KNOWN = {"epsilon", "gamma", "beta", "moving_mean", "moving_variance"}
_TOP_KNOWN = {"input", "layers", "preprocessing", "classes", "output", "training", "provenance", "tensors"}
_TRAINING_KNOWN = {"loss", "optimizer", "hyperparameters", "epochs", "dataset", "history", "optimizer_state"}
_HISTORY_KEYS = ["train_loss", "test_loss", "train_accuracy", "test_accuracy", "validation_loss",
                 "validation_accuracy", "seconds"]


def swift_description(d: float) -> str:
    """A double as Swift's `"\\(d)"` prints it (messages quote numbers this way)."""
    if math.isnan(d):
        return "nan"
    if math.isinf(d):
        return "inf" if d > 0 else "-inf"
    return format_double(d)


def float32_value(d: float) -> float:
    """`d` rounded to f32 (as Swift's `Float(d)`: past the largest f32, infinity), as a double."""
    with np.errstate(over="ignore"):
        return float(np.float32(d))


def float32_description(d: float) -> str:
    """An f32 value as Swift's `"\\(Float)"` prints it: the shortest digits that read back as it."""
    if math.isnan(d):
        return "nan"
    if math.isinf(d):
        return "inf" if d > 0 else "-inf"
    return str(np.float32(d))


def kind_name(v: Any) -> str:
    """A short name for the kind of a JSON value, for messages."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, (list, tuple)):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def int_value(v: Any) -> Optional[int]:
    """The value as an integer when it is one (or a float with an exact integer value below
    9e15), as `JSONValue.intValue`."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if -(1 << 63) <= v <= INT_MAX else None
    if isinstance(v, float):
        if math.isfinite(v) and v == math.floor(v) and abs(v) < 9.0e15:
            return int(v)
    return None


def _bad(location: str, expected: str, found: str) -> ModelProblem:
    return ModelProblem.invalid_field(location, expected, found)


class _Fields:
    """Reads typed members of a JSON object, naming the path of anything wrong (FieldReader)."""

    def __init__(self, value: Any, path: str, present: bool = True) -> None:
        if not present:
            raise _bad(path, "an object", "nothing")
        if not isinstance(value, dict):
            raise _bad(path, "an object", kind_name(value))
        self.o: Dict[str, Any] = value
        self.path = path

    def loc(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def value(self, key: str) -> Any:
        if key not in self.o:
            raise _bad(self.loc(key), "a value", "nothing")
        return self.o[key]

    def string(self, key: str) -> str:
        v = self.value(key)
        if not isinstance(v, str):
            raise _bad(self.loc(key), "a string", kind_name(v))
        return v

    def optional_string(self, key: str) -> Optional[str]:
        v = self.o.get(key)
        if v is None:
            return None
        if not isinstance(v, str):
            raise _bad(self.loc(key), "a string", kind_name(v))
        return v

    def int(self, key: str, lo: int = 0, hi: int = MAXIMUM_DIMENSION) -> int:
        v = self.value(key)
        i = int_value(v)
        if i is None:
            raise _bad(self.loc(key), "an integer", kind_name(v))
        if not lo <= i <= hi:
            raise _bad(self.loc(key), f"an integer in {lo}...{hi}", str(i))
        return i

    def double(self, key: str) -> float:
        v = self.value(key)
        if not _is_number(v):
            raise _bad(self.loc(key), "a number", kind_name(v))
        return float(v)

    def optional_double(self, key: str) -> Optional[float]:
        v = self.o.get(key)
        if v is None:
            return None
        if not _is_number(v):
            raise _bad(self.loc(key), "a number", kind_name(v))
        return float(v)

    def array(self, key: str) -> List[Any]:
        v = self.value(key)
        if not isinstance(v, (list, tuple)):
            raise _bad(self.loc(key), "an array", kind_name(v))
        return list(v)

    def optional_object(self, key: str) -> Optional[Dict[str, Any]]:
        v = self.o.get(key)
        if v is None:
            return None
        if not isinstance(v, dict):
            raise _bad(self.loc(key), "an object", kind_name(v))
        return v

    def int_array(self, key: str, lo: int, hi: int) -> List[int]:
        out = []
        for i, v in enumerate(self.array(key)):
            n = int_value(v)
            if n is None or not lo <= n <= hi:
                raise _bad(f"{self.loc(key)}[{i}]", f"an integer in {lo}...{hi}", str(n) if n is not None else kind_name(v))
            out.append(n)
        return out

    def enum(self, key: str, allowed: Sequence[str]) -> str:
        s = self.string(key)
        if s not in allowed:
            raise _bad(self.loc(key), "one of " + ", ".join(allowed), f'"{s}"')
        return s

    def unknown(self, known: set) -> Dict[str, Any]:
        return {k: v for k, v in self.o.items() if k not in known}


def _product(dims: Sequence[int]) -> Optional[int]:
    """The product, or None past Int64 (ShapeMath.byteCount with element size 1)."""
    total = 1
    for d in dims:
        if d < 0:
            return None
        total *= d
        if total > INT_MAX:
            return None
    return total


# ---- activations ----

Activation = Tuple[str, Dict[str, Any]]  # (name, parameters); "relu" with max_value is the capped ReLU


def parse_activation(v: Any, location: str) -> Activation:
    names = "one of " + ", ".join(ACTIVATION_NAMES)
    if isinstance(v, str):
        if v == "leaky_relu":
            raise _bad(location, '{"name": "leaky_relu", "alpha": ...} (its slope has no common default)', '"leaky_relu"')
        if v not in ACTIVATION_NAMES:
            raise _bad(location, names, f'"{v}"')
        if v == "elu":
            return ("elu", {"alpha": 1.0})
        if v == "gelu":
            return ("gelu", {"approximate": "none"})
        return (v, {})
    if not isinstance(v, dict):
        raise _bad(location, 'an activation name or {"name": ..., parameters}', kind_name(v))
    r = _Fields(v, location)
    name = r.string("name")
    if name == "leaky_relu":
        parameters = ["alpha"]
        act: Activation = ("leaky_relu", {"alpha": r.double("alpha")})
    elif name == "elu":
        parameters = ["alpha"]
        alpha = r.optional_double("alpha")
        act = ("elu", {"alpha": 1.0 if alpha is None else alpha})
    elif name == "gelu":
        parameters = ["approximate"]
        act = ("gelu", {"approximate": "none" if "approximate" not in r.o else r.enum("approximate", ["none", "tanh"])})
    elif name == "relu":
        parameters = ["max_value"]
        m = r.optional_double("max_value")
        act = ("relu", {} if m is None else {"max_value": m})
    else:
        if name not in ACTIVATION_NAMES:
            raise _bad(r.loc("name"), names, f'"{name}"')
        parameters = []
        act = (name, {})
    for extra in r.o:
        if extra != "name" and extra not in parameters:
            expected = f"no parameters for {name}" if not parameters else f"only {', '.join(parameters)} as parameters of {name}"
            raise _bad(r.loc(extra), expected, f"a member '{extra}'")
    return act


def activation_json(act: Activation) -> Any:
    """The shortest form, as the Swift writer: a bare name unless a parameter differs from its default."""
    name, p = act
    if name == "leaky_relu":
        return {"name": "leaky_relu", "alpha": float(p["alpha"])}
    if name == "elu" and p.get("alpha", 1.0) != 1:
        return {"name": "elu", "alpha": float(p["alpha"])}
    if name == "gelu" and p.get("approximate") == "tanh":
        return {"name": "gelu", "approximate": "tanh"}
    if name == "relu" and "max_value" in p:
        return {"name": "relu", "max_value": float(p["max_value"])}
    return name


def activation_minor(act: Activation) -> int:
    name, p = act
    return 0 if name in BASIC_ACTIVATIONS and "max_value" not in p else 2


# ---- layers ----

@dataclass
class Geometry:
    """SpatialGeometry: sample shapes in and out, and the window of a conv2d or pooling layer."""
    input_shape: List[int]
    output_shape: List[int]
    window: List[int] = field(default_factory=list)
    strides: List[int] = field(default_factory=list)
    padding: Any = "valid"  # "valid", "same" or [top, left, bottom, right]
    convention: str = "cross-correlation"

    @property
    def input_features(self) -> int:
        return math.prod(self.input_shape)

    @property
    def output_features(self) -> int:
        return math.prod(self.output_shape)

    def padding_before(self) -> Tuple[int, int]:
        """Zero rows and columns before the input (top, left)."""
        if len(self.window) != 2 or self.padding == "valid":
            return (0, 0)
        if self.padding == "same":
            return tuple(max((self.output_shape[a] - 1) * self.strides[a] + self.window[a] - self.input_shape[a], 0) // 2
                         for a in (0, 1))  # type: ignore[return-value]
        return (self.padding[0], self.padding[1])


def _require_sample(shape: List[int], location: str) -> None:
    if len(shape) != 3 or not all(1 <= d <= MAXIMUM_DIMENSION for d in shape):
        raise _bad(f"{location}.input_shape", "[height, width, channels], each >= 1", describe_shape(shape))


def output_length(n: int, window: int, stride: int, padding: Any, axis: int) -> Optional[int]:
    if padding == "valid":
        return (n - window) // stride + 1 if n >= window else None
    if padding == "same":
        return (n + stride - 1) // stride
    padded = n + (padding[0] + padding[2] if axis == 0 else padding[1] + padding[3])
    return (padded - window) // stride + 1 if padded >= window else None


def windowed_geometry(input_shape: List[int], window: List[int], strides: List[int], padding: Any, output_channels: int,
                      convention: str, location: str, window_key: str) -> Geometry:
    _require_sample(input_shape, location)
    if len(window) != 2 or not all(1 <= w <= MAXIMUM_WINDOW for w in window):
        raise _bad(f"{location}.{window_key}", f"[height, width], each 1...{MAXIMUM_WINDOW}", describe_shape(window))
    if len(strides) != 2 or not all(1 <= s <= MAXIMUM_WINDOW for s in strides):
        raise _bad(f"{location}.strides", f"[height, width], each 1...{MAXIMUM_WINDOW}", describe_shape(strides))
    if not 1 <= output_channels <= MAXIMUM_DIMENSION:
        raise _bad(location, "at least one output channel", str(output_channels))
    if isinstance(padding, list):
        p = padding
        if not (0 <= p[0] < window[0] and 0 <= p[2] < window[0] and 0 <= p[1] < window[1] and 0 <= p[3] < window[1]):
            raise _bad(f"{location}.padding", f"[top, left, bottom, right] pads from 0 to less than the {window_key} {describe_shape(window)}",
                       "[" + ", ".join(str(x) for x in p) + "]")
    out = []
    for axis in (0, 1):
        n = output_length(input_shape[axis], window[axis], strides[axis], padding, axis)
        if n is None:
            fit = ("padded by [" + ", ".join(str(x) for x in padding) + "]") if isinstance(padding, list) else "with 'valid' padding"
            raise _bad(f"{location}.{window_key}", f"a window that fits the input {describe_shape(input_shape)} {fit}", describe_shape(window))
        out.append(n)
    out.append(output_channels)
    f_out, f_in = _product(out), _product(input_shape)
    if f_out is None or f_out > MAXIMUM_DIMENSION or f_in is None or f_in > MAXIMUM_DIMENSION:
        raise _bad(location, f"at most {MAXIMUM_DIMENSION} features", describe_shape(out))
    return Geometry(list(input_shape), out, list(window), list(strides), padding, convention)


@dataclass
class LayerInfo:
    """One layer as read: what validation and the reference forward pass need."""
    kind: str
    inputs: int
    outputs: int
    activation: Activation
    weight: Optional[str] = None
    bias: Optional[str] = None
    geometry: Optional[Geometry] = None
    count_include_pad: bool = False
    epsilon: float = 0.0
    gamma: Optional[str] = None
    beta: Optional[str] = None
    moving_mean: Optional[str] = None
    moving_variance: Optional[str] = None
    # Format 1.3: the f32 scales of an i8 weight, one per output; `"compute": "bf16"`.
    weight_scale: Optional[str] = None
    compute_bf16: bool = False
    # Format 1.4: the calibrated u8 quantization of the layer's inputs, (scale as f32, zero point).
    input_quantization: Optional[Tuple[float, int]] = None
    unknown: Dict[str, Any] = field(default_factory=dict)

    @property
    def weight_shape(self) -> Optional[List[int]]:
        if self.kind == "dense":
            return [self.inputs, self.outputs]
        if self.kind == "conv2d" and self.geometry is not None:
            g = self.geometry
            return [g.window[0], g.window[1], g.input_shape[2], g.output_shape[2]]
        return None

    @property
    def minor_version(self) -> int:
        v = max(KIND_MINOR[self.kind], activation_minor(self.activation))
        if self.geometry is not None and isinstance(self.geometry.padding, list):
            v = max(v, 2)
        if self.weight_scale is not None or self.compute_bf16:
            v = max(v, 3)
        if self.input_quantization is not None:
            v = max(v, 4)
        return v

    def json(self) -> Dict[str, Any]:
        o: Dict[str, Any] = {"kind": self.kind, "in": self.inputs, "out": self.outputs}
        g = self.geometry
        if g is not None:
            o["input_shape"] = list(g.input_shape)
            if g.window:
                o["output_shape"] = list(g.output_shape)
                o["kernel" if self.kind == "conv2d" else "pool"] = list(g.window)
                o["strides"] = list(g.strides)
                o["padding"] = list(g.padding) if isinstance(g.padding, list) else g.padding
            if self.kind == "conv2d":
                o["convention"] = g.convention
            if self.kind == "avg_pool2d":
                o["count_include_pad"] = self.count_include_pad
        if self.kind == "batch_norm":
            o["epsilon"] = float(self.epsilon)
        o["activation"] = activation_json(self.activation)
        if self.weight is not None:
            o["weight"] = self.weight
        if self.weight_scale is not None:
            o["weight_scale"] = self.weight_scale
        if self.compute_bf16:
            o["compute"] = "bf16"
        if self.input_quantization is not None:
            o["input_quantization"] = {"scale": self.input_quantization[0], "zero_point": self.input_quantization[1]}
        if self.bias is not None:
            o["bias"] = self.bias
        if self.kind == "batch_norm":
            if self.gamma is not None:
                o["gamma"] = self.gamma
            if self.beta is not None:
                o["beta"] = self.beta
            o["moving_mean"] = self.moving_mean
            o["moving_variance"] = self.moving_variance
        for k, v in self.unknown.items():
            o[k] = v
        return o


def _padding(r: _Fields) -> Any:
    v = r.value("padding")
    if isinstance(v, str):
        if v not in ("valid", "same"):
            raise _bad(r.loc("padding"), "one of valid, same or [top, left, bottom, right]", f'"{v}"')
        return v
    if not isinstance(v, (list, tuple)):
        raise _bad(r.loc("padding"), '"valid", "same" or [top, left, bottom, right]', kind_name(v))
    pads = r.int_array("padding", 0, MAXIMUM_WINDOW)
    if len(pads) != 4:
        raise _bad(r.loc("padding"), "4 pads [top, left, bottom, right]", str(len(pads)))
    return pads


def parse_layer(v: Any, location: str) -> LayerInfo:
    r = _Fields(v, location)
    kind = r.enum("kind", LAYER_KINDS)
    inputs = r.int("in", 1, MAXIMUM_DIMENSION)
    outputs = r.int("out", 1, MAXIMUM_DIMENSION)
    geometry: Optional[Geometry] = None
    count_include_pad = False
    bn: Dict[str, Any] = {}
    if kind in ("conv2d", "max_pool2d", "avg_pool2d"):
        input_shape = r.int_array("input_shape", 1, MAXIMUM_DIMENSION)
        window_key = "kernel" if kind == "conv2d" else "pool"
        window = r.int_array(window_key, 1, MAXIMUM_WINDOW)
        strides = r.int_array("strides", 1, MAXIMUM_WINDOW)
        padding = _padding(r)
        convention = r.enum("convention", CONVENTIONS) if kind == "conv2d" else "cross-correlation"
        if kind == "avg_pool2d":
            flag = r.value("count_include_pad")
            if not isinstance(flag, bool):
                raise _bad(r.loc("count_include_pad"), "true or false", kind_name(flag))
            count_include_pad = flag
        declared = r.int_array("output_shape", 1, MAXIMUM_DIMENSION)
        if len(declared) != 3:
            raise _bad(r.loc("output_shape"), "[height, width, channels]", describe_shape(declared))
        channels = declared[2] if kind == "conv2d" else (input_shape[-1] if input_shape else 0)
        geometry = windowed_geometry(input_shape, window, strides, padding, channels, convention, location, window_key)
        if geometry.output_shape != declared:
            raise _bad(r.loc("output_shape"), describe_shape(geometry.output_shape), describe_shape(declared))
    elif kind == "flatten":
        input_shape = r.int_array("input_shape", 1, MAXIMUM_DIMENSION)
        features = _product(input_shape)
        if not 1 <= len(input_shape) <= 8 or features is None or features > MAXIMUM_DIMENSION:
            raise _bad(r.loc("input_shape"), f"1 to 8 dimensions of at most {MAXIMUM_DIMENSION} features", describe_shape(input_shape))
        geometry = Geometry(input_shape, [features])
    elif kind in ("global_avg_pool2d", "global_max_pool2d"):
        input_shape = r.int_array("input_shape", 1, MAXIMUM_DIMENSION)
        _require_sample(input_shape, location)
        features = _product(input_shape)
        if features is None or features > MAXIMUM_DIMENSION:
            raise _bad(location, f"at most {MAXIMUM_DIMENSION} features", describe_shape(input_shape))
        geometry = Geometry(input_shape, [input_shape[2]])
    elif kind == "batch_norm":
        shape = r.int_array("input_shape", 1, MAXIMUM_DIMENSION)
        features = _product(shape)
        if len(shape) not in (1, 3) or features is None or features > MAXIMUM_DIMENSION:
            raise _bad(f"{location}.input_shape", f"[features] or [height, width, channels], each >= 1, at most {MAXIMUM_DIMENSION} features",
                       describe_shape(shape))
        geometry = Geometry(shape, list(shape))
        bn = {"gamma": r.optional_string("gamma"), "beta": r.optional_string("beta"),
              "moving_mean": r.string("moving_mean"), "moving_variance": r.string("moving_variance"),
              "epsilon": r.double("epsilon")}
    if geometry is not None:
        if geometry.input_features != inputs:
            raise _bad(r.loc("in"), f"{geometry.input_features} (the product of input_shape)", str(inputs))
        if geometry.output_features != outputs:
            raise _bad(r.loc("out"), f"{geometry.output_features} (the product of the output shape)", str(outputs))
    parameterized = kind in ("dense", "conv2d")
    activation = parse_activation(r.value("activation"), r.loc("activation")) if parameterized or "activation" in r.o else ("identity", {})
    weight = r.string("weight") if parameterized else None
    bias = r.optional_string("bias") if parameterized else None
    weight_scale, compute_bf16, input_quantization = None, False, None
    if parameterized:
        weight_scale = r.optional_string("weight_scale")
        compute = r.optional_string("compute")
        if compute is not None:
            if compute != "bf16":
                raise _bad(r.loc("compute"), '"bf16"', f'"{compute}"')
            compute_bf16 = True
        q = r.optional_object("input_quantization")
        if q is not None:
            qr = _Fields(q, r.loc("input_quantization"))
            input_quantization = (float32_value(qr.double("scale")), qr.int("zero_point", 0, 255))
    if not parameterized and any(k in r.o for k in ("weight", "bias", "weight_scale", "input_quantization")):
        raise _bad(r.loc("weight"), f"no parameters for a {kind} layer", "a tensor name")
    known = set(_LAYER_KNOWN)
    if kind == "batch_norm":
        known |= _BATCH_NORM_KNOWN
    if kind == "avg_pool2d":
        known.add("count_include_pad")
    return LayerInfo(kind, inputs, outputs, activation, weight, bias, geometry, count_include_pad,
                     epsilon=bn.get("epsilon", 0.0), gamma=bn.get("gamma"), beta=bn.get("beta"),
                     moving_mean=bn.get("moving_mean"), moving_variance=bn.get("moving_variance"),
                     weight_scale=weight_scale, compute_bf16=compute_bf16, input_quantization=input_quantization,
                     unknown=r.unknown(known))


# ---- the whole header ----

@dataclass
class ParsedMetadata:
    """The metadata as read: the canonical JSON form and what validation needs."""
    json: Dict[str, Any]
    input_shape: List[int]
    layers: List[LayerInfo]
    preprocessing: List[Dict[str, Any]]
    classes: List[str]
    output_kind: Optional[str]
    optimizer_state: List[Tuple[str, str]]

    @property
    def features(self) -> int:
        return math.prod(self.input_shape)

    @property
    def minor_version(self) -> int:
        return max(1, 2 if self.output_kind is not None else 0, max((l.minor_version for l in self.layers), default=0))


def parse(root: Mapping[str, Any]) -> ParsedMetadata:
    """Reads the metadata members of a header object (its `tensors` table is ignored) with the
    Swift reader's checks; raises `ModelProblem` with its message."""
    if not isinstance(root, dict):
        root = dict(root)
    top = _Fields(root, "")
    inp = _Fields(root.get("input"), "input", present="input" in root)
    shape = inp.int_array("shape", 1, MAXIMUM_DIMENSION)
    if len(shape) > 8:
        raise _bad("input.shape", "at most 8 dimensions", str(len(shape)))
    features = _product(shape)
    if features is None or features > MAXIMUM_DIMENSION:
        raise _bad("input.shape", f"at most {MAXIMUM_DIMENSION} features", describe_shape(shape))
    layers = [parse_layer(v, f"layers[{i}]") for i, v in enumerate(top.array("layers"))]

    steps: List[Dict[str, Any]] = []
    if "preprocessing" in root:
        for i, v in enumerate(top.array("preprocessing")):
            r = _Fields(v, f"preprocessing[{i}]")
            op = r.string("op")
            if op == "scale":
                factor = r.double("factor")
                offset = r.optional_double("offset")
                steps.append({"op": "scale", "factor": factor, "offset": 0.0 if offset is None else offset})
            elif op == "zscore":
                steps.append({"op": "zscore", "mean": r.string("mean"), "std": r.string("std")})
            else:
                raise _bad(f"preprocessing[{i}].op", '"scale" or "zscore"', f'"{op}"')

    classes: List[str] = []
    if "classes" in root:
        for i, v in enumerate(top.array("classes")):
            if not isinstance(v, str):
                raise _bad(f"classes[{i}]", "a string", kind_name(v))
            classes.append(v)

    output: Optional[Dict[str, Any]] = None
    if root.get("output") is not None:
        r = _Fields(root["output"], "output")
        output = {"kind": r.enum("kind", OUTPUT_KINDS)}
        output.update(r.unknown({"kind"}))

    training: Optional[Dict[str, Any]] = None
    optimizer_state: List[Tuple[str, str]] = []
    if root.get("training") is not None:
        training, optimizer_state = _parse_training(root["training"])

    p = _Fields(root.get("provenance"), "provenance", present="provenance" in root)
    provenance: Dict[str, Any] = {"tool": p.string("tool"), "created": p.string("created")}
    source_file, source_format = p.optional_string("source_file"), p.optional_string("source_format")
    if source_file is not None:
        provenance["source_file"] = source_file
    if source_format is not None:
        provenance["source_format"] = source_format
    provenance.update(p.unknown({"tool", "created", "source_file", "source_format"}))

    out: Dict[str, Any] = {"input": {"shape": shape, "features": features},
                           "layers": [l.json() for l in layers],
                           "preprocessing": steps,
                           "classes": classes}
    if output is not None:
        out["output"] = output
    if training is not None:
        out["training"] = training
    out["provenance"] = provenance
    for k, v in root.items():
        if k not in _TOP_KNOWN:
            out[k] = v
    return ParsedMetadata(out, shape, layers, steps, classes, output["kind"] if output else None, optimizer_state)


def _parse_training(value: Any) -> Tuple[Dict[str, Any], List[Tuple[str, str]]]:
    r = _Fields(value, "training")
    o: Dict[str, Any] = {"loss": r.string("loss"), "optimizer": r.string("optimizer"),
                         "hyperparameters": r.optional_object("hyperparameters") or {},
                         "epochs": r.int("epochs"),
                         "dataset": r.optional_object("dataset") or {}}
    history = []
    if "history" in r.o:
        for i, v in enumerate(r.array("history")):
            e = _Fields(v, f"training.history[{i}]")
            h: Dict[str, Any] = {"epoch": e.int("epoch")}
            values = [(k, e.optional_double(k)) for k in _HISTORY_KEYS]
            for k, x in values:
                if x is not None and math.isfinite(x):
                    h[k] = x
            history.append(h)
    o["history"] = history
    state: List[Tuple[str, str]] = []
    step = 0
    s = r.optional_object("optimizer_state")
    if s is not None:
        sr = _Fields(s, "training.optimizer_state")
        step = sr.int("step", 0, INT_MAX)
        tensors = sr.optional_object("tensors")
        for k, v in (tensors or {}).items():
            if not isinstance(v, str):
                raise _bad(f"training.optimizer_state.tensors.{k}", "a tensor name", kind_name(v))
            state.append((k, v))
    if state or step > 0:
        o["optimizer_state"] = {"step": step, "tensors": {k: v for k, v in state}}
    o.update(r.unknown(_TRAINING_KNOWN))
    return o, state


TensorInfo = Tuple[str, List[int]]  # (dtype name, shape)


def validate_structure(meta: ParsedMetadata, tensors: Mapping[str, TensorInfo],
                       values: Optional[Mapping[str, np.ndarray]] = None) -> None:
    """Checks that layers chain from the input to the output and that every named tensor exists
    with a float dtype and the shape its role needs (Model.validateStructure); an i8 weight
    (format 1.3) needs its f32 scales, whose values are checked when `values` holds them."""
    def require_float(name: str, location: str, shape: List[int]) -> None:
        if name not in tensors:
            raise ModelProblem.missing_tensor(location, name)
        dtype, found = tensors[name]
        if dtype not in FLOAT_DTYPES:
            raise ModelProblem.unsupported_dtype(name, dtype)
        if list(found) != list(shape):
            raise ModelProblem.shape_mismatch(name, shape, list(found))

    def require_weight(layer: LayerInfo, location: str, shape: List[int]) -> None:
        # As Model.requireWeight: the input quantization, then the weight and its scales.
        q = layer.input_quantization
        if q is not None:
            if layer.weight_scale is None:
                raise _bad(f"{location}.input_quantization", "an i8 weight with a weight_scale (it quantizes that layer's inputs)",
                           "a layer with a float weight")
            if not (q[0] > 0 and math.isfinite(q[0])):
                raise _bad(f"{location}.input_quantization.scale", "a finite number > 0", float32_description(q[0]))
        weight, scale_name = layer.weight, layer.weight_scale
        if scale_name is None:
            require_float(weight, f"{location}.weight", shape)  # type: ignore[arg-type]
            return
        if weight not in tensors:
            raise ModelProblem.missing_tensor(f"{location}.weight", weight)  # type: ignore[arg-type]
        dtype, found = tensors[weight]  # type: ignore[index]
        if dtype != "i8":
            raise _bad(f"{location}.weight", "an i8 tensor (the layer has a weight_scale)", f"'{weight}' of dtype {dtype}")
        if list(found) != list(shape):
            raise ModelProblem.shape_mismatch(weight, shape, list(found))  # type: ignore[arg-type]
        if scale_name not in tensors:
            raise ModelProblem.missing_tensor(f"{location}.weight_scale", scale_name)
        dtype, found = tensors[scale_name]
        if dtype != "f32":
            raise ModelProblem.unsupported_dtype(scale_name, f"{dtype} (a weight scale is f32)")
        if list(found) != [shape[-1]]:
            raise ModelProblem.shape_mismatch(scale_name, [shape[-1]], list(found))
        if values is not None and scale_name in values:
            s = np.asarray(values[scale_name], dtype=np.float32).reshape(-1)
            bad = np.flatnonzero(~((s > 0) & np.isfinite(s)))
            if bad.size:
                raise _bad(f"{location}.weight_scale", "finite scales > 0",
                           f"'{scale_name}'[{int(bad[0])}] = {float32_description(float(s[bad[0]]))}")

    if not meta.layers:
        raise ModelProblem("the model has no layers")
    previous = meta.features
    previous_shape: Optional[List[int]] = None
    for i, layer in enumerate(meta.layers):
        location = f"layers[{i}]"
        if layer.inputs != previous:
            raise ModelProblem.do_not_chain(f"layers[0] (after input {describe_shape(meta.input_shape)})" if i == 0 else location,
                                            previous, layer.inputs)
        g = layer.geometry
        if g is not None and previous_shape is not None and g.input_shape != previous_shape:
            raise _bad(f"{location}.input_shape", describe_shape(previous_shape) + " (the previous layer's output)",
                       describe_shape(g.input_shape))
        if layer.kind == "dense":
            require_weight(layer, location, [layer.inputs, layer.outputs])
            if layer.bias is not None:
                require_float(layer.bias, f"{location}.bias", [layer.outputs])
            previous_shape = None
        elif layer.kind == "conv2d":
            assert g is not None
            require_weight(layer, location, layer.weight_shape)  # type: ignore[arg-type]
            if layer.bias is not None:
                require_float(layer.bias, f"{location}.bias", [g.output_shape[2]])
            previous_shape = g.output_shape
        elif layer.kind in ("max_pool2d", "avg_pool2d"):
            assert g is not None
            previous_shape = g.output_shape
        elif layer.kind in ("flatten", "global_avg_pool2d", "global_max_pool2d"):
            previous_shape = None
        elif layer.kind == "batch_norm":
            assert g is not None
            if not (layer.epsilon > 0 and math.isfinite(layer.epsilon)):
                raise _bad(f"{location}.epsilon", "a finite number > 0", swift_description(layer.epsilon))
            channels = g.input_shape[-1]
            for key in ("gamma", "beta", "moving_mean", "moving_variance"):
                name = getattr(layer, key)
                if name is None:
                    continue
                if name not in tensors:
                    raise ModelProblem.missing_tensor(f"{location}.{key}", name)
                dtype, found = tensors[name]
                if dtype not in FLOAT_DTYPES:
                    raise ModelProblem.unsupported_dtype(name, dtype)
                if list(found) != [channels]:
                    raise _bad(f"{location}.{key}", f"tensor '{name}' of shape [{channels}] (one value per channel)",
                               "shape [" + ", ".join(str(d) for d in found) + "]")
            previous_shape = g.input_shape if len(g.input_shape) == 3 else None
        name, params = layer.activation
        for key in ("alpha", "max_value"):
            if key in params and not math.isfinite(params[key]):
                raise _bad(f"{location}.activation.{key}", "a finite number", swift_description(params[key]))
        if name == "relu" and "max_value" in params and not params["max_value"] > 0:
            raise _bad(f"{location}.activation.max_value", "a number > 0", swift_description(params["max_value"]))
        previous = layer.outputs
    outputs = meta.layers[-1].outputs
    if meta.classes and len(meta.classes) != outputs:
        raise _bad("classes", f"{outputs} names (one per output)", str(len(meta.classes)))
    for i, step in enumerate(meta.preprocessing):
        if step["op"] == "scale":
            if not (math.isfinite(step["factor"]) and math.isfinite(step["offset"])):
                raise _bad(f"preprocessing[{i}]", "finite factor and offset",
                           f"{swift_description(step['factor'])}, {swift_description(step['offset'])}")
        else:
            require_float(step["mean"], f"preprocessing[{i}].mean", [meta.features])
            require_float(step["std"], f"preprocessing[{i}].std", [meta.features])
    for parameter, state in meta.optimizer_state:
        if parameter not in tensors:
            raise ModelProblem.missing_tensor("training.optimizer_state.tensors", parameter)
        require_float(state, f"training.optimizer_state.tensors.{parameter}", list(tensors[parameter][1]))
