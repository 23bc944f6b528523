"""NumPy reference for the CLI tests: reads a .nnm with Schemas/nnm.py and an IDX file with
plain NumPy, applies the model's preprocessing and layers, and prints JSON with the predicted
classes, the four most probable with their probabilities (the softmax of the outputs when the
model gives logits, as nn-infer documents), and the accuracy when labels are given."""
import gzip
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "Schemas"))
import nnm  # noqa: E402


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def forward(header, tensors, x):
    x = x.astype(np.float64)
    for step in header.get("preprocessing", []):
        if step["op"] == "scale":
            x = x * step["factor"] + step.get("offset", 0.0)
        else:
            mean = tensors[step["mean"]].astype(np.float64)
            std = tensors[step["std"]].astype(np.float64)
            x = x - mean
            mask = std != 0
            x[:, mask] = x[:, mask] / std[mask]
    for layer in header["layers"]:
        z = x @ tensors[layer["weight"]].astype(np.float64)
        if "bias" in layer:
            z = z + tensors[layer["bias"]].astype(np.float64)
        act = layer["activation"]
        if act == "relu":
            x = np.maximum(0, z)
        elif act == "sigmoid":
            x = 1 / (1 + np.exp(-z))
        elif act == "tanh":
            x = np.tanh(z)
        elif act == "softmax":
            e = np.exp(z - z.max(axis=1, keepdims=True))
            x = e / e.sum(axis=1, keepdims=True)
        else:
            x = z
    return x


def main():
    header, tensors = nnm.load(sys.argv[1])
    images = read_idx(sys.argv[2])
    images = images.reshape(images.shape[0] if images.ndim >= 3 else 1, -1)
    out = forward(header, tensors, images)
    predicted = out.argmax(axis=1)
    result = {"predicted": predicted.tolist(), "top_probability": out.max(axis=1).tolist()}
    shown = out
    if header["layers"][-1]["activation"] not in ("softmax", "sigmoid", "log_softmax"):
        e = np.exp(out - out.max(axis=1, keepdims=True))
        shown = e / e.sum(axis=1, keepdims=True)
    # Largest first, the lower class first among equal values.
    order = np.argsort(-shown, axis=1, kind="stable")[:, :4]
    result["top4"] = [[[int(c), float(row[c])] for c in classes] for row, classes in zip(shown, order)]
    if len(sys.argv) > 3:
        labels = read_idx(sys.argv[3])
        result["correct"] = int((predicted == labels).sum())
    print(json.dumps(result))


main()
