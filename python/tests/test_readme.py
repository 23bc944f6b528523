"""The README's examples run as they are: its ```python blocks in order in one namespace (a block
that imports a framework that is not installed is left out, and so is every ```py block, shown
only), in a fresh directory; a `print(...)  # -> expected` line must print what it says ("..."
stands for anything), and each `$ python -m nnm ...` line of a ```console block must exit 0 and
print the lines shown below it, in order."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

from conftest import SRC

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)
EXPECTED = re.compile(r"^\s*print\(.*\)\s+# -> (.*)$")


def blocks(language: str) -> List[str]:
    return [body for lang, body in BLOCK.findall(README.read_text()) if lang == language]


def matches(expected: str, actual: str) -> bool:
    pattern = ".*?".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual.rstrip()) is not None


def _framework_missing(block: str) -> bool:
    for framework in ("keras", "torch"):
        if re.search(rf"^import .*nnm\.{framework}\b", block, re.M):
            try:
                os.environ.setdefault("KERAS_BACKEND", "jax")
                __import__(framework)
            except ImportError:
                return True
    return False


def test_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    ran = checked = 0
    for i, block in enumerate(blocks("python")):
        if _framework_missing(block):
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, f"README.md python block {i}", "exec"), namespace)
        ran += 1
        # Each print() of the examples prints one line; pair them up in order.
        prints = [line for line in block.splitlines() if line.lstrip().startswith("print(")]
        printed = out.getvalue().splitlines()
        assert len(printed) == len(prints), f"block {i} printed {printed}"
        for line, actual in zip(prints, printed):
            m = EXPECTED.match(line)
            if m:
                assert matches(m.group(1), actual), f"block {i}: {line.strip()} printed {actual!r}"
                checked += 1
    assert ran >= 8 and checked >= 10, (ran, checked)
    # The console examples use the files the python blocks wrote.
    env = dict(os.environ)
    if os.environ.get("NNM_TEST_INSTALLED") != "1":
        env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    commands = 0
    for block in blocks("console"):
        for command, shown in _commands(block):
            argv = command.split()
            assert argv[:3] == ["python", "-m", "nnm"], command
            result = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, env=env, timeout=120)
            assert result.returncode == 0, result.stderr
            actual = result.stdout.splitlines()
            position = 0
            for line in shown:
                while position < len(actual) and actual[position] != line:
                    position += 1
                assert position < len(actual), f"{command}: {line!r} not printed (in order) in:\n{result.stdout}"
                position += 1
            commands += 1
    assert commands >= 2


def _commands(block: str) -> List[Tuple[str, List[str]]]:
    out: List[Tuple[str, List[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            out.append((line[2:], []))
        elif line != "..." and out:
            out[-1][1].append(line)
    return out


def test_top_level_readme_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The repository README's save-and-load blocks run, with stand-ins for the trained arrays."""
    monkeypatch.chdir(tmp_path)
    text = (README.parent.parent / "README.md").read_text()
    python = [body for lang, body in BLOCK.findall(text) if lang == "python" and "nnm." in body]
    assert len(python) == 2 and "nnm.save(" in python[0] and "nnm.load(" in python[1]
    import numpy as np
    rng = np.random.default_rng(0)
    namespace = {"X_raw": rng.integers(0, 256, (100, 784)).astype(float), "images": rng.integers(0, 256, (3, 28, 28)),
                 "W1": rng.standard_normal((784, 256)) * 0.01, "b1": np.zeros((1, 256)),
                 "W2": rng.standard_normal((256, 10)) * 0.01, "b2": np.zeros((1, 10))}
    for block in python:
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["model"].tensors["layers.0.weight"].shape == (784, 256)
    assert namespace["predictions"].shape == (3,)
