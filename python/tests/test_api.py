"""The package's behaviour around files: atomic, validated writes; zero-copy read-only arrays;
widening; the command line (`python -m nnm`) and its exit statuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nnm
from conftest import FIXTURES, SRC, run

MLP = FIXTURES / "layers" / "v1.1-mlp.nnm"


def small(dtype=np.float32) -> nnm.Model:
    rng = np.random.default_rng(3)
    return nnm.from_blog({"W1": rng.standard_normal((4, 3)).astype(dtype), "b1": np.zeros((1, 3), dtype),
                          "W2": rng.standard_normal((3, 2)).astype(dtype), "b2": np.zeros((1, 2), dtype)}, layout="rows")


def test_loaded_arrays_are_read_only_views(tmp_path: Path) -> None:
    model = nnm.load(MLP)
    for a in model.tensors.values():
        assert not a.flags.writeable and not a.flags.owndata
        with pytest.raises(ValueError):
            a[...] = 0


def test_large_files_are_memory_mapped(tmp_path: Path) -> None:
    import mmap
    big = nnm.from_blog({"W1": np.ones((2048, 2100), np.float32), "b1": np.zeros(2100, np.float32)}, layout="rows",
                        activations=["softmax"])
    path = tmp_path / "big.nnm"
    nnm.save(path, big)
    assert path.stat().st_size > 16 << 20
    model = nnm.load(path)
    base = model.tensors["layers.0.weight"]
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    assert isinstance(base, mmap.mmap)


def test_widening(tmp_path: Path) -> None:
    w = np.array([[1.5, -2.25], [0.125, 3.0]])
    model = nnm.Model({"input": {"shape": [2]}, "layers": [{"kind": "dense", "in": 2, "out": 2, "activation": "relu",
                                                           "weight": "w"}],
                       "provenance": {"tool": "t", "created": "c"}},
                      {"w": w.astype(np.float16), "counts": np.array([-3, 7], np.int8)})
    path = tmp_path / "m.nnm"
    nnm.save(path, model)
    loaded = nnm.load(path)
    assert loaded.tensors["w"].dtype == np.float16 and loaded.dtypes == {"w": "f16", "counts": "i8"}
    assert loaded.array("w", widen=True).dtype == np.float32
    assert loaded.array("w", widen=True).tolist() == w.tolist()
    assert loaded.array("counts", widen=True).tolist() == [-3.0, 7.0]


def test_bf16_round_trip(tmp_path: Path) -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="ml_dtypes (bfloat16 for NumPy) is not installed")
    w = np.array([[1.5, -2.0], [0.25, 3.0]], dtype=ml_dtypes.bfloat16)
    model = nnm.Model({"input": {"shape": [2]}, "layers": [{"kind": "dense", "in": 2, "out": 2, "activation": "identity",
                                                           "weight": "w"}], "provenance": {"tool": "t", "created": "c"}},
                      {"w": w})
    path = tmp_path / "bf16.nnm"
    nnm.save(path, model)
    run("nnconv", "validate", path)
    loaded = nnm.load(path)
    assert loaded.dtypes["w"] == "bf16" and loaded.array("w", widen=True).tolist() == [[1.5, -2.0], [0.25, 3.0]]
    assert nnm.to_bytes(loaded) == path.read_bytes()


def test_an_invalid_model_is_never_written(tmp_path: Path) -> None:
    path = tmp_path / "m.nnm"
    nnm.save(path, small())
    before = path.read_bytes()
    broken = small()
    broken.tensors["layers.1.weight"] = np.zeros((2, 3), np.float32)
    with pytest.raises(nnm.InvalidModel) as info:
        nnm.save(path, broken)
    assert str(info.value) == f"{path}: tensor 'layers.1.weight': expected shape 3x2, found 2x3"
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.nnm"], "no temporary file is left behind"


def test_writing_into_a_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "m.nnm"
    with pytest.raises(nnm.CannotCreate) as info:
        nnm.save(path, small())
    assert info.value.exit_status == 73 and str(info.value).startswith(f"{path}: cannot write: ")


def test_a_failed_write_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.nnm"
    nnm.save(path, small())
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(nnm.WriteFailed) as info:
        nnm.save(path, small(np.float64))
    assert info.value.exit_status == 74
    assert str(info.value) == f"{path}: write failed: No space left on device; the previous file, if any, is unchanged"
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["m.nnm"]


def test_warnings_for_non_finite_values() -> None:
    model = small()
    model.tensors["layers.0.weight"] = model.tensors["layers.0.weight"].copy()
    model.tensors["layers.0.weight"][1, 2] = np.nan
    assert model.validate() == ["tensor 'layers.0.weight': holds NaN or infinite values (first at element 5)"]


def test_metadata_shortcuts() -> None:
    model = nnm.load(MLP)
    assert model.features == int(np.prod(model.input_shape))
    assert model.layers[0]["kind"] == "dense" and model.provenance["tool"]
    assert model.output_kind in ("probabilities", "logits", "log_probabilities")
    assert model.parameter_count == sum(model.tensors[l[k]].size for l in model.layers for k in ("weight", "bias") if k in l)
    assert "nnm.Model" in repr(model)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "nnm", *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_validate_and_inspect(tmp_path: Path) -> None:
    result = _cli("validate", str(MLP))
    assert result.returncode == 0
    assert result.stdout.startswith(f"{MLP}: valid .nnm 1.1: ")
    swift = run("nnconv", "validate", MLP).stdout.strip()
    assert result.stdout.strip() == swift
    shown = _cli("inspect", str(MLP))
    assert shown.returncode == 0 and "layer 0: dense" in shown.stdout and "@crc32 = " in shown.stdout
    # The layer lines and the tensor table are nnconv inspect's.
    theirs = run("nnconv", "inspect", MLP).stdout.splitlines()
    ours = shown.stdout.splitlines()
    assert [l for l in ours if l.startswith("  layer ")] == [l for l in theirs if l.startswith("  layer ")]
    assert [l for l in ours if l.startswith("    @")] == [l for l in theirs if l.startswith("    @")]


def test_cli_inspect_of_quantized_models(tmp_path: Path) -> None:
    """int8 (with calibrated inputs) and bf16 copies from nnconv quantize: the same layer lines."""
    model = nnm.load(MLP)
    rng = np.random.default_rng(3)
    images = tmp_path / "images.idx"
    dims = [50, 1, model.features]  # IDX images are N x rows x columns; the features must match
    images.write_bytes(bytes([0, 0, 8, 3]) + b"".join(int(d).to_bytes(4, "big") for d in dims)
                       + rng.integers(0, 256, size=50 * model.features, dtype=np.uint8).tobytes())
    for extra in (["--calibration", str(images)], ["--bf16"]):
        path = tmp_path / "q.nnm"
        run("nnconv", "quantize", MLP, "-o", path, *extra)
        theirs = [l for l in run("nnconv", "inspect", path).stdout.splitlines() if l.startswith("  layer ")]
        ours = [l for l in _cli("inspect", str(path)).stdout.splitlines() if l.startswith("  layer ")]
        assert ours == theirs and ("(calibrated)" in theirs[0] or "(bf16 products)" in theirs[0]), theirs


def test_cli_exit_statuses(tmp_path: Path) -> None:
    bad = tmp_path / "bad.nnm"
    bad.write_bytes(MLP.read_bytes()[:100])
    result = _cli("validate", str(MLP), str(bad))
    assert result.returncode == 65
    assert result.stderr.strip() == f"nnm validate: {bad}: truncated: the metadata header needs {MLP.stat().st_size} bytes, the file has 100"
    assert _cli("validate", str(tmp_path / "missing.nnm")).returncode == 66
    assert _cli("frobnicate", str(MLP)).returncode == 64
    assert _cli().returncode == 64


def test_source_date_epoch_sets_the_provenance_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As the Swift tools do: SOURCE_DATE_EPOCH (1700000000 s is 2023-11-14T22:13:20Z) replaces the
    clock, so saving twice gives the same bytes; a value Swift's Int() does not read is ignored."""
    rng = np.random.default_rng(3)
    arrays = {"W1": rng.standard_normal((4, 3)).astype(np.float32), "b1": np.zeros((1, 3), np.float32)}
    np.savez(tmp_path / "w.npz", **arrays)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    run("nnconv", "import", tmp_path / "w.npz", "-o", tmp_path / "s.nnm")  # inherits the environment
    swift = nnm.load(tmp_path / "s.nnm").provenance["created"]
    assert swift == "2023-11-14T22:13:20Z"
    assert nnm.from_blog(arrays).provenance["created"] == swift
    assert nnm.to_bytes(nnm.from_blog(arrays)) == nnm.to_bytes(nnm.from_blog(arrays))
    for ignored in ("", "-5", " 5", "1e9", "5x"):
        monkeypatch.setenv("SOURCE_DATE_EPOCH", ignored)
        assert nnm.from_blog(arrays).provenance["created"] != swift
