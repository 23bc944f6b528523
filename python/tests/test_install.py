"""The issue's definition of done, checked as a user would meet it: in a fresh virtual environment
(no system site packages), `pip install ./python`, then `import nnm` (from the environment, not
from this checkout) loads every kind of .nnm the Swift tools write and re-saves each byte for
byte, and what it saves the Swift tools read (`nnconv validate`, `nn-infer`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import nnm
from conftest import FIXTURES, HERE, infer_probabilities, run
from test_swift_files import COMMITTED, IMPORTS, small_data, trained  # noqa: F401 (fixtures)

# Runs inside the virtual environment, with nothing but the package and NumPy.
SCRIPT = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    import numpy as np
    import nnm

    inputs, out = json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2])
    report = {"nnm": nnm.__file__, "version": nnm.__version__, "files": {}}
    for name, path in inputs.items():
        model = nnm.load(path)
        assert not any(a.flags.writeable for a in model.tensors.values()), name
        same = nnm.to_bytes(model) == Path(path).read_bytes()
        nnm.save(out / ("resaved-" + name + ".nnm"), model)
        report["files"][name] = {"tensors": len(model.tensors), "same_bytes": same}
    rng = np.random.default_rng(19)
    X = rng.integers(0, 256, (200, 784)).astype(float)
    params = {"W1": rng.standard_normal((784, 32)) * 0.05, "b1": rng.standard_normal((1, 32)),
              "W2": rng.standard_normal((32, 10)) * 0.05, "b2": rng.standard_normal((1, 10))}
    model = nnm.from_blog(params, layout="rows", activations=["relu", "softmax"],
                          preprocessing=nnm.zscore(X.mean(axis=0), X.std(axis=0)))
    nnm.save(out / "blog.nnm", model)
    np.save(out / "inputs.npy", X[:20])
    np.save(out / "predictions.npy", model.predict(X[:20]))
    print(json.dumps(report))
''')


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def test_fresh_venv_pip_install_reads_and_writes_swift_files(tmp_path: Path, trained: dict) -> None:  # noqa: F811
    sources = {}
    for source in IMPORTS:
        name = Path(source).stem
        run("nnconv", "import", FIXTURES / source, "-o", tmp_path / f"{name}.nnm")
        sources[name] = str(tmp_path / f"{name}.nnm")
    for committed in COMMITTED:
        sources[Path(committed).stem] = str(FIXTURES / committed)
    for name, path in trained.items():
        sources[f"nn-train-{name}"] = str(path)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = _venv_python(venv)
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(HERE.parent)],
                             capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stdout + install.stderr

    (tmp_path / "inputs.json").write_text(json.dumps(sources))
    (tmp_path / "script.py").write_text(SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    # A clean environment: nothing of this checkout on the path, the venv's own interpreter.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    result = subprocess.run([str(python), str(tmp_path / "script.py"), str(tmp_path / "inputs.json"), str(out)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert Path(report["nnm"]).resolve().is_relative_to(venv.resolve()), report["nnm"]
    assert report["version"] == nnm.__version__
    assert len(report["files"]) == len(IMPORTS) + len(COMMITTED) + len(trained) == 28
    for name, facts in report["files"].items():
        assert facts["same_bytes"], f"{name}: the installed package does not re-save the Swift writer's bytes"
        assert (out / f"resaved-{name}.nnm").read_bytes() == Path(sources[name]).read_bytes(), name

    # What the installed package wrote, read by the Swift tools.
    for path in [out / "blog.nnm", *sorted(out.glob("resaved-*.nnm"))]:
        run("nnconv", "validate", path)
    probabilities = infer_probabilities(out / "blog.nnm", np.load(out / "inputs.npy"), tmp_path)
    np.testing.assert_allclose(probabilities, np.load(out / "predictions.npy"), rtol=1e-7, atol=1e-12)
    # The console script the package installs.
    nnm_command = venv / "bin" / "nnm"
    cli = subprocess.run([str(nnm_command), "validate", str(out / "blog.nnm")], capture_output=True, text=True, env=env)
    assert cli.returncode == 0 and cli.stdout.startswith(f"{out / 'blog.nnm'}: valid .nnm 1.1"), cli.stdout + cli.stderr


def test_build_makes_a_wheel_and_an_sdist(tmp_path: Path) -> None:
    """`python -m build` (the `build` package) makes a pure-Python wheel holding every module, py.typed
    and the README as its description, with NumPy its only requirement, and an sdist with the tests."""
    pytest.importorskip("build", reason="the build package is not installed (pip install build)")
    import tarfile
    import zipfile
    result = subprocess.run([sys.executable, "-m", "build", "--outdir", str(tmp_path), str(HERE.parent)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    version = nnm.__version__
    modules = sorted(p.name for p in (HERE.parent / "src" / "nnm").glob("*.py"))
    with zipfile.ZipFile(tmp_path / f"nnm-{version}-py3-none-any.whl") as wheel:
        names = wheel.namelist()
        assert sorted(n.split("/")[1] for n in names if n.startswith("nnm/") and n.endswith(".py")) == modules
        assert "nnm/py.typed" in names
        metadata = wheel.read(f"nnm-{version}.dist-info/METADATA").decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert requires == ["Requires-Dist: numpy>=1.21"]
    assert "Description-Content-Type: text/markdown" in metadata and "# nnm for Python" in metadata
    with tarfile.open(tmp_path / f"nnm-{version}.tar.gz") as sdist:
        names = sdist.getnames()
    for path in ("README.md", "pyproject.toml", "src/nnm/py.typed", "tests/conftest.py", "tests/test_readme.py"):
        assert f"nnm-{version}/{path}" in names, path
