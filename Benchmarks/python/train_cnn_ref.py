#!/usr/bin/env python3
"""NumPy/SciPy reference for the CNN training benchmark: a small CNN trained the way the blog
(seed document 002 in /work/shared/seeds) computes convolutions, written out here.

    python3 train_cnn_ref.py --images F --labels F [--test-images F --test-labels F]
                             [--limit N] [--epochs E] [--dtype f32|f64] [--seed S]

Network (HWC activations, kernel HWIO [3, 3, 1, 8] as in notes/cnn-contract.md):
  conv2d 8 filters 3x3, stride 1, 'valid', convention 'convolution': for every image and filter
  scipy.signal.convolve2d(image, W[:, :, 0, f], mode='valid') + b[f], a true convolution (the
  kernel flipped), as the blog's conv2d -> ReLU -> 26x26x8
  max pooling 2x2 stride 2, VECTORISED (reshape to (n, 13, 2, 13, 2, 8) and max over the window
  axes; the blog's max_pool loops over output positions) -> 13x13x8
  flatten in HWC order (1352) -> dense 1352->10 -> softmax; cross-entropy -mean(sum(y log(a+1e-15)))
Backward, the straightforward NumPy/SciPy way: delta = A - Y; dense gradients by matrix products;
the pooling gradient goes to the first maximum of each window in row-major order (np.argmax);
ReLU mask; kernel gradient per image and filter with
scipy.signal.correlate2d(image, delta[:, :, f], mode='valid') flipped on both axes (because the
forward pass is a convolution), bias gradient the sum of delta; all averaged over the batch.
Mini-batch SGD (W -= lr * grad), batch 64, lr 0.01, a permutation per epoch (np.random.seed(S)).
Initialisation: conv W randn * sqrt(2 / 9), dense W randn * 0.01, zero biases.

Scaling (--scale): 'zscore' (default) is the blog's normalize() per pixel over the training
images used (pixels with std 0 only centred), the test images with the training mean/std;
'255' divides by 255. IDX files may be gzip-compressed (a name ending in .gz) or not.

Timing: per epoch, the mini-batch loop (shuffle included) with time.perf_counter, as
train_ref.py; reading, scaling and the test pass are not timed. Prints one JSON line:
seconds_per_epoch (median over epochs), images_per_epoch, seconds_per_1000_images,
test_accuracy (null without test files), and the configuration.
"""
import argparse
import json
import time

import numpy as np
from scipy import signal

# The blog helpers and the IDX reader the MLP reference uses (this directory is on sys.path when run as a script).
from train_ref import cross_entropy, read_idx, relu, softmax

FILTERS, K, CLASSES, POOL = 8, 3, 10, 2


def conv_forward(x, w, b):
    """x (n, 28, 28) -> z (n, 26, 26, FILTERS): the blog's conv2d per image and filter."""
    n, h, wd = x.shape
    z = np.empty((n, h - K + 1, wd - K + 1, FILTERS), dtype=x.dtype)
    for i in range(n):
        for f in range(FILTERS):
            z[i, :, :, f] = signal.convolve2d(x[i], w[:, :, 0, f], mode="valid") + b[f]
    return z


def pool_forward(a):
    """(n, 26, 26, C) -> (n, 13, 13, C) maxima and the index u * 2 + v of each window's first
    maximum (row-major window order), by a reshape."""
    n, h, w, c = a.shape
    oh, ow = h // POOL, w // POOL
    win = a[:, :oh * POOL, :ow * POOL, :].reshape(n, oh, POOL, ow, POOL, c)
    win = win.transpose(0, 1, 3, 2, 4, 5).reshape(n, oh, ow, POOL * POOL, c)
    idx = np.argmax(win, axis=3)
    return np.take_along_axis(win, idx[:, :, :, None, :], axis=3)[:, :, :, 0, :], idx


def pool_backward(g, idx, shape):
    n, oh, ow, c = g.shape
    mask = np.arange(POOL * POOL)[None, None, None, :, None] == idx[:, :, :, None, :]
    gw = (mask * g[:, :, :, None, :]).reshape(n, oh, ow, POOL, POOL, c).transpose(0, 1, 3, 2, 4, 5)
    out = np.zeros(shape, dtype=g.dtype)
    out[:, :oh * POOL, :ow * POOL, :] = gw.reshape(n, oh * POOL, ow * POOL, c)
    return out


def forward(x, p):
    z1 = conv_forward(x, p["Wc"], p["bc"])
    a1 = relu(z1)
    pooled, idx = pool_forward(a1)
    flat = pooled.reshape(x.shape[0], -1)  # HWC order
    a2 = softmax(flat @ p["Wd"] + p["bd"])
    return z1, a1, idx, flat, a2


def train_step(xb, yb, p, lr):
    m = xb.shape[0]
    z1, a1, idx, flat, a2 = forward(xb, p)
    loss = cross_entropy(a2, yb)
    d2 = a2 - yb
    gWd = (flat.T @ d2) / m
    gbd = np.mean(d2, axis=0)
    dflat = d2 @ p["Wd"].T
    da1 = pool_backward(dflat.reshape(m, *idx.shape[1:]), idx, a1.shape)
    dz1 = da1 * (z1 > 0)
    gWc = np.zeros_like(p["Wc"])
    for i in range(m):
        for f in range(FILTERS):
            gWc[:, :, 0, f] += signal.correlate2d(xb[i], dz1[i, :, :, f], mode="valid")[::-1, ::-1]
    gWc /= m
    gbc = np.sum(dz1, axis=(0, 1, 2)) / m
    p["Wc"] -= lr * gWc
    p["bc"] -= lr * gbc
    p["Wd"] -= lr * gWd
    p["bd"] -= lr * gbd
    return loss


def scale(train, test, how, dtype):
    train = train.reshape(train.shape[0], -1).astype(np.float64)
    test = None if test is None else test.reshape(test.shape[0], -1).astype(np.float64)
    if how == "255":
        train, test = train / 255.0, (None if test is None else test / 255.0)
    else:
        mean, std = np.mean(train, axis=0), np.std(train, axis=0)
        mask = std != 0
        train = train - mean
        train[:, mask] /= std[mask]
        if test is not None:
            test = test - mean
            test[:, mask] /= std[mask]
    cast = lambda a: None if a is None else a.reshape(a.shape[0], 28, 28).astype(dtype)
    return cast(train), cast(test)


def main():
    ap = argparse.ArgumentParser(description="NumPy/SciPy CNN training reference (blog-style convolutions)")
    ap.add_argument("--images", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--test-images")
    ap.add_argument("--test-labels")
    ap.add_argument("--limit", type=int, default=0, help="first N training images (0: all)")
    ap.add_argument("--test-limit", type=int, default=0, help="first N test images (0: all)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--dtype", choices=["f32", "f64"], default="f32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--scale", choices=["zscore", "255"], default="zscore")
    args = ap.parse_args()
    if (args.test_images is None) != (args.test_labels is None):
        ap.error("--test-images and --test-labels go together")
    dtype = np.float32 if args.dtype == "f32" else np.float64

    images, labels = read_idx(args.images), read_idx(args.labels).astype(np.int64)
    if args.limit:
        images, labels = images[:args.limit], labels[:args.limit]
    if images.shape[1:] != (28, 28) or labels.shape[0] != images.shape[0]:
        raise SystemExit(f"unexpected shapes {images.shape}, {labels.shape}")
    timages = tlabels = None
    if args.test_images:
        timages, tlabels = read_idx(args.test_images), read_idx(args.test_labels).astype(np.int64)
        if args.test_limit:
            timages, tlabels = timages[:args.test_limit], tlabels[:args.test_limit]
    x, xt = scale(images, timages, args.scale, dtype)
    n = x.shape[0]
    y = np.zeros((n, CLASSES), dtype=dtype)
    y[np.arange(n), labels] = 1

    np.random.seed(args.seed)
    flat_features = 13 * 13 * FILTERS
    p = {"Wc": (np.random.randn(K, K, 1, FILTERS) * np.sqrt(2.0 / (K * K))).astype(dtype),
         "bc": np.zeros(FILTERS, dtype=dtype),
         "Wd": (np.random.randn(flat_features, CLASSES) * 0.01).astype(dtype),
         "bd": np.zeros(CLASSES, dtype=dtype)}

    times, epoch_losses = [], []
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        perm = np.random.permutation(n)
        xs, ys = x[perm], y[perm]
        losses = []
        for s in range(0, n, args.batch):
            losses.append(train_step(xs[s:s + args.batch], ys[s:s + args.batch], p, args.lr))
        times.append(time.perf_counter() - t0)
        epoch_losses.append(float(np.mean(losses)))
    for k, v in p.items():
        assert v.dtype == dtype, (k, v.dtype)

    accuracy = None
    if xt is not None:
        correct = 0
        for s in range(0, xt.shape[0], 500):
            correct += int(np.sum(np.argmax(forward(xt[s:s + 500], p)[-1], axis=1) == tlabels[s:s + 500]))
        accuracy = correct / xt.shape[0]
    spe = float(np.median(times))
    print(json.dumps({"seconds_per_epoch": spe, "images_per_epoch": n,
                      "seconds_per_1000_images": spe / n * 1000, "test_accuracy": accuracy,
                      "test_images": None if xt is None else int(xt.shape[0]),
                      "epoch_seconds": times, "epoch_mean_batch_loss": epoch_losses,
                      "dtype": args.dtype, "epochs": args.epochs, "batch": args.batch, "lr": args.lr,
                      "seed": args.seed, "scale": args.scale,
                      "conv": "scipy.signal.convolve2d per image and filter (true convolution)",
                      "pool": "vectorised reshape-max, gradient to the first maximum",
                      "numpy": np.__version__, "scipy": __import__("scipy").__version__}))


if __name__ == "__main__":
    main()
