"""Files Python writes, read by the Swift tools: the blog builders give the bytes `nnconv import`
gives for the same arrays; models with every layer kind and activation of the format
(Fixtures/layers/expected.json, outputs computed by plain NumPy in Fixtures/generate_layers.py)
pass `nnconv validate` and give `nn-infer`'s predictions and the fixture's outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import nnm
from conftest import FIXTURES, header_of, infer_probabilities, run

LAYER_CASES = json.loads((FIXTURES / "layers" / "expected.json").read_text())["cases"]


def _blog_arrays(layout: str, sizes, dtype, naming: str = "numbered", seed: int = 0):
    rng = np.random.default_rng(seed)
    out = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = rng.standard_normal((a, b) if layout == "rows" else (b, a)).astype(dtype)
        bias = rng.standard_normal((1, b) if layout == "rows" else (b, 1)).astype(dtype)
        if naming == "numbered":
            out[f"W{i + 1}"], out[f"b{i + 1}"] = w, bias
        else:
            out[f"weights_{i}"], out[f"biases_{i}"] = w, bias
    return out


BLOG_CASES = {
    # name: (layout, sizes, dtype, naming, nnconv options, from_blog keywords)
    "rows f64, defaults": ("rows", [12, 6, 3], np.float64, "numbered", [], {}),
    "rows f32, scale and activations": ("rows", [784, 16, 10], np.float32, "numbered",
                                        ["--scale", "1/255", "--activations", "relu,softmax", "--layout", "rows"],
                                        {"preprocessing": nnm.scale(1 / 255), "activations": ["relu", "softmax"], "layout": "rows"}),
    "rows one output": ("rows", [5, 4, 1], np.float32, "numbered", [], {}),
    "columns (Nielsen) f32, defaults": ("columns", [20, 8, 4], np.float32, "nielsen", [], {}),
    "columns with names and shape": ("columns", [16, 9, 3], np.float64, "numbered",
                                     ["--input-shape", "4x4", "--class-names", "a,b,c", "--activations", "tanh,leaky_relu(alpha=0.1)"],
                                     {"input_shape": [4, 4], "classes": ["a", "b", "c"], "activations": ["tanh", "leaky_relu(alpha=0.1)"]}),
}


@pytest.mark.parametrize("name", list(BLOG_CASES))
def test_from_blog_gives_nnconvs_bytes(name: str, tmp_path: Path) -> None:
    layout, sizes, dtype, naming, options, keywords = BLOG_CASES[name]
    arrays = _blog_arrays(layout, sizes, dtype, naming)
    npz = tmp_path / "blog.npz"
    np.savez(npz, **arrays)
    swift = tmp_path / "swift.nnm"
    run("nnconv", "import", npz, "-o", swift, *options)
    # Everything but the provenance comes from the arrays and the options; take nnconv's
    # provenance (its tool name, time and source) so the whole file can be compared.
    provenance = header_of(swift)["provenance"]
    model = nnm.from_blog(arrays, provenance=provenance, **keywords)
    ours = tmp_path / "python.nnm"
    nnm.save(ours, model)
    assert ours.read_bytes() == swift.read_bytes()


def test_from_nielsen_lists_and_zscore(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    weights = [rng.standard_normal((30, 784)), rng.standard_normal((10, 30))]
    biases = [rng.standard_normal((30, 1)), rng.standard_normal((10, 1))]
    train = rng.integers(0, 256, (50, 784)).astype(np.float64)
    mean, std = train.mean(axis=0), train.std(axis=0)
    std[:5] = 0  # constant pixels: only centred
    model = nnm.from_nielsen(weights, biases, preprocessing=nnm.zscore(mean, std))
    path = tmp_path / "nielsen.nnm"
    nnm.save(path, model)
    run("nnconv", "validate", path)
    x = rng.integers(0, 256, (7, 28, 28)).astype(np.float32)
    # The blog's own arithmetic: normalize with the training statistics, then sigmoid layers.
    z = (x.reshape(7, -1) - mean) / np.where(std == 0, 1, std)
    for w, b in zip(weights, biases):
        z = 1 / (1 + np.exp(-(w @ z.T + b).T))
    np.testing.assert_allclose(model.predict(x), z, rtol=1e-12)
    np.testing.assert_allclose(infer_probabilities(path, x, tmp_path), z, rtol=1e-9, atol=1e-12)
    loaded = nnm.load(path)
    assert loaded.array("preprocessing.std")[:5].tolist() == [0] * 5
    assert loaded.layers[0]["activation"] == "sigmoid" and loaded.input_shape == [28, 28]


# Every case in f32 and f64; f16 storage on the first case and the convolutions.
LAYER_PARAMS = [pytest.param(c, d, id=f"{c['name']} {d}") for c in LAYER_CASES for d in ("f32", "f64")] + \
    [pytest.param(c, "f16", id=f"{c['name']} f16") for c in LAYER_CASES if c is LAYER_CASES[0] or "conv2d" in c["name"]]


@pytest.mark.parametrize("case,dtype", LAYER_PARAMS)
def test_every_layer_kind(case: dict, dtype: str, tmp_path: Path) -> None:
    numpy_dtype = {"f32": np.float32, "f64": np.float64, "f16": np.float16}[dtype]
    meta = dict(case["header"])
    meta["provenance"] = {"tool": "test", "created": "2026-12-05T00:00:00Z"}
    tensors = {name: np.array(t["values"], dtype=numpy_dtype).reshape(t["shape"]) for name, t in case["tensors"].items()}
    model = nnm.Model(meta, tensors)
    path = tmp_path / "m.nnm"
    nnm.save(path, model)
    run("nnconv", "validate", path)
    x = np.array(case["input"], dtype=np.float64)
    expected = np.array(case["expected"])
    loaded = nnm.load(path)
    if dtype != "f16":
        np.testing.assert_allclose(loaded.predict(x), expected, rtol=1e-9, atol=1e-12)
    probabilities = infer_probabilities(path, x.astype(np.float32), tmp_path)
    np.testing.assert_allclose(loaded.probabilities(x.astype(np.float32)), probabilities, rtol=1e-7, atol=1e-9)


def test_minor_version_is_the_lowest_that_describes_the_model(tmp_path: Path) -> None:
    for case in LAYER_CASES[:1] + [c for c in LAYER_CASES if c["name"].startswith("conv2d")][:1]:
        meta = dict(case["header"], provenance={"tool": "t", "created": "c"})
        tensors = {n: np.array(t["values"], np.float32).reshape(t["shape"]) for n, t in case["tensors"].items()}
        assert nnm.to_bytes(nnm.Model(meta, tensors))[10] == 2
    mlp = nnm.from_blog(_blog_arrays("rows", [4, 3, 2], np.float32))
    assert nnm.to_bytes(mlp)[10] == 1
