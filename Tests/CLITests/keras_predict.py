"""Loads each model of a request with keras.saving.load_model (Keras 3, JAX backend) and
predicts its inputs: the other side of KerasExportCLITests.

    python3 keras_predict.py request.json  ->  prints {"file": [[outputs per sample]], ...}

request.json: [{"file": "model.keras", "input": [[...], ...], "input_shape": [28, 28, 1]}, ...].
A file Keras cannot load is reported as {"file": "error: ..."}.
"""
import json
import os
import sys

os.environ["KERAS_BACKEND"] = "jax"
os.environ["JAX_PLATFORMS"] = "cpu"
import warnings  # noqa: E402

warnings.simplefilter("ignore")
import numpy as np  # noqa: E402
import keras  # noqa: E402

out = {}
for item in json.load(open(sys.argv[1])):
    x = np.asarray(item["input"], dtype=np.float32).reshape([len(item["input"])] + item["input_shape"])
    try:
        model = keras.saving.load_model(item["file"])
        out[item["file"]] = np.asarray(model.predict(x, verbose=0), dtype=np.float64).tolist()
    except Exception as e:  # reported to the test, which names the file
        out[item["file"]] = f"error: {type(e).__name__}: {e}"[:500]
print(json.dumps(out))
