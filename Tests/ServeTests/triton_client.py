"""nn-serve through the real tritonclient HTTP client (PyPI), a client nobody here wrote.

Starts nn-serve on torch's MNIST MLP (Fixtures/torch/mlp.onnx, converted by nnconv with
--scale 1/255), infers torch's 100 digits (inputs.npy) with binary and JSON tensors, and expects
torch's classes and probabilities (expected.npz, within 1e-4). Then SIGTERM: exit status 0.
Usage: python3 Tests/ServeTests/triton_client.py BUILD_DIR
"""
import os, signal, subprocess, sys
import numpy as np
import tritonclient.http as http

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, ".build/debug")
torch = os.path.join(root, "Fixtures/torch")
server = subprocess.Popen([os.path.join(build, "nn-serve"), "mlp=" + os.path.join(torch, "mlp.onnx"), "--scale", "1/255", "--port", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    line = server.stdout.readline()
    assert "listening on http://" in line, line
    url = line.strip().split("http://")[1]
    client = http.InferenceServerClient(url=url)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("mlp")
    meta = client.get_model_metadata("mlp")
    assert [o["name"] for o in meta["outputs"]] == ["probabilities", "class"], meta
    x = np.load(os.path.join(torch, "inputs.npy"))
    expected = np.load(os.path.join(torch, "expected.npz"))
    for binary, dtype, triton in [(True, np.float32, "FP32"), (False, np.uint8, "UINT8"), (True, np.float64, "FP64")]:
        inp = http.InferInput("input", [100, 28, 28], triton)
        inp.set_data_from_numpy(x.astype(dtype), binary_data=binary)
        outs = [http.InferRequestedOutput("probabilities", binary_data=binary), http.InferRequestedOutput("class", binary_data=binary)]
        result = client.infer("mlp", [inp], outputs=outs)
        probs, cls = result.as_numpy("probabilities"), result.as_numpy("class")
        assert probs.shape == (100, 10) and cls.shape == (100,), (probs.shape, cls.shape)
        assert (cls == expected["mlp_argmax"]).all(), (triton, binary)
        worst = float(np.abs(probs - expected["mlp_probs"]).max())
        assert worst < 1e-4, worst
        print(f"tritonclient {triton} binary={binary}: 100 digits, classes as torch, max |p - torch| = {worst:.2e}")
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0
    print("1 passed, 0 failed")
finally:
    if server.poll() is None:
        server.kill()
