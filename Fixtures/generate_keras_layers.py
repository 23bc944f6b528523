#!/usr/bin/env python3
"""Writes Fixtures/keras/: small Keras 3 models that use format 1.2's layers and activations,
saved by Keras itself as `.keras` and legacy `.h5`, with their inputs and the outputs Keras
computed (`expected.json`), and malformed variants that the importer must refuse.

    pip install numpy h5py keras "jax[cpu]"
    python3 Fixtures/generate_keras_layers.py

Every model is built and run by real Keras 3 (JAX backend, float32); the weights, batch
normalization statistics and inputs come from a seeded NumPy generator, so the files are the
same on every run apart from what `normalise_keras_zip` removes (the save time, object ids).
Each saved file is loaded back with `keras.saving.load_model` and must predict what the model
in memory did. Prints one summary line.
"""

import json
import os
import shutil
import sys
import tempfile
import zipfile

import numpy as np
import h5py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# generate_interop chooses the JAX backend before importing keras.
from generate_interop import normalise_keras_zip  # noqa: E402
import keras  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "keras")
L = keras.layers


def models():
    """(name, model, input shape, note) for each fixture model."""
    out = []

    def add(name, layers, shape, note):
        keras.backend.clear_session()
        out.append((name, keras.Sequential([keras.Input(shape=shape)] + layers, name=name), shape, note))

    add("bn_cnn", [L.Conv2D(4, 3, use_bias=False), L.BatchNormalization(), L.ReLU(),
                   L.MaxPooling2D(2, padding="same"), L.Flatten(),
                   L.Dense(8), L.BatchNormalization(epsilon=0.01, center=False, scale=False), L.Activation("relu"),
                   L.Dense(5, activation="softmax")], (9, 9, 1),
        "Conv2D without bias, BatchNormalization, ReLU layer, MaxPooling2D same; Dense, "
        "BatchNormalization(center=False, scale=False, epsilon=0.01), Activation, Dense softmax")
    add("lenet5", [L.Conv2D(6, 5, padding="same", activation="tanh"), L.AveragePooling2D(2),
                   L.Conv2D(16, 5, activation="tanh"), L.AveragePooling2D(2), L.Flatten(),
                   L.Dense(120, activation="tanh"), L.Dense(84, activation="tanh"),
                   L.Dense(10, activation="softmax")], (28, 28, 1),
        "LeNet-5: Conv2D tanh, AveragePooling2D, Conv2D tanh, AveragePooling2D, Dense 120/84 tanh, softmax")
    add("gelu_mlp", [L.Dense(16, activation="gelu"), L.Dense(12), L.LeakyReLU(),
                     L.Dense(10, activation="silu"), L.Dense(10), L.ELU(alpha=0.7),
                     L.Dense(8, activation="selu"), L.Dense(8, activation="softplus"),
                     L.Dense(6, activation="hard_sigmoid"), L.Dense(6, activation="leaky_relu"),
                     L.Dense(6, activation="swish"), L.Dense(5, activation="elu"),
                     L.Dense(4), L.Softmax()], (12,),
        "MLP: gelu, a LeakyReLU layer (Keras 3's default slope 0.3), silu, an ELU layer (0.7), selu, "
        "softplus, hard_sigmoid, leaky_relu (0.2), swish, elu, a Softmax layer")
    add("conv_same", [L.Conv2D(4, 3, strides=2, padding="same", use_bias=False, activation="relu6"),
                      L.AveragePooling2D(2, strides=1, padding="same"), L.MaxPooling2D(2, padding="same"),
                      L.Flatten(), L.Dense(3, activation="log_softmax")], (9, 9, 2),
        "Conv2D same, strides 2, no bias, relu6; AveragePooling2D same stride 1 (padded cells not "
        "counted); MaxPooling2D same; Dense log_softmax")
    add("global_avg", [L.Conv2D(5, 3, activation="elu"), L.GlobalAveragePooling2D(),
                       L.Dense(4, activation="sigmoid")], (8, 8, 3),
        "Conv2D elu, GlobalAveragePooling2D, Dense sigmoid")
    add("global_max", [L.Conv2D(5, 3, padding="same"), L.ReLU(max_value=2.5), L.GlobalMaxPooling2D(),
                       L.Dense(3)], (8, 8, 3),
        "Conv2D, ReLU(max_value=2.5), GlobalMaxPooling2D, Dense without activation (logits)")
    add("activation_layers", [L.Dense(8), L.Activation("swish"), L.Dense(8), L.Activation("gelu"),
                              L.Dense(6), L.ReLU(max_value=6.0), L.Dense(6), L.Activation("selu"),
                              L.Dense(6), L.Activation("softplus"), L.Dense(4), L.Activation("log_softmax")],
        (10,), "Dense layers each followed by an activation layer: swish, gelu, ReLU(max_value=6), selu, "
        "softplus, log_softmax")
    return out


def set_weights(model, rng):
    """Random kernels and biases, and batch normalization statistics far from the defaults."""
    for layer in model.layers:
        values = []
        for w in layer.weights:
            name, shape = w.path.split("/")[-1], tuple(w.shape)
            if name == "kernel":
                fan_in = int(np.prod(shape[:-1]))
                values.append(rng.standard_normal(shape) / np.sqrt(fan_in))
            elif name == "bias":
                values.append(0.3 * rng.standard_normal(shape))
            elif name == "gamma":
                values.append(1 + 0.2 * rng.standard_normal(shape))
            elif name == "beta":
                values.append(0.2 * rng.standard_normal(shape))
            elif name == "moving_mean":
                values.append(0.3 * rng.standard_normal(shape))
            elif name == "moving_variance":
                values.append(0.4 + rng.random(shape))
            else:
                raise ValueError(f"unexpected variable {w.path}")
        if values:
            layer.set_weights([v.astype(np.float32) for v in values])


def predict(model, x):
    return np.asarray(model.predict(x, verbose=0), dtype=np.float64)


def rewrite_zip(src, dst, edit):
    """Copies a .keras zip, passing each member's bytes through edit(name, data)."""
    with zipfile.ZipFile(src) as z:
        members = [(i, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(dst, "w") as z:
        for info, data in members:
            z.writestr(info, edit(info.filename, data))


def edit_config(src, dst, change):
    def edit(name, data):
        if name != "config.json":
            return data
        config = json.loads(data)
        change(config)
        return json.dumps(config).encode()
    rewrite_zip(src, dst, edit)


def layer_config(config, name):
    return next(l for l in config["config"]["layers"] if l["config"]["name"] == name)


def edit_weights(src, dst, change):
    """Copies a .keras zip whose model.weights.h5 is changed by change(h5py.File)."""
    def edit(name, data):
        if name != "model.weights.h5":
            return data
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "w.h5")
            with open(p, "wb") as f:
                f.write(data)
            with h5py.File(p, "r+") as f:
                change(f)
            with open(p, "rb") as f:
                return f.read()
    rewrite_zip(src, dst, edit)


def main():
    work = tempfile.mkdtemp(prefix="keras-layers-")
    rng = np.random.default_rng(2026_12_05)
    cases, malformed = [], []
    for name, model, shape, note in models():
        set_weights(model, rng)
        n = 4
        x = rng.standard_normal((n,) + tuple(shape)).astype(np.float32)
        y = predict(model, x)
        files = []
        for suffix in (".keras", "_legacy.h5"):
            fname = f"k3_{name}{suffix}"
            p = os.path.join(work, fname)
            model.save(p)
            if suffix == ".keras":
                normalise_keras_zip(p)
            again = predict(keras.saving.load_model(p), x)
            assert np.array_equal(again, y), (fname, np.abs(again - y).max())
            files.append(fname)
        cases.append({"name": name, "files": files, "note": note, "input_shape": list(shape),
                      "classes": int(y.shape[1]),
                      "input": x.reshape(n, -1).astype(np.float64).tolist(), "expected": y.tolist(),
                      "top1": [int(i) for i in np.argmax(y, axis=1)]})

    # Malformed files: each is a good file with one thing wrong, and has its own one-line error.
    src = os.path.join(work, "k3_bn_cnn.keras")
    edit_config(src, os.path.join(work, "bad_negative_epsilon.keras"),
                lambda c: layer_config(c, "batch_normalization")["config"].update(epsilon=-0.001))
    edit_weights(src, os.path.join(work, "bad_variance_size.keras"),
                 lambda f: (f.__delitem__("layers/batch_normalization/vars/3"),
                            f.create_dataset("layers/batch_normalization/vars/3", data=np.ones(3, np.float32))))
    with h5py.File(os.path.join(work, "bad_variance_size_legacy.h5"), "w") as out, \
            h5py.File(os.path.join(work, "k3_bn_cnn_legacy.h5"), "r") as f:
        for k, v in f.attrs.items():
            out.attrs[k] = v
        f.copy("model_weights", out)
        g = out["model_weights/batch_normalization/bn_cnn/batch_normalization"]
        del g["moving_variance"]
        g.create_dataset("moving_variance", data=np.ones(3, np.float32))
    edit_config(os.path.join(work, "k3_conv_same.keras"), os.path.join(work, "bad_pool_too_large.keras"),
                lambda c: layer_config(c, "max_pooling2d")["config"].update(pool_size=[8, 8], padding="valid"))
    keras.backend.clear_session()
    m = keras.Sequential([keras.Input(shape=(6,)), L.Dense(4, activation="mish"), L.Dense(3, activation="softmax")])
    set_weights(m, rng)
    m.save(os.path.join(work, "bad_unknown_activation.keras"))
    normalise_keras_zip(os.path.join(work, "bad_unknown_activation.keras"))
    # Weights without an architecture: only Dense layers can be read from them.
    keras.backend.clear_session()
    m = keras.Sequential([keras.Input(shape=(4,)), L.Dense(3), L.BatchNormalization(), L.Dense(2)])
    set_weights(m, rng)
    m.save_weights(os.path.join(work, "bad_weights_only_batchnorm.weights.h5"))
    malformed = ["bad_weights_only_batchnorm.weights.h5", "bad_negative_epsilon.keras", "bad_variance_size.keras", "bad_variance_size_legacy.h5",
                 "bad_pool_too_large.keras", "bad_unknown_activation.keras"]

    with open(os.path.join(work, "expected.json"), "w") as f:
        json.dump({"generator": "Fixtures/generate_keras_layers.py", "keras": keras.__version__,
                   "backend": keras.backend.backend(), "atol": 1e-5, "cases": cases, "malformed": malformed},
                  f, indent=1)
        f.write("\n")
    if os.path.isdir(OUT_DIR):
        shutil.rmtree(OUT_DIR)
    shutil.copytree(work, OUT_DIR)
    os.chmod(OUT_DIR, 0o755)
    shutil.rmtree(work)
    total = sum(os.path.getsize(os.path.join(OUT_DIR, n)) for n in os.listdir(OUT_DIR))
    print(f"wrote {len(os.listdir(OUT_DIR))} files ({total} bytes) to {OUT_DIR}: {len(cases)} models, {len(malformed)} malformed")


if __name__ == "__main__":
    main()
