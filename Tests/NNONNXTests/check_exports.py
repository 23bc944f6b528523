#!/usr/bin/env python3
"""Runs models nnconv exported through the real tools: the .onnx through onnx.checker and
onnxruntime, the .safetensors through safetensors.numpy with a NumPy forward pass that follows
the file's own description (nnm_metadata, nnm_tensors, PyTorch (out, in) weights).

    python3 check_exports.py REQUEST.json

REQUEST.json: {"input": [[...], ...], "onnx": PATH or null, "safetensors": PATH or null}.
Prints {"onnx": [[...]], "safetensors": [[...]]}, the outputs for each input row.
"""

import json
import sys

import numpy as np


def run_onnx(path, x):
    import onnx
    import onnxruntime as ort

    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["input"], model.graph.input
    assert [o.name for o in model.graph.output] == ["probabilities"], model.graph.output
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    if len(dims) == 4:
        # A CNN export takes NCHW images; the rows are .nnm samples, height x width x channels.
        c, h, w = dims[1:]
        x = np.asarray(x).reshape(len(x), h, w, c).transpose(0, 3, 1, 2)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"input": x.astype(np.float32)})[0].astype(np.float64)


def run_safetensors(path, x):
    from safetensors import safe_open
    from safetensors.numpy import load_file

    tensors = load_file(path)
    with safe_open(path, framework="np") as f:
        metadata = f.metadata()
    assert metadata["format"] == "pt"
    assert metadata["pytorch_module"].startswith("nn.Sequential(nn.Linear(")
    meta = json.loads(metadata["nnm_metadata"])
    keys = json.loads(metadata["nnm_tensors"])
    assert set(keys.values()) == set(tensors), (keys, list(tensors))

    def tensor(name):
        return tensors[keys[name]].astype(np.float64)

    a = x.astype(np.float64)
    for step in meta.get("preprocessing", []):
        if step["op"] == "scale":
            a = a * step["factor"] + step.get("offset", 0)
        else:
            std = tensor(step["std"])
            a = (a - tensor(step["mean"])) / np.where(std == 0, 1, std)
    for layer in meta["layers"]:
        # nn.Linear: x @ W.T + b with W (out, in).
        w = tensor(layer["weight"])
        assert w.shape == (layer["out"], layer["in"]), w.shape
        a = a @ w.T
        if layer.get("bias"):
            a = a + tensor(layer["bias"])
        act = layer["activation"]
        if act == "relu":
            a = np.maximum(a, 0)
        elif act == "sigmoid":
            a = 1 / (1 + np.exp(-a))
        elif act == "tanh":
            a = np.tanh(a)
        elif act == "softmax":
            e = np.exp(a - a.max(axis=1, keepdims=True))
            a = e / e.sum(axis=1, keepdims=True)
    return a


def main():
    with open(sys.argv[1]) as f:
        request = json.load(f)
    x = np.array(request["input"], dtype=np.float64)
    result = {}
    if request.get("onnx"):
        result["onnx"] = run_onnx(request["onnx"], x).tolist()
    if request.get("safetensors"):
        result["safetensors"] = run_safetensors(request["safetensors"], x).tolist()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
