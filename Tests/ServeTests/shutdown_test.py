"""nn-serve's shutdown, from outside: readiness answers 503 as soon as SIGTERM arrives, requests
are still answered during --shutdown-delay, and the process then exits 0 without waiting out the
--watch polling interval (600 s here; the test gives it 60 s, so a watcher that is not cancelled
fails it rather than passing slowly).
Usage: python3 Tests/ServeTests/shutdown_test.py BUILD_DIR
"""
import http.client, json, os, signal, subprocess, sys, time

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, ".build/debug")
model = os.path.join(root, "Fixtures/torch/mlp.onnx")


def start(*extra):
    server = subprocess.Popen([os.path.join(build, "nn-serve"), "mlp=" + model, "--scale", "1/255", "--port", "0", "--watch", "600", *extra],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = server.stdout.readline()
    assert "listening on http://" in line, f"nn-serve did not start: {line!r}"
    host, port = line.strip().split("http://")[1].rsplit(":", 1)
    return server, host, int(port)


def get(host, port, path, body=None):
    c = http.client.HTTPConnection(host, port, timeout=10)
    c.request("POST" if body else "GET", path, body=body, headers={"Content-Type": "application/json"} if body else {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


passed = 0
# 1. With a delay: 503 from readiness, 200 from liveness and inference, then exit 0.
server, host, port = start("--shutdown-delay", "5")
try:
    assert get(host, port, "/v2/health/ready")[0] == 200
    server.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 4  # within the 5 s delay the server still accepts connections
    status = 200
    while status == 200 and time.monotonic() < deadline:
        status, body = get(host, port, "/v2/health/ready")
    assert status == 503, f"readiness still {status} after SIGTERM"
    assert "shutting down" in json.loads(body)["error"], body
    assert get(host, port, "/v2/models/mlp/ready")[0] == 503
    assert get(host, port, "/v2/health/live")[0] == 200
    infer = json.dumps({"inputs": [{"name": "input", "shape": [1, 784], "datatype": "UINT8", "data": [0] * 784}]})
    status, body = get(host, port, "/v2/models/mlp/infer", infer)
    assert status == 200 and len(json.loads(body)["outputs"][0]["data"]) == 10, (status, body[:200])
    assert server.wait(timeout=60) == 0
    print("SIGTERM with --shutdown-delay 5: readiness 503, liveness and inference 200, exit 0")
    passed += 1
finally:
    if server.poll() is None:
        server.kill()

# 2. Without a delay: SIGTERM ends the process though the watcher sleeps for 600 s.
server, host, port = start()
try:
    server.send_signal(signal.SIGTERM)
    try:
        status = server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError("nn-serve --watch 600 did not stop within 60 s of SIGTERM (the watcher was not cancelled)")
    assert status == 0, status
    print("SIGTERM with --watch 600: exit 0 without waiting for the watcher")
    passed += 1
finally:
    if server.poll() is None:
        server.kill()
print(f"{passed} passed, 0 failed")
