"""Cold single-image prediction, the way a blog reader would do it: start Python, import numpy
and h5py, load the weights that `nnconv export` wrote, read one IDX image, predict, print.

    python3 cold_predict.py MODEL.h5 IMAGE.idx
"""
import sys

import h5py
import numpy as np

with h5py.File(sys.argv[1], "r") as f:
    activations = f.attrs["activations"]
    activations = (activations.decode() if isinstance(activations, bytes) else str(activations)).split(",")
    layers = [(f[f"W{i + 1}"][()], f[f"b{i + 1}"][()]) for i in range(len(activations))]
    mean = f["nnm_tensors/preprocessing.mean"][()]
    std = f["nnm_tensors/preprocessing.std"][()]

with open(sys.argv[2], "rb") as f:
    data = f.read()
rank = data[3]
x = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).astype(np.float32).reshape(1, -1)
x = x - mean
mask = std != 0
x[:, mask] = x[:, mask] / std[mask]
for (w, b), act in zip(layers, activations):
    z = x @ w + b
    if act == "relu":
        x = np.maximum(0, z)
    else:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        x = e / e.sum(axis=1, keepdims=True)
print(f"class {int(x.argmax())} ({float(x.max()):.4f})")
