"""Runs our PyTorch-layout exports in real torch: every layer fixture (Fixtures/layers), exported
to safetensors by the test `pytorchLayoutOfEveryLayerFixture`, is loaded into the nn.Sequential its
`pytorch_module` metadata names and must give NumPy's outputs (1e-5). Needs torch (not in CI):

    NNM_KEEP_PYTORCH_EXPORTS=/tmp/pt swift test --filter pytorchLayoutOfEveryLayerFixture
    python3 Fixtures/check_pytorch_exports.py /tmp/pt
"""
import json
import sys

import numpy as np
import torch
from torch import nn  # noqa: F401  (the module text names nn.*)
from safetensors import safe_open
from safetensors.torch import load_file

directory = sys.argv[1]
worst, failures = 0.0, 0
for case in json.load(open(f"{directory}/cases.json")):
    path = f"{directory}/{case['file']}"
    with safe_open(path, "pt") as f:
        text = f.metadata()["pytorch_module"]
    # The module text comes from our own exporter, which this script checks.
    model = eval(text)  # noqa: S307
    model.eval()
    model.load_state_dict(load_file(path), strict=False)
    x = torch.tensor(np.array(case["input"]), dtype=torch.float32)
    shape = case["input_shape"]
    if len(shape) == 3:
        x = x.reshape(-1, *shape).permute(0, 3, 1, 2)
    with torch.no_grad():
        out = model(x).double()
    if out.dim() == 4:
        # A model that ends on a feature map: the .nnm's outputs are that map in HWC order.
        out = out.permute(0, 2, 3, 1)
    out = out.reshape(len(out), -1).numpy()
    diff = float(np.abs(out - np.array(case["expected"])).max())
    worst = max(worst, diff)
    ok = diff <= 1e-5
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {diff:.2e}  {case['name']}")
print(f"{failures} failures; worst difference {worst:.2e}")
sys.exit(1 if failures else 0)
