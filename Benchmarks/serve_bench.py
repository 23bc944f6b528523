#!/usr/bin/env python3
"""Serving benchmark (part of `make bench`; BENCHMARKS.md): nn-serve (release build) against
FastAPI + uvicorn + onnxruntime (Benchmarks/python/serve_fastapi.py) serving the same model,
torch's MNIST MLP (Fixtures/torch/mlp.onnx; nn-serve serves it as .nnm converted by nnconv with
--scale 1/255), with the same KServe v2 JSON request (one digit, UINT8, shape [1, 784]). Both
answers are checked to hold the same class and probabilities before timing. wrk (Debian) posts
the body at 1, 8 and 64 connections, nn-serve then FastAPI at each, and reports requests/s and
p50/p99 latency (wrk --latency) and the ratios.

Soak mode (--soak SECONDS): nn-serve alone at 64 connections for that long, its RSS sampled every
--sample seconds; reports requests, errors and RSS first/last/max.

    python3 Benchmarks/serve_bench.py [--duration 10] [--soak 600] [--skip-build]
"""
import argparse
import datetime
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ONNX = os.path.join(ROOT, "Fixtures/torch/mlp.onnx")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url, proc, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}) before answering {url}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"no answer from {url} within {seconds} s")


def post(url, body):
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(request, timeout=30).read())


def outputs(answer):
    by_name = {o["name"]: o for o in answer["outputs"]}
    return np.array(by_name["probabilities"]["data"], dtype=np.float64), by_name["class"]["data"]


def seconds(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def wrk(url, lua, connections, duration):
    threads = 1 if connections == 1 else 2
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s", "-s", lua, url],
                         text=True, capture_output=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = seconds(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = seconds(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    socket_errors = sum(int(x) for x in m.groups()) if (m := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)) else 0
    return {"threads": threads, "connections": connections, "rps": rps, "p50_ms": p50 * 1e3, "p99_ms": p99 * 1e3,
            "requests": total, "errors": non2xx + socket_errors}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=10, help="seconds of wrk per server and connection count")
    p.add_argument("--connections", default="1,8,64")
    p.add_argument("--soak", type=int, default=0, help="instead: nn-serve alone at 64 connections for this many seconds")
    p.add_argument("--sample", type=float, default=5, help="seconds between RSS samples in soak mode")
    p.add_argument("--skip-build", action="store_true")
    p.add_argument("--scratch", default=os.environ.get("BENCH_SCRATCH", ".build-bench"))
    p.add_argument("--out", default="out/bench")
    a = p.parse_args()

    bin_dir = os.path.join(ROOT, a.scratch, "release")
    if not a.skip_build:
        flags = os.environ.get("RELEASE_FLAGS", "-Xswiftc -static-stdlib").split()
        for product in ("nn-serve", "nnconv"):
            subprocess.run(["swift", "build", "-c", "release", "--scratch-path", a.scratch, "--product", product] + flags, cwd=ROOT, check=True)
    out = os.path.join(ROOT, a.out)
    os.makedirs(out, exist_ok=True)
    nnm = os.path.join(out, "serve-mlp.nnm")
    subprocess.run([os.path.join(bin_dir, "nnconv"), "import", ONNX, "--scale", "1/255", "-o", nnm], check=True, capture_output=True)

    digit = np.load(os.path.join(ROOT, "Fixtures/torch/inputs.npy"))[0]
    body = json.dumps({"inputs": [{"name": "input", "shape": [1, 784], "datatype": "UINT8", "data": digit.ravel().tolist()}]})
    tmp = tempfile.mkdtemp(prefix="serve-bench-")
    with open(os.path.join(tmp, "body.json"), "w") as f:
        f.write(body)
    lua = os.path.join(tmp, "post.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f'local f = io.open("{tmp}/body.json")\nwrk.body = f:read("*a")\nf:close()\n')

    servers = {}
    port = free_port()
    servers["nn-serve"] = (subprocess.Popen([os.path.join(bin_dir, "nn-serve"), f"mlp={nnm}", "--port", str(port), "--watch", "0"],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                           f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/v2/health/ready")
    if not a.soak:
        port = free_port()
        env = dict(os.environ, SERVE_ONNX=ONNX)
        servers["fastapi"] = (subprocess.Popen([sys.executable, "-m", "uvicorn", "serve_fastapi:app", "--port", str(port),
                                                "--log-level", "warning", "--no-access-log"],
                                               cwd=os.path.join(ROOT, "Benchmarks/python"), env=env,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                              f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/docs")
    try:
        for name, (proc, base, probe) in servers.items():
            wait_up(probe, proc)
        # The same answer from both before any timing.
        answers = {name: outputs(post(base + "/v2/models/mlp/infer", body.encode())) for name, (_, base, _) in servers.items()}
        if "fastapi" in answers:
            (p_ours, c_ours), (p_ref, c_ref) = answers["nn-serve"], answers["fastapi"]
            worst = float(np.abs(p_ours - p_ref).max())
            if c_ours != c_ref or worst > 1e-4:
                raise SystemExit(f"the two servers disagree: classes {c_ours} vs {c_ref}, max |p difference| {worst:.2e}")
            log(f"same answer from both: class {c_ours}, max |p difference| {worst:.1e}")
        cpu = next((l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
                    if l.startswith("Model name")), "?")
        date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        header = f"{date}, {cpu}, {os.cpu_count()} CPUs, load average {open('/proc/loadavg').read().split()[:3]}"
        if a.soak:
            soak(servers["nn-serve"], lua, a, header, out)
        else:
            bench(servers, lua, a, header, out)
    finally:
        for proc, _, _ in servers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def bench(servers, lua, a, header, out):
    url = {name: base + "/v2/models/mlp/infer" for name, (_, base, _) in servers.items()}
    for name in servers:  # warm up both (first requests, connection setup)
        wrk(url[name], lua, 8, 2)
    rows = []
    for c in [int(x) for x in a.connections.split(",")]:
        ours, ref = wrk(url["nn-serve"], lua, c, a.duration), wrk(url["fastapi"], lua, c, a.duration)
        rows.append((ours, ref))
        log(f"{c:>3} connections: nn-serve {ours['rps']:.0f} req/s p50 {ours['p50_ms']:.2f} ms p99 {ours['p99_ms']:.2f} ms | "
            f"fastapi {ref['rps']:.0f} req/s p50 {ref['p50_ms']:.2f} ms p99 {ref['p99_ms']:.2f} ms")
    lines = [f"Serving benchmark, {header}; wrk {a.duration} s per cell (-t1 at 1 connection, -t2 otherwise), "
             "one MNIST digit per request as KServe v2 JSON (UINT8 [1, 784]), torch's MLP (Fixtures/torch/mlp.onnx).", "",
             "| connections | nn-serve req/s | FastAPI+ort req/s | req/s ratio | nn-serve p50 / p99 ms | FastAPI p50 / p99 ms | p99 ratio (FastAPI / ours) | errors (ours, FastAPI) |",
             "|---|---|---|---|---|---|---|---|"]
    for ours, ref in rows:
        lines.append(f"| {ours['connections']} | {ours['rps']:.0f} | {ref['rps']:.0f} | {ours['rps'] / ref['rps']:.1f}x | "
                     f"{ours['p50_ms']:.2f} / {ours['p99_ms']:.2f} | {ref['p50_ms']:.2f} / {ref['p99_ms']:.2f} | "
                     f"{ref['p99_ms'] / ours['p99_ms']:.1f}x | {ours['errors']}, {ref['errors']} |")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(out, "serve.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(out, "serve.json"), "w") as f:
        json.dump({"header": header, "rows": rows}, f, indent=1)


def soak(server, lua, a, header, out):
    proc, base, _ = server
    load = subprocess.Popen(["wrk", "-t2", "-c64", f"-d{a.soak}s", "--latency", "--timeout", "10s", "-s", lua, base + "/v2/models/mlp/infer"],
                            text=True, stdout=subprocess.PIPE)
    samples = []
    started = time.monotonic()
    while load.poll() is None:
        samples.append((round(time.monotonic() - started, 1), rss_kib(proc.pid)))
        time.sleep(a.sample)
    text_out = load.stdout.read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text_out).group(1))
    total = int(re.search(r"(\d+) requests in", text_out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text_out)) else 0
    sock = re.search(r"Socket errors: .*", text_out)
    p99 = re.search(r"^\s+99%\s+(\S+)", text_out, re.M).group(1)
    rss = [kib for _, kib in samples]
    text = (f"Soak, {header}: nn-serve alone, wrk -t2 -c64 for {a.soak} s: {total} requests ({rps:.0f}/s), p99 {p99}, "
            f"non-2xx {non2xx}, {sock.group(0) if sock else 'socket errors: none'}; RSS every {a.sample:g} s ({len(rss)} samples): "
            f"first {rss[0] / 1024:.1f} MiB, last {rss[-1] / 1024:.1f} MiB, max {max(rss) / 1024:.1f} MiB")
    print(text)
    with open(os.path.join(out, "soak.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(out, "soak.json"), "w") as f:
        json.dump({"header": header, "samples_s_kib": samples, "requests": total, "rps": rps, "non2xx": non2xx}, f)
    if non2xx or sock:
        raise SystemExit("the soak saw errors")


if __name__ == "__main__":
    main()
