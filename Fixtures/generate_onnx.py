#!/usr/bin/env python3
"""Writes Fixtures/onnx/: tiny ONNX models whose weight lives in external data
(`TensorProto.data_location == EXTERNAL`), one good and the rest hostile, for the external-data
rules of the ONNX importer (Sources/NNONNX/ONNXExternalData.swift).

    pip install numpy onnx onnxruntime
    python3 Fixtures/generate_onnx.py

Every model is input x [1, 4] -> Gemm(x, W [4, 2], b [2]) -> y [1, 2], opset 20, IR 10, with W's
32 bytes external. `data.bin` holds them. `good.onnx` points at it properly and is run in
onnxruntime as a check. The hostile models differ only in W's `external_data` entries:

| file | location | what is wrong |
|---|---|---|
| absolute.onnx | /etc/passwd | an absolute path |
| dotdot.onnx | ../outside.bin | a `..` component |
| symlink_out.onnx | link.bin | the test makes link.bin a symlink to a file outside the directory |
| symlink_dir_out.onnx | linked_dir/outside.bin | the test makes linked_dir a symlink to the parent directory |
| missing.onnx | nothere.bin | no such file |
| beyond.onnx | data.bin, offset 16 | offset + 32 bytes lies beyond the 32-byte file |
| overflow.onnx | data.bin, offset 2^63 - 8 | offset + length overflows a 64-bit integer |
| wrong_length.onnx | data.bin, length 31 | the tensor's dims and type need 32 bytes |
| fifo.onnx | fifo.bin | the test makes fifo.bin a FIFO (opening it must not block) |
| device.onnx | device.bin | the test makes device.bin a symlink to /dev/zero |

Links and FIFOs cannot live in git: Tests/CLITests/ONNXCLITests.swift makes them in a scratch copy.
"""

import os
import shutil
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "onnx")

W = np.arange(8, dtype=np.float32).reshape(4, 2) / 8 - 0.25
B = np.array([0.5, -0.5], dtype=np.float32)


def model(entries):
    w = TensorProto()
    w.name = "W"
    w.data_type = TensorProto.FLOAT
    w.dims.extend([4, 2])
    w.data_location = TensorProto.EXTERNAL
    for key, value in entries:
        e = w.external_data.add()
        e.key, e.value = key, value
    b = helper.make_tensor("b", TensorProto.FLOAT, [2], B.tolist())
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W", "b"], ["y"], name="dense")], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], initializer=[w, b])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], producer_name="generate_onnx.py")
    m.ir_version = 10
    return m


CASES = {
    "good.onnx": [("location", "data.bin"), ("offset", "0"), ("length", "32")],
    "absolute.onnx": [("location", "/etc/passwd")],
    "dotdot.onnx": [("location", "../outside.bin")],
    "symlink_out.onnx": [("location", "link.bin")],
    "symlink_dir_out.onnx": [("location", "linked_dir/outside.bin")],
    "missing.onnx": [("location", "nothere.bin")],
    "beyond.onnx": [("location", "data.bin"), ("offset", "16")],
    "overflow.onnx": [("location", "data.bin"), ("offset", str(2**63 - 8))],
    "wrong_length.onnx": [("location", "data.bin"), ("length", "31")],
    "fifo.onnx": [("location", "fifo.bin")],
    "device.onnx": [("location", "device.bin")],
}


def main():
    tmp = tempfile.mkdtemp()
    with open(os.path.join(tmp, "data.bin"), "wb") as f:
        f.write(W.tobytes())
    for name, entries in CASES.items():
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(model(entries).SerializeToString())
    # The good model runs in onnxruntime with the weights from data.bin.
    onnx.checker.check_model(os.path.join(tmp, "good.onnx"))
    x = np.array([[1, 2, 3, 4]], dtype=np.float32)
    y = ort.InferenceSession(os.path.join(tmp, "good.onnx")).run(None, {"x": x})[0]
    assert np.allclose(y, x @ W + B, atol=1e-6), y
    os.chmod(tmp, 0o755)
    shutil.rmtree(OUT, ignore_errors=True)
    shutil.move(tmp, OUT)
    print(f"wrote {len(CASES)} models and data.bin to {OUT} (good.onnx gives {y.ravel().tolist()} in onnxruntime)")


if __name__ == "__main__":
    main()
