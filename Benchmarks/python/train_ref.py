"""NumPy reference for the training benchmark: the blog's training loops (seed documents 000 and
002 in /work/shared/seeds), written out again here, on the full Fashion-MNIST training set.

    python3 train_ref.py --recipe 000|002 --dtype f32|f64 [--epochs 3] [--lean]

Seed 000: 784-256-10 ReLU/softmax, cross-entropy, SGD lr 0.1, batch 64, randn*0.01.
Seed 002: 784-256-128-10 ReLU/ReLU/softmax, momentum 0.9, L2, dropout with keep 0.8 applied as
the capstone loop does (masks without rescaling, hidden pre-activations recomputed from the
masked activations), with the `capstone` preset's lr 0.01 and L2 1e-4 (the blog's lr 0.1 and L2
0.01 diverge on the full training set; the amount of work is the same).

The loops recompute `Z1 = X_batch @ W1 + b1` after the forward pass, as the blog code does;
`--lean` drops that redundant product (a fairer NumPy). Per epoch, the time of the mini-batch
loop (shuffle included) is reported, as nn-train reports the time of its training steps; the
end-of-epoch loss/accuracy passes are not timed. Prints one JSON object.
"""
import argparse
import gzip
import json
import os
import time

import numpy as np


def read_idx(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def normalize(X):
    mean = np.mean(X, axis=0)
    std = np.std(X, axis=0)
    out = X - mean
    mask = std != 0
    if np.any(mask):
        out[:, mask] = out[:, mask] / std[mask]
    return out


def relu(Z):
    return np.maximum(0, Z)


def softmax(Z):
    e = np.exp(Z - np.max(Z, axis=1, keepdims=True))
    return e / np.sum(e, axis=1, keepdims=True)


def cross_entropy(A, y):
    return -np.mean(np.sum(y * np.log(A + 1e-15), axis=1))


def train_000(X, Y, epochs, lean, dtype):
    n_features, n_hidden, n_classes = X.shape[1], 256, 10
    W1 = (np.random.randn(n_features, n_hidden) * 0.01).astype(dtype)
    b1 = np.zeros((1, n_hidden), dtype=dtype)
    W2 = (np.random.randn(n_hidden, n_classes) * 0.01).astype(dtype)
    b2 = np.zeros((1, n_classes), dtype=dtype)
    lr, batch_size, n = 0.1, 64, X.shape[0]
    times, losses = [], []
    for _ in range(epochs):
        t0 = time.perf_counter()
        idx = np.random.permutation(n)
        Xs, Ys = X[idx], Y[idx]
        for s in range(0, n, batch_size):
            Xb, yb = Xs[s:s + batch_size], Ys[s:s + batch_size]
            m = Xb.shape[0]
            Z1 = Xb @ W1 + b1
            A1 = relu(Z1)
            A2 = softmax(A1 @ W2 + b2)
            if not lean:
                Z1 = Xb @ W1 + b1  # as the blog's loop: recomputed for backward_mlp
            d2 = A2 - yb
            gW2 = (A1.T @ d2) / m
            gb2 = np.mean(d2, axis=0, keepdims=True)
            d1 = (d2 @ W2.T) * (Z1 > 0)
            gW1 = (Xb.T @ d1) / m
            gb1 = np.mean(d1, axis=0, keepdims=True)
            W1 -= lr * gW1
            b1 -= lr * gb1
            W2 -= lr * gW2
            b2 -= lr * gb2
        times.append(time.perf_counter() - t0)
        A2 = softmax(relu(X[:10000] @ W1 + b1) @ W2 + b2)
        losses.append(float(cross_entropy(A2, Y[:10000])))
    return times, losses


def train_002(X, Y, epochs, lean, dtype):
    sizes = [X.shape[1], 256, 128, 10]
    W = [(np.random.randn(a, b) * 0.01).astype(dtype) for a, b in zip(sizes[:-1], sizes[1:])]
    B = [np.zeros((1, b), dtype=dtype) for b in sizes[1:]]
    vW = [np.zeros_like(w) for w in W]
    vB = [np.zeros_like(b) for b in B]
    lr, mu, l2, keep, batch_size, n = 0.01, 0.9, 1e-4, 0.8, 64, X.shape[0]
    times, losses = [], []
    for _ in range(epochs):
        t0 = time.perf_counter()
        idx = np.random.permutation(n)
        Xs, Ys = X[idx], Y[idx]
        for s in range(0, n, batch_size):
            Xb, yb = Xs[s:s + batch_size], Ys[s:s + batch_size]
            m = Xb.shape[0]
            Z1 = Xb @ W[0] + B[0]
            A1 = relu(Z1)
            A2 = relu(A1 @ W[1] + B[1])
            A3 = softmax(A2 @ W[2] + B[2])
            A1d = A1 * np.random.binomial(1, keep, size=A1.shape).astype(dtype)
            A2d = A2 * np.random.binomial(1, keep, size=A2.shape).astype(dtype)
            if not lean:
                Z1 = Xb @ W[0] + B[0]
            Z2 = A1d @ W[1] + B[1]
            d3 = A3 - yb
            gW3 = (A2d.T @ d3) / m
            gb3 = np.mean(d3, axis=0, keepdims=True)
            d2 = (d3 @ W[2].T) * (Z2 > 0)
            gW2 = (A1d.T @ d2) / m
            gb2 = np.mean(d2, axis=0, keepdims=True)
            d1 = (d2 @ W[1].T) * (Z1 > 0)
            gW1 = (Xb.T @ d1) / m
            gb1 = np.mean(d1, axis=0, keepdims=True)
            gW = [gW1 + 2 * l2 * W[0], gW2 + 2 * l2 * W[1], gW3 + 2 * l2 * W[2]]
            gB = [gb1, gb2, gb3]
            for i in range(3):
                vW[i] = mu * vW[i] - lr * gW[i]
                W[i] += vW[i]
                vB[i] = mu * vB[i] - lr * gB[i]
                B[i] += vB[i]
        times.append(time.perf_counter() - t0)
        A3 = softmax(relu(relu(X[:10000] @ W[0] + B[0]) @ W[1] + B[1]) @ W[2] + B[2])
        losses.append(float(cross_entropy(A3, Y[:10000])))
    return times, losses


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--recipe", choices=["000", "002"], required=True)
    p.add_argument("--dtype", choices=["f32", "f64"], default="f32")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lean", action="store_true")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = p.parse_args()
    dtype = np.float32 if args.dtype == "f32" else np.float64
    np.random.seed(0)
    X = normalize(read_idx(os.path.join(args.data, "train-images-idx3-ubyte.gz")).reshape(60000, -1).astype(np.float64)).astype(dtype)
    labels = read_idx(os.path.join(args.data, "train-labels-idx1-ubyte.gz"))
    Y = np.zeros((labels.shape[0], 10), dtype=dtype)
    Y[np.arange(labels.shape[0]), labels] = 1
    train = train_000 if args.recipe == "000" else train_002
    times, losses = train(X, Y, args.epochs, args.lean, dtype)
    print(json.dumps({"recipe": args.recipe, "dtype": args.dtype, "lean": args.lean, "epoch_seconds": times,
                      "median_epoch_s": float(np.median(times)), "train_loss_10k": losses}))


if __name__ == "__main__":
    main()
