"""Issue 21: nn-infer as a streaming worker on Dask (and Spark, with --spark), against one
in-process nn-infer run. Not run by `make test` or `make bench`; run it by hand:

    swift build -c release -Xswiftc -static-stdlib --product nn-infer
    python3 Benchmarks/scale.py [--images 100000] [--rounds 3] [--spark]

Measures, for a 784-256-10 model (seed 000's shape, random weights: the cost does not depend on
the values) over the MNIST test digits repeated (shifted by 0..k pixels) to --images:

- one nn-infer run over the whole set as a .npy file (`--json --show all`, the in-process engine);
- the same set streamed through one `nnm.infer_partition` call (`nn-infer MODEL -`, JSON Lines);
- Dask `distributed` LocalCluster with 1 and 2 worker processes (1 thread each, nn-infer --threads 1),
  `map_blocks(nnm.classify_block)` over 8 partitions, data read by the workers from the .npy;
- the overhead per partition: `infer_partition` on 1 image (process start, model load, one line);
- with --spark: pyspark local[2], `mapPartitions` calling `infer_partition`, and `RDD.pipe` with
  `checkCode=True` over raw u8 records; each checked for identical classes against the one run.

Prints medians (of --rounds) in images/s, with the CPU and the load average.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python" / "src"))
import nnm  # noqa: E402

MNIST = ROOT.parent / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"


def rows(path: str, start: int, stop: int) -> np.ndarray:
    return np.array(np.load(path, mmap_mode="r")[start:stop])


def timed(fn, rounds: int):
    times, result = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--nn-infer", default=str(ROOT / ".build" / "release" / "nn-infer"))
    ap.add_argument("--spark", action="store_true")
    args = ap.parse_args()
    nn_infer = args.nn_infer
    work = Path(tempfile.mkdtemp(prefix="nnm-scale-"))

    raw = gzip.open(MNIST).read()
    digits = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)
    copies = -(-args.images // len(digits))
    images = np.concatenate([np.roll(digits, k, axis=2) for k in range(copies)])[:args.images]
    npy = work / "all.npy"
    np.save(npy, images)
    rng = np.random.default_rng(0)
    model = work / "m.nnm"
    nnm.save(model, nnm.from_blog({"W1": rng.normal(0, 0.05, (784, 256)).astype(np.float32),
                                   "b1": np.zeros(256, np.float32),
                                   "W2": rng.normal(0, 0.3, (256, 10)).astype(np.float32),
                                   "b2": np.zeros(10, np.float32)},
                                  layout="rows", activations=["relu", "softmax"], preprocessing=nnm.scale(1 / 255)))
    cpu = next((line.split(":", 1)[1].strip() for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
                if line.startswith("Model name")), platform.processor())
    print(f"CPU: {cpu}; {os.cpu_count()} vCPUs; load average before: {os.getloadavg()[0]:.2f}")
    n = len(images)
    results = []

    def one_run():
        out = subprocess.run([nn_infer, str(model), str(npy), "--json", "--show", "all", "--top", "1"],
                             capture_output=True, check=True).stdout
        return np.array([p["class"] for p in json.loads(out)["predictions"]])

    t, reference = timed(one_run, args.rounds)
    results.append(("one nn-infer run, .npy file, --json", t))

    t, pred = timed(lambda: nnm.infer_partition(model, images, nn_infer=nn_infer).classes, args.rounds)
    assert np.array_equal(pred, reference)
    results.append(("one nn-infer MODEL - (infer_partition), JSON Lines", t))

    t1, _ = timed(lambda: nnm.infer_partition(model, images[:1], nn_infer=nn_infer), max(5, args.rounds))
    t1k, _ = timed(lambda: nnm.infer_partition(model, images[:1000], nn_infer=nn_infer), max(5, args.rounds))

    import dask
    import dask.array as da
    import distributed
    os.environ["PYTHONPATH"] = str(ROOT / "python" / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")
    step = -(-n // args.partitions)
    for workers in (1, 2):
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
                distributed.Client(c):
            def dask_run():
                blocks = [da.from_delayed(dask.delayed(rows)(str(npy), s, min(s + step, n)), shape=(min(s + step, n) - s, 28, 28),
                                          dtype=np.uint8) for s in range(0, n, step)]
                return da.concatenate(blocks).map_blocks(nnm.classify_block, str(model), nn_infer=nn_infer, threads=1,
                                                         drop_axis=[1, 2], dtype=np.int64,
                                                         meta=np.array((), np.int64)).compute()
            dask_run()  # warm: workers import nnm and NumPy
            t, pred = timed(dask_run, args.rounds)
            assert np.array_equal(pred, reference)
            results.append((f"Dask LocalCluster, {workers} worker process{'es' if workers > 1 else ''}, {args.partitions} partitions", t))

    if args.spark:
        from pyspark.sql import SparkSession
        spark = (SparkSession.builder.master("local[2]").appName("nnm-scale")
                 .config("spark.ui.enabled", "false").config("spark.driver.memory", "2g").getOrCreate())
        sc = spark.sparkContext
        sc.setLogLevel("ERROR")
        flat = images.reshape(n, 784)

        def spark_partitions():
            def classify(it):
                part = np.array(list(it), np.uint8)
                return iter(nnm.infer_partition(str(model), part, nn_infer=nn_infer, threads=1).classes.tolist())
            return np.array(sc.parallelize(list(flat), args.partitions).mapPartitions(classify).collect())

        def spark_pipe():
            # Each element one JSON Lines record; pipe() feeds them to nn-infer's stdin, one per line.
            lines = sc.parallelize([json.dumps({"pixels": row.tolist()}) for row in flat], args.partitions)
            out = lines.pipe(f"{nn_infer} {model} - --records jsonl --top 1 --threads 1", checkCode=True).collect()
            return np.array([json.loads(line)["class"] for line in out])

        for name, fn in (("Spark local[2], mapPartitions + infer_partition", spark_partitions),
                         ("Spark local[2], RDD.pipe(checkCode=True), JSON Lines", spark_pipe)):
            fn()
            t, pred = timed(fn, args.rounds)
            assert np.array_equal(pred, reference), name
            results.append((f"{name}, {args.partitions} partitions", t))
        spark.stop()

    print(f"{n} images, 784-256-10 f32, medians of {args.rounds} rounds; load average after: {os.getloadavg()[0]:.2f}")
    print("| run | seconds | images/s |")
    print("|---|---|---|")
    for name, t in results:
        print(f"| {name} | {t:.2f} | {n / t:,.0f} |")
    print(f"| infer_partition, 1 image (the overhead per partition) | {t1 * 1000:.1f} ms | |")
    print(f"| infer_partition, 1,000 images | {t1k * 1000:.1f} ms | {1000 / t1k:,.0f} |")


if __name__ == "__main__":
    main()
