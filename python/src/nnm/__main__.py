"""`python -m nnm inspect FILE` and `python -m nnm validate FILE...`.

Exit status: 0 success, 64 usage, 65 malformed file, 66 missing file.
"""

from __future__ import annotations

import sys
from typing import List, Optional

from . import container
from . import metadata as md
from .errors import EXIT_BAD_DATA, EXIT_USAGE, NNMError, describe_shape
from .model import load

USAGE = """usage: python -m nnm inspect FILE
       python -m nnm validate FILE [FILE ...]

inspect   show the format version, architecture, preprocessing, classes, training record,
          provenance and tensor table of a .nnm file
validate  fully check files (structure, JSON, every checksum and shape); exit 0 when all are
          valid, 65 when one is malformed, 66 when one is missing"""


def _layer_line(i: int, layer: md.LayerInfo) -> str:
    act = md.activation_json(layer.activation)
    act_text = act if isinstance(act, str) else ", ".join(f"{k}={v}" for k, v in act.items())
    g = layer.geometry
    if layer.kind == "dense":
        text = f"dense {layer.inputs} -> {layer.outputs}"
    elif g is not None and g.window:
        pad = g.padding if isinstance(g.padding, str) else "pads " + ",".join(map(str, g.padding))
        key = "kernel" if layer.kind == "conv2d" else "pool"
        text = (f"{layer.kind} {describe_shape(g.input_shape)} -> {describe_shape(g.output_shape)}, "
                f"{key} {describe_shape(g.window)}, strides {describe_shape(g.strides)}, {pad}")
        if layer.kind == "conv2d":
            text += f", {g.convention}"
    else:
        text = f"{layer.kind} {describe_shape(g.input_shape if g else [layer.inputs])} -> {layer.outputs}"
    text += f", {act_text}"
    if layer.weight:
        # As nnconv inspect (Inspection.describe).
        part = f"weight '{layer.weight}'" + (f" (i8, scales '{layer.weight_scale}')" if layer.weight_scale else "")
        part += (" (bf16 products)" if layer.compute_bf16 else "") + (f", bias '{layer.bias}'" if layer.bias else ", no bias")
        if layer.input_quantization is not None:
            scale, zero = layer.input_quantization
            part += f", inputs as u8 with scale {md.float32_description(scale)} and zero point {zero} (calibrated)"
        names = [part]
    else:
        names = [f"{k} '{getattr(layer, k)}'" for k in ("gamma", "beta", "moving_mean", "moving_variance") if getattr(layer, k)]
    return f"  layer {i}: {text}" + (", " + ", ".join(names) if names else "")


def inspect(path: str, out=sys.stdout) -> None:
    """Prints what the file holds (after full validation)."""
    contents = container.read(path)
    meta = contents.metadata
    header_bytes = contents.data_offset  # preamble + header + padding
    print(f"{path}: .nnm model", file=out)
    print(f"  format version {contents.major}.{contents.minor}, {contents.file_size} bytes, header {header_bytes} bytes", file=out)
    print(f"  input: {describe_shape(meta.input_shape)} ({meta.features} features)", file=out)
    for i, layer in enumerate(meta.layers):
        print(_layer_line(i, layer), file=out)
    steps = []
    for s in meta.preprocessing:
        if s["op"] == "scale":
            steps.append(f"x * {md.swift_description(s['factor'])}" + (f" + {md.swift_description(s['offset'])}" if s["offset"] else ""))
        else:
            steps.append(f"zscore: (x - {s['mean']}) / {s['std']} where std != 0")
    print(f"  preprocessing: {'; '.join(steps) if steps else 'none'}", file=out)
    if meta.classes:
        print(f"  classes: {', '.join(meta.classes)}", file=out)
    if meta.output_kind:
        print(f"  output: {meta.output_kind}", file=out)
    training = meta.json.get("training")
    if training:
        print(f"  training: {training['loss']} loss, {training['optimizer']}, {training['epochs']} epochs", file=out)
        for h in training["history"]:
            figures = ", ".join(f"{k} {v:.4g}" for k, v in h.items() if k != "epoch")
            print(f"    epoch {h['epoch']}: {figures}", file=out)
    p = meta.json["provenance"]
    source = f", from {p['source_file']}" + (f" ({p['source_format']})" if "source_format" in p else "") if "source_file" in p else ""
    print(f"  provenance: {p['tool']}, {p['created']}{source}", file=out)
    total = sum(int(a.size) for a in contents.tensors.values())
    print(f"tensors/  ({total} values)", file=out)
    for e in contents.entries:
        count = contents.tensors[e.name].size
        print(f"  {e.name}  {e.dtype} {describe_shape(e.shape)} ({count} values)", file=out)
        print(f"    @offset = {contents.data_offset + e.offset}", file=out)
        print(f"    @crc32 = {e.crc32:x}", file=out)


def validate(path: str, out=sys.stdout) -> None:
    """Reads the file with every check and every checksum; prints one line and any warnings."""
    model = load(path, verify=True)
    warnings = model.validate()
    major, minor = model.version
    print(f"{path}: valid .nnm {major}.{minor}: {len(model.tensors)} tensors, all checksums match", file=out)
    for w in warnings:
        print(f"  warning: {w}", file=out)


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, file=sys.stdout if args else sys.stderr)
        return 0 if args else EXIT_USAGE
    command, files = args[0], args[1:]
    if command not in ("inspect", "validate") or not files or (command == "inspect" and len(files) != 1):
        print(USAGE, file=sys.stderr)
        return EXIT_USAGE
    status = 0
    for path in files:
        try:
            (inspect if command == "inspect" else validate)(path)
        except NNMError as e:
            print(f"nnm {command}: {e}", file=sys.stderr)
            status = status or e.exit_status
    return status


if __name__ == "__main__":
    sys.exit(main())
