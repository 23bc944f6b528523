"""The malformed `.nnm` cases of the Swift suite (Tests/MalformedTests/NNMMalformedTests.swift),
each expected to raise its error class with the Swift reader's message, never a crash or a hang;
and each compared with what `nnconv validate` says about the same bytes."""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import pytest

import nnm
from nnm import _json
from conftest import BIN_DIR, run

P = "m.nnm: "


@dataclass
class Bytes:
    """A `.nnm` file assembled by hand from parts, straight from the spec (NNMBytes in the Swift tests)."""
    header: bytes
    data: bytes
    major: int = 1
    minor: int = 0
    flags: int = 0
    header_length: Optional[int] = None
    data_offset: Optional[int] = None
    data_length: Optional[int] = None
    fix_preamble_crc: bool = True
    fix_header_crc: bool = True

    @staticmethod
    def of(header: Any, data: bytes) -> "Bytes":
        text = header if isinstance(header, bytes) else (header.encode() if isinstance(header, str) else _json.serialize(header).encode())
        return Bytes(text, data)

    @property
    def aligned_data_offset(self) -> int:
        return (48 + len(self.header) + 63) // 64 * 64

    def bytes(self) -> bytes:
        out = b"\x89NNM\r\n\x1a\n" + struct.pack("<HHIQQQ", self.major, self.minor, self.flags,
                                                  len(self.header) if self.header_length is None else self.header_length,
                                                  self.aligned_data_offset if self.data_offset is None else self.data_offset,
                                                  len(self.data) if self.data_length is None else self.data_length)
        out += struct.pack("<I", zlib.crc32(self.header) if self.fix_header_crc else 0)
        out += struct.pack("<I", zlib.crc32(out) if self.fix_preamble_crc else 0)
        out += self.header
        out += bytes(self.aligned_data_offset - len(out))
        return out + self.data


def small_model() -> nnm.Model:
    """4 inputs (2x2), 3 ReLU units, 2 softmax outputs, a training record with optimizer state;
    five f32 tensors at 0, 64, 128, 192 and 256 of a 320-byte data section."""
    w0 = np.array([0.5, -0.25, 0.125, 1, 2, -1, 0.75, -0.5, 0.25, 0, 1.5, -2], dtype=np.float32).reshape(4, 3)
    meta = {
        "input": {"shape": [2, 2]},
        "layers": [{"kind": "dense", "in": 4, "out": 3, "activation": "relu", "weight": "layers.0.weight", "bias": "layers.0.bias"},
                   {"kind": "dense", "in": 3, "out": 2, "activation": "softmax", "weight": "layers.1.weight", "bias": "layers.1.bias"}],
        "preprocessing": [nnm.scale(1 / 255)],
        "classes": ["no", "yes"],
        "training": {"loss": "cross-entropy", "optimizer": "momentum", "epochs": 2,
                     "history": [{"epoch": 1, "train_loss": 0.7}, {"epoch": 2, "train_loss": 0.6}],
                     "optimizer_state": {"step": 10, "tensors": {"layers.0.weight": "optimizer.velocity.layers.0.weight"}}},
        "provenance": {"tool": "tests", "created": "2026-11-24T00:00:00Z"},
    }
    tensors = {"layers.0.weight": w0, "layers.0.bias": np.array([0.1, -0.2, 0.3], np.float32),
               "layers.1.weight": np.array([1, -1, 0.5, 0.25, -0.75, 2], np.float32).reshape(3, 2),
               "layers.1.bias": np.array([0, 0.5], np.float32), "optimizer.velocity.layers.0.weight": w0 * np.float32(0.01)}
    return nnm.Model(meta, tensors)


class ModelBytes:
    """A valid file's bytes and its parts, and copies of it with the header edited (the data
    section kept unless given)."""

    def __init__(self, valid: bytes) -> None:
        self.valid = valid
        self.header_length = int.from_bytes(valid[16:24], "little")
        self.data_offset = int.from_bytes(valid[24:32], "little")
        self.header: Dict[str, Any] = _json.parse(valid[48:48 + self.header_length])
        self.data = valid[self.data_offset:]
        self.entries: List[Dict[str, Any]] = self.header["tensors"]
        self.header_end = 48 + self.header_length
        self.file = Bytes(valid[48:48 + self.header_length], self.data)

    def editing(self, edit: Callable[[Dict[str, Any]], None], data: Optional[bytes] = None) -> bytes:
        h = json.loads(json.dumps(self.header))
        edit(h)
        return Bytes.of(h, self.data if data is None else data).bytes()

    def entry(self, index: int, key: str, value: Any = ..., remove: bool = False) -> bytes:
        def edit(h):
            if remove:
                del h["tensors"][index][key]
            else:
                h["tensors"][index][key] = value
        return self.editing(edit)

    def layer(self, index: int, key: str, value: Any) -> bytes:
        """Layer `index` with `key` set to `value`, or removed when `value` is None."""
        def edit(h):
            if value is None:
                del h["layers"][index][key]
            else:
                h["layers"][index][key] = value
        return self.editing(edit)

    @staticmethod
    def header_text(text: Any) -> bytes:
        return Bytes.of(text.encode() if isinstance(text, str) else text, b"").bytes()

    def preamble(self, **changes: Any) -> bytes:
        f = Bytes(self.file.header, self.file.data)
        for k, v in changes.items():
            setattr(f, k, v)
        return f.bytes()


Small = ModelBytes(nnm.to_bytes(small_model()))


def quantized_model() -> nnm.Model:
    """`small_model()` with layers.1 in int8 (format 1.3: i8 weight, f32 scales) and its inputs'
    calibrated quantization (1.4)."""
    m = small_model()
    meta = json.loads(json.dumps(m.metadata))
    meta["layers"][1].update(weight_scale="layers.1.weight_scale", input_quantization={"scale": 0.25, "zero_point": 3})
    tensors = dict(m.tensors)
    tensors["layers.1.weight"] = np.array([127, -64, 64, 16, -95, 127], np.int8).reshape(3, 2)
    tensors["layers.1.weight_scale"] = np.array([1 / 127, 2 / 127], np.float32)
    return nnm.Model(meta, tensors)


Quantized = ModelBytes(nnm.to_bytes(quantized_model()))


def with_weight_scales(values: List[float]) -> bytes:
    """The quantized file with other weight scales (and their checksum), past the writer's checks."""
    entry = next(t for t in Quantized.header["tensors"] if t["name"] == "layers.1.weight_scale")
    raw = np.array(values, np.float32).tobytes()
    data = bytearray(Quantized.data)
    data[entry["offset"]:entry["offset"] + len(raw)] = raw

    def edit(h):
        next(t for t in h["tensors"] if t["name"] == "layers.1.weight_scale")["crc32"] = zlib.crc32(raw)
    return Quantized.editing(edit, bytes(data))


def flip(data: bytes, offset: int, bit: int = 0) -> bytes:
    b = bytearray(data)
    b[offset] ^= 1 << bit
    return bytes(b)


def put(data: bytes, offset: int, value: int) -> bytes:
    b = bytearray(data)
    b[offset] = value
    return bytes(b)


@dataclass
class Case:
    label: str
    data: bytes
    error: type
    message: str


def cases() -> List[Case]:
    v, d, total, e = Small.valid, Small.data_offset, len(Small.valid), Small.entries
    limit = 16 << 20
    c: List[Case] = []

    def add(label: str, data: bytes, error: type, message: str) -> None:
        c.append(Case(label, data, error, P + message))

    # Truncation at every structure boundary.
    add("empty", b"", nnm.EmptyFile, "the file is empty")
    for n in (4, 8, 11, 12, 30, 47):
        add(f"{n} bytes", v[:n], nnm.Truncated, f"truncated: the preamble needs 48 bytes, the file has {n}")
    for label, end in (("preamble only", 48), ("half the header", 48 + (Small.header_end - 48) // 2)):
        add(label, v[:end], nnm.Truncated, f"truncated: the metadata header needs {total} bytes, the file has {end}")
    ends = [("header without padding", Small.header_end), ("header and padding", d)]
    for t in e:
        ends.append((f"at the start of '{t['name']}'", d + t["offset"]))
        ends.append((f"inside the last byte of '{t['name']}'", d + t["offset"] + t["length"] - 1))
    ends.append(("one byte short", total - 1))
    for label, end in ends:
        add(label, v[:end], nnm.Truncated, f"truncated: the declared data section needs {total} bytes, the file has {end}")

    # Magic, version, flags, checksums.
    magic = "not an .nnm model file (wrong magic bytes)"
    add("a zip file", b"PK\x03\x04 this is a zip", nnm.WrongMagic, magic)
    add("an HDF5 signature", b"\x89HDF\r\n\x1a\n" + bytes(60), nnm.WrongMagic, magic)
    add("a text-mode transfer", v[:4] + v[5:], nnm.WrongMagic, magic)
    add("high bit stripped", put(v, 0, 0x09), nnm.WrongMagic, magic)
    add("three bytes of text", b"abc", nnm.WrongMagic, magic)
    version = "format version {} is not supported (this reader understands 1.x); use a newer nnconv"
    add("major version 0", Small.preamble(major=0), nnm.UnsupportedVersion, version.format("0.0"))
    add("major version 2", Small.preamble(major=2), nnm.UnsupportedVersion, version.format("2.0"))
    add("major version 65535.7", Small.preamble(major=0xFFFF, minor=7), nnm.UnsupportedVersion, version.format("65535.7"))
    add("an unknown major version comes before truncation", Small.preamble(major=2)[:12], nnm.UnsupportedVersion, version.format("2.0"))
    add("an unknown major version comes before the preamble CRC", Small.preamble(major=3, fix_preamble_crc=False),
        nnm.UnsupportedVersion, version.format("3.0"))
    add("flag bit 0", Small.preamble(flags=1), nnm.UnknownFlags, "the file uses features this reader does not know (flags 0x1)")
    add("flag bit 31", Small.preamble(flags=0x8000_0000), nnm.UnknownFlags,
        "the file uses features this reader does not know (flags 0x80000000)")
    pre = "corrupt: the preamble checksum does not match"
    add("preamble CRC wrong", Small.preamble(fix_preamble_crc=False), nnm.PreambleChecksumMismatch, pre)
    add("flipped bit in the header length", flip(v, 16, 3), nnm.PreambleChecksumMismatch, pre)
    add("flipped bit in the minor version", flip(v, 10), nnm.PreambleChecksumMismatch, pre)
    add("flipped bit in the preamble CRC", flip(v, 47, 7), nnm.PreambleChecksumMismatch, pre)
    head = "corrupt: the metadata header checksum does not match"
    add("header CRC wrong", Small.preamble(fix_header_crc=False), nnm.HeaderChecksumMismatch, head)
    add("flipped bit in the header", flip(v, 60, 1), nnm.HeaderChecksumMismatch, head)

    # The preamble's sizes against the file.
    add("header one byte over 16 MiB", Small.preamble(header_length=limit + 1), nnm.HeaderTooLarge,
        f"the metadata header is {limit + 1} bytes, more than the limit of {limit}")
    add("header length 2^64-1", Small.preamble(header_length=2**64 - 1), nnm.HeaderTooLarge,
        f"the metadata header is 18446744073709551615 bytes, more than the limit of {limit}")
    for label, offset in (("data offset not aligned", d + 1), ("data offset 0", 0), ("data offset 2^64-64", 2**64 - 64)):
        add(label, Small.preamble(data_offset=offset), nnm.BadLayout,
            f"corrupt layout: data offset {offset} is not the header end {Small.header_end} rounded up to 64")
    int_max = 2**63 - 1
    add("data length 2^64-1", Small.preamble(data_length=2**64 - 1), nnm.BadLayout,
        "corrupt layout: data length 18446744073709551615 is impossibly large")
    add("data length one past Int.max minus the offset", Small.preamble(data_length=int_max - d + 1), nnm.BadLayout,
        f"corrupt layout: data length {int_max - d + 1} is impossibly large")
    add("data length 1 TiB", Small.preamble(data_length=1 << 40), nnm.Truncated,
        f"truncated: the declared data section needs {d + (1 << 40)} bytes, the file has {total}")
    add("data length 64 short", Small.preamble(data_length=256), nnm.BadLayout,
        f"corrupt layout: 64 bytes of trailing data after the declared end at {d + 256}")
    add("trailing garbage", v + b"\x01\x02\x03", nnm.BadLayout, f"corrupt layout: 3 bytes of trailing data after the declared end at {total}")
    add("a second copy appended", v + v, nnm.BadLayout, f"corrupt layout: {total} bytes of trailing data after the declared end at {total}")
    add("non-zero header padding", put(v, d - 1, 7), nnm.NonZeroPadding, f"corrupt: padding byte at offset {d - 1} is not zero")
    add("non-zero padding between tensors", put(v, d + e[0]["length"], 1), nnm.NonZeroPadding,
        f"corrupt: padding byte at offset {d + e[0]['length']} is not zero")
    add("non-zero padding after the last tensor", put(v, total - 1, 0x80), nnm.NonZeroPadding,
        f"corrupt: padding byte at offset {total - 1} is not zero")
    add("64 zero bytes after the last tensor", Bytes(Small.file.header, Small.data + bytes(64)).bytes(), nnm.BadLayout,
        "corrupt layout: 80 unused bytes after the last tensor")

    # Header JSON.
    j = "the metadata header is not valid JSON: invalid JSON at byte "
    for label, text, message in [
        ("not JSON", "hello", "0: unexpected character 'h'"),
        ("empty header", "", "0: unexpected end of text"),
        ("a UTF-8 byte order mark", "\ufeff{}", "0: unexpected character 'ï'"),
        ("65 nested arrays", "[" * 65 + "]" * 65, "64: nesting deeper than 64 levels"),
        ("65 nested objects", '{"a":' * 65 + "1" + "}" * 65, f"{64 * 5}: nesting deeper than 64 levels"),
        ("10,000 nested arrays", "[" * 10_000, "64: nesting deeper than 64 levels"),
        ("duplicate member", '{"a":1,"a":2}', '10: duplicate member name "a"'),
        ("unpaired surrogate", '{"a": "\\ud800x"}', "13: unpaired surrogate"),
        ("control character in a string", '{"a": "x\ny"}', "8: control character in a string"),
        ("unterminated string", '{"a": "xyz', "10: unterminated string"),
        ("number with 401 digits", '{"a": ' + "1" * 401 + "}", "407: number too long"),
        ("number out of range", '{"a": 1e400}', "6: number out of range"),
        ("leading zero", '{"a": 01}', "8: leading zero in a number"),
        ("text after the document", "{} x", "3: unexpected text after the document"),
        ("NaN", '{"a": NaN}', "6: unexpected character 'N'"),
        ("trailing comma", '{"a": 1,}', "8: expected a member name in quotes"),
    ]:
        add(label, Small.header_text(text), nnm.InvalidJSON, j + message)
    add("invalid UTF-8 in a string", Bytes(b'{"a": "\xc3\x28"}', b"").bytes(), nnm.InvalidJSON, j + "7: string is not valid UTF-8")
    add("an array", Small.header_text("[1, 2]"), nnm.InvalidJSON, "the metadata header is not valid JSON: the header is an array, not an object")
    add("a string", Small.header_text('"model"'), nnm.InvalidJSON, "the metadata header is not valid JSON: the header is a string, not an object")

    # The tensor table.
    w0 = "tensors[0] 'layers.0.weight': "
    velocity = "tensors[4] 'optimizer.velocity.layers.0.weight': "
    dtypes = "(expected one of f16, bf16, f32, f64, u8, i8, i16, i32, i64)"
    name = "expected a non-empty name of at most 1024 bytes"
    huge = int_max - 63
    bad = nnm.BadTensorEntry
    add("no tensor table", Small.editing(lambda h: h.pop("tensors")), bad, "tensors: the header has no tensor table")
    add("tensor table is an object", Small.editing(lambda h: h.update(tensors={})), bad, "tensors: expected an array, found an object")
    add("65,537 tensors", Small.header_text('{"tensors": [' + ",".join(["{}"] * 65_537) + "]}"), bad,
        "tensors: 65537 tensors, more than the limit of 65536")
    add("entry is a number", Small.editing(lambda h: h.update(tensors=[1])), bad, "tensors[0]: expected an object, found a number")
    add("no name", Small.entry(0, "name", remove=True), bad, "tensors[0]: " + name)
    add("empty name", Small.entry(0, "name", ""), bad, "tensors[0]: " + name)
    add("1025-byte name", Small.entry(0, "name", "é" * 513), bad, "tensors[0]: " + name)
    add("duplicate name", Small.entry(1, "name", "layers.0.weight"), bad, "tensors[1] 'layers.0.weight': duplicate tensor name")
    add("dtype missing", Small.entry(0, "dtype", remove=True), bad, w0 + "expected a dtype string")
    add("dtype complex128", Small.entry(0, "dtype", "complex128"), bad, w0 + f'unknown dtype "complex128" {dtypes}')
    add("dtype in capitals", Small.entry(0, "dtype", "F32"), bad, w0 + f'unknown dtype "F32" {dtypes}')
    add("shape missing", Small.entry(0, "shape", remove=True), bad, w0 + "expected a shape array")
    add("shape is a number", Small.entry(0, "shape", 12), bad, w0 + "expected a shape array")
    add("rank 9", Small.entry(0, "shape", [1] * 9), bad, w0 + "rank 9 exceeds the limit of 8")
    for label, shape in (("negative dimension", [-4, 3]), ("fractional dimension", [1.5, 3]), ("dimension as a string", ["4", 3]),
                         ("dimension 1e300", [1e300, 3])):
        add(label, Small.entry(0, "shape", shape), bad, w0 + "shape entries must be non-negative integers")
    add("dimensions whose product overflows", Small.entry(0, "shape", [1 << 40, 1 << 40]), bad,
        w0 + "shape 1099511627776x1099511627776 overflows")
    add("dimension Int64.max", Small.entry(0, "shape", [int_max]), bad, w0 + f"shape {int_max} overflows")
    add("length does not match the shape", Small.entry(0, "length", 40), bad, w0 + "length 40 does not match shape 4x3 of f32 (48 bytes)")
    add("negative length", Small.entry(0, "length", -48), bad, w0 + "expected a non-negative integer length")
    add("negative offset", Small.entry(0, "offset", -64), bad, w0 + "expected a non-negative integer offset")
    add("misaligned offset", Small.entry(1, "offset", 65), bad, "tensors[1] 'layers.0.bias': offset 65 is not a multiple of 64")
    add("offset past the end", Small.entry(4, "offset", 4096), bad, velocity + "bytes 4096..<4144 lie outside the data section of 320 bytes")
    add("offset near Int.max", Small.entry(4, "offset", huge), bad,
        velocity + f"bytes {huge}..<{huge + 48} lie outside the data section of 320 bytes")

    def longer(h):
        h["tensors"][4]["shape"] = [100, 100]
        h["tensors"][4]["length"] = 40_000
    add("a tensor longer than the data section", Small.editing(longer), bad,
        velocity + "bytes 256..<40256 lie outside the data section of 320 bytes")
    crc = "expected a crc32 between 0 and 4294967295"
    add("crc32 missing", Small.entry(0, "crc32", remove=True), bad, w0 + crc)
    add("crc32 2^32", Small.entry(0, "crc32", 4_294_967_296), bad, w0 + crc)
    add("crc32 negative", Small.entry(0, "crc32", -1), bad, w0 + crc)
    stored = e[2]["crc32"]
    add("crc32 wrong", Small.entry(2, "crc32", stored ^ 1), nnm.ChecksumMismatch,
        f"corrupt: tensor 'layers.1.weight' fails its checksum (stored crc32 {stored ^ 1:08x}, computed {stored:08x})")
    add("overlapping tensors", Small.entry(1, "offset", 0), nnm.OverlappingTensors,
        "tensors 'layers.0.weight' and 'layers.0.bias' overlap or are out of order")

    def swap(h):
        h["tensors"][0], h["tensors"][1] = h["tensors"][1], h["tensors"][0]
    add("out of order", Small.editing(swap), nnm.BadLayout, "corrupt layout: 64 unused bytes before tensor 'layers.0.bias'")
    add("an 80-byte hole before a tensor", Small.entry(1, "offset", 128), nnm.BadLayout,
        "corrupt layout: 80 unused bytes before tensor 'layers.0.bias'")
    shifted = json.loads(json.dumps(Small.header))
    for t in shifted["tensors"]:
        t["offset"] += 64
    add("a 64-byte gap at the start", Bytes.of(shifted, bytes(64) + Small.data).bytes(), nnm.BadLayout,
        "corrupt layout: 64 unused bytes before tensor 'layers.0.weight'")

    # Metadata that parses but does not describe a usable model.
    m = nnm.InvalidModel

    def training(key: str, value: Any):
        def edit(h):
            h["training"][key] = value
        return Small.editing(edit)
    add("no layers", Small.editing(lambda h: h.update(layers=[])), m, "the model has no layers")
    add("layers missing", Small.editing(lambda h: h.pop("layers")), m, "layers: expected a value, found nothing")
    add("input missing", Small.editing(lambda h: h.pop("input")), m, "input: expected an object, found nothing")
    add("input dimension 0", Small.editing(lambda h: h.update(input={"shape": [0, 2], "features": 0})), m,
        "input.shape[0]: expected an integer in 1...2147483647, found 0")
    add("input rank 9", Small.editing(lambda h: h.update(input={"shape": [1] * 9, "features": 1})), m,
        "input.shape: expected at most 8 dimensions, found 9")
    add("input features over 2^31-1", Small.editing(lambda h: h.update(input={"shape": [65536, 65536], "features": 0})), m,
        "input.shape: expected at most 2147483647 features, found 65536x65536")
    add("layer width 2^31", Small.layer(0, "in", 2_147_483_648), m, "layers[0].in: expected an integer in 1...2147483647, found 2147483648")
    add("layer width as text", Small.layer(0, "out", "3"), m, "layers[0].out: expected an integer, found a string")
    add("unknown layer kind", Small.layer(0, "kind", "conv3d"), m,
        "layers[0].kind: expected one of dense, conv2d, max_pool2d, flatten, batch_norm, avg_pool2d, global_avg_pool2d, global_max_pool2d, found \"conv3d\"")
    add("unknown activation", Small.layer(1, "activation", "mish"), m,
        "layers[1].activation: expected one of identity, relu, sigmoid, tanh, softmax, leaky_relu, elu, selu, gelu, softplus, swish, "
        "hard_sigmoid, relu6, log_softmax, found \"mish\"")
    add("layers do not chain", Small.layer(1, "in", 4), m, "layers[1]: input size 4 does not match the previous output size 3")
    add("first layer does not fit the input", Small.layer(0, "in", 5), m,
        "layers[0] (after input 2x2): input size 5 does not match the previous output size 4")
    add("weight tensor missing", Small.layer(1, "weight", "nope"), m, "layers[1].weight: names tensor 'nope', which the model does not contain")
    add("integer weights", Small.entry(3, "dtype", "i32"), m, "tensor 'layers.1.bias': dtype i32 cannot be used here (expected f16, bf16, f32 or f64)")
    add("weight shape transposed", Small.entry(0, "shape", [3, 4]), m, "tensor 'layers.0.weight': expected shape 4x3, found 3x4")
    add("one class for two outputs", Small.editing(lambda h: h.update(classes=["only"])), m, "classes: expected 2 names (one per output), found 1")
    add("class name not a string", Small.editing(lambda h: h.update(classes=["a", 2])), m, "classes[1]: expected a string, found a number")
    add("unknown preprocessing", Small.editing(lambda h: h.update(preprocessing=[{"op": "pca"}])), m,
        "preprocessing[0].op: expected \"scale\" or \"zscore\", found \"pca\"")
    add("z-score statistics missing", Small.editing(lambda h: h.update(preprocessing=[{"op": "zscore", "mean": "m", "std": "s"}])), m,
        "preprocessing[0].mean: names tensor 'm', which the model does not contain")
    add("provenance missing", Small.editing(lambda h: h.pop("provenance")), m, "provenance: expected an object, found nothing")
    add("negative epochs", training("epochs", -1), m, "training.epochs: expected an integer in 0...2147483647, found -1")
    add("optimizer state for a missing parameter",
        training("optimizer_state", {"step": 1, "tensors": {"layers.9.weight": "optimizer.velocity.layers.0.weight"}}), m,
        "training.optimizer_state.tensors: names tensor 'layers.9.weight', which the model does not contain")
    # Beyond the Swift suite's list: 1.2 members the same rules cover.
    add("leaky_relu without a slope", Small.layer(0, "activation", "leaky_relu"), m,
        'layers[0].activation: expected {"name": "leaky_relu", "alpha": ...} (its slope has no common default), found "leaky_relu"')
    add("an unknown activation parameter", Small.layer(0, "activation", {"name": "elu", "beta": 1}), m,
        "layers[0].activation.beta: expected only alpha as parameters of elu, found a member 'beta'")
    add("output kind unknown", Small.editing(lambda h: h.update(output={"kind": "scores"})), m,
        'output.kind: expected one of probabilities, log_probabilities, logits, found "scores"')
    # Formats 1.3 and 1.4: int8 weights, their scales, calibrated inputs.
    q = Quantized
    add("i8 weight without its scales", q.editing(lambda h: [h["layers"][1].pop(k) for k in ("weight_scale", "input_quantization")]), m,
        "tensor 'layers.1.weight': dtype i8 cannot be used here (expected f16, bf16, f32 or f64)")
    add("weight scale beside a float weight", q.layer(0, "weight_scale", "layers.1.weight_scale"), m,
        "layers[0].weight: expected an i8 tensor (the layer has a weight_scale), found 'layers.0.weight' of dtype f32")
    add("weight scale missing", q.layer(1, "weight_scale", "nope"), m,
        "layers[1].weight_scale: names tensor 'nope', which the model does not contain")
    add("weight scale of another length", q.layer(1, "weight_scale", "layers.0.bias"), m,
        "tensor 'layers.0.bias': expected shape 2, found 3")
    add("a zero weight scale", with_weight_scales([0.5, 0]), m,
        "layers[1].weight_scale: expected finite scales > 0, found 'layers.1.weight_scale'[1] = 0.0")
    add("a NaN weight scale", with_weight_scales([float("nan"), 0.5]), m,
        "layers[1].weight_scale: expected finite scales > 0, found 'layers.1.weight_scale'[0] = nan")
    add("compute other than bf16", q.layer(1, "compute", "fp8"), m, 'layers[1].compute: expected "bf16", found "fp8"')
    add("input quantization on a float weight", q.layer(0, "input_quantization", {"scale": 0.5, "zero_point": 0}), m,
        "layers[0].input_quantization: expected an i8 weight with a weight_scale (it quantizes that layer's inputs), "
        "found a layer with a float weight")
    add("input scale 0", q.layer(1, "input_quantization", {"scale": 0, "zero_point": 3}), m,
        "layers[1].input_quantization.scale: expected a finite number > 0, found 0.0")
    add("input scale past f32", q.layer(1, "input_quantization", {"scale": 1e300, "zero_point": 3}), m,
        "layers[1].input_quantization.scale: expected a finite number > 0, found inf")
    add("input zero point 256", q.layer(1, "input_quantization", {"scale": 0.5, "zero_point": 256}), m,
        "layers[1].input_quantization.zero_point: expected an integer in 0...255, found 256")
    add("input zero point missing", q.layer(1, "input_quantization", {"scale": 0.5}), m,
        "layers[1].input_quantization.zero_point: expected a value, found nothing")
    add("input quantization on flatten", Small.editing(lambda h: h["layers"].insert(0, {
        "kind": "flatten", "in": 4, "out": 4, "input_shape": [2, 2], "input_quantization": {"scale": 1, "zero_point": 0}})), m,
        "layers[0].weight: expected no parameters for a flatten layer, found a tensor name")
    return c


CASES = cases()


def test_the_small_file_is_valid() -> None:
    model = nnm.loads(Small.valid, "m.nnm")
    assert len(model.tensors) == 5 and len(Small.data) == 320
    assert Small.header_end < Small.data_offset, "the header padding cases need padding"


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_malformed(case: Case) -> None:
    with pytest.raises(case.error) as info:
        nnm.loads(case.data, "m.nnm")
    assert str(info.value) == case.message
    assert info.value.path == "m.nnm" and info.value.exit_status == 65


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_malformed_file_as_nnconv_sees_it(case: Case, tmp_path: Path) -> None:
    """The same bytes in a file: `nnconv validate` and `python -m nnm validate` print the same line."""
    path = tmp_path / "m.nnm"
    path.write_bytes(case.data)
    with pytest.raises(case.error) as info:
        nnm.load(path)
    assert str(info.value) == case.message.replace(P, f"{path}: ", 1)
    result = run("nnconv", "validate", path, check=False)
    assert result.returncode == 65
    swift = result.stderr.strip().splitlines()[0].removeprefix("nnconv validate: ")
    if case.data.startswith(b"\x89NNM\r\n\x1a\n"):
        assert swift == str(info.value)
    else:
        # Without the whole magic nnconv tries its other formats and names them instead.
        assert case.error in (nnm.WrongMagic, nnm.Truncated, nnm.EmptyFile)


def test_quantized_files_read_as_written() -> None:
    """An int8 layer with calibrated inputs: version 1.4, the same header as the Swift writer's
    (checked against nnconv in test_swift_files), the weight's value q * scale in f32."""
    model = nnm.loads(Quantized.valid, "m.nnm")
    assert model.version == (1, 4)
    layer = model.layers[1]
    assert layer["weight_scale"] == "layers.1.weight_scale" and layer["input_quantization"] == {"scale": 0.25, "zero_point": 3}
    w = model.array("layers.1.weight", widen=True)
    assert w.dtype == np.float32
    np.testing.assert_allclose(w, [[1, -128 / 127], [64 / 127, 32 / 127], [-95 / 127, 254 / 127]], rtol=1e-7)
    assert model.array("layers.1.weight").dtype == np.int8


def test_newer_minor_version_and_unknown_members_are_accepted() -> None:
    nnm.loads(Small.preamble(minor=9), "m.nnm")
    model = nnm.loads(Small.editing(lambda h: h.update(future={"x": [1, 2]})), "m.nnm")
    assert model.metadata["future"] == {"x": [1, 2]}


def test_missing_file() -> None:
    with pytest.raises(nnm.CannotOpen) as info:
        nnm.load("/nonexistent/m.nnm")
    assert info.value.exit_status == 66
    assert str(info.value) == "/nonexistent/m.nnm: cannot open: No such file or directory"
