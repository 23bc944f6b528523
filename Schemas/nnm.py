#!/usr/bin/env python3
"""Reference reader for .nnm v1 files (see nnm-v1.md), independent of the Swift code.

    python3 Schemas/nnm.py validate MODEL.nnm [...]   # structure, checksums, JSON Schema
    python3 Schemas/nnm.py header MODEL.nnm           # print the metadata header

As a module: `header, tensors = nnm.load("model.nnm")` gives the header dict and
NumPy arrays that map the file without copying.

This file is the specification's minimal reader and an independent check for the tests. To read
and write `.nnm` from your own Python code, install the package in python/ (`pip install
./python`, then `import nnm`; python/README.md): the same checks as the Swift reader, saving,
builders for the blog's arrays and a reference forward pass.
"""
import json
import os
import struct
import sys
import zlib

MAGIC = b"\x89NNM\r\n\x1a\n"
PREAMBLE = struct.Struct("<8sHHIQQQII")  # 48 bytes
DTYPES = {"f16": "<f2", "f32": "<f4", "f64": "<f8", "u8": "u1", "i8": "i1",
          "i16": "<i2", "i32": "<i4", "i64": "<i8", "bf16": "<u2"}
SIZES = {"f16": 2, "bf16": 2, "f32": 4, "f64": 8, "u8": 1, "i8": 1, "i16": 2, "i32": 4, "i64": 8}
MAX_HEADER = 16 << 20


class FormatError(Exception):
    pass


def read_header(path):
    """Checks the preamble, header and tensor table; returns (header, data_offset)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        pre = f.read(PREAMBLE.size)
        if len(pre) < PREAMBLE.size:
            raise FormatError(f"{path}: truncated preamble")
        magic, major, minor, flags, hlen, doff, dlen, hcrc, pcrc = PREAMBLE.unpack(pre)
        if magic != MAGIC:
            raise FormatError(f"{path}: wrong magic")
        if major != 1:
            raise FormatError(f"{path}: unsupported major version {major}")
        if zlib.crc32(pre[:44]) != pcrc:
            raise FormatError(f"{path}: preamble checksum mismatch")
        if flags != 0:
            raise FormatError(f"{path}: unknown flags {flags:#x}")
        if hlen > MAX_HEADER:
            raise FormatError(f"{path}: header too large")
        if doff != (48 + hlen + 63) // 64 * 64 or doff + dlen != size:
            raise FormatError(f"{path}: bad layout")
        raw = f.read(hlen)
        if zlib.crc32(raw) != hcrc:
            raise FormatError(f"{path}: header checksum mismatch")
        if f.read(doff - 48 - hlen).strip(b"\0"):
            raise FormatError(f"{path}: non-zero header padding")
    header = json.loads(raw.decode("utf-8"))
    end = 0
    for t in header["tensors"]:
        n = SIZES[t["dtype"]]
        for d in t["shape"]:
            n *= d
        if n != t["length"] or t["offset"] % 64 or t["offset"] < end or t["offset"] - end >= 64:
            raise FormatError(f"{path}: bad tensor entry {t['name']}")
        end = t["offset"] + t["length"]
    if end > dlen or dlen - end >= 64:
        raise FormatError(f"{path}: bad data section length")
    return header, doff


def load(path, verify=True):
    """Returns (header, {name: numpy array}); arrays are read-only views of a file mapping."""
    import numpy as np
    header, doff = read_header(path)
    data = np.memmap(path, dtype=np.uint8, mode="r")
    tensors = {}
    for t in header["tensors"]:
        start = doff + t["offset"]
        raw = data[start:start + t["length"]]
        if verify and zlib.crc32(raw) != t["crc32"]:
            raise FormatError(f"{path}: tensor {t['name']} fails its checksum")
        tensors[t["name"]] = raw.view(DTYPES[t["dtype"]]).reshape(t["shape"])
    return header, tensors


def float_weight(layer, tensors):
    """A dense or conv2d layer's weight as float32: an i8 weight (format 1.3) times the scale of
    its output (the last axis), anything else as stored (bf16 bit patterns widened)."""
    import numpy as np
    w = tensors[layer["weight"]]
    if "weight_scale" in layer:
        return w.astype(np.float32) * tensors[layer["weight_scale"]]
    if w.dtype == np.uint16:  # bf16
        return (w.astype(np.uint32) << 16).view(np.float32)
    return w.astype(np.float32)


def check_scales(path, header, tensors):
    """Format 1.3: every weight_scale is f32, one value per output, finite and > 0."""
    import numpy as np
    for i, layer in enumerate(header["layers"]):
        if "weight_scale" not in layer:
            continue
        w, s = tensors[layer["weight"]], tensors[layer["weight_scale"]]
        if w.dtype != np.int8 or s.dtype != np.float32 or s.shape != (w.shape[-1],) or not np.all(np.isfinite(s) & (s > 0)):
            raise FormatError(f"{path}: layers[{i}].weight_scale: expected f32 [{w.shape[-1]}] finite scales > 0 beside an i8 weight")


def validate(path):
    import jsonschema
    schema_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nnm-v1.header.schema.json")
    with open(schema_path) as f:
        schema = json.load(f)
    header, tensors = load(path)
    jsonschema.validate(header, schema, cls=jsonschema.Draft202012Validator)
    check_scales(path, header, tensors)


def main(argv):
    if len(argv) < 3 or argv[1] not in ("validate", "header"):
        print(__doc__.strip(), file=sys.stderr)
        return 64
    status = 0
    for path in argv[2:]:
        try:
            if argv[1] == "validate":
                validate(path)
                print(f"{path}: valid")
            else:
                print(json.dumps(read_header(path)[0], indent=1))
        except Exception as e:  # report every file, then fail
            print(f"{path}: {e}", file=sys.stderr)
            status = 65
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
