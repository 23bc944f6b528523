"""The Python side of `make bench`: NumPy and onnxruntime forward passes, h5py / np.load /
safetensors loading, and environment facts. Every command prints one JSON object.

    python3 anchor.py info
    python3 anchor.py infer MODEL.h5 IMAGES.idx [--reps R] [--single N]
    python3 anchor.py load --h5 F.h5 --npz F.npz --safetensors F.safetensors [--reps R]
    python3 anchor.py make-large OUT_PREFIX --layers 784,16384,7400,10
    python3 anchor.py infer-onnx MODEL.onnx IMAGES.idx [--reps R] [--single N]
    python3 anchor.py infer-nnm MODEL.nnm IMAGES.idx --onnx MODEL.onnx [--reps R] [--single N]

The weights come from the `.h5` that `nnconv export` writes (W1, b1, ... in the rows layout,
the z-score statistics under nnm_tensors/), so every implementation runs the same model.
"""
import argparse
import io
import contextlib
import json
import os
import statistics
import sys
import time

import numpy as np


def read_idx(path):
    import gzip
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    images = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)
    return images.reshape(images.shape[0] if images.ndim >= 3 else 1, -1)


def load_h5_model(path, dtype):
    """Layers (W, b), activations and the z-score statistics of an `nnconv export` file."""
    import h5py
    with h5py.File(path, "r") as f:
        activations = f.attrs["activations"]
        activations = (activations.decode() if isinstance(activations, bytes) else str(activations)).split(",")
        layers = []
        for i in range(len(activations)):
            layers.append((f[f"W{i + 1}"][()].astype(dtype), f[f"b{i + 1}"][()].reshape(1, -1).astype(dtype)))
        mean = std = None
        if "nnm_tensors" in f and "preprocessing.mean" in f["nnm_tensors"]:
            mean = f["nnm_tensors/preprocessing.mean"][()].astype(dtype)
            std = f["nnm_tensors/preprocessing.std"][()].astype(dtype)
    return layers, activations, mean, std


def numpy_forward(x, layers, activations, mean, safe_std):
    # The blog's normalize() with stored statistics: centre, divide where std != 0.
    x = (x - mean) / safe_std
    for (w, b), act in zip(layers, activations):
        z = x @ w + b
        if act == "relu":
            x = np.maximum(0, z)
        elif act == "softmax":
            e = np.exp(z - z.max(axis=1, keepdims=True))
            x = e / e.sum(axis=1, keepdims=True)
        elif act == "sigmoid":
            x = 1 / (1 + np.exp(-z))
        else:
            x = z
    return x


def onnx_model(layers, activations, mean, safe_std):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    features = layers[0][0].shape[0]
    inits = [numpy_helper.from_array(mean.astype(np.float32), "mean"),
             numpy_helper.from_array(safe_std.astype(np.float32), "std")]
    nodes = [helper.make_node("Sub", ["x", "mean"], ["centred"]), helper.make_node("Div", ["centred", "std"], ["h0"])]
    current = "h0"
    for i, ((w, b), act) in enumerate(zip(layers, activations)):
        inits += [numpy_helper.from_array(w.astype(np.float32), f"W{i}"),
                  numpy_helper.from_array(b.reshape(-1).astype(np.float32), f"b{i}")]
        nodes.append(helper.make_node("MatMul", [current, f"W{i}"], [f"m{i}"]))
        nodes.append(helper.make_node("Add", [f"m{i}", f"b{i}"], [f"z{i}"]))
        out = "y" if i == len(layers) - 1 else f"a{i}"
        op = {"relu": "Relu", "softmax": "Softmax", "sigmoid": "Sigmoid", "tanh": "Tanh"}.get(act)
        nodes.append(helper.make_node(op, [f"z{i}"], [out], axis=-1) if op == "Softmax"
                     else helper.make_node(op or "Identity", [f"z{i}"], [out]))
        current = out
    graph = helper.make_graph(nodes, "mlp",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", features])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", layers[-1][0].shape[1]])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def timed(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


# Pause between a batch run and the one-sample calls, so that worker threads left polling by the
# batch (OpenBLAS's for about 0.1 s, onnxruntime's) have gone to sleep: batch 1 is timed in the
# steady state of a process that only predicts one sample at a time. nn-bench pauses the same.
SETTLE_SECONDS = 0.3


def cmd_infer(args):
    import onnxruntime as ort
    layers, activations, mean, std = load_h5_model(args.model, np.float32)
    safe_std = np.where(std == 0, np.float32(1), std).astype(np.float32)
    x = read_idx(args.images).astype(np.float32)
    n = x.shape[0]
    singles = min(args.single, n)
    result = {"images": n, "architecture": "-".join(str(s) for s in [layers[0][0].shape[0]] + [w.shape[1] for w, _ in layers])}

    # NumPy
    t = timed(lambda: numpy_forward(x, layers, activations, mean, safe_std), args.reps)
    result["numpy_batch_seconds"] = t
    result["numpy_batch_median_s"] = statistics.median(t)
    result["numpy_batch_images_per_s"] = n / statistics.median(t)
    rows = [x[i:i + 1] for i in range(singles)]

    def numpy_singles():
        for r in rows:
            numpy_forward(r, layers, activations, mean, safe_std)
    time.sleep(SETTLE_SECONDS)
    t = timed(numpy_singles, args.reps)
    result["numpy_single_us"] = [v / singles * 1e6 for v in t]
    result["numpy_single_median_us"] = statistics.median(t) / singles * 1e6

    # onnxruntime, default session options (its own thread pool)
    options = ort.SessionOptions()
    # BENCH_ORT_THREADS (set by bench.py --threads) pins ORT's intra-op pool; 0 is ORT's default.
    options.intra_op_num_threads = int(os.environ.get("BENCH_ORT_THREADS", "0"))
    session = ort.InferenceSession(onnx_model(layers, activations, mean, safe_std), options, providers=["CPUExecutionProvider"])
    result["ort_intra_op_threads"] = options.intra_op_num_threads
    # Check the two anchors agree with each other on these weights.
    probe = x[:256]
    diff = float(np.max(np.abs(session.run(None, {"x": probe})[0] - numpy_forward(probe, layers, activations, mean, safe_std))))
    result["ort_vs_numpy_max_abs_diff"] = diff
    t = timed(lambda: session.run(None, {"x": x}), args.reps)
    result["ort_batch_seconds"] = t
    result["ort_batch_median_s"] = statistics.median(t)
    result["ort_batch_images_per_s"] = n / statistics.median(t)

    def ort_singles():
        for r in rows:
            session.run(None, {"x": r})
    time.sleep(SETTLE_SECONDS)
    t = timed(ort_singles, args.reps)
    result["ort_single_us"] = [v / singles * 1e6 for v in t]
    result["ort_single_median_us"] = statistics.median(t) / singles * 1e6
    result["single_calls"] = singles
    print(json.dumps(result))


def load_nnm_model(path):
    """The header and tensors of a `.nnm`, read by the format's own NumPy reader (Schemas/nnm.py)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Schemas"))
    import nnm
    return nnm.load(path)


def numpy_nnm_forward(x, header, tensors):
    """The blog CNN's forward pass in NumPy f32 on HWC samples: preprocessing, convolutions as
    im2col and one matrix product, max pooling as the maximum over each window, flatten, dense
    layers; ReLU and softmax. Covers what the CNN preset holds: cross-correlation and pooling
    with 'valid' padding."""
    for step in header.get("preprocessing", []):
        if step["op"] == "scale":
            x = x * np.float32(step["factor"]) + np.float32(step.get("offset", 0.0))
        else:
            std = tensors[step["std"]]
            x = (x - tensors[step["mean"]]) / np.where(std == 0, np.float32(1), std)
    n = x.shape[0]
    shape = header["input"]["shape"]
    h = x.reshape(n, shape[0], shape[1], shape[2] if len(shape) > 2 else 1)
    view = np.lib.stride_tricks.sliding_window_view
    for layer in header["layers"]:
        kind = layer["kind"]
        if kind in ("conv2d", "max_pool2d"):
            if layer.get("padding", "valid") != "valid" or layer.get("convention", "cross-correlation") != "cross-correlation":
                raise SystemExit(f"anchor.py: {kind} with {layer.get('padding')} padding is not in the NumPy reference")
            kh, kw = layer["kernel"] if kind == "conv2d" else layer["pool"]
            sh, sw = layer["strides"]
            oh, ow = (h.shape[1] - kh) // sh + 1, (h.shape[2] - kw) // sw + 1
            if kind == "conv2d":
                # im2col, one kernel tap at a time into one array, then one product (the
                # vectorized blog CNN's way).
                w, c = tensors[layer["weight"]], h.shape[3]
                cols = np.empty((n, oh, ow, kh * kw * c), dtype=np.float32)
                for dy in range(kh):
                    for dx in range(kw):
                        t = (dy * kw + dx) * c
                        cols[..., t:t + c] = h[:, dy:dy + sh * (oh - 1) + 1:sh, dx:dx + sw * (ow - 1) + 1:sw, :]
                h = (cols.reshape(n * oh * ow, -1) @ w.reshape(kh * kw * c, -1) + tensors[layer["bias"]]).reshape(n, oh, ow, -1)
            elif (kh, kw) == (sh, sw):
                # Non-overlapping windows: a reshape, then the maximum over each window's axes.
                c = h.shape[3]
                h = h[:, :oh * kh, :ow * kw, :].reshape(n, oh, kh, ow, kw, c).max(axis=(2, 4))
            else:
                h = view(h, (kh, kw), axis=(1, 2))[:, ::sh, ::sw].max(axis=(4, 5))
        elif kind == "flatten":
            h = h.reshape(n, -1)
        elif kind == "dense":
            h = h @ tensors[layer["weight"]] + tensors[layer["bias"]]
        else:
            raise SystemExit(f"anchor.py: layer {kind} is not in the NumPy reference")
        act = layer.get("activation", "identity")
        if act == "relu":
            h = np.maximum(h, np.float32(0))
        elif act == "softmax":
            e = np.exp(h - h.max(axis=1, keepdims=True))
            h = e / e.sum(axis=1, keepdims=True)
        elif act != "identity":
            raise SystemExit(f"anchor.py: activation {act} is not in the NumPy reference")
    return h


def cmd_infer_nnm(args):
    """NumPy f32 on a `.nnm` (the CNN preset, which has no `.h5` export), checked against
    onnxruntime on our ONNX export of the same model."""
    import onnxruntime as ort
    header, tensors = load_nnm_model(args.model)
    tensors = {k: v.astype(np.float32) for k, v in tensors.items() if v.dtype.kind == "f"}
    x = read_idx(args.images).astype(np.float32)
    n = x.shape[0]
    singles = min(args.single, n)
    result = {"images": n}
    session = ort.InferenceSession(args.onnx, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    probe = x[:256]
    ours = numpy_nnm_forward(probe, header, tensors)
    theirs = session.run(None, {feed.name: probe.reshape([256] + [d if isinstance(d, int) else -1 for d in feed.shape[1:]])})[0]
    result["numpy_vs_ort_max_abs_diff"] = float(np.max(np.abs(ours - theirs)))
    t = timed(lambda: numpy_nnm_forward(x, header, tensors), args.reps)
    result["numpy_batch_seconds"] = t
    result["numpy_batch_median_s"] = statistics.median(t)
    rows = [x[i:i + 1] for i in range(singles)]

    def numpy_singles():
        for r in rows:
            numpy_nnm_forward(r, header, tensors)
    time.sleep(SETTLE_SECONDS)
    t = timed(numpy_singles, args.reps)
    result["numpy_single_us"] = [v / singles * 1e6 for v in t]
    result["numpy_single_median_us"] = statistics.median(t) / singles * 1e6
    print(json.dumps(result))


def cmd_infer_onnx(args):
    """onnxruntime f32 on an ONNX file (what `nnconv export` writes, preprocessing as graph ops)
    and onnxruntime's own int8 of the same weights (quantize_dynamic: int8 weights, u8
    activations quantized per tensor at run time), batch and batch 1; with --labels, the
    accuracy of both over every image."""
    import tempfile
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    x = read_idx(args.images).astype(np.float32)
    n = x.shape[0]
    singles = min(args.single, n)
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(os.environ.get("BENCH_ORT_THREADS", "0"))
    result = {"images": n, "ort_intra_op_threads": options.intra_op_num_threads}
    labels = read_idx(args.labels).ravel() if args.labels else None
    with tempfile.TemporaryDirectory() as tmp:
        int8_path = os.path.join(tmp, "model.int8.onnx")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            quantize_dynamic(args.model, int8_path, weight_type=QuantType.QInt8)
        outputs = {}
        for key, path in (("ort", args.model), ("ort_int8", int8_path)):
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            inp = session.get_inputs()[0]
            shape = [d if isinstance(d, int) else -1 for d in inp.shape]
            xs = x.reshape([n] + shape[1:])
            outputs[key] = session.run(None, {inp.name: xs})[0]
            if labels is not None:
                result[f"{key}_accuracy_percent"] = float(100 * np.mean(outputs[key].argmax(1) == labels[:n]))
            t = timed(lambda: session.run(None, {inp.name: xs}), args.reps)
            result[f"{key}_batch_median_s"] = statistics.median(t)
            rows = [xs[i:i + 1] for i in range(singles)]

            def singles_run():
                for r in rows:
                    session.run(None, {inp.name: r})
            time.sleep(SETTLE_SECONDS)
            t = timed(singles_run, args.reps)
            result[f"{key}_single_median_us"] = statistics.median(t) / singles * 1e6
        result["ort_int8_vs_f32_same_class"] = float(np.mean(outputs["ort"].argmax(1) == outputs["ort_int8"].argmax(1)))
    print(json.dumps(result))


def cmd_load(args):
    import h5py
    from safetensors.numpy import load_file

    def h5():
        with h5py.File(args.h5, "r") as f:
            return {k: f[k][()] for k in f.keys() if k[0] in "Wb"}

    def npz():
        with np.load(args.npz) as z:
            return {k: z[k] for k in z.files}

    def st():
        return load_file(args.safetensors)

    result = {}
    for name, fn in (("h5py", h5), ("np_load", npz), ("safetensors", st)):
        times = timed(fn, args.reps)
        result[f"{name}_ms"] = [t * 1e3 for t in times]
        result[f"{name}_median_ms"] = statistics.median(times) * 1e3
        # and the first one-image inference after loading, as nn-bench measures for .nnm
        def load_and_first(fn=fn):
            arrays = fn()
            x = np.full((1, arrays["W1"].shape[0]), 0.5, dtype=np.float32)
            i = 1
            while f"W{i}" in arrays:
                x = x @ arrays[f"W{i}"] + arrays[f"b{i}"]
                x = np.maximum(0, x)
                i += 1
            return x
        times = timed(load_and_first, args.reps)
        result[f"{name}_first_inference_median_ms"] = statistics.median(times) * 1e3
    result["bytes"] = os.path.getsize(args.h5)
    print(json.dumps(result))


def cmd_make_large(args):
    """A large random MLP as .h5 (blog rows layout), .npz and .safetensors."""
    import h5py
    from safetensors.numpy import save_file
    sizes = [int(s) for s in args.layers.split(",")]
    rng = np.random.default_rng(0)
    arrays = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = np.empty((a, b), dtype=np.float32)
        for r in range(0, a, 1024):  # in slices, to bound the temporary float64 memory
            w[r:r + 1024] = rng.standard_normal((min(1024, a - r), b), dtype=np.float32) * np.float32((2.0 / a) ** 0.5)
        arrays[f"W{i + 1}"] = w
        arrays[f"b{i + 1}"] = np.zeros((1, b), dtype=np.float32)
    with h5py.File(args.prefix + ".h5", "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
    np.savez(args.prefix + ".npz", **arrays)
    save_file(arrays, args.prefix + ".safetensors")
    total = sum(v.nbytes for v in arrays.values())
    print(json.dumps({"parameters": int(sum(v.size for v in arrays.values())), "bytes": total}))


def cmd_info(args):
    import threadpoolctl
    result = {"python": sys.version.split()[0], "numpy": np.__version__}
    with threadpoolctl.threadpool_limits(limits=None):
        pass
    result["threadpoolctl"] = threadpoolctl.threadpool_info()
    buf = io.StringIO()
    try:
        config = np.show_config(mode="dicts")
        result["numpy_blas"] = config.get("Build Dependencies", {}).get("blas", {})
        result["numpy_simd"] = config.get("SIMD Extensions", {})
    except TypeError:
        with contextlib.redirect_stdout(buf):
            np.show_config()
        result["numpy_show_config"] = buf.getvalue()
    try:
        import onnxruntime as ort
        result["onnxruntime"] = ort.__version__
        so = ort.SessionOptions()
        result["onnxruntime_intra_op_threads"] = so.intra_op_num_threads
    except ImportError:
        result["onnxruntime"] = None
    for mod in ("h5py", "safetensors", "onnx"):
        try:
            result[mod] = __import__(mod).__version__
        except ImportError:
            result[mod] = None
    result["OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE", "(unset)")
    result["OPENBLAS_L2_SIZE"] = os.environ.get("OPENBLAS_L2_SIZE", "(unset)")
    print(json.dumps(result))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("info")
    s.set_defaults(fn=cmd_info)
    s = sub.add_parser("infer")
    s.add_argument("model")
    s.add_argument("images")
    s.add_argument("--reps", type=int, default=7)
    s.add_argument("--single", type=int, default=2000)
    s.set_defaults(fn=cmd_infer)
    s = sub.add_parser("infer-onnx")
    s.add_argument("model")
    s.add_argument("images")
    s.add_argument("--labels", help="IDX labels of the images: report both models' accuracy")
    s.add_argument("--reps", type=int, default=7)
    s.add_argument("--single", type=int, default=2000)
    s.set_defaults(fn=cmd_infer_onnx)
    s = sub.add_parser("infer-nnm")
    s.add_argument("model")
    s.add_argument("images")
    s.add_argument("--onnx", required=True)
    s.add_argument("--reps", type=int, default=7)
    s.add_argument("--single", type=int, default=2000)
    s.set_defaults(fn=cmd_infer_nnm)
    s = sub.add_parser("load")
    s.add_argument("--h5", required=True)
    s.add_argument("--npz", required=True)
    s.add_argument("--safetensors", required=True)
    s.add_argument("--reps", type=int, default=7)
    s.set_defaults(fn=cmd_load)
    s = sub.add_parser("make-large")
    s.add_argument("prefix")
    s.add_argument("--layers", required=True)
    s.set_defaults(fn=cmd_make_large)
    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
