#!/usr/bin/env python3
"""`make bench`: builds release binaries, runs every workload for our tools and for the anchors
(NumPy, onnxruntime, h5py, np.load, safetensors) in the same run, several repetitions each,
interleaved round by round so that both sides see the same machine, and prints medians and
ratios. Writes out/bench/results.json and out/bench/results.md. See BENCHMARKS.md.

    python3 Benchmarks/bench.py [--rounds 3] [--quick] [--only infer,cold,train,cnn,load,bounded] [--skip-build]

Environment: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, when set, apply to our binaries and to
NumPy alike (same environment); the inference and training workloads are then repeated with
both unset. NNM_KERNELS=avx2 runs our products on the AVX2 kernels and measures the FMA peak
on 256-bit vectors (onnxruntime keeps its own choice). `--cpu avx2` goes further: every process
(ours, NumPy, onnxruntime, OpenBLAS) sees the CPU without AVX-512, AVX-VNNI and AMX
(Benchmarks/Support/cpuid_avx2.c, preloaded; it needs Linux's CPUID faulting), so each side runs
the kernels it would choose on an AVX2 machine, on the same silicon. Fixtures (trained models,
exports, the large model) are cached in out/bench/.
"""
import argparse
import csv
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = os.path.join(ROOT, "Benchmarks", "python")
DATA = "/usr/share/datasets/fashion-mnist"
BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, env=None, capture=True):
    r = subprocess.run(cmd, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.PIPE if capture else None)
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr if capture else ''}")
    return r.stdout if capture else ""


def run_json(cmd, env=None):
    return json.loads(run(cmd, env=env).strip().splitlines()[-1])


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class Bench:
    def __init__(self, args):
        self.args = args
        self.out = os.path.join(ROOT, args.out)
        os.makedirs(self.out, exist_ok=True)
        self.bin = os.path.join(ROOT, args.scratch, "release")
        self.results = {"date": datetime.date.today().isoformat(), "loadavg": {"start": loadavg()}}
        self.env = dict(os.environ)
        if args.threads:
            # The same thread count for every BLAS (ours, NumPy's) and for onnxruntime's pool.
            self.env.update({"OPENBLAS_NUM_THREADS": str(args.threads), "BENCH_ORT_THREADS": str(args.threads)})
        if args.cpu == "avx2":
            self.env["LD_PRELOAD"] = self.cpuid_mask()
        self.unset_env = {k: v for k, v in self.env.items() if k not in BLAS_VARS}

    def cpuid_mask(self):
        """Builds the preloadable library that hides AVX-512, AVX-VNNI and AMX from CPUID."""
        source = os.path.join(ROOT, "Benchmarks", "Support", "cpuid_avx2.c")
        library = self.p("cpuid_avx2.so")
        if not os.path.exists(library) or os.path.getmtime(library) < os.path.getmtime(source):
            run(["cc", "-O2", "-shared", "-fPIC", "-o", library, source])
        return library

    def p(self, *parts):
        return os.path.join(self.out, *parts)

    def tool(self, name):
        return os.path.join(self.bin, name)

    # MARK: setup

    def build(self):
        if self.args.skip_build:
            return
        # The Makefile's release flags (static Swift runtime), so that we time what `make release` builds.
        flags = os.environ.get("RELEASE_FLAGS", "").split()
        command = ["swift", "build", "-c", "release", "--scratch-path", self.args.scratch] + flags
        log("building release binaries (%s)" % " ".join(command))
        run(command, capture=False)

    def machine(self):
        m = {"nproc": int(run(["nproc"]).strip()), "kernel": platform.release()}
        with open("/proc/cpuinfo") as f:
            info = f.read()
        first = info.split("\n\n")[0]
        fields = dict((k.strip(), v.strip()) for k, _, v in (l.partition(":") for l in first.splitlines()) if k.strip())
        m["cpu_model"] = fields.get("model name")
        m["cpu_family_model"] = f"family {fields.get('cpu family')} model {fields.get('model')} stepping {fields.get('stepping')}"
        flags = fields.get("flags", "").split()
        m["simd_flags"] = " ".join(f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                                               "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16") if f in flags)
        try:
            lscpu = run(["lscpu"])
            for key in ("Thread(s) per core", "L1d cache", "L2 cache", "L3 cache", "Hypervisor vendor"):
                mm = re.search(r"^%s:\s*(.+)$" % re.escape(key), lscpu, re.M)
                if mm:
                    m[key] = mm.group(1).strip()
        except SystemExit:
            pass
        m["env"] = {k: self.env.get(k, "(unset)") for k in BLAS_VARS + ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "BENCH_ORT_THREADS", "NNM_KERNELS")}
        m["ours_blas"] = run_json([self.tool("nn-bench"), "info"], env=self.env)
        m["numpy"] = run_json([sys.executable, os.path.join(PY, "anchor.py"), "info"], env=self.env)
        m["swift"] = run(["swift", "--version"]).splitlines()[0] if shutil.which("swift") else None
        if self.args.cpu == "avx2":
            # Numbers for an AVX2 view only if both sides really saw one.
            numpy_found = m["numpy"].get("numpy_simd", {}).get("found", [])
            if "avx512" in m["ours_blas"].get("cpu_flags", "") or any(f.startswith("AVX512") or f == "X86_V4" for f in numpy_found):
                sys.exit("bench.py: --cpu avx2: CPUID was not masked (ours saw '%s', NumPy %s); is cpuid_fault in /proc/cpuinfo?"
                         % (m["ours_blas"].get("cpu_flags"), numpy_found))
            m["cpu_view"] = ("AVX2: CPUID without AVX-512, AVX-VNNI and AMX for every process (Benchmarks/Support/cpuid_avx2.c); "
                             f"ours saw '{m['ours_blas'].get('cpu_flags')}', NumPy found {' '.join(numpy_found)}")
        self.results["machine"] = m

    def fixtures(self):
        f = {}
        t10k = self.p("t10k-images-idx3-ubyte")
        if not os.path.exists(t10k):
            import gzip
            with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")) as src, open(t10k, "wb") as dst:
                dst.write(src.read())
        digit = self.p("digit.idx")
        if not os.path.exists(digit):
            with open(t10k, "rb") as src:
                raw = src.read(16 + 784)[16:]
            with open(digit, "wb") as dst:
                dst.write(bytes([0, 0, 8, 2]) + (28).to_bytes(4, "big") * 2 + raw)
        for name, recipe in (("blog", "blog"), ("capstone", "capstone")):
            model = self.p(f"{name}.nnm")
            if not os.path.exists(model):
                log(f"training the {name} model for the inference fixtures (1 epoch)")
                run([self.tool("nn-train"), "--recipe", recipe, "--epochs", "1", "--save", model])
            if not os.path.exists(self.p(f"{name}.h5")) or os.path.getmtime(self.p(f"{name}.h5")) < os.path.getmtime(model):
                run([self.tool("nnconv"), "export", model, "-o", self.p(f"{name}.h5")])
        f["t10k"], f["digit"] = t10k, digit
        self.f = f

    def large_fixture(self):
        layers = self.args.large_layers
        stamp = self.p("large.layers")
        if not (os.path.exists(stamp) and open(stamp).read() == layers and os.path.exists(self.p("large.safetensors"))):
            log(f"writing the large model {layers} as .h5, .npz, .safetensors")
            run([sys.executable, os.path.join(PY, "anchor.py"), "make-large", self.p("large"), "--layers", layers])
            with open(stamp, "w") as s:
                s.write(layers)
            if os.path.exists(self.p("large.nnm")):
                os.remove(self.p("large.nnm"))

    # MARK: workloads

    def infer(self, env, label):
        rounds = self.args.rounds
        res = {}
        for name in ("blog", "capstone"):
            model, h5 = self.p(f"{name}.nnm"), self.p(f"{name}.h5")
            ours, ours_blas, anchor, peaks, first = [], [], [], [], []
            for r in range(rounds):
                log(f"[{label}] inference {name}: round {r + 1}/{rounds}")
                # The machine's FMA peak in the same round (register-only loop, one per thread).
                peaks.append(run_json([self.tool("nn-bench"), "peak", "--iterations", "30000000"], env=env))
                ours.append(run_json([self.tool("nn-bench"), "infer", model, self.f["t10k"], "--reps", str(self.args.reps),
                                      "--single", str(self.args.singles)], env=env))
                # The same engine with its batch products on OpenBLAS (NNM_KERNELS=openblas).
                ours_blas.append(run_json([self.tool("nn-bench"), "infer", model, self.f["t10k"], "--reps", str(self.args.reps),
                                           "--single", "50"], env=dict(env, NNM_KERNELS="openblas")))
                anchor.append(run_json([sys.executable, os.path.join(PY, "anchor.py"), "infer", h5, self.f["t10k"],
                                        "--reps", str(self.args.reps), "--single", str(self.args.singles)], env=env))
                # The first layer's product alone on our kernel (10k rows of A from memory, no
                # preprocessing): what the engine's work around its products costs.
                sizes = [int(v) for v in ours[0]["architecture"].split("-")]
                first.append(run_json([self.tool("nn-bench"), "gemm", "--shape", f"{ours[0]['images']},{sizes[1]},{sizes[0]}",
                                       "--reps", str(self.args.reps), "--threads", "2", "--best-only"], env=env))
            n = ours[0]["images"]
            pool = lambda rows, key: [v for row in rows for v in row[key]]
            ob = med(pool(ours, "batch_seconds"))
            os1 = med(pool(ours, "single_us"))
            nb, ob_ort = med(pool(anchor, "numpy_batch_seconds")), med(pool(anchor, "ort_batch_seconds"))
            ns1, os1_ort = med(pool(anchor, "numpy_single_us")), med(pool(anchor, "ort_single_us"))
            raw = med([o["raw_gemm_median_s"] for o in ours])
            obb = med(pool(ours_blas, "batch_seconds"))
            flops = ours[0]["engine_gflops"] * ours[0]["batch_median_s"] * 1e9  # products of one batch
            peak1, peak2 = med([p["peak_gflops_1"] for p in peaks]), med([p["peak_gflops_2"] for p in peaks])
            peak = max(peak1, peak2)
            res[name] = {
                "kernels": ours[0].get("kernels"), "fma_peak_gflops_1_thread": peak1, "fma_peak_gflops_2_threads": peak2,
                "ours_openblas_batch_s": obb, "ours_openblas_gflops": flops / obb / 1e9, "ort_gflops": flops / ob_ort / 1e9,
                "engine_vs_peak": flops / ob / 1e9 / peak, "ours_openblas_vs_peak": flops / obb / 1e9 / peak,
                "ort_vs_peak": flops / ob_ort / 1e9 / peak,
                "first_product_gflops": med([f[f"{f['kernel']}_gflops"] for f in first]),
                "first_product_vs_peak": med([f[f"{f['kernel']}_gflops"] for f in first]) / peak,
                "architecture": ours[0]["architecture"],
                "ours_batch_images_per_s": n / ob, "numpy_batch_images_per_s": n / nb, "ort_batch_images_per_s": n / ob_ort,
                "ours_batch_s": ob, "ort_batch_s": ob_ort, "numpy_batch_s": nb,
                "ours_single_us": os1, "numpy_single_us": ns1, "ort_single_us": os1_ort,
                "raw_gemv_us": med([o["raw_gemv_median_us"] for o in ours]),
                "engine_gflops": ours[0]["engine_gflops"] * ours[0]["batch_median_s"] / ob,
                "raw_gemm_gflops": ours[0]["raw_gemm_gflops"] * ours[0]["raw_gemm_median_s"] / raw,
                "engine_vs_raw_gemm": raw / ob,
                "ratio_batch_vs_ort": (n / ob) / (n / ob_ort), "ratio_batch_vs_numpy": nb / ob,
                "ratio_single_vs_ort": os1_ort / os1, "ratio_single_vs_numpy": ns1 / os1,
                "ort_vs_numpy_max_abs_diff": anchor[0]["ort_vs_numpy_max_abs_diff"],
                "rounds": rounds, "reps_per_round": self.args.reps,
            }
        return res

    def quantized(self, env):
        """Ours f32, bf16 and int8 against onnxruntime f32 and its quantize_dynamic int8 (same
        weights, from our ONNX export) and NumPy f32, batch 10k and batch 1, for 784-256-10,
        784-256-128-10 and the CNN preset; the FMA peak of the same rounds; the accuracy of each
        copy on the test set; the whole nn-infer process, f32 and int8. int8 three times:
        activations quantized per row at run time, with scales calibrated on the training images
        (`--calibration`, "int8c"), and with 7-bit weights (`--weight-bits 7`, "int8w7", which
        CPUs without VNNI multiply with vpmaddubsw)."""
        rounds, res = self.args.rounds, {}
        labels = os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")
        cnn = self.p("cnn.nnm")
        if not os.path.exists(cnn):
            log("training the cnn preset for the quantized fixtures (1 epoch)")
            run([self.tool("nn-train"), "--recipe", "cnn", "--epochs", "1", "--save", cnn])
        peaks = []
        for name in ("blog", "capstone", "cnn"):
            model, r = self.p(f"{name}.nnm"), {"accuracy": {}}
            train_images = os.path.join(DATA, "train-images-idx3-ubyte.gz")
            for kind, extra in (("int8", []), ("int8c", ["--calibration", train_images]), ("int8w7", ["--weight-bits", "7"]),
                                ("bf16", ["--bf16"])):
                out = run([self.tool("nnconv"), "quantize", model, "-o", self.p(f"{name}.{kind}.nnm"), "--images", self.f["t10k"],
                           "--labels", labels] + extra)
                mm = re.search(r"original ([0-9.]+) %, .*?([0-9.]+) % \(", out)
                r["accuracy"]["f32"], r["accuracy"][kind] = float(mm.group(1)), float(mm.group(2))
            run([self.tool("nnconv"), "export", model, "-o", self.p(f"{name}.onnx")])
            ours = {k: [] for k in ("f32", "bf16", "int8", "int8c", "int8w7")}
            ort, numpy = [], []
            for i in range(rounds):
                log(f"[quantized] {name}: round {i + 1}/{rounds}")
                peaks.append(run_json([self.tool("nn-bench"), "peak", "--iterations", "30000000"], env=env))
                for kind in ours:
                    path = model if kind == "f32" else self.p(f"{name}.{kind}.nnm")
                    ours[kind].append(run_json([self.tool("nn-bench"), "infer", path, self.f["t10k"], "--reps", str(self.args.reps),
                                                "--single", str(self.args.singles)], env=env))
                ort.append(run_json([sys.executable, os.path.join(PY, "anchor.py"), "infer-onnx", self.p(f"{name}.onnx"), self.f["t10k"],
                                     "--labels", labels, "--reps", str(self.args.reps), "--single", str(self.args.singles)], env=env))
                # NumPy: the MLPs from their `.h5` export, the CNN from the `.nnm` itself (checked
                # against onnxruntime on the same weights).
                anchor = ["infer", self.p(f"{name}.h5")] if name != "cnn" else ["infer-nnm", model, "--onnx", self.p(f"{name}.onnx")]
                numpy.append(run_json([sys.executable, os.path.join(PY, "anchor.py")] + anchor + [self.f["t10k"],
                                       "--reps", str(self.args.reps), "--single", str(self.args.singles)], env=env))
            r["architecture"] = ours["f32"][0]["architecture"] if name != "cnn" else "cnn (conv3x3x8, pool2, 10)"
            for kind in ours:
                r[f"ours_{kind}_batch_s"] = med([o["batch_median_s"] for o in ours[kind]])
                r[f"ours_{kind}_single_us"] = med([o["single_median_us"] for o in ours[kind]])
                r[f"kernels_{kind}"] = ours[kind][0]["kernels"]
            for key in ("ort", "ort_int8"):
                r[f"{key}_batch_s"] = med([o[f"{key}_batch_median_s"] for o in ort])
                r[f"{key}_single_us"] = med([o[f"{key}_single_median_us"] for o in ort])
            r["ort_int8_same_class"] = ort[0]["ort_int8_vs_f32_same_class"]
            r["accuracy"]["ort_f32"], r["accuracy"]["ort_int8"] = ort[0]["ort_accuracy_percent"], ort[0]["ort_int8_accuracy_percent"]
            if numpy:
                r["numpy_batch_s"] = med([o["numpy_batch_median_s"] for o in numpy])
                r["numpy_single_us"] = med([o["numpy_single_median_us"] for o in numpy])
                if "numpy_vs_ort_max_abs_diff" in numpy[0]:
                    r["numpy_vs_ort_max_abs_diff"] = numpy[0]["numpy_vs_ort_max_abs_diff"]
            if "engine_gflops" in ours["f32"][0]:
                flops = ours["f32"][0]["engine_gflops"] * ours["f32"][0]["batch_median_s"] * 1e9
                r["ours_f32_gflops"] = flops / r["ours_f32_batch_s"] / 1e9
            res[name] = r
        res["fma_peak_gflops_1_thread"] = med([p["peak_gflops_1"] for p in peaks])
        res["fma_peak_gflops_2_threads"] = med([p["peak_gflops_2"] for p in peaks])
        infer = self.tool("nn-infer")
        cmds = {"nn-infer 10k f32": f"{infer} {self.p('blog.nnm')} {self.f['t10k']} --show 0",
                "nn-infer 10k int8": f"{infer} {self.p('blog.int8.nnm')} {self.f['t10k']} --show 0",
                "nn-infer 10k int8 calibrated": f"{infer} {self.p('blog.int8c.nnm')} {self.f['t10k']} --show 0",
                "nn-infer 10k int8 7-bit weights": f"{infer} {self.p('blog.int8w7.nnm')} {self.f['t10k']} --show 0",
                "nn-infer 10k bf16": f"{infer} {self.p('blog.bf16.nnm')} {self.f['t10k']} --show 0"}
        t = self.hyperfine(list(cmds.values()), self.args.cold_runs, env)
        res["processes"] = {label: t[c] for label, c in cmds.items()}
        return res

    def hyperfine(self, commands, runs, env):
        """Median wall seconds per command, `runs` runs each, interleaved over the rounds."""
        times = {c: [] for c in commands}
        rounds = max(1, self.args.rounds)
        per = max(3, runs // rounds)
        for r in range(rounds):
            for c in commands:
                if shutil.which("hyperfine"):
                    path = self.p("hyperfine.json")
                    run(["hyperfine", "-N", "--warmup", "2", "--runs", str(per), "--export-json", path, c], env=env)
                    with open(path) as f:
                        times[c] += json.load(f)["results"][0]["times"]
                else:  # own loop: fork/exec and wait, timed around the child
                    args = c.split()
                    for _ in range(2):
                        subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
                    for _ in range(per):
                        t0 = time.perf_counter()
                        subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
                        times[c].append(time.perf_counter() - t0)
        return {c: {"median_s": med(t), "runs": len(t), "min_s": min(t)} for c, t in times.items()}

    def cold(self, env):
        infer = self.tool("nn-infer")
        cmds = {
            "nn-infer one image": f"{infer} {self.p('blog.nnm')} {self.f['digit']}",
            "nn-infer --help": f"{infer} --help",
            "python cold_predict.py": f"{sys.executable} {os.path.join(PY, 'cold_predict.py')} {self.p('blog.h5')} {self.f['digit']}",
            "python -c pass": f"{sys.executable} -c pass",
            "nn-infer 10k (uncompressed)": f"{infer} {self.p('blog.nnm')} {self.f['t10k']} --show 0",
            "nn-infer 10k capstone": f"{infer} {self.p('capstone.nnm')} {self.f['t10k']} --show 0",
            # The same process with its batch products on OpenBLAS (`env` adds an exec, about 1 ms).
            "nn-infer 10k (NNM_KERNELS=openblas)": f"/usr/bin/env NNM_KERNELS=openblas {infer} {self.p('blog.nnm')} {self.f['t10k']} --show 0",
        }
        log("cold processes (hyperfine)")
        t = self.hyperfine(list(cmds.values()), self.args.cold_runs, env)
        res = {k: t[v] for k, v in cmds.items()}
        res["libraries_linked_by_nn_infer"] = len([l for l in run(["ldd", infer]).splitlines() if "=>" in l or "ld-linux" in l])
        return res

    def train(self, env, label, configs=None):
        """Per recipe and precision, rounds of: nn-train (E epochs), the NumPy blog loop (E epochs),
        the lean NumPy loop (seed 000 f32 only), and the same products on raw BLAS; epochs pooled."""
        epochs = self.args.epochs
        configs = configs or [("000", "blog", "784,256,10", p) for p in ("f32", "f64")] + \
                             [("002", "capstone", "784,256,128,10", p) for p in ("f32", "f64")]
        res = {}
        for seed, preset, layers, prec in configs:
            key = f"seed{seed}_{prec}"
            ours, numpy, lean, gemm = [], [], [], []
            for r in range(self.args.rounds):
                log(f"[{label}] training {key}: round {r + 1}/{self.args.rounds} (nn-train, NumPy, raw gemm)")
                save = self.p(f"train-{key}.nnm")
                cmd = [self.tool("nn-train"), "--recipe", preset, "--epochs", str(epochs), "--save", save]
                if prec == "f64":
                    cmd.append("--float64")
                run(cmd, env=env)
                with open(save.replace(".nnm", ".history.csv")) as f:
                    ours += [float(row["seconds"]) for row in csv.DictReader(f)]
                ref = [sys.executable, os.path.join(PY, "train_ref.py"), "--recipe", seed, "--dtype", prec, "--epochs", str(epochs)]
                numpy += run_json(ref, env=env)["epoch_seconds"]
                if (seed, prec) == ("000", "f32"):
                    lean += run_json(ref + ["--lean"], env=env)["epoch_seconds"]
                gemm_cmd = [self.tool("nn-bench"), "train-gemm", "--layers", layers, "--reps", "2"]
                if prec == "f64":
                    gemm_cmd.append("--f64")
                g = run_json(gemm_cmd, env=env)
                gemm += g["epoch_gemm_seconds"]
                flops = g["flops_per_epoch"]
            o, n, l, raw = med(ours), med(numpy), med(lean) if lean else None, med(gemm)
            res[key] = {
                "ours_epoch_s": o, "ours_epochs_s": ours, "numpy_epochs_s": numpy, "raw_gemm_epochs_s": gemm,
                "numpy_epoch_s": n, "numpy_lean_epoch_s": l, "raw_gemm_epoch_s": raw,
                "ours_gflops": flops / o / 1e9, "raw_gemm_gflops": flops / raw / 1e9, "ours_vs_raw_gemm": raw / o,
                "speedup_vs_numpy": n / o, "speedup_vs_numpy_lean": l / o if l else None,
            }
        return res

    def cnn(self, env):
        """The seed 002 CNN (conv 8 3x3 + ReLU, max-pool 2, dense 10 softmax): nn-train --recipe cnn
        against the blog-way NumPy/SciPy loop (train_cnn_ref.py: scipy.signal.convolve2d per image
        and filter), both on the first --cnn-limit training images, in seconds per 1000 images."""
        n, epochs = self.args.cnn_limit, self.args.epochs
        images, labels = os.path.join(DATA, "train-images-idx3-ubyte.gz"), os.path.join(DATA, "train-labels-idx1-ubyte.gz")
        ours, ref = [], []
        for r in range(self.args.rounds):
            log(f"[cnn] round {r + 1}/{self.args.rounds}: nn-train --recipe cnn and train_cnn_ref.py on {n} images")
            save = self.p("cnn.nnm")
            run([self.tool("nn-train"), "--recipe", "cnn", "--epochs", str(epochs), "--limit", str(n), "--save", save], env=env)
            with open(save.replace(".nnm", ".history.csv")) as f:
                ours += [float(row["seconds"]) / n * 1000 for row in csv.DictReader(f)]
            out = run_json([sys.executable, os.path.join(PY, "train_cnn_ref.py"), "--images", images, "--labels", labels,
                            "--limit", str(n), "--epochs", "1", "--dtype", "f32"], env=env)
            ref.append(out["seconds_per_1000_images"])
        o, p = med(ours), med(ref)
        return {"images": n, "ours_s_per_1000": o, "numpy_scipy_s_per_1000": p, "ours_runs": ours, "numpy_scipy_runs": ref,
                "speedup": p / o, "ours_epoch_60k_s": o * 60, "numpy_scipy_epoch_60k_s": p * 60}

    def load(self, env):
        self.large_fixture()
        large_h5, large_nnm = self.p("large.h5"), self.p("large.nnm")
        size = os.path.getsize(large_h5)
        times = []
        for r in range(3):
            log(f"nnconv import {os.path.basename(large_h5)} ({size / 1e6:.0f} MB): run {r + 1}/3")
            t0 = time.perf_counter()
            run([self.tool("nnconv"), "import", large_h5, "-o", large_nnm, "--activations", "relu,relu,softmax"], env=env)
            times.append(time.perf_counter() - t0)
        res = {"import_s": med(times), "import_MB_per_s": size / 1e6 / med(times), "h5_bytes": size}
        ours_v, ours_nv, anchor = [], [], []
        for r in range(self.args.rounds):
            log(f"loading {os.path.basename(large_nnm)}: round {r + 1}/{self.args.rounds}")
            ours_v.append(run_json([self.tool("nn-bench"), "load", large_nnm, "--reps", "3"], env=env))
            ours_nv.append(run_json([self.tool("nn-bench"), "load", large_nnm, "--reps", "3", "--no-verify"], env=env))
            anchor.append(run_json([sys.executable, os.path.join(PY, "anchor.py"), "load", "--h5", large_h5,
                                    "--npz", self.p("large.npz"), "--safetensors", self.p("large.safetensors"), "--reps", "3"], env=env))
        pool = lambda rows, key: [v for row in rows for v in row[key]]
        res.update({
            "parameters": ours_v[0]["parameters"], "nnm_bytes": os.path.getsize(large_nnm),
            "ours_open_verify_ms": med(pool(ours_v, "open_ms")), "ours_total_verify_ms": med(pool(ours_v, "total_ms")),
            "ours_open_ms": med(pool(ours_nv, "open_ms")), "ours_total_ms": med(pool(ours_nv, "total_ms")),
            "ours_first_inference_ms": med([o["first_inference_median_ms"] for o in ours_nv]),
            "value_scan_ms": med([o["value_scan_median_ms"] for o in ours_nv]),
        })
        for name in ("h5py", "np_load", "safetensors"):
            res[f"{name}_ms"] = med(pool(anchor, f"{name}_ms"))
            res[f"{name}_first_inference_ms"] = med([a[f"{name}_first_inference_median_ms"] for a in anchor])
        res["ratio_h5py_vs_ours_open"] = res["h5py_ms"] / res["ours_open_ms"]
        res["ratio_h5py_vs_ours_open_and_first"] = res["h5py_first_inference_ms"] / res["ours_total_ms"]
        return res

    def bounded(self, env):
        """Files that declare gigabytes they do not hold (Fixtures/bounded) and the safetensors
        project's 100,000-entry overlap attack: each must be refused in well under a second with
        under 100 MB of memory (GNU time's wall clock and maximum resident set)."""
        fixtures = os.path.join(ROOT, "Fixtures", "bounded")
        attack = self.p("attack3.safetensors")
        if not os.path.exists(attack):
            n = 200 * 200 * 4
            header = json.dumps({f"weight_{i}": {"dtype": "F32", "shape": [200, 200], "data_offsets": [0, n]}
                                 for i in range(100_000)}).encode()
            with open(attack, "wb") as f:
                f.write(len(header).to_bytes(8, "little") + header + b"\0" * len(header))
        cases = [("missing_b2_3gb.h5", os.path.join(fixtures, "missing_b2_3gb.h5")),
                 ("missing_b1_4gb.npz", os.path.join(fixtures, "missing_b1_4gb.npz")),
                 ("huge_declared.h5", os.path.join(fixtures, "huge_declared.h5")),
                 ("safetensors attack 3 (100,000 overlapping entries)", attack)]
        res = {}
        for name, path in cases:
            walls, rss = [], []
            for r in range(self.args.rounds):
                log(f"bounded: nnconv import {name}: round {r + 1}/{self.args.rounds}")
                out = subprocess.run(["/usr/bin/time", "-f", "%e %M", self.tool("nnconv"), "import", path, "-o", self.p("bounded.nnm")],
                                     env=env, capture_output=True, text=True)
                wall, kb = out.stderr.strip().splitlines()[-1].split()
                walls.append(float(wall))
                rss.append(int(kb) / 1024)
            res[name] = {"wall_s": med(walls), "max_rss_MiB": max(rss), "status": out.returncode,
                         "error": out.stderr.strip().splitlines()[0], "bytes": os.path.getsize(path),
                         "ok": med(walls) < 1.0 and max(rss) < 100 and out.returncode == 65}
        # The anchor: the safetensors package itself on the attack file.
        t0 = time.perf_counter()
        anchor = subprocess.run([sys.executable, "-c", "import sys\nfrom safetensors import safe_open\n"
                                 "try:\n safe_open(sys.argv[1], 'np')\nexcept Exception as e: print(type(e).__name__)", attack],
                                env=env, capture_output=True, text=True)
        res["safetensors_package_attack3_s"] = time.perf_counter() - t0
        res["safetensors_package_attack3_result"] = anchor.stdout.strip()
        return res

    # MARK: report

    def report(self):
        R = self.results
        lines = [f"# nnm benchmarks, {R['date']}", ""]
        m = R["machine"]
        lines += ["## Machine", "",
                  f"- `nproc`: {m['nproc']}; CPU: {m['cpu_model']} ({m['cpu_family_model']}); SIMD: {m['simd_flags']}; "
                  f"threads per core {m.get('Thread(s) per core')}; L2 {m.get('L2 cache')}, L3 {m.get('L3 cache')}; "
                  f"hypervisor {m.get('Hypervisor vendor')}; kernel {m['kernel']}",
                  f"- load average: start {R['loadavg']['start']}, end {R['loadavg'].get('end')}",
                  f"- CPU as the processes saw it: {m.get('cpu_view', 'as it is')}",
                  f"- environment: " + ", ".join(f"{k}={v}" for k, v in m["env"].items()),
                  f"- ours: {m['ours_blas']['openblas_config']}, core **{m['ours_blas']['openblas_core']}**, "
                  f"{m['ours_blas']['openblas_threads']} threads; {m.get('swift')}",
                  f"- NumPy {m['numpy']['numpy']}: " + "; ".join(
                      f"{t.get('internal_api')} {t.get('version')} ({os.path.basename(t.get('filepath', ''))}), "
                      f"architecture **{t.get('architecture')}**, {t.get('num_threads')} threads" for t in m["numpy"]["threadpoolctl"])
                  + f"; np.show_config: {m['numpy'].get('numpy_blas', {}).get('openblas configuration', '?')}",
                  f"- onnxruntime {m['numpy'].get('onnxruntime')} (default session options), onnx {m['numpy'].get('onnx')}, "
                  f"h5py {m['numpy'].get('h5py')}, safetensors {m['numpy'].get('safetensors')}", ""]
        for label, key in (("", "infer"), (" (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset)", "infer_unset")):
            if key not in R:
                continue
            lines += [f"## Inference throughput{label}", "",
                      "| model | ours img/s (batch 10k) | ORT | NumPy | ours/ORT | ours/NumPy | ours us (batch 1) | ORT us | NumPy us | ORT/ours | NumPy/ours | engine GFLOP/s | raw sgemm GFLOP/s | engine/raw |",
                      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
            for name, r in R[key].items():
                lines.append(f"| {r['architecture']} | {r['ours_batch_images_per_s']:,.0f} | {r['ort_batch_images_per_s']:,.0f} | "
                             f"{r['numpy_batch_images_per_s']:,.0f} | {r['ratio_batch_vs_ort']:.2f}x | {r['ratio_batch_vs_numpy']:.2f}x | "
                             f"{r['ours_single_us']:.1f} | {r['ort_single_us']:.1f} | {r['numpy_single_us']:.1f} | "
                             f"{r['ratio_single_vs_ort']:.2f}x | {r['ratio_single_vs_numpy']:.2f}x | {r['engine_gflops']:.0f} | "
                             f"{r['raw_gemm_gflops']:.0f} | {r['engine_vs_raw_gemm']:.0%} |")
            lines += ["", "Matrix products against the machine's f32 FMA peak (register-only loop per thread, same round), batch 10k:", "",
                      "| model | FMA peak 1 / 2 threads GFLOP/s | ours GFLOP/s | ours on OpenBLAS | onnxruntime | ours / peak | OpenBLAS path / peak | ORT / peak | ours / ORT | ours / OpenBLAS path | first product alone: GFLOP/s, / peak |",
                      "|---|---|---|---|---|---|---|---|---|---|---|"]
            for name, r in R[key].items():
                lines.append(f"| {r['architecture']} | {r['fma_peak_gflops_1_thread']:.0f} / {r['fma_peak_gflops_2_threads']:.0f} | "
                             f"{r['engine_gflops']:.0f} | {r['ours_openblas_gflops']:.0f} | {r['ort_gflops']:.0f} | {r['engine_vs_peak']:.0%} | "
                             f"{r['ours_openblas_vs_peak']:.0%} | {r['ort_vs_peak']:.0%} | {r['ratio_batch_vs_ort']:.2f}x | "
                             f"{r['ours_openblas_batch_s'] / r['ours_batch_s']:.2f}x | "
                             f"{r['first_product_gflops']:.0f}, {r['first_product_vs_peak']:.0%} |")
            first = next(iter(R[key].values()))
            lines += ["", f"Kernels: {first.get('kernels')}.", ""]
        if "quantized" in R:
            q = R["quantized"]
            lines += ["## f32, bf16 and int8 side by side (batch 10k and batch 1)", "",
                      f"FMA peak (register-only loop, same rounds): {q['fma_peak_gflops_1_thread']:.0f} GFLOP/s on 1 thread, "
                      f"{q['fma_peak_gflops_2_threads']:.0f} on 2.", "",
                      "| model | ours f32 ms | ours bf16 ms | ours int8 ms: per row / calibrated / 7-bit weights | ORT f32 ms | ORT int8 ms | NumPy f32 ms | "
                      "int8 / ORT f32 | int8 / ORT int8 | f32 / ORT f32 | f32 / peak | batch 1 us: f32 / bf16 / int8 / int8 cal. / int8 7-bit / ORT f32 / ORT int8 / NumPy f32 | "
                      "int8 / f32 latency: per row / 7-bit | accuracy f32 / bf16 / int8 / int8 cal. / int8 7-bit % | ORT accuracy f32 / int8 % |",
                      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
            for name in ("blog", "capstone", "cnn"):
                r = q[name]
                peak = max(q["fma_peak_gflops_1_thread"], q["fma_peak_gflops_2_threads"])
                frac = f"{r['ours_f32_gflops'] / peak:.0%}" if "ours_f32_gflops" in r else "n/a"
                npy = f"{r['numpy_batch_s'] * 1e3:.1f}" if "numpy_batch_s" in r else "n/a"
                npy1 = f"{r['numpy_single_us']:.1f}" if "numpy_single_us" in r else "n/a"
                a = r["accuracy"]
                lines.append(f"| {r['architecture']} | {r['ours_f32_batch_s'] * 1e3:.1f} | {r['ours_bf16_batch_s'] * 1e3:.1f} | "
                             f"{r['ours_int8_batch_s'] * 1e3:.1f} / {r['ours_int8c_batch_s'] * 1e3:.1f} / {r['ours_int8w7_batch_s'] * 1e3:.1f} | "
                             f"{r['ort_batch_s'] * 1e3:.1f} | {r['ort_int8_batch_s'] * 1e3:.1f} | {npy} | "
                             + " / ".join(f"{r['ort_batch_s'] / r[f'ours_{k}_batch_s']:.2f}x" for k in ("int8", "int8c", "int8w7")) + " | "
                             + " / ".join(f"{r['ort_int8_batch_s'] / r[f'ours_{k}_batch_s']:.2f}x" for k in ("int8", "int8c", "int8w7")) + " | "
                             f"{r['ort_batch_s'] / r['ours_f32_batch_s']:.2f}x | {frac} | "
                             f"{r['ours_f32_single_us']:.1f} / {r['ours_bf16_single_us']:.1f} / {r['ours_int8_single_us']:.1f} / "
                             f"{r['ours_int8c_single_us']:.1f} / {r['ours_int8w7_single_us']:.1f} / "
                             f"{r['ort_single_us']:.1f} / {r['ort_int8_single_us']:.1f} / {npy1} | "
                             f"{r['ours_int8_single_us'] / r['ours_f32_single_us']:.2f} / {r['ours_int8w7_single_us'] / r['ours_f32_single_us']:.2f} | "
                             f"{a['f32']:.2f} / {a['bf16']:.2f} / {a['int8']:.2f} / {a['int8c']:.2f} / {a['int8w7']:.2f} | "
                             f"{a['ort_f32']:.2f} / {a['ort_int8']:.2f} |")
            lines += ["", "Kernels: " + "; ".join(f"{k}: {q['blog']['kernels_' + k]}" for k in ("f32", "bf16", "int8", "int8c", "int8w7")), "",
                      "| whole process (hyperfine) | median ms |", "|---|---|"]
            for label, t in q["processes"].items():
                lines.append(f"| {label} | {t['median_s'] * 1e3:.1f} |")
            lines.append("")
        if "cold" in R:
            c = R["cold"]
            lines += ["## Whole processes (hyperfine, median wall time)", "", "| command | median ms | min ms | runs |", "|---|---|---|---|"]
            for k, v in c.items():
                if isinstance(v, dict):
                    lines.append(f"| {k} | {v['median_s'] * 1e3:.1f} | {v['min_s'] * 1e3:.1f} | {v['runs']} |")
            if "infer" in R:
                ort = R["infer"]["blog"]["ort_batch_s"]
                proc = c["nn-infer 10k (uncompressed)"]["median_s"]
                lines.append(f"\nWhole `nn-infer` process on the uncompressed 10k file: {proc * 1e3:.1f} ms; ORT's in-process "
                             f"batch {ort * 1e3:.1f} ms, {ort / proc:.2f}x of it (issue 18's goal: at least 0.6x).")
            lines.append(f"Cold one image: nn-infer {c['nn-infer one image']['median_s'] * 1e3:.1f} ms vs Python "
                         f"{c['python cold_predict.py']['median_s'] * 1e3:.1f} ms "
                         f"({c['python cold_predict.py']['median_s'] / c['nn-infer one image']['median_s']:.1f}x); "
                         f"nn-infer links {c['libraries_linked_by_nn_infer']} shared libraries.\n")
        for label, key in (("", "train"), (" (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset)", "train_unset")):
            if key not in R:
                continue
            lines += [f"## Training, seconds per epoch on 60k Fashion-MNIST (median of {self.args.rounds} x {self.args.epochs} epochs){label}", "",
                      "| recipe | nn-train | NumPy (blog loop) | NumPy (lean) | NumPy/ours | lean/ours | the epoch's products on OpenBLAS, s | ours GFLOP/s | OpenBLAS GFLOP/s | ours/OpenBLAS products |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
            for k, r in R[key].items():
                lean = f"{r['numpy_lean_epoch_s']:.3f} | " if r["numpy_lean_epoch_s"] else "- | "
                lean_ratio = f"{r['speedup_vs_numpy_lean']:.2f}x | " if r["speedup_vs_numpy_lean"] else "- | "
                lines.append(f"| {k} | {r['ours_epoch_s']:.3f} | {r['numpy_epoch_s']:.3f} | {lean}"
                             f"{r['speedup_vs_numpy']:.2f}x | {lean_ratio}{r['raw_gemm_epoch_s']:.3f} | "
                             f"{r['ours_gflops']:.0f} | {r['raw_gemm_gflops']:.0f} | {r['ours_vs_raw_gemm']:.0%} |")
            lines.append("")
        if "cnn" in R:
            c = R["cnn"]
            lines += [f"## CNN training (seed 002's simple CNN: conv 8 3x3 + ReLU, max-pool 2, dense 10 softmax), {c['images']} images per run", "",
                      "| | s per 1000 images | s per 60k epoch (extrapolated) |", "|---|---|---|",
                      f"| nn-train --recipe cnn (f32, im2col, products on our kernels) | {c['ours_s_per_1000']:.3f} | {c['ours_epoch_60k_s']:.1f} |",
                      f"| NumPy/SciPy, the blog's way (convolve2d per image and filter, f32) | {c['numpy_scipy_s_per_1000']:.3f} | {c['numpy_scipy_epoch_60k_s']:.1f} |",
                      "", f"NumPy/SciPy / ours: {c['speedup']:.1f}x.", ""]
        if "load" in R:
            l = R["load"]
            lines += [f"## Loading a {l['parameters']:,}-parameter f32 MLP ({l['nnm_bytes'] / 2**20:.0f} MiB)", "",
                      "| what | ms |", "|---|---|",
                      f"| .nnm open (map, validate, CRC-32 of every tensor) | {l['ours_open_verify_ms']:.1f} |",
                      f"| .nnm open + first inference, checksums verified | {l['ours_total_verify_ms']:.1f} |",
                      f"| .nnm open `--no-verify` | {l['ours_open_ms']:.1f} |",
                      f"| .nnm open `--no-verify` + first inference | {l['ours_total_ms']:.1f} |",
                      f"| (of the open: Model.validate()'s NaN scan of every value) | {l['value_scan_ms']:.1f} |",
                      f"| h5py load / + first inference | {l['h5py_ms']:.1f} / {l['h5py_first_inference_ms']:.1f} |",
                      f"| np.load (.npz) / + first inference | {l['np_load_ms']:.1f} / {l['np_load_first_inference_ms']:.1f} |",
                      f"| safetensors load / + first inference | {l['safetensors_ms']:.1f} / {l['safetensors_first_inference_ms']:.1f} |",
                      "", f"h5py / ours: {l['ratio_h5py_vs_ours_open']:.2f}x (open only, no verify), "
                      f"{l['ratio_h5py_vs_ours_open_and_first']:.2f}x (open + first inference, no verify). "
                      f"`nnconv import` of the {l['h5_bytes'] / 1e6:.0f} MB .h5: {l['import_s']:.2f} s = {l['import_MB_per_s']:.0f} MB/s.", ""]
        if "bounded" in R:
            b = R["bounded"]
            lines += ["## Refusing files that declare more than they hold (`nnconv import`, GNU time)", "",
                      "| file | bytes | wall s | max RSS MiB | exit | bound met (< 1 s, < 100 MB, 65) |", "|---|---|---|---|---|---|"]
            for k, v in b.items():
                if isinstance(v, dict):
                    lines.append(f"| {k} | {v['bytes']:,} | {v['wall_s']:.2f} | {v['max_rss_MiB']:.0f} | {v['status']} | {'yes' if v['ok'] else 'NO'} |")
            lines += ["", f"The safetensors package on the attack file: {b['safetensors_package_attack3_s']:.2f} s (process included), "
                      f"{b['safetensors_package_attack3_result'] or 'accepted'}.", ""]
        text = "\n".join(lines)
        with open(self.p("results.md"), "w") as f:
            f.write(text + "\n")
        with open(self.p("results.json"), "w") as f:
            json.dump(R, f, indent=2)
        print(text)

    def main(self):
        only = set(self.args.only.split(",")) if self.args.only else {"infer", "cold", "train", "cnn", "quantized", "load", "bounded"}
        self.build()
        self.machine()
        self.fixtures()
        blas_set = any(k in os.environ for k in BLAS_VARS)
        if "infer" in only:
            self.results["infer"] = self.infer(self.env, "env")
            if blas_set:
                self.results["infer_unset"] = self.infer(self.unset_env, "unset")
        if "cold" in only:
            self.results["cold"] = self.cold(self.env)
        if "train" in only:
            self.results["train"] = self.train(self.env, "env")
            if blas_set:
                self.results["train_unset"] = self.train(self.unset_env, "unset", [("000", "blog", "784,256,10", "f32")])
        if "cnn" in only:
            self.results["cnn"] = self.cnn(self.env)
        if "quantized" in only:
            self.results["quantized"] = self.quantized(self.env)
        if "load" in only:
            self.results["load"] = self.load(self.env)
        if "bounded" in only:
            self.results["bounded"] = self.bounded(self.env)
        self.results["loadavg"]["end"] = loadavg()
        self.report()


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of ours and the anchors")
    p.add_argument("--reps", type=int, default=5, help="repetitions per round for in-process timings")
    p.add_argument("--singles", type=int, default=2000, help="batch-1 calls per repetition")
    p.add_argument("--epochs", type=int, default=2, help="training epochs per process, per round")
    p.add_argument("--cold-runs", type=int, default=30, help="runs per cold-process command (over all rounds)")
    p.add_argument("--large-layers", default="784,16384,7400,10", help="the ~512 MiB model for the loading workload")
    p.add_argument("--only", help="comma-separated subset of infer,cold,train,cnn,quantized,load,bounded")
    p.add_argument("--cnn-limit", type=int, default=6000, help="training images per CNN run (the NumPy/SciPy loop takes ~1.3 s per 1000)")
    p.add_argument("--threads", type=int, help="OPENBLAS_NUM_THREADS for ours and NumPy, and onnxruntime's intra-op threads")
    p.add_argument("--cpu", choices=("native", "avx2"), default="native",
                   help="avx2: every process sees the CPU without AVX-512, AVX-VNNI and AMX (CPUID faulting)")
    p.add_argument("--quick", action="store_true", help="one round, fewer repetitions (checks the harness)")
    p.add_argument("--skip-build", action="store_true")
    p.add_argument("--scratch", default=os.environ.get("BENCH_SCRATCH", ".build-bench"))
    p.add_argument("--out", default="out/bench")
    a = p.parse_args()
    if a.quick:
        a.rounds, a.reps, a.singles, a.epochs, a.cold_runs, a.cnn_limit = 1, 2, 300, 1, 6, 2000
    return a


if __name__ == "__main__":
    Bench(parse()).main()
