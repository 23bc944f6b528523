"""Batch inference on a partition of images with `nn-infer` as a streaming worker process, for
engines that split data into partitions (Dask, Spark, Ray).

    pred = nnm.infer_partition("model.nnm", images)      # images: (N, 28, 28) or (N, 784)
    pred.classes, pred.top_classes, pred.top_probabilities

One `nn-infer MODEL -` process per call: the images go to its standard input as a `.npy` stream
from a thread, its JSON Lines are read from standard output as they come, and its standard error
is drained by another thread, so no pipe can fill and block the other side (SPARK-7862). A
non-zero exit status raises `InferenceFailed` with nn-infer's one-line error, so a failed
partition is a task error in the engine, never missing rows. Zero rows (Dask calls a function on
an empty sample to learn its output type) return empty results without starting a process.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

import numpy as np

__all__ = ["Predictions", "InferenceFailed", "infer_partition", "classify_block", "classify_frame", "frame_meta"]

# How much of nn-infer's standard error is kept for the exception (it is one line when it fails).
_STDERR_KEPT = 64 * 1024


class InferenceFailed(RuntimeError):
    """`nn-infer` exited with a non-zero status; the message is its one-line error.

    `exit_status` is its exit status (65 bad input or model, 66 missing file, ...: the README's
    table), negative for a signal; `stderr` is what it wrote to standard error."""

    def __init__(self, message: str, exit_status: int, stderr: str = "") -> None:
        super().__init__(message)
        self.exit_status = exit_status
        self.stderr = stderr

    def __reduce__(self):  # picklable, so that Dask and Spark carry it from a worker to the client
        return (InferenceFailed, (str(self), self.exit_status, self.stderr))


@dataclass
class Predictions:
    """What `nn-infer` predicted for each image of a partition, in the partition's order.

    `classes` (N,) int64: the predicted class; `top_classes` (N, K) int64 and
    `top_probabilities` (N, K) float64: the K most probable classes and their probabilities
    (the model's raw outputs with `raw=True`), most probable first, as `nn-infer --json` gives them."""

    classes: np.ndarray
    top_classes: np.ndarray
    top_probabilities: np.ndarray

    def __len__(self) -> int:
        return len(self.classes)


def _empty(top: int) -> Predictions:
    return Predictions(np.zeros(0, np.int64), np.zeros((0, top), np.int64), np.zeros((0, top), np.float64))


def _stream_npy(stream: Any, images: np.ndarray, failures: List[BaseException]) -> None:
    """Writes `images` as a .npy to `stream` and closes it; a broken pipe means nn-infer stopped
    early, and its exit status and standard error say why."""
    try:
        # Header, then the C-order bytes in pieces: np.save's tofile() needs a seekable file.
        np.lib.format.write_array_header_1_0(stream, np.lib.format.header_data_from_array_1_0(images))
        data = memoryview(images.reshape(-1)).cast("B")
        step = 1 << 20
        for start in range(0, len(data), step):
            stream.write(data[start:start + step])
    except (BrokenPipeError, ConnectionResetError):
        pass
    except BaseException as error:  # reported by the caller, after nn-infer has ended
        failures.append(error)
    finally:
        try:
            stream.close()
        except (BrokenPipeError, OSError):
            pass


def _drain(stream: Any, kept: List[bytes]) -> None:
    """Reads `stream` to its end, keeping the last `_STDERR_KEPT` bytes."""
    size = 0
    for chunk in iter(lambda: stream.read(8192), b""):
        kept.append(chunk)
        size += len(chunk)
        while size > _STDERR_KEPT and len(kept) > 1:
            size -= len(kept.pop(0))
    stream.close()


def infer_partition(model: "os.PathLike[str] | str", images: Any, *, nn_infer: str = "nn-infer", top: int = 1,
                    raw: bool = False, batch: Optional[int] = None, threads: Optional[int] = None,
                    precision: str = "f32", extra_args: Sequence[str] = ()) -> Predictions:
    """Classifies `images` with `nn-infer MODEL -` in one child process.

    `images`: an array of shape (N, height, width), (N, features) or (N, *input_shape), uint8
    raw pixels or floats (taken as they are, as `nn-infer` takes a `.npy`); anything
    array-like is converted with `np.asarray`. `nn_infer` is the program (a path, or a name
    on PATH); `top` the number of classes kept per image; `batch`, `threads`, `precision`,
    `raw` and `extra_args` (e.g. `["--scale", "1/255"]` for a model nnconv converts) are passed
    on as `nn-infer`'s options of the same names. `threads=1` suits engines that already run
    one task per core.

    Raises `InferenceFailed` (nn-infer's one-line error and exit status) when nn-infer fails or
    does not answer every image, and `ValueError` for an array that is not images.
    """
    if top < 1:
        raise ValueError(f"top must be at least 1, not {top}")
    images = np.asarray(images)
    if images.ndim < 2:
        raise ValueError(f"images must have a first axis of samples and at least one more, not shape {images.shape}")
    count = images.shape[0]
    if count == 0:
        return _empty(top)
    if images.dtype != np.uint8 and images.dtype.kind != "f":
        raise ValueError(f"images must be uint8 pixels or floats, not {images.dtype}")
    images = np.ascontiguousarray(images)
    argv = [os.fspath(nn_infer), os.fspath(model), "-", "--top", str(top), "--precision", precision]
    if raw:
        argv.append("--raw")
    if batch is not None:
        argv += ["--batch", str(batch)]
    if threads is not None:
        argv += ["--threads", str(threads)]
    argv += list(extra_args)
    try:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as error:
        raise InferenceFailed(f"{nn_infer}: cannot run: {error.strerror}", 69) from error

    failures: List[BaseException] = []
    err: List[bytes] = []
    writer = threading.Thread(target=_stream_npy, args=(process.stdin, images, failures), daemon=True)
    drainer = threading.Thread(target=_drain, args=(process.stderr, err), daemon=True)
    writer.start()
    drainer.start()

    classes = np.full(count, -1, np.int64)
    top_classes = np.full((count, top), -1, np.int64)
    top_values = np.full((count, top), np.nan, np.float64)
    seen = 0
    bad_line: Optional[str] = None
    try:
        for line in process.stdout:
            record = json.loads(line)
            i = record["index"]
            if not 0 <= i < count:
                bad_line = f"index {i} outside the partition's {count} images"
                break
            classes[i] = record["class"]
            for j, entry in enumerate(record["top"][:top]):
                top_classes[i, j] = entry["class"]
                top_values[i, j] = entry["probability"] if "probability" in entry else entry["value"]
            seen += 1
    finally:
        process.stdout.close()
        status = process.wait()
        writer.join()
        drainer.join()
    stderr = b"".join(err).decode("utf-8", "replace")
    if status != 0:
        lines = [line for line in stderr.splitlines() if line.strip()]
        message = lines[-1] if lines else f"{nn_infer} exited with status {status}"
        raise InferenceFailed(message, status, stderr)
    if failures:
        raise failures[0]
    if bad_line is not None or seen != count or (classes < 0).any():
        raise InferenceFailed(f"{nn_infer}: answered {seen} of {count} images" + (f" ({bad_line})" if bad_line else ""), 70, stderr)
    return Predictions(classes, top_classes, top_values)


def classify_block(block: Any, model: "os.PathLike[str] | str", **options: Any) -> np.ndarray:
    """The predicted class of each image of `block` (its first axis), int64, for Dask's
    `map_blocks` over an array of images chunked along the first axis only:

        classes = images.map_blocks(nnm.classify_block, "model.nnm", drop_axis=[1, 2], dtype=np.int64,
                                    meta=np.array((), np.int64))

    An empty block (Dask's sample) starts no process. `options` go to `infer_partition`."""
    return infer_partition(model, block, **options).classes


def frame_meta(top: int = 1) -> Any:
    """The empty pandas DataFrame `classify_frame` returns for no rows: the `meta` for Dask's
    `map_partitions`. Columns: `class` (int64), then `top_1` ... `top_K` (int64) and `p_1` ...
    `p_K` (float64) when `top` > 1, else `probability` (float64)."""
    import pandas as pd
    columns = {"class": np.zeros(0, np.int64)}
    if top == 1:
        columns["probability"] = np.zeros(0, np.float64)
    else:
        for k in range(top):
            columns[f"top_{k + 1}"] = np.zeros(0, np.int64)
        for k in range(top):
            columns[f"p_{k + 1}"] = np.zeros(0, np.float64)
    return pd.DataFrame(columns)


def classify_frame(frame: Any, model: "os.PathLike[str] | str", *, columns: Optional[Sequence[str]] = None,
                   top: int = 1, **options: Any) -> Any:
    """Classifies the rows of a pandas DataFrame whose columns are pixel values (a Kaggle CSV's
    `pixel0` ... `pixel783`; `columns` picks them, by default every column but `label`), for
    Dask's `map_partitions` with `meta=nnm.frame_meta(top)`. Returns a DataFrame with the
    frame's index and `frame_meta`'s columns. `options` go to `infer_partition`."""
    import pandas as pd
    if columns is None:
        columns = [c for c in frame.columns if c != "label"]
    values = frame[list(columns)].to_numpy()
    if values.dtype.kind in "iu" and len(values) and values.min() >= 0 and values.max() <= 255:
        values = values.astype(np.uint8)
    elif values.dtype.kind != "f":
        values = values.astype(np.float32)
    pred = infer_partition(model, values, top=top, **options) if len(values) else _empty(top)
    out = frame_meta(top)
    data = {"class": pred.classes}
    if top == 1:
        data["probability"] = pred.top_probabilities[:, 0]
    else:
        for k in range(top):
            data[f"top_{k + 1}"] = pred.top_classes[:, k]
        for k in range(top):
            data[f"p_{k + 1}"] = pred.top_probabilities[:, k]
    return pd.DataFrame(data, index=frame.index).astype(out.dtypes.to_dict())
