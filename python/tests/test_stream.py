"""`nn-infer MODEL -` as a streaming worker (issue 21): every input form it reads on standard
input gives the NumPy reference's predictions (`Model.predict`, not the code under test); a
truncated last record is one line naming stdin and the record, exit status 65, after the
complete lines of the records before it; results come while standard input is still open; and a
million records through a pipe keep the process's peak memory small (measured with wait4 in a small helper process)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest

from conftest import MNIST_TEST, read_idx, tool

import nnm


def _model(path: Path, inputs: int = 784, hidden: int = 32, classes: int = 10, seed: int = 0) -> nnm.Model:
    rng = np.random.default_rng(seed)
    model = nnm.from_blog({"W1": rng.normal(0, 0.05, (inputs, hidden)).astype(np.float32),
                           "b1": rng.normal(0, 0.1, hidden).astype(np.float32),
                           "W2": rng.normal(0, 0.5, (hidden, classes)).astype(np.float32),
                           "b2": np.zeros(classes, np.float32)},
                          layout="rows", activations=["relu", "softmax"], preprocessing=nnm.scale(1 / 255),
                          input_shape=[28, 28] if inputs == 784 else [inputs])
    nnm.save(path, model)
    return model


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    path = MNIST_TEST / "t10k-images-idx3-ubyte.gz"
    if not path.exists():
        pytest.skip(f"{path} is missing")
    return read_idx(path, 300).copy()


def _stream(model: Path, data: bytes, *args: str) -> Tuple[int, List[dict], str]:
    result = subprocess.run([str(tool("nn-infer")), str(model), "-", *args], input=data, capture_output=True, timeout=300)
    lines = result.stdout.decode().splitlines()
    return result.returncode, [json.loads(line) for line in lines], result.stderr.decode()


def _check(records: List[dict], expected: np.ndarray) -> None:
    """Each line against the reference's probabilities: index, class, the top 3 and their values."""
    assert [r["index"] for r in records] == list(range(len(expected)))
    order = np.argsort(-expected, axis=1, kind="stable")
    for r, row, best in zip(records, expected, order):
        assert r["class"] == best[0]
        assert [t["class"] for t in r["top"]] == list(best[:3])
        assert np.allclose([t["probability"] for t in r["top"]], row[best[:3]], atol=1e-5)


def _idx(images: np.ndarray) -> bytes:
    dims = images.shape
    return bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + images.tobytes()


def _npy(array: np.ndarray) -> bytes:
    import io
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def test_every_input_form_gives_the_reference_predictions(tmp_path: Path, digits: np.ndarray) -> None:
    model = _model(tmp_path / "m.nnm")
    expected = model.predict(digits)
    flat = digits.reshape(len(digits), -1)
    forms = {
        "idx": (_idx(digits), []),
        "idx gzip": (gzip.compress(_idx(digits)), []),
        "npy u8": (_npy(digits), []),
        "npy f4 big-endian (N, 784)": (_npy(flat.astype(">f4")), []),
        "npy f8": (_npy(digits.astype(np.float64)), []),
        "raw u8": (digits.tobytes(), ["--records", "u8"]),
        "raw f32": (digits.astype("<f4").tobytes(), ["--records", "f32"]),
    }
    for name, (data, args) in forms.items():
        status, records, stderr = _stream(tmp_path / "m.nnm", data, *args, "--batch", "64")
        assert status == 0 and stderr == "", (name, status, stderr)
        _check(records, expected)


def test_json_lines_carry_their_members(tmp_path: Path, digits: np.ndarray) -> None:
    model = _model(tmp_path / "m.nnm")
    expected = model.predict(digits[:5])
    lines = [json.dumps({"id": f"scan-{i}", "pixels": digits[i].tolist() if i % 2 else digits[i].reshape(-1).tolist(),
                         "meta": {"page": i}}) for i in range(5)]
    data = ("\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:])).encode()  # a blank line; no final newline
    status, records, stderr = _stream(tmp_path / "m.nnm", data, "--records", "jsonl")
    assert status == 0 and stderr == ""
    _check(records, expected)
    assert [r["id"] for r in records] == [f"scan-{i}" for i in range(5)]
    assert [r["meta"] for r in records] == [{"page": i} for i in range(5)]
    assert list(records[0]) == ["index", "class", "top", "id", "meta"]
    status, records, stderr = _stream(tmp_path / "m.nnm", b'{"class": 3, "pixels": ' + json.dumps([0] * 784).encode() + b"}\n",
                                      "--records", "jsonl")
    assert status == 65 and records == []
    assert stderr == 'nn-infer: stdin: line 1 (record 0): member "class" would replace the output\'s own; rename it\n'


@pytest.mark.parametrize("form", ["raw u8", "idx", "npy"])
def test_a_truncated_last_record_names_stdin_and_the_record(tmp_path: Path, digits: np.ndarray, form: str) -> None:
    model = _model(tmp_path / "m.nnm")
    data, args = {"raw u8": (digits[:10].tobytes(), ["--records", "u8"]), "idx": (_idx(digits[:10]), []),
                  "npy": (_npy(digits[:10]), [])}[form]
    data = data[:-100]  # record 9 loses its last 100 bytes
    status, records, stderr = _stream(tmp_path / "m.nnm", data, *args, "--batch", "4")
    assert status == 65
    declared = "" if form == "raw u8" else " (the header declares 10 records)"
    assert stderr == f"nn-infer: stdin: record 9 is truncated: 684 of its 784 bytes{declared}\n"
    _check(records, model.predict(digits[:9]))  # every record before it, each line whole


def test_stream_errors(tmp_path: Path, digits: np.ndarray) -> None:
    _model(tmp_path / "m.nnm")
    m = tmp_path / "m.nnm"
    cases = [
        (b"", [], 65, "nn-infer: stdin: empty input: expected IDX or .npy data, or raw records with --records u8|f32|jsonl"),
        (b"hello\n", [], 65, "nn-infer: stdin: neither IDX nor .npy (first bytes 68 65 6c 6c); raw records need --records u8, f32 or jsonl"),
        (_idx(digits[:2, :, :20].copy()), [], 65,
         "nn-infer: stdin: IDX images are 28x20 (560 values) but the model expects 28x28 (784 values)"),
        (_idx(digits[:2]) + b"xyz", [], 65, "nn-infer: stdin: 3 bytes follow the 2 records the header declares"),
        (_npy(digits[:2].astype(np.int16)), [], 65,
         "nn-infer: stdin: dtype '<i2': expected uint8 pixels ('|u1') or floats ('<f4', '<f8')"),
        (b"", ["--labels", "x"], 64, "nn-infer: --labels does not apply to a stream of records (nn-infer MODEL -)"),
        (b"", ["--records", "u16"], 64, None),
    ]
    for data, args, status, message in cases:
        got, records, stderr = _stream(m, data, *args)
        assert got == status, (args, stderr)
        # Trailing bytes are found after the declared records, whose lines are written.
        assert len(records) == (2 if data.endswith(b"xyz") else 0)
        if message:
            assert stderr == message + "\n"
    assert _stream(m, b"", "--records", "u8") == (0, [], "")  # no records: nothing to do


def test_results_come_while_stdin_is_open(tmp_path: Path, digits: np.ndarray) -> None:
    """A producer that has written 3 records and waits gets their 3 lines: batches are what has
    arrived, not a full --batch. (The timeout only stops a hang; nothing is timed.)"""
    _model(tmp_path / "m.nnm")
    process = subprocess.Popen([str(tool("nn-infer")), str(tmp_path / "m.nnm"), "-", "--records", "u8"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        process.stdin.write(digits[:3].tobytes())
        process.stdin.flush()
        lines: List[bytes] = []
        reader = threading.Thread(target=lambda: lines.extend(process.stdout.readline() for _ in range(3)), daemon=True)
        reader.start()
        reader.join(120)
        assert [json.loads(line)["index"] for line in lines] == [0, 1, 2]
        process.stdin.write(digits[3:5].tobytes())
        process.stdin.close()
        rest = process.stdout.read().decode().splitlines()
        assert [json.loads(line)["index"] for line in rest] == [3, 4]
        assert process.wait(120) == 0
    finally:
        process.kill()
        process.wait()


def test_a_million_records_through_a_pipe_keep_memory_flat(tmp_path: Path) -> None:
    """1,000,000 records of 16 bytes: peak RSS (the child's own, from wait4) stays under 100 MB
    (a batch at a time; the whole input is 16 MB and its output about 170 MB), every line is
    there, and the last one is the NumPy reference's prediction."""
    model = _model(tmp_path / "small.nnm", inputs=16, hidden=8, classes=3)
    count = 1_000_000
    rng = np.random.default_rng(7)
    chunk = rng.integers(0, 256, size=(10_000, 16), dtype=np.uint8)
    # A small helper starts nn-infer with posix_spawn and reports its rusage: a child forked
    # straight from this (large) test process would count this process's pages in its peak.
    helper = ("import os, sys\n"
              "pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)\n"
              "_, status, usage = os.wait4(pid, 0)\n"
              "sys.stderr.write(f'maxrss {usage.ru_maxrss}\\n')\n"
              "sys.exit(os.waitstatus_to_exitcode(status))\n")
    process = subprocess.Popen([sys.executable, "-c", helper, str(tool("nn-infer")), str(tmp_path / "small.nnm"), "-",
                                "--records", "u8", "--top", "1"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def produce() -> None:
        for _ in range(count // len(chunk)):
            process.stdin.write(chunk.tobytes())
        process.stdin.close()

    errors: List[bytes] = []
    writer = threading.Thread(target=produce, daemon=True)
    drainer = threading.Thread(target=lambda: errors.append(process.stderr.read()), daemon=True)
    writer.start()
    drainer.start()
    lines = 0
    last = b""
    for line in process.stdout:
        lines += 1
        last = line
    process.wait()
    writer.join()
    drainer.join()
    assert process.returncode == 0, errors
    assert lines == count
    record = json.loads(last)
    assert record["index"] == count - 1
    assert record["class"] == int(np.argmax(model.predict(chunk[-1:])[0]))
    reported = [line for line in errors[0].decode().splitlines() if line.startswith("maxrss ")]
    assert errors[0].decode().splitlines() == reported  # nothing else on standard error
    peak_mb = int(reported[0].split()[1]) / 1024  # kilobytes on Linux
    print(f"nn-infer peak RSS for {count} records: {peak_mb:.1f} MB")
    assert peak_mb < 100, peak_mb
