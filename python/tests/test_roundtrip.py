"""Round trips of random models (hypothesis): what `nnm.save` writes loads back equal, and the
Swift writer, rewriting it (`nnconv import x.nnm`, which reads and writes through the Swift
metadata types), produces the same bytes: every member order, number form and string escape of
the Python writer agrees with the Swift one."""

from __future__ import annotations

import math
import string
import tempfile
from pathlib import Path

import numpy as np
import pytest

import nnm
from conftest import run, tool

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is not installed (pip install hypothesis)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

finite = st.floats(allow_nan=False, allow_infinity=False)
# ASCII member names: Swift compares strings by canonical equivalence, so "é" and "e\u0301"
# would be one name there and two here; the format's own names are ASCII.
names = st.text(alphabet=string.ascii_letters + "_.", min_size=1, max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | finite | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=8)

ACTIVATIONS = st.one_of(
    st.sampled_from(["identity", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "gelu", "softplus", "swish",
                     "hard_sigmoid", "relu6", "log_softmax"]),
    st.builds(lambda a: {"name": "leaky_relu", "alpha": a}, finite),
    st.builds(lambda a: {"name": "elu", "alpha": a}, finite),
    st.builds(lambda m: {"name": "relu", "max_value": m}, st.floats(min_value=1e-3, max_value=1e6)),
    st.just({"name": "gelu", "approximate": "tanh"}),
)


@st.composite
def models(draw):
    widths = draw(st.lists(st.integers(1, 5), min_size=2, max_size=4))
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    layers, tensors = [], {}
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layer = {"kind": "dense", "in": a, "out": b, "activation": draw(ACTIVATIONS), "weight": f"layers.{i}.weight"}
        tensors[f"layers.{i}.weight"] = rng.standard_normal((a, b)).astype(dtype)
        if draw(st.booleans()):
            layer["bias"] = f"layers.{i}.bias"
            tensors[f"layers.{i}.bias"] = rng.standard_normal(b).astype(dtype)
        if draw(st.booleans()):
            layer[draw(st.sampled_from(["note", "x_extra"]))] = draw(json_values)
        layers.append(layer)
    features = widths[0]
    meta = {"input": {"shape": draw(st.sampled_from([[features], [1, features]]))}, "layers": layers}
    steps = []
    if draw(st.booleans()):
        steps.append({"op": "scale", "factor": draw(finite), "offset": draw(finite)})
    if draw(st.booleans()):
        tensors["preprocessing.mean"] = rng.standard_normal(features).astype(dtype)
        tensors["preprocessing.std"] = np.abs(rng.standard_normal(features)).astype(dtype)
        steps.append({"op": "zscore", "mean": "preprocessing.mean", "std": "preprocessing.std"})
    if steps or draw(st.booleans()):
        meta["preprocessing"] = steps
    if draw(st.booleans()):
        meta["classes"] = draw(st.lists(st.text(max_size=6), min_size=widths[-1], max_size=widths[-1]))
    if draw(st.booleans()):
        meta["output"] = {"kind": draw(st.sampled_from(["probabilities", "log_probabilities", "logits"]))}
    if draw(st.booleans()):
        history = [{"epoch": e + 1, "train_loss": draw(finite), "test_accuracy": draw(st.floats(0, 1))} for e in range(draw(st.integers(0, 3)))]
        training = {"loss": "cross-entropy", "optimizer": draw(st.sampled_from(["sgd", "momentum"])),
                    "hyperparameters": draw(st.dictionaries(names, json_values, max_size=3)), "epochs": len(history),
                    "history": history}
        if draw(st.booleans()):
            training["optimizer_state"] = {"step": draw(st.integers(0, 10**6)),
                                           "tensors": {"layers.0.weight": "optimizer.velocity.layers.0.weight"}}
            tensors["optimizer.velocity.layers.0.weight"] = np.zeros(tensors["layers.0.weight"].shape, dtype)
        meta["training"] = training
    meta["provenance"] = {"tool": draw(st.text(min_size=1, max_size=10)), "created": "2026-12-05T00:00:00Z"}
    if draw(st.booleans()):
        meta[draw(st.sampled_from(["future", "notes"]))] = draw(json_values)
    order = list(tensors)
    if draw(st.booleans()):
        order.reverse()  # tensors are written in the model's order, whatever it is
    return nnm.Model(meta, {k: tensors[k] for k in order})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models())
def test_save_then_load_gives_the_model(model: nnm.Model) -> None:
    data = nnm.to_bytes(model)
    loaded = nnm.loads(data)
    assert list(loaded.tensors) == list(model.tensors)
    for name, a in model.tensors.items():
        assert loaded.tensors[name].dtype == a.dtype and loaded.tensors[name].tobytes() == a.tobytes()
    assert nnm.to_bytes(loaded) == data
    x = np.linspace(-2, 2, 3 * loaded.features).reshape(3, -1)
    with np.errstate(all="ignore"):
        assert loaded.predict(x).shape == (3, loaded.layers[-1]["out"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(models())
def test_the_swift_writer_rewrites_the_same_bytes(model: nnm.Model) -> None:
    tool("nnconv")
    with tempfile.TemporaryDirectory() as d:
        ours, theirs = Path(d) / "python.nnm", Path(d) / "swift.nnm"
        nnm.save(ours, model)
        run("nnconv", "import", ours, "-o", theirs)
        assert theirs.read_bytes() == ours.read_bytes()


def _shuffled(value, rng):
    """The same JSON with every object's members in a random order."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: _shuffled(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models(), st.integers(0, 2**32 - 1))
def test_a_non_canonical_header_is_rewritten_as_the_swift_writer_does(model: nnm.Model, seed: int) -> None:
    """Members in any order, integers written as 4.0, defaults left out: Python's rewrite equals
    the Swift writer's (nnconv import of a .nnm reads it into the Swift types and writes it)."""
    import json as _stdjson
    from nnm import _json
    from test_malformed import Bytes
    tool("nnconv")
    data = nnm.to_bytes(model)
    n = int.from_bytes(data[16:24], "little")
    offset = int.from_bytes(data[24:32], "little")
    header = _json.parse(data[48:48 + n])
    rng = np.random.default_rng(seed)
    header = _shuffled(header, rng)
    for layer in header["layers"]:
        layer["in"] = float(layer["in"])
    if header.get("classes") == []:
        del header["classes"]
    text = _stdjson.dumps(header, ensure_ascii=bool(seed % 2)).encode()  # another writer's spelling
    odd = Bytes(text, data[offset:]).bytes()
    with tempfile.TemporaryDirectory() as d:
        source, rewritten = Path(d) / "odd.nnm", Path(d) / "swift.nnm"
        source.write_bytes(odd)
        run("nnconv", "import", source, "-o", rewritten)
        assert nnm.to_bytes(nnm.loads(odd)) == rewritten.read_bytes()
