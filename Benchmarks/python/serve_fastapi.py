"""The anchor of the serving benchmark: what a user would otherwise write to serve an ONNX model
over the Open Inference Protocol (KServe v2) JSON: FastAPI + uvicorn + onnxruntime. Takes the same
request body as nn-serve (UINT8/FP32/FP64 raw pixels, shape (N, 784) or (N, 28, 28[, 1])),
divides by 255 (the model's preprocessing, which nn-serve reads from the .nnm) and answers the
same two outputs: probabilities (softmax of the logits) and class.

    SERVE_ONNX=model.onnx uvicorn serve_fastapi:app --port 8001 --log-level warning
"""
import os

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, HTTPException, Request

DTYPES = {"UINT8": np.uint8, "FP32": np.float32, "FP64": np.float64}
session = ort.InferenceSession(os.environ["SERVE_ONNX"], providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
app = FastAPI()


@app.post("/v2/models/{name}/infer")
async def infer(name: str, request: Request):
    body = await request.json()
    try:
        tensor = body["inputs"][0]
        x = np.asarray(tensor["data"], dtype=DTYPES[tensor["datatype"]]).reshape(tensor["shape"])
    except (KeyError, IndexError, ValueError, TypeError) as error:
        raise HTTPException(400, f"bad request: {error}")
    n = x.shape[0]
    logits = session.run(None, {input_name: (x.astype(np.float32) / 255).reshape(n, 1, 28, 28)})[0]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    return {"model_name": name, "outputs": [
        {"name": "probabilities", "datatype": "FP32", "shape": list(probs.shape), "data": probs.ravel().tolist()},
        {"name": "class", "datatype": "INT64", "shape": [n], "data": probs.argmax(axis=1).tolist()}]}
