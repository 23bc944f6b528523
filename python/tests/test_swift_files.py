"""Files the Swift tools write, read by Python: every tensor bit for bit (against the independent
reference reader Schemas/nnm.py), the metadata, the bytes `nnm.save` writes back (identical to
the Swift writer's), and the reference forward pass against `nn-infer --precision f64`."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

import nnm
from conftest import FASHION, FIXTURES, header_of, infer_probabilities, read_idx, run

# One of each kind of source the importers read: blog files in both layouts and every naming,
# Keras 3 and tf.keras 2 models with every layer kind, safetensors in f16/bf16/f64, ONNX, PyTorch
# checkpoints in f32/f16/bf16.
IMPORTS = [
    "interop/npz_blog_rows_2layer_f64.npz", "interop/npz_blog_rows_3layer_f32_compressed.npz", "interop/npz_nielsen_f64.npz",
    "interop/blog_cols_3layer_f32.h5", "interop/nielsen_groups_f64.h5", "interop/blog_rows_mnist_784_16_10_f32.h5",
    "interop/tfkeras2_model.h5", "interop/k3_cnn.keras", "keras/k3_bn_cnn.keras", "keras/k3_conv_same.keras",
    "keras/k3_global_avg.keras", "keras/k3_global_max.keras", "keras/k3_activation_layers.keras", "keras/k3_gelu_mlp.keras",
    "keras/k3_lenet5_legacy.h5", "crosstool/st_bf16_nobias.safetensors", "crosstool/st_named_fc_f16.safetensors",
    "crosstool/st_layers_numeric_f64.safetensors", "crosstool/onnx_mnist_preprocessing.onnx", "torch/lenet_avg_state.pth",
    "torch/lenet_avg_state_f16.pth", "torch/lenet_avg_state_bf16.pth",
]
COMMITTED = ["layers/v1.1-mlp.nnm", "layers/v1.1-cnn.nnm"]


def _reference_reader():
    spec = importlib.util.spec_from_file_location("nnm_reference_reader", FIXTURES.parent / "Schemas" / "nnm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _write_idx(path: Path, a: np.ndarray) -> None:
    header = bytes([0, 0, 8, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    path.write_bytes(header + a.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    """300 training and 200 test images of Fashion-MNIST as IDX files, for short nn-train runs."""
    if not FASHION.exists():
        pytest.skip(f"{FASHION} is missing (make setup installs dataset-fashion-mnist)")
    d = tmp_path_factory.mktemp("data")
    for kind, n in (("train", 300), ("t10k", 200)):
        _write_idx(d / f"{kind}-images-idx3-ubyte", read_idx(FASHION / f"{kind}-images-idx3-ubyte.gz", n))
        _write_idx(d / f"{kind}-labels-idx1-ubyte", read_idx(FASHION / f"{kind}-labels-idx1-ubyte.gz", n))
    return d


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_data) -> dict:
    """Models nn-train writes: an MLP with momentum (history, optimizer state, z-score
    statistics), a CNN with every 1.2 pooling and batch normalization, Nielsen's recipe."""
    d = tmp_path_factory.mktemp("trained")
    runs = {
        "mlp": ["--epochs", "2", "--momentum", "0.9"],
        "cnn": ["--epochs", "1", "--cnn", "conv:4:3x3:relu,bn,avgpool:2:same:exclude-pad,pool:2,gap", "--layers", "10"],
        "nielsen": ["--epochs", "1", "--recipe", "nielsen"],
        "leaky": ["--epochs", "1", "--layers", "784,16,10", "--activations", "leaky_relu(alpha=0.1),log_softmax", "--loss", "nll"],
    }
    out = {}
    for name, args in runs.items():
        run("nn-train", "--data", small_data, *args, "--save", d / f"{name}.nnm")
        out[name] = d / f"{name}.nnm"
    return out


def _check(path: Path, tmp_path: Path) -> None:
    model = nnm.load(path)
    # Every tensor, bit for bit, as the independent reference reader maps it.
    _, reference = _reference_reader().load(str(path))
    assert list(model.tensors) == list(reference)
    for name, a in reference.items():
        assert model.tensors[name].dtype.itemsize == a.dtype.itemsize
        assert model.tensors[name].tobytes() == a.tobytes(), name
        assert not model.tensors[name].flags.writeable
    # The metadata as stored (the Swift writer's canonical form).
    header = header_of(path)
    del header["tensors"]
    assert model.metadata == header
    # Saving it again gives the Swift writer's bytes.
    assert nnm.to_bytes(model) == path.read_bytes()
    copy = tmp_path / "copy.nnm"
    nnm.save(copy, model)
    assert copy.read_bytes() == path.read_bytes()
    # The reference forward pass agrees with nn-infer in f64.
    rng = np.random.default_rng(0)
    x = (rng.random((6, model.features)) * 255).astype(np.float32)
    expected = infer_probabilities(path, x, tmp_path)
    np.testing.assert_allclose(model.probabilities(x), expected, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("source", IMPORTS)
def test_imported_files(source: str, tmp_path: Path) -> None:
    target = tmp_path / (Path(source).name + ".nnm")
    run("nnconv", "import", FIXTURES / source, "-o", target)
    _check(target, tmp_path)


@pytest.mark.parametrize("source", COMMITTED)
def test_committed_files(source: str, tmp_path: Path) -> None:
    _check(FIXTURES / source, tmp_path)


@pytest.mark.parametrize("name", ["mlp", "cnn", "nielsen", "leaky"])
def test_trained_files(name: str, trained: dict, tmp_path: Path) -> None:
    path = trained[name]
    _check(path, tmp_path)
    model = nnm.load(path)
    assert model.training is not None and len(model.history) == model.training["epochs"]
    assert model.provenance["tool"].startswith("nn-train")
    if name == "mlp":
        assert model.training["optimizer_state"]["tensors"]["layers.0.weight"] == "optimizer.velocity.layers.0.weight"
        assert [s["op"] for s in model.preprocessing] == ["zscore"]


@pytest.mark.parametrize("name", ["mlp", "cnn"])
@pytest.mark.parametrize("kind", ["int8", "int8-calibrated", "bf16"])
def test_quantized_files(name: str, kind: str, trained: dict, small_data: Path, tmp_path: Path) -> None:
    """`nnconv quantize`'s copies (formats 1.3 and 1.4): read, rewritten byte for byte, and the
    reference forward pass on the weights' values (q * scale, widened bf16) agrees with nn-infer
    in f64."""
    target = tmp_path / f"{name}.{kind}.nnm"
    extra = {"int8": [], "int8-calibrated": ["--calibration", small_data / "train-images-idx3-ubyte"], "bf16": ["--bf16"]}[kind]
    run("nnconv", "quantize", trained[name], "-o", target, *extra)
    _check(target, tmp_path)
    model = nnm.load(target)
    assert model.version == (1, 4 if kind == "int8-calibrated" else 3)
    weighted = [l for l in model.layers if l["kind"] in ("dense", "conv2d")]
    if kind.startswith("int8"):
        assert all(model.tensors[l["weight"]].dtype == np.int8 and "weight_scale" in l for l in weighted)
        assert all(("input_quantization" in l) == (kind == "int8-calibrated") for l in weighted)
    else:
        assert all(l.get("compute") == "bf16" for l in weighted)


def test_the_digits_give_nn_infers_classes(trained: dict, small_data: Path, tmp_path: Path) -> None:
    """Real images as nn-infer reads them from IDX: the same predicted class for every image."""
    import json
    model = nnm.load(trained["mlp"])
    images = read_idx(small_data / "t10k-images-idx3-ubyte")
    doc = json.loads(run("nn-infer", trained["mlp"], small_data / "t10k-images-idx3-ubyte", "--json", "--show", "all",
                         "--precision", "f64").stdout)
    assert [p["class"] for p in doc["predictions"]] == list(model.classify(images))


def test_verify_false_skips_checksums(tmp_path: Path) -> None:
    path = tmp_path / "m.nnm"
    shutil.copy(FIXTURES / "layers/v1.1-mlp.nnm", path)
    data = bytearray(path.read_bytes())
    data[int.from_bytes(data[24:32], "little")] ^= 0x01  # the first byte of the first tensor
    path.write_bytes(bytes(data))
    with pytest.raises(nnm.ChecksumMismatch):
        nnm.load(path)
    nnm.load(path, verify=False)
