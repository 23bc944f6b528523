#!/usr/bin/env python3
"""Checks that Fixtures/parity/ is exactly what Fixtures/generate_parity.py produces.

    python3 Fixtures/check_parity_fixtures.py

Regenerates every parity fixture into a temporary directory and compares it with the committed
files: the same files, the same groups and datasets, the same attributes, and for each dataset and
attribute the same dtype, shape and values, bit for bit (NaNs included). File bytes are not
compared, only their contents. Prints one summary line (and one line per difference, up to 20);
exits 1 on any difference, 2 if the generator fails.
"""

import os
import subprocess
import sys
import tempfile

import numpy as np
import h5py

HERE = os.path.dirname(os.path.abspath(__file__))
COMMITTED = os.path.join(HERE, "parity")
GENERATOR = os.path.join(HERE, "generate_parity.py")


def walk(f):
    """Every object in the file: path -> ('group', attrs) or ('dataset', attrs, array)."""
    items = {"/": ("group", dict(f.attrs))}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            items[name] = ("dataset", dict(obj.attrs), obj[()])
        else:
            items[name] = ("group", dict(obj.attrs))

    f.visititems(visit)
    return items


def same_value(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind in "fc":
        # Bitwise: 0.0 and -0.0 differ, NaN equals NaN with the same payload.
        return a.tobytes() == b.tobytes()
    if a.dtype.kind == "O":
        return all(x == y for x, y in zip(a.ravel(), b.ravel()))
    return np.array_equal(a, b)


def compare(name, committed, fresh, problems):
    a, b = walk(committed), walk(fresh)
    for path in sorted(set(a) | set(b)):
        if path not in a:
            problems.append(f"{name}:{path}: missing from the committed file")
            continue
        if path not in b:
            problems.append(f"{name}:{path}: not produced by the generator")
            continue
        if a[path][0] != b[path][0]:
            problems.append(f"{name}:{path}: a {a[path][0]} here, a {b[path][0]} from the generator")
            continue
        attrs_a, attrs_b = a[path][1], b[path][1]
        for key in sorted(set(attrs_a) | set(attrs_b)):
            if key not in attrs_a or key not in attrs_b:
                problems.append(f"{name}:{path}: attribute {key} only in the {'generated' if key in attrs_b else 'committed'} file")
            elif not same_value(attrs_a[key], attrs_b[key]):
                problems.append(f"{name}:{path}: attribute {key} differs")
        if a[path][0] == "dataset" and not same_value(a[path][2], b[path][2]):
            x, y = np.asarray(a[path][2]), np.asarray(b[path][2])
            detail = f"{x.dtype}{list(x.shape)} vs {y.dtype}{list(y.shape)}"
            if x.dtype == y.dtype and x.shape == y.shape and x.dtype.kind == "f":
                detail += f", max abs difference {np.max(np.abs(x.astype(np.float64) - y.astype(np.float64))):.3e}"
            problems.append(f"{name}:{path}: dataset differs ({detail})")
    return sum(1 for v in a.values() if v[0] == "dataset")


def main():
    with tempfile.TemporaryDirectory(prefix="parity-check-") as tmp:
        out = os.path.join(tmp, "parity")
        run = subprocess.run([sys.executable, GENERATOR, "--out", out], capture_output=True, text=True)
        if run.returncode != 0:
            sys.stderr.write(run.stdout + run.stderr)
            print("parity fixtures: FAILED: the generator exited with status", run.returncode)
            return 2
        committed = sorted(n for n in os.listdir(COMMITTED) if n.endswith(".h5")) if os.path.isdir(COMMITTED) else []
        fresh = sorted(n for n in os.listdir(out) if n.endswith(".h5"))
        problems = []
        for n in sorted(set(committed) ^ set(fresh)):
            problems.append(f"{n}: {'only committed' if n in committed else 'not committed'}")
        datasets = 0
        for n in sorted(set(committed) & set(fresh)):
            with h5py.File(os.path.join(COMMITTED, n), "r") as a, h5py.File(os.path.join(out, n), "r") as b:
                datasets += compare(n, a, b, problems)
        for p in problems[:20]:
            print(p)
        if len(problems) > 20:
            print(f"... and {len(problems) - 20} more differences")
        if problems:
            print(f"parity fixtures: MISMATCH: {len(problems)} differences in {len(committed)} files; "
                  f"run python3 Fixtures/generate_parity.py (numpy {np.__version__}, h5py {h5py.__version__})")
            return 1
        print(f"parity fixtures: OK: {len(fresh)} files, {datasets} datasets and all attributes identical "
              f"to a fresh run (numpy {np.__version__}, h5py {h5py.__version__})")
        return 0


if __name__ == "__main__":
    sys.exit(main())
