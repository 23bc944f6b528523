"""`nnm.infer_partition` on a Dask `distributed` cluster with worker processes (LocalCluster;
the same code runs on a real cluster): 100,000 images over 8 partitions give exactly what one
`nn-infer` run over the same images (a `.npy` file, `--json`) gives, and a worker whose nn-infer
fails raises the error in the client instead of losing rows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import re

from conftest import BIN_DIR, MNIST_TEST, SRC, read_idx, run, tool

import nnm

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")


def _rows(path: str, start: int, stop: int) -> np.ndarray:
    return np.array(np.load(path, mmap_mode="r")[start:stop])


def _model(path: Path) -> None:
    rng = np.random.default_rng(1)
    nnm.save(path, nnm.from_blog({"W1": rng.normal(0, 0.05, (784, 32)).astype(np.float32),
                                  "b1": rng.normal(0, 0.1, 32).astype(np.float32),
                                  "W2": rng.normal(0, 0.5, (32, 10)).astype(np.float32),
                                  "b2": np.zeros(10, np.float32)},
                                 layout="rows", activations=["relu", "softmax"], preprocessing=nnm.scale(1 / 255)))


@pytest.fixture(scope="module")
def cluster():
    # Worker processes import nnm from this checkout, as a real cluster's would from its install.
    os.environ["PYTHONPATH"] = str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")
    # and find nn-infer on PATH, as the README's recipes expect.
    os.environ["PATH"] = str(BIN_DIR) + os.pathsep + os.environ.get("PATH", "")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
            distributed.Client(c) as client:
        yield client


def test_a_cluster_gives_one_runs_predictions(tmp_path: Path, cluster) -> None:
    source = MNIST_TEST / "t10k-images-idx3-ubyte.gz"
    if not source.exists():
        pytest.skip(f"{source} is missing")
    digits = read_idx(source)
    # 100,000 distinct images: the 10,000 digits shifted by 0 to 9 pixels.
    images = np.concatenate([np.roll(digits, k, axis=2) for k in range(10)])
    assert images.shape == (100_000, 28, 28)
    model = tmp_path / "m.nnm"
    _model(model)
    nn_infer = str(tool("nn-infer"))

    np.save(tmp_path / "all.npy", images)
    doc = json.loads(run("nn-infer", model, tmp_path / "all.npy", "--json", "--show", "all", "--top", "2").stdout)
    expected_classes = np.array([p["class"] for p in doc["predictions"]])
    expected_p = np.array([[t["probability"] for t in p["top"]] for p in doc["predictions"]])

    # Each worker reads its own rows of the file, as it would from shared storage.
    array = da.concatenate([da.from_delayed(dask.delayed(_rows)(str(tmp_path / "all.npy"), start, start + 12_500),
                                            shape=(12_500, 28, 28), dtype=np.uint8)
                            for start in range(0, 100_000, 12_500)])
    assert array.numblocks[0] == 8
    classes = array.map_blocks(nnm.classify_block, str(model), nn_infer=nn_infer, threads=1,
                               drop_axis=[1, 2], dtype=np.int64, meta=np.array((), np.int64))
    got = classes.compute()
    assert got.dtype == np.int64 and got.shape == (100_000,)
    assert np.array_equal(got, expected_classes)

    # map_partitions on a DataFrame of pixel columns (a Kaggle CSV's layout), meta given.
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(images[:20_000].reshape(20_000, 784), columns=[f"pixel{i}" for i in range(784)])
    ddf = dd.from_pandas(frame, npartitions=4)
    out = ddf.map_partitions(nnm.classify_frame, str(model), top=2, nn_infer=nn_infer, threads=1,
                             meta=nnm.frame_meta(2)).compute()
    assert list(out.index) == list(range(20_000))
    assert np.array_equal(out["class"].to_numpy(), expected_classes[:20_000])
    assert np.array_equal(out[["p_1", "p_2"]].to_numpy(), expected_p[:20_000])  # the same digits, printed the same


def test_a_failing_worker_is_a_task_error(tmp_path: Path, cluster, ) -> None:
    model = tmp_path / "m.nnm"
    _model(model)
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF  # the last tensor fails its checksum
    corrupt = tmp_path / "corrupt.nnm"
    corrupt.write_bytes(bytes(data))
    images = da.from_array(np.zeros((4_000, 28, 28), np.uint8), chunks=(1_000, 28, 28))
    classes = images.map_blocks(nnm.classify_block, str(corrupt), nn_infer=str(tool("nn-infer")),
                                drop_axis=[1, 2], dtype=np.int64, meta=np.array((), np.int64))
    with pytest.raises(nnm.InferenceFailed) as failure:
        classes.compute()
    assert failure.value.exit_status == 65
    assert str(failure.value).startswith(f"nn-infer: {corrupt}: corrupt: ")
    # Bad input in one partition only: the shape nn-infer refuses.
    wrong = da.from_array(np.zeros((2_000, 28, 27), np.uint8), chunks=(1_000, 28, 27))
    with pytest.raises(nnm.InferenceFailed, match=r"^nn-infer: stdin: shape 1000x28x27: expected"):
        wrong.map_blocks(nnm.classify_block, str(model), nn_infer=str(tool("nn-infer")),
                         drop_axis=[1, 2], dtype=np.int64, meta=np.array((), np.int64)).compute()


def test_the_readme_dask_recipe_runs(tmp_path: Path, cluster) -> None:
    """The README's Dask block as written, on files of its names (absolute paths, since the
    workers' directory is not this test's): its results equal nn-infer's on the same files."""
    pytest.importorskip("dask.dataframe")
    readme = (Path(SRC).parent.parent / "README.md").read_text()
    block = re.search(r"<!-- scale-recipe: dask[^>]*-->\n```py\n(.*?)^```", readme, re.S | re.M).group(1)
    source = MNIST_TEST / "t10k-images-idx3-ubyte.gz"
    if not source.exists():
        pytest.skip(f"{source} is missing")
    digits = read_idx(source, 3000)
    _model(tmp_path / "fashion.nnm")
    np.save(tmp_path / "images.npy", digits)
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    np.savetxt(tmp_path / "test.csv", np.hstack([np.zeros((3000, 1), np.uint8), digits.reshape(3000, 784)]),
               fmt="%d", delimiter=",", header=header, comments="")
    for name in ("images.npy", "fashion.nnm", "test.csv"):
        block = block.replace(f'"{name}"', repr(str(tmp_path / name)))
    namespace: dict = {}
    exec(compile(block, "README.md dask recipe", "exec"), namespace)
    for name, path in (("classes", "images.npy"), ("predicted", "test.csv")):
        doc = json.loads(run("nn-infer", tmp_path / "fashion.nnm", tmp_path / path, "--json", "--show", "all", "--top", "2").stdout)
        expected = np.array([p["class"] for p in doc["predictions"]])
        got = namespace[name] if name == "classes" else namespace[name]["class"].to_numpy()
        assert np.array_equal(np.asarray(got), expected), name
    p2 = np.array([[t["probability"] for t in p["top"]] for p in doc["predictions"]])
    assert np.array_equal(namespace["predicted"][["p_1", "p_2"]].to_numpy(), p2)
