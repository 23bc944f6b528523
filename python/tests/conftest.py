"""Shared helpers: the Swift binaries (`NNM_BIN_DIR`, default the repository's .build/debug),
the repository's fixtures, and running the tools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FIXTURES = REPO / "Fixtures"
SRC = HERE.parent / "src"
if str(SRC) not in sys.path and os.environ.get("NNM_TEST_INSTALLED") != "1":
    sys.path.insert(0, str(SRC))  # the package as checked out, unless testing an installed copy

BIN_DIR = Path(os.environ.get("NNM_BIN_DIR", REPO / ".build" / "debug"))
FASHION = Path("/usr/share/datasets/fashion-mnist")
MNIST_TEST = REPO.parent / "shared" / "data" / "mnist"


def tool(name: str) -> Path:
    """The Swift binary `name`; the test is skipped (with the reason) when it has not been built."""
    path = BIN_DIR / name
    if not path.exists():
        pytest.skip(f"{path} is missing: build the Swift tools (swift build) or set NNM_BIN_DIR")
    return path


def run(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs a Swift tool; with `check`, fails the test (showing stderr) on a non-zero status."""
    result = subprocess.run([str(tool(name)), *map(str, args)], capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        pytest.fail(f"{name} {' '.join(map(str, args))} exited {result.returncode}: {result.stderr.strip()}")
    return result


def infer_probabilities(model: Path, inputs: np.ndarray, tmp: Path, precision: str = "f64") -> np.ndarray:
    """nn-infer's probabilities for every class of every sample (rows of `inputs`, saved as .npy)."""
    npy = tmp / "inputs.npy"
    np.save(npy, inputs)
    out = run("nn-infer", model, npy, "--json", "--precision", precision, "--show", "all", "--top", "1000").stdout
    doc = json.loads(out)
    classes = len(doc["classes"])
    probs = np.zeros((len(doc["predictions"]), classes))
    for p in doc["predictions"]:
        for t in p["top"]:
            probs[p["index"], t["class"]] = t["probability"]
    return probs


def read_idx(path: Path, limit: Optional[int] = None) -> np.ndarray:
    """An IDX file (gzip or not) as a NumPy array."""
    import gzip
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    a = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)
    return a[:limit] if limit is not None else a


def header_of(path: Path) -> dict:
    """The header JSON of a .nnm file, read with the standard library only."""
    b = Path(path).read_bytes()
    n = int.from_bytes(b[16:24], "little")
    return json.loads(b[48:48 + n])
