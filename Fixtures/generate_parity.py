#!/usr/bin/env python3
"""Writes the parity fixtures in Fixtures/parity/: the blog's mathematics computed by plain NumPy,
one HDF5 file per convention of the four seed documents, in float64 and float32.

    pip install numpy h5py scipy
    python3 Fixtures/generate_parity.py            # regenerates Fixtures/parity/
    python3 Fixtures/generate_parity.py --out DIR  # writes into DIR instead (used by the checker)

Everything is our own NumPy code written from the seed documents (never copied from them):

  rows_relu_softmax_2layer        seed 000: Z = X @ W + b, ReLU, softmax, cross-entropy, SGD
  rows_capstone_3layer            seed 002: ReLU/ReLU/softmax, momentum, L2, the capstone's dropout
  rows_capstone_3layer_nodropout  seed 002 without dropout (momentum + L2)
  columns_sigmoid_quadratic       seed 001: Nielsen's per-sample backprop, summed per mini-batch
  columns_binary_square           seed 003: the course homework, plus the notebook's own printout
  cnn_pieces                      seed 002: conv2d (scipy, a true convolution) and 2x2 max_pool
  cnn_small                       seed 002's CNN and a Keras-style one (stride 2, 'same', a second
                                  conv): forward, backward, 3 SGD steps, in the Swift layout contract
                                  (HWC activations, HWIO kernels; notes/cnn-contract.md)
  cnn_format12                    format 1.2's trainable layers: batch normalization after a convolution
                                  and after dense layers, average pooling ('same' and explicit padding,
                                  padded cells counted or not), ELU, GELU (tanh), leaky ReLU; forward,
                                  backward, 3 momentum steps with the moving averages (float64 only)
  e2e_seed000_numpy_run           seed 000's loop on the first 1000 Fashion-MNIST training images

The float32 files start from the float64 inputs and parameters rounded to float32 and do every
step in float32, as NumPy does with float32 arrays (NumPy 2 promotion: Python floats are weak).
The output is deterministic: every random number comes from np.random.seed / RandomState with a
seed recorded in the file. Prints one summary line. See Fixtures/README.md for the layout.
"""

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile

# Bit-for-bit reproducibility across x86-64 machines: one OpenBLAS thread and its Haswell (AVX2)
# kernels whatever the CPU, and NumPy's AVX-512 loops (exp, log, ...) switched off, so a CI machine
# with AVX-512 computes what this one does. Set before NumPy loads; the caller can override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
os.environ.setdefault("NPY_DISABLE_CPU_FEATURES", "X86_V4 AVX512_ICL AVX512_SPR")

import numpy as np
import h5py
from scipy import signal

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "parity")
FASHION = "/usr/share/datasets/fashion-mnist"
SIZE_LIMIT = 1_500_000  # bytes, all parity files together

# The small training problem every MLP fixture shares: N samples, mini-batches of BATCH, K steps.
# With 28 samples and batches of 8, an epoch is 8+8+8+4, so the K=5 steps cross an epoch boundary
# and include the ragged batch (seed 001 trains on all but the last batch, see below).
N_TRAIN = 28
BATCH = 8
K_STEPS = 5
EPS = 1e-15  # the blog's cross-entropy epsilon

DTYPES = {"f64": np.float64, "f32": np.float32}


# ---------------------------------------------------------------------------------------------
# The mathematics, written from the seed documents.

def relu(z):
    return np.maximum(0, z)


def sigmoid(z):
    return 1.0 / (1 + np.exp(-z))


def sigmoid_prime(z):
    s = sigmoid(z)
    return s * (1 - s)


def softmax_rows(z):
    """Softmax of each row, the row maximum subtracted first (seed 000)."""
    e = np.exp(z - np.max(z, axis=1, keepdims=True))
    return e / np.sum(e, axis=1, keepdims=True)


def cross_entropy(a, y):
    """-mean over samples of sum(y * log(a + 1e-15)) (seed 000)."""
    return -np.mean(np.sum(y * np.log(a + EPS), axis=1))


def one_hot_rows(labels, classes, dt):
    y = np.zeros((labels.shape[0], classes), dtype=dt)
    y[np.arange(labels.shape[0]), labels] = 1
    return y


def rows_forward(x, ws, bs, hidden):
    """Z = A @ W + b for every layer; `hidden` activation, softmax on the output."""
    zs, acts = [], []
    a = x
    for i, (w, b) in enumerate(zip(ws, bs)):
        z = a @ w + b
        a = softmax_rows(z) if i == len(ws) - 1 else hidden(z)
        zs.append(z)
        acts.append(a)
    return zs, acts


def rows_backward(x, inputs, zs_for_derivative, a_out, y, ws):
    """The blog's backward pass for ReLU hidden layers and a softmax/cross-entropy output.

    inputs[l] is what multiplied W[l] in the forward pass (X, A1, ...), zs_for_derivative[l] the
    pre-activation whose ReLU derivative gates delta[l]. Returns (deltas, grad_W, grad_b)."""
    n = x.shape[0]
    L = len(ws)
    deltas = [None] * L
    gw = [None] * L
    gb = [None] * L
    delta = a_out - y
    for l in range(L - 1, -1, -1):
        deltas[l] = delta
        gw[l] = (inputs[l].T @ delta) / n
        gb[l] = np.mean(delta, axis=0, keepdims=True)
        if l > 0:
            delta = (delta @ ws[l].T) * (zs_for_derivative[l - 1] > 0)
    return deltas, gw, gb


def capstone_step(x, y, ws, bs, keep, masks_from_stream):
    """One capstone forward/backward exactly as seed 002's training loop does it.

    Without dropout: forward, then backward from the forward's own values. With dropout
    (masks_from_stream=True): the forward runs WITHOUT dropout and gives A1, A2, A3; then
    mask1 = binomial(1, keep, A1.shape), mask2 = binomial(1, keep, A2.shape) are drawn from the
    global np.random stream in that order and multiply A1, A2 without rescaling; Z1 = X@W1+b1 and
    Z2 = A1_drop@W2+b2 are recomputed; the backward pass uses A1_drop, A2_drop, A3 and those Zs."""
    zs, acts = rows_forward(x, ws, bs, relu)
    out = {"zs": zs, "acts": acts}
    if masks_from_stream:
        dt = x.dtype
        m1 = np.random.binomial(1, keep, size=acts[0].shape)
        m2 = np.random.binomial(1, keep, size=acts[1].shape)
        a1d = acts[0] * m1.astype(dt)
        a2d = acts[1] * m2.astype(dt)
        z1 = x @ ws[0] + bs[0]
        z2 = a1d @ ws[1] + bs[1]
        deltas, gw, gb = rows_backward(x, [x, a1d, a2d], [z1, z2], acts[2], y, ws)
        out.update(masks=[m1, m2], dropped=[a1d, a2d], z_recomputed=[z1, z2])
    else:
        deltas, gw, gb = rows_backward(x, [x, acts[0], acts[1]], zs[:2], acts[2], y, ws)
    out.update(deltas=deltas, gw_data=gw, gb=gb)
    return out


def nielsen_backprop(x, y, ws, bs):
    """Seed 001's backprop for ONE sample (column vectors): the quadratic cost's derivative
    a - y times sigmoid'(z) at the output, then delta = W^T delta * sigmoid'(z) backwards."""
    a = x.reshape(-1, 1)
    acts = [a]
    zs = []
    for w, b in zip(ws, bs):
        z = w.dot(a) + b
        zs.append(z)
        a = sigmoid(z)
        acts.append(a)
    L = len(ws)
    nw = [None] * L
    nb = [None] * L
    deltas = [None] * L
    delta = (acts[-1] - y.reshape(-1, 1)) * sigmoid_prime(zs[-1])
    deltas[-1] = delta
    nb[-1] = delta
    nw[-1] = delta.dot(acts[-2].T)
    for l in range(2, L + 1):
        delta = ws[-l + 1].T.dot(delta) * sigmoid_prime(zs[-l])
        deltas[-l] = delta
        nb[-l] = delta
        nw[-l] = delta.dot(acts[-l - 1].T)
    return zs, acts[1:], deltas, nw, nb


def nielsen_batch(xcols, ycols, ws, bs):
    """Seed 001's update_params: the per-sample gradients summed over the mini-batch (in sample
    order, starting from zeros), plus every per-sample intermediate stacked as columns."""
    L = len(ws)
    nabla_w = [np.zeros_like(w) for w in ws]
    nabla_b = [np.zeros_like(b) for b in bs]
    zcols = [[] for _ in range(L)]
    acols = [[] for _ in range(L)]
    dcols = [[] for _ in range(L)]
    for j in range(xcols.shape[1]):
        zs, acts, deltas, nw, nb = nielsen_backprop(xcols[:, j], ycols[:, j], ws, bs)
        nabla_w = [dnw + n for n, dnw in zip(nabla_w, nw)]
        nabla_b = [dnb + n for n, dnb in zip(nabla_b, nb)]
        for l in range(L):
            zcols[l].append(zs[l])
            acols[l].append(acts[l])
            dcols[l].append(deltas[l])
    stack = lambda cols: [np.hstack(c) for c in cols]
    return stack(zcols), stack(acols), stack(dcols), nabla_w, nabla_b


def nielsen_update(ws, bs, nabla_w, nabla_b, lr, count):
    ws = [w - (lr * nw / count) for w, nw in zip(ws, nabla_w)]
    bs = [b - (lr * nb / count) for b, nb in zip(bs, nabla_b)]
    return ws, bs


def quadratic_cost_columns(a, y):
    """1/(2n) * sum over samples of ||a - y||^2 (columns are samples)."""
    return 1.0 / (2 * y.shape[1]) * np.sum((a - y) ** 2)


def course_forward(x, p):
    z1 = p["W1"] @ x + p["b1"]
    a1 = sigmoid(z1)
    z2 = p["W2"] @ a1 + p["b2"]
    a2 = sigmoid(z2)
    return {"Z1": z1, "A1": a1, "Z2": z2, "A2": a2}


def course_cost(a2, y):
    m = y.shape[1]
    return 1.0 / (2 * m) * np.sum((a2 - y) ** 2)


def course_backward(x, y, p, c):
    m = y.shape[1]
    dz2 = (c["A2"] - y) / m * sigmoid_prime(c["Z2"])
    dw2 = dz2 @ c["A1"].T
    db2 = np.sum(dz2, axis=1, keepdims=True)
    dz1 = (p["W2"].T @ dz2) * sigmoid_prime(c["Z1"])
    dw1 = dz1 @ x.T
    db1 = np.sum(dz1, axis=1, keepdims=True)
    return {"dZ2": dz2, "dW2": dw2, "db2": db2, "dZ1": dz1, "dW1": dw1, "db1": db1}


def course_update(p, g, lr):
    return {"W1": p["W1"] - lr * g["dW1"], "b1": p["b1"] - lr * g["db1"],
            "W2": p["W2"] - lr * g["dW2"], "b2": p["b2"] - lr * g["db2"]}


def conv2d(image, kernel, stride=1):
    """Seed 002's conv2d: scipy's convolve2d in 'valid' mode (a true convolution, the kernel is
    flipped), stride by keeping every stride-th row and column."""
    out = signal.convolve2d(image, kernel, mode="valid", boundary="fill", fillvalue=0)
    if stride > 1:
        out = out[::stride, ::stride]
    return out


def max_pool(x, size=2, stride=2):
    """Seed 002's max_pool on (h, w) or (h, w, c): window maxima, floor of the output size.
    (The blog's version always returns float64; here the result keeps the input's dtype, which
    changes nothing since a maximum is one of the inputs.)"""
    squeeze = x.ndim == 2
    if squeeze:
        x = x[:, :, None]
    h, w, c = x.shape
    oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
    out = np.zeros((oh, ow, c), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            region = x[i * stride:i * stride + size, j * stride:j * stride + size, :]
            out[i, j, :] = np.max(region, axis=(0, 1))
    return out[:, :, 0] if squeeze else out


def normalize(x):
    """Seed 000's normalize(): per-feature z-score; columns with std == 0 are only centred."""
    mean = np.mean(x, axis=0)
    std = np.std(x, axis=0)
    out = x - mean
    mask = std != 0
    if np.any(mask):
        out[:, mask] = out[:, mask] / std[mask]
    return out, mean, std


# ---------------------------------------------------------------------------------------------
# Small helpers.

def schedule_blog(n, batch, k):
    """The blog loops (seeds 000, 002): a permutation per epoch, batches [start, start+batch).
    Returns the permutations drawn and, per step, (epoch, start, count). Stops after k steps."""
    perms, steps = [], []
    while len(steps) < k:
        perm = np.random.permutation(n)
        perms.append(perm)
        for start in range(0, n, batch):
            if len(steps) == k:
                break
            steps.append((len(perms) - 1, start, min(batch, n - start)))
    return perms, steps


def check_close(name, a, b, tol):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = max(np.max(np.abs(b)), 1e-300)
    err = np.max(np.abs(a - b)) / scale
    if not err <= tol:
        raise SystemExit(f"generate_parity: self-check failed: {name}: {err:.3e} > {tol:.1e}")


def numeric_gradient(f, params, h=1e-6):
    """Central differences of the scalar f() with respect to every entry of every array."""
    grads = []
    for p in params:
        g = np.zeros_like(p)
        it = np.nditer(p, flags=["multi_index"])
        while not it.finished:
            i = it.multi_index
            old = p[i]
            p[i] = old + h
            fp = f()
            p[i] = old - h
            fm = f()
            p[i] = old
            g[i] = (fp - fm) / (2 * h)
            it.iternext()
        grads.append(g)
    return grads


def data_rows(rng, n_in, n_out, n):
    x = rng.randn(n, n_in)
    labels = rng.randint(0, n_out, size=n)
    return x, labels


def generic_params_rows(rng, sizes, w_scale, b_scale):
    ws = [rng.randn(i, o) * (w_scale / np.sqrt(i)) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [rng.randn(1, o) * b_scale for o in sizes[1:]]
    return ws, bs


# ---------------------------------------------------------------------------------------------
# Fixture builders. Each returns (attrs, tree) where tree maps "path/in/file" -> array.

def common_attrs(dt, **kw):
    a = {"dtype": np.dtype(dt).name, "batch": BATCH, "K": K_STEPS, "n_train": N_TRAIN}
    a.update(kw)
    return a


def build_rows_relu_softmax(dt):
    sizes = [12, 9, 4]
    data_seed, init_seed, train_seed = 1000, 1001, 1002
    lr = 0.1
    rng = np.random.RandomState(data_seed)
    x_all, labels_all = data_rows(rng, sizes[0], sizes[-1], N_TRAIN)
    ws, bs = generic_params_rows(rng, sizes, 1.5, 0.1)
    x_all = x_all.astype(dt)
    ws = [w.astype(dt) for w in ws]
    bs = [b.astype(dt) for b in bs]
    y_all = one_hot_rows(labels_all, sizes[-1], dt)
    x, y, labels = x_all[:BATCH], y_all[:BATCH], labels_all[:BATCH]

    t = {"X": x, "Y": y, "labels": labels}
    for i in range(2):
        t[f"W{i + 1}"], t[f"b{i + 1}"] = ws[i], bs[i]
    zs, acts = rows_forward(x, ws, bs, relu)
    loss = cross_entropy(acts[-1], y)
    deltas, gw, gb = rows_backward(x, [x, acts[0]], zs, acts[-1], y, ws)
    for i in range(2):
        t[f"Z{i + 1}"], t[f"A{i + 1}"], t[f"delta{i + 1}"] = zs[i], acts[i], deltas[i]
        t[f"grad_W{i + 1}"], t[f"grad_b{i + 1}"] = gw[i], gb[i]
        t[f"after/W{i + 1}"] = ws[i] - lr * gw[i]
        t[f"after/b{i + 1}"] = bs[i] - lr * gb[i]
    t["loss"] = np.asarray(loss, dtype=dt)
    t["predictions"] = np.argmax(acts[-1], axis=1)

    if dt == np.float64:  # the analytic gradient is the gradient of the loss
        wv = [w.copy() for w in ws]
        bv = [b.copy() for b in bs]
        f = lambda: cross_entropy(rows_forward(x, wv, bv, relu)[1][-1], y)
        num = numeric_gradient(f, wv + bv)
        for g, nmr in zip(gw + gb, num):
            check_close("000 finite differences", g, nmr, 1e-6)

    # K mini-batch steps from the parameters above.
    np.random.seed(train_seed)
    perms, steps = schedule_blog(N_TRAIN, BATCH, K_STEPS)
    cw, cb = [w.copy() for w in ws], [b.copy() for b in bs]
    losses = []
    for e, start, count in steps:
        idx = perms[e][start:start + count]
        xb, yb = x_all[idx], y_all[idx]
        zb, ab = rows_forward(xb, cw, cb, relu)
        losses.append(cross_entropy(ab[-1], yb))
        _, g_w, g_b = rows_backward(xb, [xb, ab[0]], zb, ab[-1], yb, cw)
        cw = [w - lr * g for w, g in zip(cw, g_w)]
        cb = [b - lr * g for b, g in zip(cb, g_b)]
    add_train(t, x_all, y_all, labels_all, perms, steps, losses, cw, cb)

    add_init_blog(t, sizes, init_seed, dt)
    attrs = common_attrs(dt, convention="rows_relu_softmax_2layer", seed_document="000",
                         orientation="rows", activations="relu,softmax", loss="cross_entropy",
                         optimizer="sgd", initialization="blog", dropout="none",
                         lr=lr, mu=0.0, keep=1.0, layer_sizes=np.array(sizes, dtype=np.int64),
                         data_seed=data_seed, init_seed=init_seed, train_seed=train_seed,
                         train_loop="blog")
    attrs["lambda"] = 0.0
    return attrs, t


def add_train(t, x_all, y_all, labels_all, perms, steps, losses, ws, bs, vw=None, vb=None):
    t["train/X"] = x_all
    t["train/Y"] = y_all
    t["train/labels"] = labels_all
    t["train/permutations"] = np.stack(perms).astype(np.int64)
    t["train/step_epoch"] = np.array([s[0] for s in steps], dtype=np.int64)
    t["train/step_start"] = np.array([s[1] for s in steps], dtype=np.int64)
    t["train/step_count"] = np.array([s[2] for s in steps], dtype=np.int64)
    t["train/losses"] = np.array(losses, dtype=ws[0].dtype)
    for i, (w, b) in enumerate(zip(ws, bs)):
        t[f"train/final/W{i + 1}"] = w
        t[f"train/final/b{i + 1}"] = b
        if vw is not None:
            t[f"train/final/v_W{i + 1}"] = vw[i]
            t[f"train/final/v_b{i + 1}"] = vb[i]


def add_init_blog(t, sizes, seed, dt):
    """Seeds 000/002's initialisation after np.random.seed(seed): randn(in, out) * 0.01 and zero
    biases (1, out), layer by layer."""
    np.random.seed(seed)
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        t[f"init/W{i + 1}"] = (np.random.randn(a, b) * 0.01).astype(dt)
        t[f"init/b{i + 1}"] = np.zeros((1, b), dtype=dt)


def build_rows_capstone(dt, dropout):
    sizes = [20, 12, 8, 5]
    data_seed, init_seed, mask_seed, train_seed = 2000, 2001, 2002, 2003
    lr, mu, lam, keep = 0.1, 0.9, 0.01, 0.8
    rng = np.random.RandomState(data_seed)
    x_all, labels_all = data_rows(rng, sizes[0], sizes[-1], N_TRAIN)
    ws, bs = generic_params_rows(rng, sizes, 1.5, 0.1)
    x_all = x_all.astype(dt)
    ws = [w.astype(dt) for w in ws]
    bs = [b.astype(dt) for b in bs]
    y_all = one_hot_rows(labels_all, sizes[-1], dt)
    x, y, labels = x_all[:BATCH], y_all[:BATCH], labels_all[:BATCH]
    L = 3

    t = {"X": x, "Y": y, "labels": labels}
    for i in range(L):
        t[f"W{i + 1}"], t[f"b{i + 1}"] = ws[i], bs[i]
    np.random.seed(mask_seed)  # the masks are the first draws after this seed
    s = capstone_step(x, y, ws, bs, keep, dropout)
    for i in range(L):
        t[f"Z{i + 1}"], t[f"A{i + 1}"], t[f"delta{i + 1}"] = s["zs"][i], s["acts"][i], s["deltas"][i]
    if dropout:
        for i in range(2):
            t[f"mask{i + 1}"] = s["masks"][i].astype(np.int8)
            t[f"A{i + 1}_drop"] = s["dropped"][i]
        t["Z2_recomputed"] = s["z_recomputed"][1]
    t["loss"] = np.asarray(cross_entropy(s["acts"][-1], y), dtype=dt)  # without the L2 penalty
    l2_penalty = lam * sum(np.sum(w ** 2) for w in ws)
    t["l2_penalty"] = np.asarray(l2_penalty, dtype=dt)
    gw = [g + 2 * lam * w for g, w in zip(s["gw_data"], ws)]  # the L2 gradient, weights only
    for i in range(L):
        t[f"grad_W{i + 1}_data"] = s["gw_data"][i]
        t[f"grad_W{i + 1}"] = gw[i]
        t[f"grad_b{i + 1}"] = s["gb"][i]
    vw = [mu * np.zeros_like(w) - lr * g for w, g in zip(ws, gw)]
    vb = [mu * np.zeros_like(b) - lr * g for b, g in zip(bs, s["gb"])]
    for i in range(L):
        t[f"after/W{i + 1}"] = ws[i] + vw[i]
        t[f"after/b{i + 1}"] = bs[i] + vb[i]
        t[f"after/v_W{i + 1}"] = vw[i]
        t[f"after/v_b{i + 1}"] = vb[i]
    t["predictions"] = np.argmax(s["acts"][-1], axis=1)

    if dt == np.float64 and not dropout:  # gradient of loss + lambda * sum(W^2)
        wv = [w.copy() for w in ws]
        bv = [b.copy() for b in bs]
        f = lambda: (cross_entropy(rows_forward(x, wv, bv, relu)[1][-1], y)
                     + lam * sum(np.sum(w ** 2) for w in wv))
        num = numeric_gradient(f, wv + bv)
        for g, nmr in zip(gw + s["gb"], num):
            check_close("002 finite differences", g, nmr, 1e-6)

    # K steps of the capstone loop: permutation per epoch, masks per batch, all from one stream.
    np.random.seed(train_seed)
    perms, steps = [], []
    cw, cb = [w.copy() for w in ws], [b.copy() for b in bs]
    cvw = [np.zeros_like(w) for w in ws]
    cvb = [np.zeros_like(b) for b in bs]
    losses, masks1, masks2 = [], [], []
    while len(steps) < K_STEPS:
        perm = np.random.permutation(N_TRAIN)
        perms.append(perm)
        for start in range(0, N_TRAIN, BATCH):
            if len(steps) == K_STEPS:
                break
            count = min(BATCH, N_TRAIN - start)
            steps.append((len(perms) - 1, start, count))
            idx = perm[start:start + count]
            xb, yb = x_all[idx], y_all[idx]
            st = capstone_step(xb, yb, cw, cb, keep, dropout)
            losses.append(cross_entropy(st["acts"][-1], yb))
            if dropout:
                masks1.append(st["masks"][0])
                masks2.append(st["masks"][1])
            g_w = [g + 2 * lam * w for g, w in zip(st["gw_data"], cw)]
            cvw = [mu * v - lr * g for v, g in zip(cvw, g_w)]
            cvb = [mu * v - lr * g for v, g in zip(cvb, st["gb"])]
            cw = [w + v for w, v in zip(cw, cvw)]
            cb = [b + v for b, v in zip(cb, cvb)]
    add_train(t, x_all, y_all, labels_all, perms, steps, losses, cw, cb, cvw, cvb)
    if dropout:
        # Masks of all K steps, in order, stacked by rows: step k owns rows
        # [sum(step_count[:k]), sum(step_count[:k+1])).
        t["train/mask1"] = np.vstack(masks1).astype(np.int8)
        t["train/mask2"] = np.vstack(masks2).astype(np.int8)

    add_init_blog(t, sizes, init_seed, dt)
    name = "rows_capstone_3layer" if dropout else "rows_capstone_3layer_nodropout"
    attrs = common_attrs(dt, convention=name, seed_document="002", orientation="rows",
                         activations="relu,relu,softmax", loss="cross_entropy", optimizer="momentum",
                         initialization="blog", dropout="blog" if dropout else "none",
                         lr=lr, mu=mu, keep=keep if dropout else 1.0,
                         layer_sizes=np.array(sizes, dtype=np.int64), data_seed=data_seed,
                         init_seed=init_seed, train_seed=train_seed, train_loop="blog")
    attrs["lambda"] = lam
    if dropout:
        attrs["mask_seed"] = mask_seed
    return attrs, t


def build_columns_sigmoid_quadratic(dt):
    sizes = [10, 8, 6, 4]
    data_seed, init_seed, train_seed = 1100, 1101, 1102
    lr = 0.5
    L = len(sizes) - 1
    rng = np.random.RandomState(data_seed)
    x_rows, labels_all = data_rows(rng, sizes[0], sizes[-1], N_TRAIN)
    # Nielsen's initialisation scale (weights randn/sqrt(in), biases randn).
    ws = [rng.randn(o, i) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [rng.randn(o, 1) for o in sizes[1:]]
    x_all = x_rows.T.copy().astype(dt)  # (n_in, N): samples are columns
    ws = [w.astype(dt) for w in ws]
    bs = [b.astype(dt) for b in bs]
    y_all = one_hot_rows(labels_all, sizes[-1], dt).T.copy()  # (n_out, N)
    x, y, labels = x_all[:, :BATCH].copy(), y_all[:, :BATCH].copy(), labels_all[:BATCH]

    t = {"X": x, "Y": y, "labels": labels}
    for i in range(L):
        t[f"W{i + 1}"], t[f"b{i + 1}"] = ws[i], bs[i]
    zs, acts, deltas, nw, nb = nielsen_batch(x, y, ws, bs)
    for i in range(L):
        t[f"Z{i + 1}"], t[f"A{i + 1}"], t[f"delta{i + 1}"] = zs[i], acts[i], deltas[i]
        t[f"nabla_W{i + 1}"], t[f"nabla_b{i + 1}"] = nw[i], nb[i]
        t[f"grad_W{i + 1}"] = nw[i] / BATCH
        t[f"grad_b{i + 1}"] = nb[i] / BATCH
    aw, ab = nielsen_update(ws, bs, nw, nb, lr, BATCH)
    for i in range(L):
        t[f"after/W{i + 1}"], t[f"after/b{i + 1}"] = aw[i], ab[i]
    t["loss"] = np.asarray(quadratic_cost_columns(acts[-1], y), dtype=dt)
    t["predictions"] = np.argmax(acts[-1], axis=0)

    # The per-sample sum must equal the batched (columns) computation: a self-check.
    if dt == np.float64:
        a = x
        bz, ba = [], [x]
        for w, b in zip(ws, bs):
            z = w @ a + b
            a = sigmoid(z)
            bz.append(z)
            ba.append(a)
        d = (a - y) * sigmoid_prime(bz[-1])
        for l in range(L - 1, -1, -1):
            check_close("001 batched dW", d @ ba[l].T, nw[l], 1e-13)
            check_close("001 batched db", np.sum(d, axis=1, keepdims=True), nb[l], 1e-13)
            if l > 0:
                d = (ws[l].T @ d) * sigmoid_prime(bz[l - 1])
        wv = [w.copy() for w in ws]
        bv = [b.copy() for b in bs]

        def f():
            a = x
            for w, b in zip(wv, bv):
                a = sigmoid(w @ a + b)
            return quadratic_cost_columns(a, y)
        num = numeric_gradient(f, wv + bv)
        for g, nmr in zip([g / BATCH for g in nw + nb], num):
            check_close("001 finite differences", g, nmr, 1e-6)

    # K steps of Nielsen's fit(): a permutation per epoch, mini-batches of BATCH, every batch
    # except the last one (the validation batch) trains.
    np.random.seed(train_seed)
    perms, steps, losses = [], [], []
    cw, cb = [w.copy() for w in ws], [b.copy() for b in bs]
    while len(steps) < K_STEPS:
        perm = np.random.permutation(N_TRAIN)
        perms.append(perm)
        starts = list(range(0, N_TRAIN, BATCH))
        for start in starts[:-1]:
            if len(steps) == K_STEPS:
                break
            count = min(BATCH, N_TRAIN - start)
            steps.append((len(perms) - 1, start, count))
            idx = perm[start:start + count]
            xb, yb = x_all[:, idx], y_all[:, idx]
            _, ab_, _, nw_, nb_ = nielsen_batch(xb, yb, cw, cb)
            losses.append(quadratic_cost_columns(ab_[-1], yb))
            cw, cb = nielsen_update(cw, cb, nw_, nb_, lr, count)
    add_train(t, x_all, y_all, labels_all, perms, steps, losses, cw, cb)

    # Nielsen's __init__ after np.random.seed(init_seed): all weights randn(out, in)/sqrt(in),
    # then all biases randn(out, 1).
    np.random.seed(init_seed)
    iw = [np.random.randn(o, i) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])]
    ib = [np.random.randn(o, 1) for o in sizes[1:]]
    for i in range(L):
        t[f"init/W{i + 1}"], t[f"init/b{i + 1}"] = iw[i].astype(dt), ib[i].astype(dt)

    attrs = common_attrs(dt, convention="columns_sigmoid_quadratic", seed_document="001",
                         orientation="columns", activations="sigmoid,sigmoid,sigmoid",
                         loss="quadratic", optimizer="sgd", initialization="nielsen",
                         dropout="none", lr=lr, mu=0.0, keep=1.0,
                         layer_sizes=np.array(sizes, dtype=np.int64), data_seed=data_seed,
                         init_seed=init_seed, train_seed=train_seed,
                         train_loop="nielsen (the last mini-batch of each epoch is validation, not trained)")
    attrs["lambda"] = 0.0
    return attrs, t


def build_columns_binary_square(dt):
    sizes = [6, 5, 1]
    data_seed, init_seed, train_seed = 3000, 3001, 3002
    lr = 0.5
    rng = np.random.RandomState(data_seed)
    x_rows = rng.rand(N_TRAIN, sizes[0])  # pixel-like inputs in [0, 1)
    labels_all = rng.randint(0, 2, size=N_TRAIN)
    p = {"W1": rng.randn(sizes[1], sizes[0]) / np.sqrt(sizes[0]), "b1": rng.randn(sizes[1], 1) * 0.5,
         "W2": rng.randn(sizes[2], sizes[1]) / np.sqrt(sizes[1]), "b2": rng.randn(sizes[2], 1) * 0.5}
    p = {k: v.astype(dt) for k, v in p.items()}
    x_all = x_rows.T.copy().astype(dt)  # (n_x, m)
    y_all = labels_all.reshape(1, -1).astype(dt)  # (1, m)
    x, y, labels = x_all[:, :BATCH].copy(), y_all[:, :BATCH].copy(), labels_all[:BATCH]

    t = {"X": x, "Y": y, "labels": labels}
    t.update(p)
    c = course_forward(x, p)
    t.update(c)
    t["loss"] = np.asarray(course_cost(c["A2"], y), dtype=dt)
    g = course_backward(x, y, p, c)
    t.update(g)
    for k, v in course_update(p, g, lr).items():
        t[f"after/{k}"] = v
    t["predictions"] = (c["A2"] > 0.5).astype(np.int64)

    if dt == np.float64:
        pv = {k: v.copy() for k, v in p.items()}
        f = lambda: course_cost(course_forward(x, pv)["A2"], y)
        num = numeric_gradient(f, [pv["W1"], pv["b1"], pv["W2"], pv["b2"]])
        for gg, nmr in zip([g["dW1"], g["db1"], g["dW2"], g["db2"]], num):
            check_close("003 finite differences", gg, nmr, 1e-6)

    # K mini-batch steps with the blog's loop (columns: X[:, idx]); the notebook itself trains
    # full-batch, which seed_003_check covers.
    np.random.seed(train_seed)
    perms, steps = schedule_blog(N_TRAIN, BATCH, K_STEPS)
    cp = {k: v.copy() for k, v in p.items()}
    losses = []
    for e, start, count in steps:
        idx = perms[e][start:start + count]
        xb, yb = x_all[:, idx], y_all[:, idx]
        cc = course_forward(xb, cp)
        losses.append(course_cost(cc["A2"], yb))
        cp = course_update(cp, course_backward(xb, yb, cp, cc), lr)
    add_train(t, x_all, y_all, labels_all, perms, steps, losses,
              [cp["W1"], cp["W2"]], [cp["b1"], cp["b2"]])

    # The homework's initialize_parameters after np.random.seed(init_seed).
    np.random.seed(init_seed)
    t["init/W1"] = (np.random.randn(sizes[1], sizes[0]) / np.sqrt(sizes[0])).astype(dt)
    t["init/b1"] = np.zeros((sizes[1], 1), dtype=dt)
    t["init/W2"] = (np.random.randn(sizes[2], sizes[1]) / np.sqrt(sizes[1])).astype(dt)
    t["init/b2"] = np.zeros((sizes[2], 1), dtype=dt)

    if dt == np.float64:
        t.update(seed_003_check())

    attrs = common_attrs(dt, convention="columns_binary_square", seed_document="003",
                         orientation="columns", activations="sigmoid,sigmoid", loss="quadratic",
                         optimizer="sgd", initialization="course", dropout="none", lr=lr, mu=0.0,
                         keep=1.0, layer_sizes=np.array(sizes, dtype=np.int64),
                         data_seed=data_seed, init_seed=init_seed, train_seed=train_seed,
                         train_loop="blog", prediction="A2 > 0.5")
    attrs["lambda"] = 0.0
    return attrs, t


# What the homework notebook (seed 003) printed, to the digits it printed.
NOTEBOOK_003 = {
    "W1": [[-0.17633148, 1.03386644], [-1.45673947, -0.22798339], [-0.27156744, 0.80169606],
           [-0.77774057, -0.12192515], [-0.62073964, 0.02984963], [0.41211259, -0.77825528],
           [0.8094419, 0.63752091], [0.35531715, 0.63700135], [-0.48346861, -0.08689651],
           [-0.66168891, -0.18942548]],
    "W2": [[0.16771312, -0.21872233, -0.12546448, -0.21730309, -0.26727749, -0.21226666,
            -0.0040049, -0.35332456, 0.07412875, 0.52487553]],
    "sigmoid": [0.00669285, 0.02005754, 0.0585369, 0.1588691, 0.36457644, 0.63542356,
                0.8411309, 0.9414631, 0.97994246, 0.99330715],
    "sigmoid_derivative": [0.00664806, 0.01965523, 0.05511033, 0.13362971, 0.23166046,
                           0.23166046, 0.13362971, 0.05511033, 0.01965523, 0.00664806],
    "means": [-0.19151237249896635, 0.4688525159515502, -0.3118444809339782, 0.42266909957970195],
    "cost": 0.5239053069310721,
    "dW1": [[-0.00664941, 0.00551946], [0.00666033, -0.00568816], [0.00529232, -0.00427319],
            [0.01028577, -0.00799248], [0.01305662, -0.0099341], [0.008174, -0.0066037],
            [0.00021912, -0.00017832], [0.02062341, -0.01630933], [-0.004029, 0.00306173],
            [-0.02714012, 0.02102039]],
    "db1": [4.00223279e-04, -2.71719312e-03, -3.78546949e-04, -1.13124221e-03, -1.15711387e-03,
            -9.91044386e-04, -1.93340979e-06, 8.46922963e-04, 1.30854178e-04, 1.60536914e-03],
    "dW2": [[0.04935606, 0.05904166, 0.04547199, 0.0361181, 0.03417343, -0.05364016,
             -0.01991294, 0.00616847, 0.02248469, 0.02777064]],
    "db2": -0.0032622,
    "after_W1_row0": [-0.17626499, 1.03381124],
    "after_b2": 3.262196e-05,
    "train_loop_losses": [0.5413416581298806, 0.5411639794561593, 0.5409863314471564,
                          0.540808715111546, 0.5406311314554088, 0.5404535814821864,
                          0.5402760661926396, 0.5400985865848044, 0.5399211436539499,
                          0.5397437383925353],
}


def seed_003_check():
    """The homework notebook from the top: np.random.seed(1); X = randn(2, 3); Y = randn(1, 3);
    initialize_parameters(2, 10, 1); forward; cost; back_propogation; update (lr 0.01); then
    train_loop(X, Y, 10, 0.01, 10), which initialises again from the same stream. Every number
    the notebook printed is asserted here, so the fixture is pinned to the notebook itself."""
    nb = NOTEBOOK_003
    np.random.seed(1)
    x = np.random.randn(2, 3)
    y = np.random.randn(1, 3)
    n_x, n_h, n_y = 2, 10, 1

    def init():
        w1 = np.random.randn(n_h, n_x) / np.sqrt(n_x)
        b1 = np.zeros((n_h, 1))
        w2 = np.random.randn(n_y, n_h) / np.sqrt(n_h)
        b2 = np.zeros((n_y, 1))
        return {"W1": w1, "b1": b1, "W2": w2, "b2": b2}

    p = init()
    lin = np.linspace(-5, 5, 10)
    c = course_forward(x, p)
    cost = course_cost(c["A2"], y)
    g = course_backward(x, y, p, c)
    after = course_update(p, g, 0.01)
    p2 = init()
    start = {k: v.copy() for k, v in p2.items()}
    losses = []
    for _ in range(10):
        c2 = course_forward(x, p2)
        losses.append(course_cost(c2["A2"], y))
        p2 = course_update(p2, course_backward(x, y, p2, c2), 0.01)

    def printed(name, value, expected, decimals):
        if not np.allclose(np.round(value, decimals), np.array(expected), rtol=0, atol=1.5 * 10.0 ** -decimals):
            raise SystemExit(f"generate_parity: seed 003 notebook value {name} not reproduced")

    printed("W1", p["W1"], nb["W1"], 8)
    printed("W2", p["W2"], nb["W2"], 8)
    printed("sigmoid", sigmoid(lin), nb["sigmoid"], 8)
    printed("sigmoid_derivative", sigmoid_prime(lin), nb["sigmoid_derivative"], 8)
    means = [np.mean(c["Z1"]), np.mean(c["A1"]), np.mean(c["Z2"]), np.mean(c["A2"])]
    # The notebook printed these with repr (17 digits): they must agree to the last bit or two.
    check_close("notebook means", means, nb["means"], 4e-16)
    check_close("notebook cost", cost, nb["cost"], 4e-16)
    printed("dW1", g["dW1"], nb["dW1"], 8)
    printed("db1", g["db1"].ravel(), nb["db1"], 11)
    printed("dW2", g["dW2"], nb["dW2"], 8)
    printed("db2", g["db2"].ravel(), [nb["db2"]], 7)
    printed("after W1", after["W1"][0], nb["after_W1_row0"], 8)
    printed("after b2", after["b2"].ravel(), [nb["after_b2"]], 11)
    check_close("notebook train_loop losses", losses, nb["train_loop_losses"], 4e-16)

    t = {"seed_003_check/X": x, "seed_003_check/Y": y,
         "seed_003_check/linspace": lin, "seed_003_check/sigmoid": sigmoid(lin),
         "seed_003_check/sigmoid_derivative": sigmoid_prime(lin),
         "seed_003_check/means": np.array(means), "seed_003_check/cost": np.asarray(cost),
         "seed_003_check/printed_means": np.array(nb["means"]),
         "seed_003_check/printed_cost": np.asarray(nb["cost"]),
         "seed_003_check/printed_train_loop_losses": np.array(nb["train_loop_losses"]),
         "seed_003_check/train_loop_losses": np.array(losses)}
    for k in ("W1", "b1", "W2", "b2"):
        t[f"seed_003_check/{k}"] = p[k]
        t[f"seed_003_check/after/{k}"] = after[k]
        t[f"seed_003_check/train_loop/start/{k}"] = start[k]
        t[f"seed_003_check/train_loop/final/{k}"] = p2[k]
    for k in ("Z1", "A1", "Z2", "A2"):
        t[f"seed_003_check/{k}"] = c[k]
    for k in ("dZ2", "dW2", "db2", "dZ1", "dW1", "db1"):
        t[f"seed_003_check/{k}"] = g[k]
    return t


def build_cnn_pieces(dt):
    seed = 4000
    rng = np.random.RandomState(seed)
    t = {}
    cases = [((8, 8), (3, 3), 1), ((8, 8), (3, 3), 2), ((9, 7), (2, 3), 1), ((10, 9), (3, 2), 3),
             ((6, 6), (1, 1), 1), ((5, 5), (5, 5), 1), ((12, 12), (4, 4), 2)]
    for i, (ishape, kshape, stride) in enumerate(cases):
        image = rng.randn(*ishape).astype(dt)
        kernel = rng.randn(*kshape).astype(dt)
        out = conv2d(image, kernel, stride)
        if out.dtype != dt:
            raise SystemExit(f"generate_parity: convolve2d returned {out.dtype} for {np.dtype(dt).name}")
        t[f"conv/{i}/image"] = image
        t[f"conv/{i}/kernel"] = kernel
        t[f"conv/{i}/stride"] = np.asarray(stride, dtype=np.int64)
        t[f"conv/{i}/output"] = out
    # Pooling inputs with ties and negative values; odd sizes drop the last row/column.
    pools = [(6, 6), (7, 5), (4, 4, 3), (5, 8, 2)]
    for i, shape in enumerate(pools):
        x = np.round(rng.randn(*shape) * 2) / 2  # halves: plenty of ties
        x = x.astype(dt)
        t[f"pool/{i}/input"] = x
        t[f"pool/{i}/output"] = max_pool(x)
    attrs = {"dtype": np.dtype(dt).name, "convention": "cnn_pieces", "seed_document": "002",
             "conv": "scipy.signal.convolve2d(image, kernel, mode='valid') (kernel flipped), "
                     "then [::stride, ::stride]",
             "pool": "max over size x size windows at stride 2 (size 2), output (h-2)//2+1",
             "pool_size": 2, "pool_stride": 2, "data_seed": seed, "scipy": __import__("scipy").__version__}
    return attrs, t


# ---------------------------------------------------------------------------------------------
# cnn_small: a whole small CNN, forward, backward and K SGD steps, in the layout the Swift side
# implements (notes/cnn-contract.md, session 2): activations HWC ([n, H, W, C] row-major per
# batch), conv kernels HWIO [kh, kw, cin, cout], biases [cout], dense W [in, out], Z = X @ W + b,
# flatten in HWC order, the Keras 'same' padding rule, max pooling that ignores padded positions
# and routes the gradient to the first maximum in row-major window order.

CNN_LR = 0.1
CNN_K_STEPS = 3


def same_padding(size, k, s):
    """The TensorFlow/Keras 'same' rule: out = ceil(size / s), pad_total = max((out - 1) * s + k
    - size, 0), pad_before = pad_total // 2. Returns (out, pad_before, pad_after)."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return out, total // 2, total - total // 2


def window_geometry(h, w, kh, kw, s, padding):
    """Output (oh, ow) and ((top, bottom), (left, right)) padding of a conv or pool window."""
    if padding == "valid":
        return ((h - kh) // s + 1, (w - kw) // s + 1), ((0, 0), (0, 0))
    oh, top, bottom = same_padding(h, kh, s)
    ow, left, right = same_padding(w, kw, s)
    return (oh, ow), ((top, bottom), (left, right))


def cnn_conv_forward(x, w, b, s, padding, convention):
    """conv2d on a batch [n, H, W, cin] with an HWIO kernel, one (sample, filter) map at a time,
    summed over the input channels in order, then the bias. 'convolution' is the blog's conv2d
    (scipy convolve2d 'valid', kernel flipped, then [::s, ::s]); 'cross-correlation' is scipy
    correlate2d 'valid' then [::s, ::s]. Both run on the zero-padded input."""
    n, h, wd, cin = x.shape
    kh, kw, _, cout = w.shape
    (oh, ow), pads = window_geometry(h, wd, kh, kw, s, padding)
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    z = np.empty((n, oh, ow, cout), dtype=x.dtype)
    for i in range(n):
        for f in range(cout):
            acc = np.zeros((oh, ow), dtype=x.dtype)
            for c in range(cin):
                if convention == "convolution":
                    m = conv2d(xp[i, :, :, c], w[:, :, c, f], s)
                else:
                    m = signal.correlate2d(xp[i, :, :, c], w[:, :, c, f], mode="valid")[::s, ::s]
                acc = acc + m
            z[i, :, :, f] = acc + b[f]
    return z, xp, pads


def cnn_conv_reference(xp, w, b, s, oh, ow, convention):
    """The contract's formula, literally: out[y, x, f] = b[f] + sum_{u,v,c} in_padded[y*s + u,
    x*s + v, c] * K[u, v, c, f] with K = W (cross-correlation) or W flipped on axes 0, 1
    (convolution). Float64; a self-check of cnn_conv_forward."""
    kh, kw = w.shape[:2]
    k = w[::-1, ::-1] if convention == "convolution" else w
    k = k.astype(np.float64)
    z = np.empty((xp.shape[0], oh, ow, w.shape[3]))
    for y in range(oh):
        for x in range(ow):
            patch = xp[:, y * s:y * s + kh, x * s:x * s + kw, :].astype(np.float64)
            z[:, y, x, :] = np.tensordot(patch, k, axes=([1, 2, 3], [0, 1, 2])) + b
    return z


def cnn_conv_backward(xp, pads, in_shape, w, delta, s, convention):
    """Gradients of a conv layer from delta = dL/dz [n, oh, ow, cout] (per sample). With the
    cross-correlation kernel K (W, or W flipped) and delta dilated by the stride (D):
    dK[:, :, c, f] = sum_n correlate2d(in_padded[n, :, :, c], D[n, :, :, f], 'valid')[:kh, :kw],
    d in_padded[n, :, :, c] = sum_f convolve2d(D[n, :, :, f], K[:, :, c, f], 'full'), cropped to
    the unpadded input. Returns (grad_W averaged over n, grad_b averaged over n, dL/dinput)."""
    n = xp.shape[0]
    kh, kw, cin, cout = w.shape
    oh, ow = delta.shape[1:3]
    k = w[::-1, ::-1] if convention == "convolution" else w
    dil = np.zeros((n, (oh - 1) * s + 1, (ow - 1) * s + 1, cout), dtype=delta.dtype)
    dil[:, ::s, ::s, :] = delta
    gk = np.zeros(w.shape, dtype=w.dtype)
    dxp = np.zeros(xp.shape, dtype=xp.dtype)
    for i in range(n):
        for f in range(cout):
            for c in range(cin):
                gk[:, :, c, f] += signal.correlate2d(xp[i, :, :, c], dil[i, :, :, f], mode="valid")[:kh, :kw]
                full = signal.convolve2d(dil[i, :, :, f], k[:, :, c, f], mode="full")
                dxp[i, :full.shape[0], :full.shape[1], c] += full
    gw = gk[::-1, ::-1] if convention == "convolution" else gk
    gw = np.ascontiguousarray(gw) / n
    gb = np.sum(delta, axis=(0, 1, 2)) / n
    (top, _), (left, _) = pads
    dx = dxp[:, top:top + in_shape[0], left:left + in_shape[1], :]
    return gw, gb, np.ascontiguousarray(dx)


def cnn_pool_forward(x, size, s, padding):
    """Max pooling [n, H, W, C] -> [n, oh, ow, C]; padded positions are -inf, i.e. ignored.
    Also returns the index u * size + v of the first maximum in each window (row-major order)."""
    n, h, w, c = x.shape
    (oh, ow), pads = window_geometry(h, w, size, size, s, padding)
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=-np.inf)
    out = np.empty((n, oh, ow, c), dtype=x.dtype)
    idx = np.empty((n, oh, ow, c), dtype=np.int64)
    for y in range(oh):
        for xx in range(ow):
            win = xp[:, y * s:y * s + size, xx * s:xx * s + size, :].reshape(n, size * size, c)
            k = np.argmax(win, axis=1)  # the first maximum
            idx[:, y, xx, :] = k
            out[:, y, xx, :] = np.take_along_axis(win, k[:, None, :], axis=1)[:, 0, :]
    return out, idx, pads, xp.shape


def cnn_pool_backward(grad_out, idx, size, s, pads, padded_shape, in_shape):
    """Every output gradient goes to the input position of its window's first maximum."""
    n, oh, ow, c = grad_out.shape
    dxp = np.zeros(padded_shape, dtype=grad_out.dtype)
    ni, ci = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    for y in range(oh):
        for xx in range(ow):
            k = idx[:, y, xx, :]
            np.add.at(dxp, (ni, y * s + k // size, xx * s + k % size, ci), grad_out[:, y, xx, :])
    (top, _), (left, _) = pads
    return np.ascontiguousarray(dxp[:, top:top + in_shape[0], left:left + in_shape[1], :])


def cnn_spec_shapes(input_shape, spec):
    """Fills input_shape / output_shape / pads (and weight shapes) into every layer of spec."""
    shape = tuple(input_shape)
    for layer in spec:
        layer["input_shape"] = shape
        kind = layer["kind"]
        if kind == "conv2d":
            kh, kw = layer["kernel"]
            (oh, ow), pads = window_geometry(shape[0], shape[1], kh, kw, layer["strides"], layer["padding"])
            layer["pads"] = pads
            layer["weight_shape"] = (kh, kw, shape[2], layer["filters"])
            layer["bias_shape"] = (layer["filters"],)
            shape = (oh, ow, layer["filters"])
        elif kind == "max_pool2d":
            p = layer["pool"]
            (oh, ow), pads = window_geometry(shape[0], shape[1], p, p, layer["strides"], layer["padding"])
            layer["pads"] = pads
            shape = (oh, ow, shape[2])
        elif kind == "flatten":
            shape = (int(np.prod(shape)),)
        else:  # dense
            layer["weight_shape"] = (shape[0], layer["units"])
            layer["bias_shape"] = (layer["units"],)
            shape = (layer["units"],)
        if min(shape) < 1:
            raise SystemExit(f"generate_parity: cnn_small: layer {kind} has no output ({shape})")
        layer["output_shape"] = shape
    return spec


def cnn_nnm_layers(spec):
    """The layers as the contract's .nnm JSON members (for the file's `architecture` attribute)."""
    out = []
    for i, layer in enumerate(spec):
        d = {"kind": layer["kind"], "in": int(np.prod(layer["input_shape"])),
             "out": int(np.prod(layer["output_shape"])), "input_shape": list(layer["input_shape"]),
             "activation": layer.get("activation", "identity")}
        if layer["kind"] != "flatten":
            d["output_shape"] = list(layer["output_shape"])
        if layer["kind"] == "conv2d":
            d.update(kernel=list(layer["kernel"]), strides=[layer["strides"]] * 2,
                     padding=layer["padding"], convention=layer["convention"])
        if layer["kind"] == "max_pool2d":
            d.update(pool=[layer["pool"]] * 2, strides=[layer["strides"]] * 2, padding=layer["padding"])
        if "weight_shape" in layer:
            d.update(weight=f"layers.{i}.weight", bias=f"layers.{i}.bias")
        out.append(d)
    return out


def cnn_forward(x, spec, params):
    """Returns one dict per layer: z, a and what the backward pass needs."""
    caches = []
    a = x
    for i, layer in enumerate(spec):
        kind = layer["kind"]
        c = {"input": a}
        if kind == "conv2d":
            w, b = params[i]
            z, xp, pads = cnn_conv_forward(a, w, b, layer["strides"], layer["padding"], layer["convention"])
            c.update(xp=xp, pads=pads)
            a = relu(z)
        elif kind == "max_pool2d":
            if layer.get("impl") == "blog":  # seed 002's max_pool, sample by sample
                z = np.stack([max_pool(s, layer["pool"], layer["strides"]) for s in a])
                zz, idx, pads, pshape = cnn_pool_forward(a, layer["pool"], layer["strides"], layer["padding"])
                if not np.array_equal(z, zz):
                    raise SystemExit("generate_parity: cnn_small: blog max_pool and the general pooling differ")
            else:
                z, idx, pads, pshape = cnn_pool_forward(a, layer["pool"], layer["strides"], layer["padding"])
            c.update(idx=idx, pads=pads, padded_shape=pshape)
            a = z
        elif kind == "flatten":
            z = a.reshape(a.shape[0], -1)  # HWC order: a no-op on memory
            a = z
        else:
            w, b = params[i]
            z = a @ w + b
            a = softmax_rows(z) if i == len(spec) - 1 else relu(z)
        c.update(z=z, a=a)
        caches.append(c)
    return caches


def cnn_backward(spec, params, caches, y):
    """delta = dL/dz per layer and per sample (the output's is A - Y; the batch's summed loss, as
    the MLP files' delta*), input_grad = dL/d(layer input) per sample, parameter gradients
    averaged over the batch."""
    n = y.shape[0]
    L = len(spec)
    deltas, in_grads, grads = [None] * L, [None] * L, [None] * L
    g = None
    for i in range(L - 1, -1, -1):
        layer, c = spec[i], caches[i]
        kind = layer["kind"]
        if kind == "dense":
            delta = c["a"] - y if i == L - 1 else g * (c["z"] > 0)
            w, _ = params[i]
            grads[i] = ((c["input"].T @ delta) / n, np.mean(delta, axis=0))
            g = delta @ w.T
        elif kind == "flatten":
            delta = g
            g = g.reshape((n,) + tuple(layer["input_shape"]))
        elif kind == "max_pool2d":
            delta = g
            g = cnn_pool_backward(g, c["idx"], layer["pool"], layer["strides"], c["pads"],
                                  c["padded_shape"], layer["input_shape"])
        else:
            delta = g * (c["z"] > 0)
            w, _ = params[i]
            gw, gb, g = cnn_conv_backward(c["xp"], c["pads"], layer["input_shape"], w, delta,
                                          layer["strides"], layer["convention"])
            grads[i] = (gw, gb)
        deltas[i], in_grads[i] = delta, g
    return deltas, in_grads, grads


def cnn_margin(spec, caches):
    """The smallest |z| before a ReLU and the smallest gap between the largest and the second
    largest value of a pooling window whose maximum is positive: if both are well above rounding,
    every implementation takes the same ReLU masks and pooling maxima (windows of zeros tie, but
    their gradient is zero whichever is chosen)."""
    m = np.inf
    for layer, c in zip(spec, caches):
        if layer.get("activation") == "relu":
            m = min(m, np.min(np.abs(c["z"])))
        if layer["kind"] == "max_pool2d":
            p, s = layer["pool"], layer["strides"]
            xp = np.pad(c["input"], ((0, 0),) + tuple(c["pads"]) + ((0, 0),), constant_values=-np.inf)
            for y in range(c["z"].shape[1]):
                for x in range(c["z"].shape[2]):
                    win = np.sort(xp[:, y * s:y * s + p, x * s:x * s + p, :].reshape(xp.shape[0], p * p, -1), axis=1)
                    top, second = win[:, -1], win[:, -2]
                    if np.any(top > 0):
                        m = min(m, np.min((top - second)[top > 0]))
    return float(m)


def cnn_case(dt, name, seed, n, input_shape, classes, spec, description):
    spec = cnn_spec_shapes(input_shape, spec)
    rng = np.random.RandomState(seed)
    x = rng.randn(n, *input_shape)
    labels = rng.randint(0, classes, size=n)
    params = [None] * len(spec)
    for i, layer in enumerate(spec):
        if "weight_shape" in layer:
            fan_in = int(np.prod(layer["weight_shape"][:-1]))
            w = rng.randn(*layer["weight_shape"]) * (1.5 / np.sqrt(fan_in))
            b = rng.randn(*layer["bias_shape"]) * 0.1
            params[i] = (w.astype(dt), b.astype(dt))
    x = x.astype(dt)
    y = one_hot_rows(labels, classes, dt)
    if spec[-1]["kind"] != "dense" or spec[-1]["output_shape"] != (classes,):
        raise SystemExit(f"generate_parity: cnn_small {name}: the last layer must be dense -> {classes}")

    caches = cnn_forward(x, spec, params)
    out = caches[-1]["a"]
    loss = cross_entropy(out, y)
    deltas, in_grads, grads = cnn_backward(spec, params, caches, y)

    for i, (layer, c) in enumerate(zip(spec, caches)):
        if c["z"].shape != (n,) + tuple(layer["output_shape"]):
            raise SystemExit(f"generate_parity: cnn_small {name}: layer {i} shape {c['z'].shape}")
        if layer["kind"] == "conv2d":  # the scipy computation against the contract's formula
            oh, ow = layer["output_shape"][:2]
            ref = cnn_conv_reference(c["xp"], params[i][0], params[i][1], layer["strides"], oh, ow,
                                     layer["convention"])
            check_close(f"cnn_small {name} conv {i} vs formula", c["z"], ref,
                        1e-13 if dt == np.float64 else 2e-6)
            frac = np.mean(c["z"] > 0)
            if not 0.1 < frac < 0.9:  # the ReLU masks must matter
                raise SystemExit(f"generate_parity: cnn_small {name}: layer {i} has {frac:.2f} positive")

    if dt == np.float64:  # the analytic gradients are the gradients of the mean loss
        xv = x.copy()
        pv = [None if p is None else (p[0].copy(), p[1].copy()) for p in params]
        flat = [a for p in pv if p is not None for a in p]
        f = lambda: cross_entropy(cnn_forward(xv, spec, pv)[-1]["a"], y)
        num = numeric_gradient(f, flat + [xv])
        ana = [a for gr in grads if gr is not None for a in gr] + [in_grads[0] / n]
        for k, (g_a, g_n) in enumerate(zip(ana, num)):
            check_close(f"cnn_small {name} finite differences ({k})", g_a, g_n, 1e-6)

    p = f"{name}/"
    t = {p + "x": x, p + "labels": labels.astype(np.int64), p + "y": y}
    for i, (layer, c) in enumerate(zip(spec, caches)):
        q = f"{p}layers/{i}/"
        if params[i] is not None:
            t[q + "weight"], t[q + "bias"] = params[i]
            t[f"{p}grads/{i}/weight"], t[f"{p}grads/{i}/bias"] = grads[i]
        t[q + "z"], t[q + "a"] = c["z"], c["a"]
        t[q + "delta"], t[q + "input_grad"] = deltas[i], in_grads[i]
        if layer["kind"] == "max_pool2d":
            t[q + "argmax"] = c["idx"]
    t[p + "output"] = out
    t[p + "loss"] = np.asarray(loss, dtype=dt)
    t[p + "output_delta"] = deltas[-1]
    t[p + "predictions"] = np.argmax(out, axis=1).astype(np.int64)

    # K plain SGD steps on the same batch: W -= lr * grad (weights and biases).
    cur = [None if q is None else (q[0].copy(), q[1].copy()) for q in params]
    losses = []
    for _ in range(CNN_K_STEPS + 1):
        cs = cnn_forward(x, spec, cur)
        if cnn_margin(spec, cs) < 1e-4:  # robust to float32 rounding in other implementations
            raise SystemExit(f"generate_parity: cnn_small {name}: a ReLU or pooling decision is too close to call")
        if len(losses) == CNN_K_STEPS:
            break
        losses.append(cross_entropy(cs[-1]["a"], y))
        _, _, gr = cnn_backward(spec, cur, cs, y)
        cur = [None if q is None else (q[0] - CNN_LR * g[0], q[1] - CNN_LR * g[1]) for q, g in zip(cur, gr)]
    for i, q in enumerate(cur):
        if q is not None:
            t[f"{p}after/{i}/weight"], t[f"{p}after/{i}/bias"] = q
    t[p + "losses"] = np.array(losses, dtype=dt)
    t[p + "final_loss"] = np.asarray(cross_entropy(cnn_forward(x, spec, cur)[-1]["a"], y), dtype=dt)

    group_attrs = {"description": description, "data_seed": seed, "n": n,
                   "input_shape": np.array(input_shape, dtype=np.int64), "classes": classes,
                   "layer_kinds": ",".join(layer["kind"] for layer in spec),
                   "parametric_layers": np.array([i for i, q in enumerate(params) if q is not None], dtype=np.int64),
                   "architecture": json.dumps(cnn_nnm_layers(spec), sort_keys=True)}
    layer_attrs = {}
    for i, layer in enumerate(spec):
        la = {"kind": layer["kind"], "input_shape": np.array(layer["input_shape"], dtype=np.int64),
              "output_shape": np.array(layer["output_shape"], dtype=np.int64),
              "activation": layer.get("activation", "identity")}
        if layer["kind"] in ("conv2d", "max_pool2d"):
            k = layer["kernel"] if layer["kind"] == "conv2d" else (layer["pool"],) * 2
            la.update({"kernel" if layer["kind"] == "conv2d" else "pool": np.array(k, dtype=np.int64),
                       "strides": np.array([layer["strides"]] * 2, dtype=np.int64),
                       "padding": layer["padding"],
                       "pads": np.array(layer["pads"], dtype=np.int64)})  # [[top, bottom], [left, right]]
        if layer["kind"] == "conv2d":
            la["convention"] = layer["convention"]
        if layer["kind"] == "max_pool2d":
            la["implementation"] = ("seed 002's max_pool per sample (checked against the general pooling)"
                                    if layer.get("impl") == "blog" else "window maxima, padded positions -inf")
        layer_attrs[f"{name}/layers/{i}"] = la
    return t, group_attrs, layer_attrs


def build_cnn_small(dt):
    blog = [
        {"kind": "conv2d", "filters": 3, "kernel": (3, 3), "strides": 1, "padding": "valid",
         "convention": "convolution", "activation": "relu"},
        {"kind": "max_pool2d", "pool": 2, "strides": 2, "padding": "valid", "impl": "blog"},
        {"kind": "flatten"},
        {"kind": "dense", "units": 5, "activation": "softmax"},
    ]
    xcorr = [
        {"kind": "conv2d", "filters": 4, "kernel": (3, 3), "strides": 2, "padding": "same",
         "convention": "cross-correlation", "activation": "relu"},
        {"kind": "max_pool2d", "pool": 2, "strides": 2, "padding": "same"},
        {"kind": "conv2d", "filters": 2, "kernel": (2, 2), "strides": 1, "padding": "valid",
         "convention": "cross-correlation", "activation": "relu"},
        {"kind": "flatten"},
        {"kind": "dense", "units": 3, "activation": "softmax"},
    ]
    t, groups = {}, {}
    for name, seed, n, shape, classes, spec, desc in (
            ("blog", 5000, 4, (10, 10, 1), 5, blog,
             "seed 002's CNN: conv2d 3x3x1->3 valid stride 1 as the blog (scipy convolve2d, a true "
             "convolution) + ReLU, the blog's max_pool 2x2 stride 2, flatten HWC (48), dense 48->5 softmax"),
            ("xcorr", 5100, 3, (9, 9, 2), 3, xcorr,
             "Keras-style: conv2d 3x3x2->4 stride 2 'same' cross-correlation + ReLU (9x9 -> 5x5), "
             "max_pool 2x2 stride 2 'same' (5x5 -> 3x3, padding ignored), conv2d 2x2x4->2 valid "
             "cross-correlation + ReLU (-> 2x2), flatten HWC (8), dense 8->3 softmax")):
        ct, ga, la = cnn_case(dt, name, seed, n, shape, classes, spec, desc)
        t.update(ct)
        groups[name] = ga
        groups.update(la)
    attrs = {
        "dtype": np.dtype(dt).name, "convention": "cnn_small", "seed_document": "002",
        "cases": "blog,xcorr", "contract": "notes/cnn-contract.md (CNN layout contract, session 2)",
        "layout": "activations HWC: a batch is [n, H, W, C] row-major (channels fastest); "
                  "conv weight HWIO [kh, kw, cin, cout], bias [cout]; dense weight [in, out], bias [out], "
                  "Z = X @ W + b; flatten in HWC order (a no-op on memory)",
        "conv_cross_correlation": "z[y, x, f] = b[f] + sum_{u,v,c} in_padded[y*sh + u, x*sw + v, c] * W[u, v, c, f]",
        "conv_convolution": "z[y, x, f] = b[f] + sum_{u,v,c} in_padded[y*sh + u, x*sw + v, c] * W[kh-1-u, kw-1-v, c, f] "
                            "(scipy.signal.convolve2d(image, W[:, :, c, f], 'valid')[::s, ::s] summed over c)",
        "padding_same": "out = ceil(in / s); pad_total = max((out - 1) * s + k - in, 0); pad_before = pad_total // 2; "
                        "zeros for conv, ignored (-inf) for max pooling",
        "padding_valid": "out = (in - k) // s + 1",
        "max_pool": "window maximum; backward: the gradient goes to the first maximum in row-major window "
                    "order (u, then v); argmax = u * pool + v of that maximum",
        "loss": "softmax (max subtracted) + categorical cross-entropy -mean(sum(y * log(a + 1e-15)))",
        "output_delta": "a - y (per sample)",
        "delta": "layers/<i>/delta = dL/dz of layer i per sample, L the batch's summed loss "
                 "(n * loss), as the MLP files' delta*: the output's is a - y; for max_pool2d and flatten z = a",
        "input_grad": "layers/<i>/input_grad = dL/d(input of layer i) per sample (n * loss), shaped as the "
                      "layer's input; layers/0/input_grad is the gradient with respect to x",
        "grads": "grads/<i>/{weight, bias}: gradients of the mean loss (summed over samples, divided by n), "
                 "shaped as the parameters",
        "optimizer": "sgd", "lr": CNN_LR, "K": CNN_K_STEPS,
        "after": "after/<i>/{weight, bias}: parameters after K plain SGD steps (W -= lr * grad) on the same "
                 "batch; losses[k] is the loss before step k, final_loss the loss after the K steps",
        "scipy": __import__("scipy").__version__,
    }
    return attrs, t, groups


# ---------------------------------------------------------------------------------------------
# cnn_format12: format 1.2's trainable layers in one small network, in the cnn_small layout:
# a 'same' convolution without activation, batch normalization + ReLU, average pooling with
# 'same' padding (padded cells not counted, as Keras), a convolution + ELU, average pooling with
# explicit padding counting the padded cells (as PyTorch), flatten, dense layers each followed
# by batch normalization (GELU in its tanh form, leaky ReLU), a softmax output. Forward values,
# deltas and gradients of one training-mode batch, then K momentum steps with the moving
# averages, then the inference-mode output with them. Float64 only.

F12_LR = 0.05
F12_MU = 0.9
F12_BN_MOMENTUM = 0.9
F12_BN_EPS = 1e-3
F12_K = 3
F12_LEAKY = 0.2
F12_CNN = "conv:3:3x3:same:identity,bn:eps=0.001:relu,avgpool:3:s=2:same:exclude-pad,conv:4:2x2:elu,avgpool:2:p=1:include-pad"
F12_DENSE = (6, 5, 4)
F12_ACTIVATIONS = "gelu(approximate=tanh),leaky_relu(alpha=0.2),softmax"
GELU_C = np.sqrt(2.0 / np.pi)


def f12_activation(name, z):
    if name == "identity":
        return z
    if name == "relu":
        return relu(z)
    if name == "elu":  # alpha 1: z where z > 0, else exp(z) - 1
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))
    if name == "leaky_relu":
        return np.where(z > 0, z, F12_LEAKY * z)
    if name == "gelu_tanh":  # 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))
        return 0.5 * z * (1 + np.tanh(GELU_C * (z + 0.044715 * z * z * z)))
    if name == "softmax":
        return softmax_rows(z)
    raise SystemExit(f"generate_parity: cnn_format12: unknown activation {name}")


def f12_derivative(name, z):
    """f'(z) by hand; at the kinks PyTorch's choice (the negative side's slope at 0)."""
    if name == "identity":
        return np.ones_like(z)
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "elu":
        return np.where(z > 0, 1.0, np.exp(np.minimum(z, 0)))
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, F12_LEAKY)
    if name == "gelu_tanh":
        t = np.tanh(GELU_C * (z + 0.044715 * z ** 3))
        return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * z * z)
    raise SystemExit(f"generate_parity: cnn_format12: no derivative of {name}")


def f12_avg_pool_forward(x, size, s, pads, include_pad):
    """Average of each window's cells inside the input, divided by size^2 (include_pad) or by the
    number of those cells. pads = ((top, bottom), (left, right))."""
    n, h, w, c = x.shape
    (top, bottom), (left, right) = pads
    oh, ow = (h + top + bottom - size) // s + 1, (w + left + right - size) // s + 1
    out = np.zeros((n, oh, ow, c), dtype=x.dtype)
    cells = np.zeros((oh, ow))
    for y in range(oh):
        for xx in range(ow):
            y0, y1 = max(y * s - top, 0), min(y * s - top + size, h)
            x0, x1 = max(xx * s - left, 0), min(xx * s - left + size, w)
            cells[y, xx] = size * size if include_pad else (y1 - y0) * (x1 - x0)
            out[:, y, xx, :] = x[:, y0:y1, x0:x1, :].sum(axis=(1, 2)) / cells[y, xx]
    return out, cells


def f12_avg_pool_backward(g, in_shape, size, s, pads, cells):
    """Each output gradient shared equally by the cells its average divided over (inside ones)."""
    n, oh, ow, c = g.shape
    h, w = in_shape[:2]
    (top, _), (left, _) = pads
    dx = np.zeros((n,) + tuple(in_shape), dtype=g.dtype)
    for y in range(oh):
        for xx in range(ow):
            y0, y1 = max(y * s - top, 0), min(y * s - top + size, h)
            x0, x1 = max(xx * s - left, 0), min(xx * s - left + size, w)
            dx[:, y0:y1, x0:x1, :] += (g[:, y, xx, :] / cells[y, xx])[:, None, None, :]
    return dx


def f12_bn_forward(x, gamma, beta, eps):
    """Training mode: the batch's mean and biased variance over every axis but the last."""
    c = x.shape[-1]
    rows = x.reshape(-1, c)
    mu = rows.mean(axis=0)
    xmu = rows - mu
    var = (xmu ** 2).mean(axis=0)
    ivar = 1.0 / np.sqrt(var + eps)
    xhat = xmu * ivar
    return (gamma * xhat + beta).reshape(x.shape), {"xmu": xmu, "ivar": ivar, "xhat": xhat, "mu": mu, "var": var}


def f12_bn_backward(dy, cache, gamma, n):
    """The chain rule through the batch statistics, step by step (mean, variance, then the
    inputs), as the computational graph of the normalization: dL/dx per sample, and the mean
    loss's gradients of gamma and beta (summed over rows, divided by the samples n)."""
    shape = dy.shape
    c = shape[-1]
    d = dy.reshape(-1, c)
    m = d.shape[0]
    xmu, ivar, xhat = cache["xmu"], cache["ivar"], cache["xhat"]
    dgamma = np.sum(d * xhat, axis=0) / n
    dbeta = np.sum(d, axis=0) / n
    dxhat = d * gamma
    dvar = np.sum(dxhat * xmu, axis=0) * -0.5 * ivar ** 3
    dmu = np.sum(-dxhat * ivar, axis=0) + dvar * np.mean(-2.0 * xmu, axis=0)
    dx = dxhat * ivar + dvar * 2.0 * xmu / m + dmu / m
    return dx.reshape(shape), dgamma, dbeta


def f12_spec():
    """The layers nn-train builds from F12_CNN, F12_DENSE and F12_ACTIVATIONS (with --dense-bn)."""
    return [
        {"kind": "conv2d", "filters": 3, "kernel": (3, 3), "strides": 1, "padding": "same", "act": "identity"},
        {"kind": "batch_norm", "act": "relu"},
        {"kind": "avg_pool2d", "pool": 3, "strides": 2, "padding": "same", "include_pad": False, "act": "identity"},
        {"kind": "conv2d", "filters": 4, "kernel": (2, 2), "strides": 1, "padding": "valid", "act": "elu"},
        {"kind": "avg_pool2d", "pool": 2, "strides": 2, "pads": ((1, 1), (1, 1)), "include_pad": True, "act": "identity"},
        {"kind": "flatten", "act": "identity"},
        {"kind": "dense", "units": 6, "act": "identity"},
        {"kind": "batch_norm", "act": "gelu_tanh"},
        {"kind": "dense", "units": 5, "act": "identity"},
        {"kind": "batch_norm", "act": "leaky_relu"},
        {"kind": "dense", "units": 4, "act": "softmax"},
    ]


def f12_shapes(input_shape, spec):
    shape = tuple(input_shape)
    for layer in spec:
        layer["input_shape"] = shape
        kind = layer["kind"]
        if kind == "conv2d":
            kh, kw = layer["kernel"]
            (oh, ow), pads = window_geometry(shape[0], shape[1], kh, kw, layer["strides"], layer["padding"])
            layer["weight_shape"], layer["bias_shape"] = (kh, kw, shape[2], layer["filters"]), (layer["filters"],)
            shape = (oh, ow, layer["filters"])
        elif kind == "avg_pool2d":
            p, st = layer["pool"], layer["strides"]
            if "pads" not in layer:
                layer["pads"] = window_geometry(shape[0], shape[1], p, p, st, layer["padding"])[1]
            (t, b), (l, r) = layer["pads"]
            shape = ((shape[0] + t + b - p) // st + 1, (shape[1] + l + r - p) // st + 1, shape[2])
        elif kind == "batch_norm":
            layer["weight_shape"] = layer["bias_shape"] = (shape[-1],)
        elif kind == "flatten":
            shape = (int(np.prod(shape)),)
        else:
            layer["weight_shape"], layer["bias_shape"] = (shape[0], layer["units"]), (layer["units"],)
            shape = (layer["units"],)
        layer["output_shape"] = shape
    return spec


def f12_forward(x, spec, params, moving=None, training=True):
    """One dict per layer with z, a and the backward pass's caches. In training mode batch
    normalization uses the batch's statistics (returned in the cache); otherwise `moving`."""
    caches, a = [], x
    for i, layer in enumerate(spec):
        kind, c = layer["kind"], {"input": a}
        if kind == "conv2d":
            w, b = params[i]
            z, xp, pads = cnn_conv_forward(a, w, b, layer["strides"], layer["padding"], "cross-correlation")
            c.update(xp=xp, pads=pads)
        elif kind == "batch_norm":
            gamma, beta = params[i]
            if training:
                z, c["bn"] = f12_bn_forward(a, gamma, beta, F12_BN_EPS)
            else:
                mean, var = moving[i]
                z = gamma * (a - mean) / np.sqrt(var + F12_BN_EPS) + beta
        elif kind == "avg_pool2d":
            z, c["cells"] = f12_avg_pool_forward(a, layer["pool"], layer["strides"], layer["pads"], layer["include_pad"])
        elif kind == "flatten":
            z = a.reshape(a.shape[0], -1)
        else:
            w, b = params[i]
            z = a @ w + b
        a = f12_activation(layer["act"], z)
        c.update(z=z, a=a)
        caches.append(c)
    return caches


def f12_backward(spec, params, caches, y):
    """delta = dL/dz per layer (L the batch's summed loss), parameter gradients of the mean loss."""
    n, L = y.shape[0], len(spec)
    deltas, grads = [None] * L, [None] * L
    g = None
    for i in range(L - 1, -1, -1):
        layer, c = spec[i], caches[i]
        kind = layer["kind"]
        delta = c["a"] - y if i == L - 1 else g * f12_derivative(layer["act"], c["z"])
        if kind == "dense":
            w, _ = params[i]
            grads[i] = ((c["input"].T @ delta) / n, np.sum(delta, axis=0) / n)
            g = delta @ w.T
        elif kind == "conv2d":
            w, _ = params[i]
            gw, gb, g = cnn_conv_backward(c["xp"], c["pads"], layer["input_shape"], w, delta, layer["strides"],
                                          "cross-correlation")
            grads[i] = (gw, gb)
        elif kind == "batch_norm":
            g, dgamma, dbeta = f12_bn_backward(delta, c["bn"], params[i][0], n)
            grads[i] = (dgamma, dbeta)
        elif kind == "avg_pool2d":
            g = f12_avg_pool_backward(delta, layer["input_shape"], layer["pool"], layer["strides"], layer["pads"], c["cells"])
        else:  # flatten
            g = delta.reshape((n,) + tuple(layer["input_shape"]))
        deltas[i] = delta
    return deltas, grads


def f12_margin(spec, caches):
    """The smallest |z| at a kink (ReLU, leaky ReLU): far from rounding, every implementation
    takes the same branch."""
    return float(min(np.min(np.abs(c["z"])) for layer, c in zip(spec, caches) if layer["act"] in ("relu", "leaky_relu")))


def build_cnn_format12(dt):
    seed, n, input_shape, classes = 5200, 6, (8, 8, 2), 4
    spec = f12_shapes(input_shape, f12_spec())
    if spec[-1]["output_shape"] != (classes,):
        raise SystemExit(f"generate_parity: cnn_format12: output {spec[-1]['output_shape']}")
    rng = np.random.RandomState(seed)
    x = rng.randn(n, *input_shape).astype(dt)
    labels = rng.randint(0, classes, size=n)
    y = one_hot_rows(labels, classes, dt)
    params = [None] * len(spec)
    for i, layer in enumerate(spec):
        if layer["kind"] == "batch_norm":
            c = layer["weight_shape"][0]
            params[i] = ((1 + 0.3 * rng.randn(c)).astype(dt), (0.2 * rng.randn(c)).astype(dt))
        elif "weight_shape" in layer:
            fan_in = int(np.prod(layer["weight_shape"][:-1]))
            params[i] = ((rng.randn(*layer["weight_shape"]) * (1.5 / np.sqrt(fan_in))).astype(dt),
                         (rng.randn(*layer["bias_shape"]) * 0.1).astype(dt))

    caches = f12_forward(x, spec, params)
    loss = cross_entropy(caches[-1]["a"], y)
    deltas, grads = f12_backward(spec, params, caches, y)

    # The hand-written gradients are those of the mean loss: central differences of the forward pass.
    pv = [None if p is None else (p[0].copy(), p[1].copy()) for p in params]
    flat = [a for p in pv if p is not None for a in p]
    num = numeric_gradient(lambda: cross_entropy(f12_forward(x, spec, pv)[-1]["a"], y), flat)
    ana = [a for gr in grads if gr is not None for a in gr]
    for k, (g_a, g_n) in enumerate(zip(ana, num)):
        if np.max(np.abs(g_n)) < 1e-8:
            # A bias just before batch normalization, which subtracts it again: gradient 0.
            if np.max(np.abs(g_a)) > 1e-12:
                raise SystemExit(f"generate_parity: self-check failed: cnn_format12 gradient {k} is not 0")
            continue
        check_close(f"cnn_format12 finite differences ({k})", g_a, g_n, 1e-6)

    p = "format12/"
    t = {p + "x": x, p + "labels": labels.astype(np.int64), p + "y": y}
    for i, c in enumerate(caches):
        q = f"{p}layers/{i}/"
        if params[i] is not None:
            t[q + "weight"], t[q + "bias"] = params[i]
            t[f"{p}grads/{i}/weight"], t[f"{p}grads/{i}/bias"] = grads[i]
        t[q + "z"], t[q + "a"], t[q + "delta"] = c["z"], c["a"], deltas[i]
    t[p + "output"] = caches[-1]["a"]
    t[p + "loss"] = np.asarray(loss, dtype=dt)

    # K momentum steps on the same batch (v = mu v - lr g; W += v for every parameter), each
    # training forward pass also moving the averages: moving = m moving + (1 - m) batch.
    cur = [None if q is None else (q[0].copy(), q[1].copy()) for q in params]
    vel = [None if q is None else (np.zeros_like(q[0]), np.zeros_like(q[1])) for q in params]
    moving = {i: (np.zeros(l["weight_shape"], dtype=dt), np.ones(l["weight_shape"], dtype=dt))
              for i, l in enumerate(spec) if l["kind"] == "batch_norm"}
    losses = []
    for _ in range(F12_K):
        cs = f12_forward(x, spec, cur)
        if f12_margin(spec, cs) < 1e-6:
            raise SystemExit("generate_parity: cnn_format12: a ReLU decision is too close to call")
        for i in moving:
            mean, var = moving[i]
            moving[i] = (F12_BN_MOMENTUM * mean + (1 - F12_BN_MOMENTUM) * cs[i]["bn"]["mu"],
                         F12_BN_MOMENTUM * var + (1 - F12_BN_MOMENTUM) * cs[i]["bn"]["var"])
        losses.append(cross_entropy(cs[-1]["a"], y))
        _, gr = f12_backward(spec, cur, cs, y)
        for i, g in enumerate(gr):
            if g is None:
                continue
            vel[i] = (F12_MU * vel[i][0] - F12_LR * g[0], F12_MU * vel[i][1] - F12_LR * g[1])
            cur[i] = (cur[i][0] + vel[i][0], cur[i][1] + vel[i][1])
    for i, q in enumerate(cur):
        if q is not None:
            t[f"{p}after/{i}/weight"], t[f"{p}after/{i}/bias"] = q
    for i, (mean, var) in moving.items():
        t[f"{p}after/{i}/moving_mean"], t[f"{p}after/{i}/moving_variance"] = mean, var
    t[p + "losses"] = np.array(losses, dtype=dt)
    evaluation = f12_forward(x, spec, cur, moving, training=False)
    t[p + "eval_output"] = evaluation[-1]["a"]
    t[p + "eval_loss"] = np.asarray(cross_entropy(evaluation[-1]["a"], y), dtype=dt)

    attrs = {
        "dtype": np.dtype(dt).name, "convention": "cnn_format12",
        "layout": "as cnn_small: activations HWC, conv weight HWIO (cross-correlation), dense weight [in, out]; "
                  "a batch_norm layer's weight is gamma, its bias beta (one per channel, the last axis)",
        "cnn": F12_CNN, "dense": np.array(F12_DENSE, dtype=np.int64), "activations": F12_ACTIVATIONS,
        "dense_bn": 1, "input_shape": np.array(input_shape, dtype=np.int64), "n": n, "data_seed": seed,
        "layer_kinds": ",".join(l["kind"] for l in spec),
        "batch_norm": "training: the batch's mean and biased variance over all rows of a channel (samples x positions), "
                      "xhat = (x - mean) / sqrt(var + eps), z = gamma xhat + beta, eps 1e-3; backward by the chain rule "
                      "through the mean and variance; inference: the moving averages instead",
        "moving_averages": "after each training forward pass: moving = bn_momentum * moving + (1 - bn_momentum) * batch "
                           "(biased variance), starting from mean 0, variance 1",
        "avg_pool": "window sum of the cells inside the input / (pool^2 if include-pad, else the number of those cells)",
        "kinks": "derivative at 0: leaky ReLU alpha, ELU exp(0) (PyTorch's choice); ReLU 0",
        "loss": "softmax + categorical cross-entropy -mean(sum(y * log(a + 1e-15)))",
        "delta": "layers/<i>/delta = dL/dz per sample, L the batch's summed loss; z is a batch_norm layer's output "
                 "before its activation",
        "grads": "grads/<i>/{weight, bias}: gradients of the mean loss (for batch_norm: gamma, beta)",
        "optimizer": "momentum", "lr": F12_LR, "momentum": F12_MU, "bn_momentum": F12_BN_MOMENTUM, "K": F12_K,
        "after": "after/<i>/{weight, bias, moving_mean, moving_variance}: after K momentum steps on the same batch "
                 "(v = mu v - lr g; p += v); losses[k] before step k; eval_output / eval_loss: the inference-mode "
                 "forward pass (moving averages) after the K steps",
    }
    return attrs, t


def read_idx(path, kind):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if kind == "images":
        n, rows, cols = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
        return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows * cols)
    return np.frombuffer(raw, dtype=np.uint8, offset=8)


def build_e2e():
    seed = 7
    n_images, n_test = 1000, 200
    sizes = [784, 32, 10]
    lr, batch, epochs = 0.1, 64, 3
    images = read_idx(os.path.join(FASHION, "train-images-idx3-ubyte.gz"), "images")[:n_images]
    labels = read_idx(os.path.join(FASHION, "train-labels-idx1-ubyte.gz"), "labels")[:n_images].astype(np.int64)
    timages = read_idx(os.path.join(FASHION, "t10k-images-idx3-ubyte.gz"), "images")[:n_test]
    tlabels = read_idx(os.path.join(FASHION, "t10k-labels-idx1-ubyte.gz"), "labels")[:n_test].astype(np.int64)
    x, mean, std = normalize(images.astype(float))
    # The test images get the training subset's statistics, applied the way normalize() does.
    xt = timages.astype(float) - mean
    mask = std != 0
    xt[:, mask] = xt[:, mask] / std[mask]
    y = one_hot_rows(labels, 10, np.float64)

    np.random.seed(seed)
    w1 = np.random.randn(sizes[0], sizes[1]) * 0.01
    b1 = np.zeros((1, sizes[1]))
    w2 = np.random.randn(sizes[1], sizes[2]) * 0.01
    b2 = np.zeros((1, sizes[2]))
    t = {"init/W1": w1.copy(), "init/b1": b1.copy(), "init/W2": w2.copy(), "init/b2": b2.copy()}
    perms, losses, accs = [], [], []
    ws, bs = [w1, w2], [b1, b2]
    for _ in range(epochs):
        perm = np.random.permutation(n_images)
        perms.append(perm)
        xs, ys = x[perm], y[perm]
        for start in range(0, n_images, batch):
            xb, yb = xs[start:start + batch], ys[start:start + batch]
            zs, acts = rows_forward(xb, ws, bs, relu)
            _, gw, gb = rows_backward(xb, [xb, acts[0]], zs, acts[-1], yb, ws)
            for l in range(2):
                ws[l] -= lr * gw[l]
                bs[l] -= lr * gb[l]
        losses.append(cross_entropy(rows_forward(x, ws, bs, relu)[1][-1], y))
        accs.append(np.mean(np.argmax(rows_forward(xt, ws, bs, relu)[1][-1], axis=1) == tlabels))
    out = rows_forward(xt, ws, bs, relu)[1][-1]
    t.update({"mean": mean, "std": std, "labels": labels, "test_labels": tlabels,
              "permutations": np.stack(perms).astype(np.int32), "epoch_losses": np.array(losses),
              "epoch_test_accuracy": np.array(accs), "test_outputs": out,
              "test_predictions": np.argmax(out, axis=1).astype(np.int64),
              "final/W1": ws[0], "final/b1": bs[0], "final/W2": ws[1], "final/b2": bs[1]})
    attrs = {"dtype": "float64", "convention": "e2e_seed000_numpy_run", "seed_document": "000",
             "orientation": "rows", "activations": "relu,softmax", "loss": "cross_entropy",
             "optimizer": "sgd", "initialization": "blog", "seed": seed, "lr": lr, "batch": batch,
             "epochs": epochs, "layer_sizes": np.array(sizes, dtype=np.int64),
             "images": f"{FASHION}/train-images-idx3-ubyte.gz", "labels_file": f"{FASHION}/train-labels-idx1-ubyte.gz",
             "image_range": np.array([0, n_images], dtype=np.int64),
             "test_images": f"{FASHION}/t10k-images-idx3-ubyte.gz", "test_labels_file": f"{FASHION}/t10k-labels-idx1-ubyte.gz",
             "test_range": np.array([0, n_test], dtype=np.int64),
             "normalization": "normalize() over the 1000 training images (mean, std stored); test images use the same mean/std",
             "epoch_loss": "cross_entropy over all 1000 training images after each epoch, as the blog loop",
             "mu": 0.0, "keep": 1.0}
    attrs["lambda"] = 0.0
    return attrs, t


# ---------------------------------------------------------------------------------------------
# Writing.

def write(path, attrs, tree, group_attrs=None):
    # Compact layout keeps each small dataset inside its object header; the file format is the
    # HDF5 1.8 one so that Debian's libhdf5 1.10 reads it. group_attrs: {"group/path": {attrs}},
    # written after the datasets (which create the groups).
    with h5py.File(path, "w", libver=("earliest", "v108")) as f:
        for k in sorted(attrs):
            v = attrs[k]
            f.attrs[k] = v
        for name in tree:
            arr = np.array(tree[name], order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
            dcpl = None
            if arr.ndim > 0 and arr.nbytes <= 60000:
                dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
                dcpl.set_layout(h5py.h5d.COMPACT)
            f.create_dataset(name, data=arr, dcpl=dcpl)
        for group in sorted(group_attrs or {}):
            g = f.require_group(group)
            for k in sorted(group_attrs[group]):
                g.attrs[k] = group_attrs[group][k]


def build_all():
    files = {}
    for tag, dt in DTYPES.items():
        files[f"rows_relu_softmax_2layer_{tag}.h5"] = build_rows_relu_softmax(dt)
        files[f"rows_capstone_3layer_{tag}.h5"] = build_rows_capstone(dt, True)
        files[f"rows_capstone_3layer_nodropout_{tag}.h5"] = build_rows_capstone(dt, False)
        files[f"columns_sigmoid_quadratic_{tag}.h5"] = build_columns_sigmoid_quadratic(dt)
        files[f"columns_binary_square_{tag}.h5"] = build_columns_binary_square(dt)
        files[f"cnn_pieces_{tag}.h5"] = build_cnn_pieces(dt)
        files[f"cnn_small_{tag}.h5"] = build_cnn_small(dt)
    files["cnn_format12_f64.h5"] = build_cnn_format12(np.float64)
    files["e2e_seed000_numpy_run_f64.h5"] = build_e2e()
    for name, (attrs, tree, *_) in files.items():
        want = np.float64 if name.endswith("_f64.h5") else np.float32
        for k, v in tree.items():
            v = np.asarray(v)
            if v.dtype.kind == "f" and v.dtype != want:
                raise SystemExit(f"generate_parity: {name}:{k} is {v.dtype}, expected {np.dtype(want).name}")
    return files


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=OUT_DIR, help="output directory (default: Fixtures/parity)")
    args = parser.parse_args()
    files = build_all()
    out = os.path.abspath(args.out)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".parity-", dir=parent)
    try:
        for name, entry in files.items():
            write(os.path.join(staging, name), *entry)
        total = sum(os.path.getsize(os.path.join(staging, n)) for n in files)
        if total > SIZE_LIMIT:
            raise SystemExit(f"generate_parity: fixtures are {total} bytes, over the {SIZE_LIMIT} limit")
        os.chmod(staging, 0o755)
        if os.path.isdir(out):
            shutil.rmtree(out)
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    datasets = sum(len(entry[1]) for entry in files.values())
    print(f"parity fixtures: {len(files)} files, {datasets} datasets, {total / 1024:.0f} KiB in "
          f"{os.path.relpath(out)} (numpy {np.__version__}, h5py {h5py.__version__})")


if __name__ == "__main__":
    sys.exit(main())
