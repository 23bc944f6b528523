"""The framework adapters: `nnm.torch` and `nnm.keras` build networks whose outputs, computed by
PyTorch and Keras themselves, agree with the reference forward pass; those tests are skipped when
the framework is not installed. The PyTorch layout (modules and state dict, computed with NumPy
in `nnm._layout`) is checked without PyTorch against what `nnconv export model.pth` writes."""

from __future__ import annotations

import json
import os
import pickle
import re
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import nnm
from nnm._layout import torch_layout, torch_state_arrays
from conftest import FIXTURES, run

LAYER_CASES = json.loads((FIXTURES / "layers" / "expected.json").read_text())["cases"]


def _case_model(case: dict, dtype=np.float32) -> nnm.Model:
    meta = dict(case["header"], provenance={"tool": "test", "created": "2026-12-05T00:00:00Z"})
    return nnm.Model(meta, {n: np.array(t["values"], dtype).reshape(t["shape"]) for n, t in case["tensors"].items()})


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> dict:
    """A Keras CNN with batch normalization, PyTorch's LeNet with average pooling (f16), as nnconv imports them."""
    d = tmp_path_factory.mktemp("imported")
    out = {}
    for name, source in (("bn_cnn", "keras/k3_bn_cnn.keras"), ("lenet_f16", "torch/lenet_avg_state_f16.pth"),
                         ("mlp", "interop/npz_blog_rows_3layer_f32_compressed.npz")):
        run("nnconv", "import", FIXTURES / source, "-o", d / f"{name}.nnm")
        out[name] = nnm.load(d / f"{name}.nnm")
    return out


def test_torch_sequential(imported: dict) -> None:
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    import nnm.torch as nt
    models = list(imported.values()) + [_case_model(c) for c in LAYER_CASES
                                        if not ("avg_pool2d" in c["name"] and "False" in c["name"] and "valid" not in c["name"])]
    for model in models:
        net = nt.sequential(model, dtype=torch.float64)
        x = np.random.default_rng(0).random((4, model.features)) * 255
        with torch.no_grad():
            out = net(nt.inputs(model, x, torch.float64)).numpy()
        np.testing.assert_allclose(out, model.predict(x), rtol=1e-9, atol=1e-9)
    state = nt.state_dict(imported["mlp"])
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert tuple(state["0.weight"].shape) == tuple(imported["mlp"].tensors["layers.0.weight"].shape[::-1])


def test_torch_refuses_what_it_cannot_compute() -> None:
    pytest.importorskip("torch", reason="PyTorch is not installed")
    import nnm.torch as nt
    case = next(c for c in LAYER_CASES if c["name"] == "avg_pool2d pads 0,1,2,0 count_include_pad False")
    with pytest.raises(ValueError, match=r"layers\[\d\] \(avg_pool2d\): padding"):
        nt.sequential(_case_model(case))


def test_torch_state_dict_matches_nnconv_export(imported: dict, tmp_path: Path) -> None:
    """Our state dict holds what `nnconv export model.pth` writes, key for key, value for value."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    import nnm.torch as nt
    model = imported["bn_cnn"]
    path = tmp_path / "m.nnm"
    nnm.save(path, model)
    run("nnconv", "export", path, "-o", tmp_path / "m.pth")
    exported = torch.load(tmp_path / "m.pth", weights_only=True)
    ours = nt.state_dict(model)
    assert list(ours) == list(exported)
    for key in ours:
        assert torch.equal(ours[key], exported[key].to(ours[key].dtype)), key


def test_keras_sequential(imported: dict) -> None:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    pytest.importorskip("keras", reason="Keras is not installed")
    import nnm.keras as nk
    cases = [c for c in LAYER_CASES if c["name"].startswith(("batch_norm after conv2d", "conv2d pads 1,1,1,1", "global_max"))]
    models = [imported["bn_cnn"], imported["mlp"]] + [_case_model(c) for c in cases]
    for model in models:
        net = nk.sequential(model)
        x = np.random.default_rng(0).random((4, model.features)) * 255
        expected = model.predict(x)  # (N, features): a spatial output flattened in HWC order, as Keras's
        out = np.asarray(net(nk.inputs(model, x))).reshape(expected.shape)
        # Keras computes in float32 (jax's default).
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(expected).max())))
    assert len(nk.weights(imported["bn_cnn"])) == len(nk.sequential(imported["bn_cnn"]).get_weights())


_STORAGES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16, "LongStorage": np.int64}


def read_pth(path: Path) -> "OrderedDict[str, np.ndarray]":
    """A state dict saved by torch.save (the zip format nnconv export writes) as NumPy arrays,
    read with the standard library: the pickle's tensors rebuilt from their storages' bytes."""
    with zipfile.ZipFile(path) as z:
        pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
        root = pkl[: -len("data.pkl")]
        assert z.read(root + "byteorder") == b"little"

        def rebuild(storage, offset, size, stride, *_):
            a = np.lib.stride_tricks.as_strided(storage[offset:], shape=size, strides=[s * storage.itemsize for s in stride])
            return np.array(a)

        class Unpickler(pickle.Unpickler):
            def find_class(self, module: str, name: str):
                if (module, name) == ("collections", "OrderedDict"):
                    return OrderedDict
                if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                    return rebuild
                if module == "torch" and name in _STORAGES:
                    return _STORAGES[name]
                raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

            def persistent_load(self, pid):
                kind, dtype, key, _, numel = pid
                assert kind == "storage"
                a = np.frombuffer(z.read(f"{root}data/{key}"), dtype=dtype)
                assert a.size == numel
                return a

        return Unpickler(__import__("io").BytesIO(z.read(pkl))).load()


def test_torch_layout_matches_nnconv_export(imported: dict, tmp_path: Path) -> None:
    """Without PyTorch: for the imported models and every layer case, the modules and the state dict
    the adapter builds are those of `nnconv export model.pth` (same module classes in the same
    order, same keys, same values), and a layer the export refuses is refused."""
    models = dict(imported, **{c["name"]: _case_model(c) for c in LAYER_CASES})
    refused = 0
    for name, model in models.items():
        path = tmp_path / "m.nnm"
        nnm.save(path, model)
        result = run("nnconv", "export", path, "-o", tmp_path / "m.pth", check=False)
        if result.returncode != 0:
            with pytest.raises(ValueError, match=r"layers\[\d+\] \(\w+\): .*PyTorch has no standard module"):
                torch_layout(model)
            refused += 1
            continue
        modules, _ = torch_layout(model)
        sequential = re.search(r"for nn\.Sequential\((.*)\) on inputs", result.stdout).group(1)
        assert [m for m, _ in modules] == re.findall(r"nn\.(\w+)\(", sequential), name
        exported = read_pth(tmp_path / "m.pth")
        ours = torch_state_arrays(model)
        assert list(ours) == list(exported), name
        for key in ours:
            assert ours[key].shape == exported[key].shape, (name, key)
            np.testing.assert_array_equal(ours[key], exported[key].astype(ours[key].dtype), err_msg=f"{name}: {key}")
    assert 0 < refused < len(models), (refused, len(models))
    print(f"{len(models) - refused} models exported alike, {refused} refused by both")


def test_keras_weights_are_the_original_keras_models(imported: dict) -> None:
    """The Keras file nnconv imported, loaded by Keras itself, holds `nnm.keras.weights` of the import."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras", reason="Keras is not installed")
    import nnm.keras as nk
    original = keras.saving.load_model(FIXTURES / "keras" / "k3_bn_cnn.keras", compile=False).get_weights()
    ours = nk.weights(imported["bn_cnn"])
    assert [w.shape for w in ours] == [w.shape for w in original]
    for a, b in zip(ours, original):
        np.testing.assert_array_equal(a, b)
