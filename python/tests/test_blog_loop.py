"""The blog's seed-000 training loop (784-256-10, ReLU/softmax, mini-batch SGD on z-scored
inputs), written as the blog writes it, ending in the three-line `nnm.save` of the README; then
`nn-infer` classifies the whole Fashion-MNIST test set with the saved file and agrees with the
blog's own forward pass on every image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import nnm
from conftest import FASHION, read_idx, run


# ---- seed 000's functions, as the blog writes them ----

def normalize(X):
    mean = np.mean(X, axis=0)
    std = np.std(X, axis=0)
    normalized_X = X - mean
    mask = std != 0
    normalized_X[:, mask] = normalized_X[:, mask] / std[mask]
    return normalized_X


def relu(Z):
    return np.maximum(0, Z)


def softmax(Z):
    exp_Z = np.exp(Z - np.max(Z, axis=1, keepdims=True))
    return exp_Z / np.sum(exp_Z, axis=1, keepdims=True)


def forward_mlp(X, W1, b1, W2, b2):
    Z1 = X @ W1 + b1
    A1 = relu(Z1)
    Z2 = A1 @ W2 + b2
    A2 = softmax(Z2)
    return A1, A2


def backward_mlp(X, A1, A2, y, W1, W2, Z1):
    n = X.shape[0]
    delta2 = A2 - y
    grad_W2 = (A1.T @ delta2) / n
    grad_b2 = np.mean(delta2, axis=0, keepdims=True)
    delta1 = (delta2 @ W2.T) * (Z1 > 0)
    grad_W1 = (X.T @ delta1) / n
    grad_b1 = np.mean(delta1, axis=0, keepdims=True)
    return grad_W1, grad_b1, grad_W2, grad_b2


def test_seed_000_loop_ends_in_nnm_save(tmp_path: Path) -> None:
    if not FASHION.exists():
        pytest.skip(f"{FASHION} is missing (make setup installs dataset-fashion-mnist)")
    np.random.seed(0)
    X_raw = read_idx(FASHION / "train-images-idx3-ubyte.gz", 3000).reshape(-1, 784).astype(float)
    y = read_idx(FASHION / "train-labels-idx1-ubyte.gz", 3000).astype(int)
    y_one_hot = np.zeros((y.shape[0], 10))
    y_one_hot[np.arange(y.shape[0]), y] = 1
    X_train = normalize(X_raw)
    W1 = np.random.randn(784, 256) * 0.01
    b1 = np.zeros((1, 256))
    W2 = np.random.randn(256, 10) * 0.01
    b2 = np.zeros((1, 10))
    lr, batch_size, n_samples = 0.1, 64, X_train.shape[0]
    for epoch in range(2):
        indices = np.random.permutation(n_samples)
        X_shuffled, y_shuffled = X_train[indices], y_one_hot[indices]
        for start_idx in range(0, n_samples, batch_size):
            X_batch = X_shuffled[start_idx:start_idx + batch_size]
            y_batch = y_shuffled[start_idx:start_idx + batch_size]
            A1, A2 = forward_mlp(X_batch, W1, b1, W2, b2)
            Z1 = X_batch @ W1 + b1
            grad_W1, grad_b1, grad_W2, grad_b2 = backward_mlp(X_batch, A1, A2, y_batch, W1, W2, Z1)
            W1 -= lr * grad_W1
            b1 -= lr * grad_b1
            W2 -= lr * grad_W2
            b2 -= lr * grad_b2

    # The README's three lines: the statistics normalize() used, the parameters, the layout.
    path = tmp_path / "model.nnm"
    mean, std = X_raw.mean(axis=0), X_raw.std(axis=0)
    nnm.save(path, nnm.from_blog({"W1": W1, "b1": b1, "W2": W2, "b2": b2}, layout="rows",
                                 activations=["relu", "softmax"], preprocessing=nnm.zscore(mean, std)))

    images = FASHION / "t10k-images-idx3-ubyte.gz"
    labels = FASHION / "t10k-labels-idx1-ubyte.gz"
    doc = json.loads(run("nn-infer", path, images, "--labels", labels, "--json", "--show", "all", "--precision", "f64").stdout)
    swift_classes = np.array([p["class"] for p in doc["predictions"]])
    # The blog's forward pass on the test set, normalized with the training statistics.
    X_test = read_idx(images).reshape(-1, 784).astype(float)
    X_test = (X_test - mean) / np.where(std == 0, 1, std)
    _, A2_test = forward_mlp(X_test, W1, b1, W2, b2)
    blog_classes = np.argmax(A2_test, axis=1)
    assert len(swift_classes) == 10_000
    assert np.array_equal(swift_classes, blog_classes)
    accuracy = float(np.mean(blog_classes == read_idx(labels)))
    assert accuracy > 0.70, f"two epochs on 3000 images should reach 70 %, got {accuracy:.3f}"
    # The package's own reference forward pass and the file's metadata.
    model = nnm.load(path)
    assert np.array_equal(model.classify(read_idx(images)[:500]), blog_classes[:500])
    assert model.input_shape == [28, 28] and [s["op"] for s in model.preprocessing] == ["zscore"]
