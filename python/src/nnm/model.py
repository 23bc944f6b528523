"""`nnm.Model`: a model's metadata and its tensors, loaded from or saved to a `.nnm` file."""

from __future__ import annotations

import copy
import datetime
import math
import os
import re
import time
from typing import Any, Dict, Iterator, List, Mapping, MutableMapping, Optional, Tuple, Union

import numpy as np

from . import container
from . import metadata as md
from .errors import InvalidModel, ModelProblem

__version__ = "0.1.0"
TOOL = f"nnm-python {__version__}"

PathLike = Union[str, "os.PathLike[str]"]


def now_iso8601() -> str:
    """The current UTC time as the Swift tools write it: 2026-12-05T08:36:48Z; or, as they do
    (Clock.nowISO8601), the time `SOURCE_DATE_EPOCH` gives (seconds since 1970, the
    reproducible-builds convention), so that saving the same model twice gives the same bytes."""
    text = os.environ.get("SOURCE_DATE_EPOCH", "")
    if re.fullmatch(r"[+-]?[0-9]{1,19}", text) and 0 <= int(text) < 2**63:  # Swift's Int(text), seconds >= 0
        try:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(text)))
        except (OverflowError, OSError, ValueError):
            pass  # beyond what the C library can represent: the clock, rather than an error
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Model:
    """A neural network as a `.nnm` file holds it.

    `metadata` is the header without its tensor table, as plain JSON-like dicts and lists in the
    order the format specifies (`input`, `layers`, `preprocessing`, `classes`, `output`,
    `training`, `provenance`); `tensors` maps each tensor's name to a NumPy array, in file order.
    A loaded model's arrays are read-only views of the file's bytes (no copy); f16 stays
    float16, bf16 is `ml_dtypes.bfloat16` when that package is installed (else its uint16 bit
    patterns), and `array(name, widen=True)` gives float32 copies of 16-bit and 8-bit tensors.

    The shortcuts `input_shape`, `layers`, `preprocessing`, `classes`, `training`,
    `history`, `provenance` and `output_kind` read the metadata.
    """

    def __init__(self, metadata: Mapping[str, Any], tensors: Mapping[str, Any], *, path: Optional[str] = None,
                 version: Tuple[int, int] = (1, 1), dtypes: Optional[Mapping[str, str]] = None) -> None:
        self.metadata: Dict[str, Any] = dict(metadata)
        self.metadata.pop("tensors", None)
        self.tensors: Dict[str, np.ndarray] = {k: (v if isinstance(v, np.ndarray) else np.asarray(v)) for k, v in tensors.items()}
        #: The file this model was read from, if any.
        self.path = path
        #: (major, minor) format version of the file read, or the version `save` writes.
        self.version = version
        #: The stored dtype of each tensor of a loaded model ("f32", "bf16", ...).
        self.dtypes: Dict[str, str] = dict(dtypes or {})

    # ---- reading the metadata ----

    @property
    def input_shape(self) -> List[int]:
        """The shape of one raw sample, e.g. [28, 28]."""
        return list(self.metadata["input"]["shape"])

    @property
    def features(self) -> int:
        """Values per sample after flattening in row-major order."""
        return math.prod(self.input_shape)

    @property
    def layers(self) -> List[Dict[str, Any]]:
        """The architecture: one dict per layer, from input to output."""
        return self.metadata["layers"]

    @property
    def preprocessing(self) -> List[Dict[str, Any]]:
        """The steps applied to raw inputs, in order (`scale`, `zscore`)."""
        return self.metadata.get("preprocessing", [])

    @property
    def classes(self) -> List[str]:
        """Output class names (empty when the model has none)."""
        return self.metadata.get("classes", [])

    @property
    def training(self) -> Optional[Dict[str, Any]]:
        """How the model was trained: loss, optimizer, hyperparameters, epochs, dataset, history."""
        return self.metadata.get("training")

    @property
    def history(self) -> List[Dict[str, Any]]:
        """The per-epoch training record (empty when there is none)."""
        return (self.training or {}).get("history", [])

    @property
    def provenance(self) -> Dict[str, Any]:
        """Which tool wrote the file, when, and from which source file."""
        return self.metadata["provenance"]

    @property
    def output_kind(self) -> str:
        """"probabilities", "log_probabilities" or "logits": as stated, or from the last activation."""
        out = self.metadata.get("output")
        if out:
            return out["kind"]
        act = md.parse_activation(self.layers[-1].get("activation", "identity"), "layers[-1].activation")
        if act[0] in ("softmax", "sigmoid") and not act[1].get("max_value"):
            return "probabilities"
        if act[0] == "log_softmax":
            return "log_probabilities"
        return "logits"

    @property
    def parameter_count(self) -> int:
        """Weights and biases of all layers, and batch normalization's gamma and beta."""
        total = 0
        for layer in self.layers:
            for key in ("weight", "bias", "gamma", "beta"):
                name = layer.get(key)
                if name in self.tensors:
                    total += int(self.tensors[name].size)
        return total

    def array(self, name: str, widen: bool = False) -> np.ndarray:
        """The tensor `name`; with `widen`, f16, bf16 and 8- and 16-bit integer tensors as float32
        copies, and an i8 weight with a `weight_scale` (format 1.3) as its values: each q times its
        output's scale, in float32 (Model.floatWeight)."""
        a = self.tensors[name]
        if not widen:
            return a
        stored = self.dtypes.get(name) or container.dtype_name(a)
        if stored == "i8":
            scale = next((l.get("weight_scale") for l in self.layers if l.get("weight") == name and l.get("weight_scale")), None)
            if scale is not None and scale in self.tensors:
                return a.astype(np.float32) * np.asarray(self.tensors[scale], dtype=np.float32)
        if stored == "bf16":
            bits = a.view(np.uint16).astype(np.uint32) << 16
            return bits.view(np.float32)
        if stored in ("f16", "u8", "i8", "i16"):
            return a.astype(np.float32)
        return a

    def __repr__(self) -> str:
        layers = ", ".join(_short(l) for l in self.layers)
        where = f" from {self.path}" if self.path else ""
        return f"<nnm.Model{where}: input {'x'.join(map(str, self.input_shape))}, {layers}; {len(self.tensors)} tensors>"

    # ---- checking and writing ----

    def _stored(self) -> List[Tuple[str, str, np.ndarray]]:
        out = []
        for name, a in self.tensors.items():
            if not isinstance(name, str):
                raise ModelProblem(f"tensor names must be strings, found {name!r}")
            arr = np.asarray(a)
            dtype = container.dtype_name(arr, self.dtypes.get(name))
            if dtype == "bf16" and arr.dtype.kind != "u":
                arr = arr.view(np.uint16)
            out.append((name, dtype, container._le_contiguous(arr)))
        return out

    def validate(self) -> List[str]:
        """Checks the metadata and the tensors as the Swift writer does before writing (raises
        `ModelProblem`), and returns warnings about the values: NaN or infinite values, negative
        batch-normalization variances."""
        meta = md.parse(self.metadata)
        stored = self._stored()
        for name, _, _ in stored:
            if not name or len(name.encode("utf-8", "surrogatepass")) > container.MAXIMUM_NAME_BYTES:
                raise ModelProblem(f"tensor names must be 1 to {container.MAXIMUM_NAME_BYTES} bytes, found '{name}'")
        if len(stored) > container.MAXIMUM_TENSOR_COUNT:
            raise ModelProblem(f"{len(stored)} tensors, more than the limit of {container.MAXIMUM_TENSOR_COUNT}")
        for name, _, a in stored:
            if a.ndim > container.MAXIMUM_RANK:
                raise ModelProblem(f"tensor '{name}': rank {a.ndim} exceeds the limit of {container.MAXIMUM_RANK}")
        md.validate_structure(meta, {n: (d, list(a.shape)) for n, d, a in stored}, {n: a for n, _, a in stored})
        return value_warnings(meta, {n: (d, a) for n, d, a in stored})

    def save(self, path: PathLike) -> List[str]:
        """Writes the model to `path` atomically (see `nnm.save`)."""
        return save(path, self)

    def predict(self, x: Any) -> np.ndarray:
        """The last layer's outputs for raw inputs (see `nnm.reference.forward`)."""
        from .reference import forward
        return forward(self, x)

    def probabilities(self, x: Any) -> np.ndarray:
        """Class probabilities for raw inputs, as `nn-infer` prints them (see `nnm.reference.probabilities`)."""
        from .reference import probabilities
        return probabilities(self, x)

    def classify(self, x: Any) -> np.ndarray:
        """The index of the predicted class of each sample."""
        return np.argmax(self.predict(x), axis=1)


def _short(layer: Mapping[str, Any]) -> str:
    act = layer.get("activation", "identity")
    act = act if isinstance(act, str) else act.get("name", "?")
    if layer.get("kind") == "dense":
        return f"{layer.get('out')} {act}"
    return f"{layer.get('kind')}" + ("" if act == "identity" else f" {act}")


def value_warnings(meta: md.ParsedMetadata, tensors: Mapping[str, Tuple[str, np.ndarray]]) -> List[str]:
    """NaN or infinite values (first element), then negative moving variances."""
    out = []
    for name, (dtype, a) in tensors.items():
        if dtype in md.FLOAT_DTYPES and a.size:
            values = a.view(np.uint16).astype(np.uint32) << 16 if dtype == "bf16" else a
            if dtype == "bf16":
                values = values.view(np.float32)
            bad = np.flatnonzero(~np.isfinite(values.reshape(-1)))
            if bad.size:
                out.append(f"tensor '{name}': holds NaN or infinite values (first at element {int(bad[0])})")
    for i, layer in enumerate(meta.layers):
        if layer.kind == "batch_norm" and layer.moving_variance in tensors:
            dtype, a = tensors[layer.moving_variance]
            if dtype in md.FLOAT_DTYPES:
                v = a.astype(np.float64) if dtype != "bf16" else (a.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
                neg = np.flatnonzero(v.reshape(-1) < 0)
                if neg.size:
                    out.append(f"tensor '{layer.moving_variance}': layers[{i}] (batch_norm) has a negative moving variance (first at element {int(neg[0])})")
    return out


def load(path: PathLike, verify: bool = True) -> Model:
    """Reads a `.nnm` file with every check of the Swift reader and returns its `Model`.

    The tensors are read-only NumPy arrays over the file's bytes (read into memory up to 16 MiB,
    memory-mapped beyond): nothing is copied. With `verify` (the default) every tensor's CRC-32
    is checked; `verify=False` skips that, as `nn-infer --no-verify`. Raises an `nnm.NNMError`
    subclass that names the file and the problem.
    """
    p = os.fspath(path)
    contents = container.read(p, verify=verify)
    meta = contents.metadata.json
    return Model(meta, contents.tensors, path=p, version=(contents.major, contents.minor),
                 dtypes={e.name: e.dtype for e in contents.entries})


def save(path: PathLike, model: Model) -> List[str]:
    """Validates `model` and writes it to `path` atomically (a temporary file beside it, fsync,
    rename): an invalid model is never written and a failed write leaves the old file as it was.

    The bytes are those the Swift writer produces for the same model: the canonical header (the
    metadata members in the specified order, then the tensor table), tensors in the order of
    `model.tensors`, 64-byte alignment, zero padding, CRC-32s, and the lowest minor version that
    describes the model. Returns the warnings of `Model.validate()`.
    """
    p = os.fspath(path)
    try:
        meta = md.parse(model.metadata)
        warnings = model.validate()
        stored = model._stored()
        chunks = container.encode(meta.json, meta.minor_version, stored)
    except ModelProblem as e:
        raise InvalidModel(p, e.message) from None
    container.write_atomically(p, chunks)
    return warnings


def to_bytes(model: Model) -> bytes:
    """The file `save` would write, in memory."""
    try:
        meta = md.parse(model.metadata)
        model.validate()
        chunks = container.encode(meta.json, meta.minor_version, model._stored())
    except ModelProblem as e:
        raise InvalidModel("<memory>", e.message) from None
    return b"".join(bytes(c) for c in chunks)


def loads(data: bytes, name: str = "<memory>", verify: bool = True) -> Model:
    """Decodes a `.nnm` file held in memory (`name` names it in errors)."""
    contents = container.decode(data, name, verify=verify)
    return Model(contents.metadata.json, contents.tensors, path=None, version=(contents.major, contents.minor),
                 dtypes={e.name: e.dtype for e in contents.entries})
