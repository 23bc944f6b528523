"""The `.nnm` container: the preamble, the header and the tensor table, read with every check of
the Swift reader (Sources/NNFormat/NNMReader.swift, in the same order, with the same messages)
and written byte for byte as the Swift writer (Sources/NNFormat/NNMFormat.swift) writes them."""

from __future__ import annotations

import math
import mmap
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _json
from . import metadata as md
from .errors import (BadLayout, BadTensorEntry, CannotCreate, CannotOpen, ChecksumMismatch, EmptyFile, HeaderChecksumMismatch,
                     HeaderTooLarge, InvalidJSON, InvalidModel, ModelProblem, NonZeroPadding, OverlappingTensors,
                     PreambleChecksumMismatch, Truncated, UnknownFlags, UnsupportedVersion, WriteFailed, WrongMagic,
                     describe_shape)

MAGIC = b"\x89NNM\r\n\x1a\n"
MAJOR_VERSION = 1
NEWEST_MINOR_VERSION = 4
PREAMBLE_SIZE = 48
ALIGNMENT = 64
MAXIMUM_HEADER_BYTES = 16 << 20
MAXIMUM_RANK = 8
MAXIMUM_TENSOR_COUNT = 65_536
MAXIMUM_NAME_BYTES = 1024
#: Files up to this size are read into memory; larger ones are memory-mapped (as the Swift reader).
MAPPING_THRESHOLD = 16 << 20

DTYPE_SIZES = {"f16": 2, "bf16": 2, "f32": 4, "f64": 8, "u8": 1, "i8": 1, "i16": 2, "i32": 4, "i64": 8}
DTYPE_NAMES = ["f16", "bf16", "f32", "f64", "u8", "i8", "i16", "i32", "i64"]
#: NumPy dtypes of the stored tensors (little-endian); bf16 has no NumPy type and is exposed as its
#: 16-bit patterns (`ml_dtypes.bfloat16` when that package is installed).
NUMPY_DTYPES = {"f16": "<f2", "bf16": "<u2", "f32": "<f4", "f64": "<f8", "u8": "u1", "i8": "i1",
                "i16": "<i2", "i32": "<i4", "i64": "<i8"}
_KIND_TO_DTYPE = {("f", 2): "f16", ("f", 4): "f32", ("f", 8): "f64", ("u", 1): "u8", ("i", 1): "i8",
                  ("i", 2): "i16", ("i", 4): "i32", ("i", 8): "i64"}

_PREAMBLE = struct.Struct("<8sHHIQQQII")


def align_up(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def bfloat16_dtype() -> Optional[np.dtype]:
    """`ml_dtypes.bfloat16` when installed (it comes with jax), else None."""
    try:
        import ml_dtypes  # type: ignore[import-not-found]
    except ImportError:
        return None
    return np.dtype(ml_dtypes.bfloat16)


def dtype_name(array: np.ndarray, stored: Optional[str] = None) -> str:
    """The `.nnm` dtype of a NumPy array: f16/f32/f64, u8/i8/i16/i32/i64, and bf16 for
    `ml_dtypes.bfloat16` arrays or 16-bit patterns the file stored as bf16 (`stored`)."""
    dt = array.dtype
    if dt.name == "bfloat16" or (stored == "bf16" and dt.kind == "u" and dt.itemsize == 2):
        return "bf16"
    name = _KIND_TO_DTYPE.get((dt.kind, dt.itemsize))
    if name is None:
        raise TypeError(f"arrays of dtype {dt} cannot be stored (.nnm holds f16, bf16, f32, f64, u8, i8, i16, i32, i64)")
    return name


@dataclass
class TensorEntry:
    """One row of the tensor table, as stored."""
    name: str
    dtype: str
    shape: List[int]
    offset: int
    length: int
    crc32: int


@dataclass
class FileContents:
    """What `read` returns: versions, the header as parsed, the metadata, the tensor table, the
    tensors as read-only arrays over the file's bytes, and the size of the file."""
    major: int
    minor: int
    header: Dict[str, Any]
    metadata: md.ParsedMetadata
    entries: List[TensorEntry]
    tensors: Dict[str, np.ndarray]
    data_offset: int
    file_size: int


def _load(path: str) -> Union[bytes, mmap.mmap]:
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise EmptyFile(path)
            if size <= MAPPING_THRESHOLD:
                return f.read()
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as e:
        raise CannotOpen(path, e.strerror or str(e)) from e


def read(path: Union[str, "os.PathLike[str]"], verify: bool = True, header_only: bool = False) -> FileContents:
    """Reads and fully validates a `.nnm` file (see `decode`)."""
    p = os.fspath(path)
    return decode(_load(p), p, verify=verify, header_only=header_only)


def _u16(b: Any, at: int) -> int:
    return int.from_bytes(b[at:at + 2], "little")


def _u32(b: Any, at: int) -> int:
    return int.from_bytes(b[at:at + 4], "little")


def _u64(b: Any, at: int) -> int:
    return int.from_bytes(b[at:at + 8], "little")


def _require_zeros(buf: memoryview, start: int, end: int, path: str) -> None:
    if end <= start:
        return
    chunk = np.frombuffer(buf[start:end], dtype=np.uint8)
    nonzero = np.flatnonzero(chunk)
    if nonzero.size:
        raise NonZeroPadding(path, start + int(nonzero[0]))


def decode(data: Union[bytes, bytearray, memoryview, mmap.mmap], path: str, verify: bool = True,
           header_only: bool = False) -> FileContents:
    """Decodes a whole `.nnm` file held in `data`; `path` names it in errors.

    The checks, in the Swift reader's order: the magic, the major version, the preamble CRC,
    the flags; the header size limit (16 MiB), the data offset, the declared size against the
    actual one; the header CRC, the header padding, the JSON (nesting, duplicates, UTF-8); every
    tensor entry (name, dtype, rank, overflow-checked length, alignment, bounds), order, overlaps
    and zero padding; the metadata; each tensor's CRC-32 (unless `verify` is false); the model's
    structure against the tensors. `header_only` stops before the checksums and the structure.
    """
    buf = memoryview(data)
    if buf.ndim != 1 or buf.itemsize != 1:
        buf = buf.cast("B")
    size = len(buf)
    if size == 0:
        raise EmptyFile(path)
    if size < len(MAGIC) or bytes(buf[:len(MAGIC)]) != MAGIC:
        if size < len(MAGIC) and bytes(buf) == MAGIC[:size]:
            raise Truncated(path, "the preamble", PREAMBLE_SIZE, size)
        raise WrongMagic(path)
    if size < 12:
        raise Truncated(path, "the preamble", PREAMBLE_SIZE, size)
    major, minor = _u16(buf, 8), _u16(buf, 10)
    # The version comes before everything else: a later major version may lay out the rest differently.
    if major != MAJOR_VERSION:
        raise UnsupportedVersion(path, major, minor)
    if size < PREAMBLE_SIZE:
        raise Truncated(path, "the preamble", PREAMBLE_SIZE, size)
    if zlib.crc32(buf[:44]) != _u32(buf, 44):
        raise PreambleChecksumMismatch(path)
    flags = _u32(buf, 12)
    if flags != 0:
        raise UnknownFlags(path, flags)
    header_length, data_offset, data_length = _u64(buf, 16), _u64(buf, 24), _u64(buf, 32)
    if header_length > MAXIMUM_HEADER_BYTES:
        raise HeaderTooLarge(path, header_length, MAXIMUM_HEADER_BYTES)
    header_end = PREAMBLE_SIZE + header_length
    if data_offset != align_up(header_end):
        raise BadLayout(path, f"data offset {data_offset} is not the header end {header_end} rounded up to {ALIGNMENT}")
    int_max = (1 << 63) - 1
    if data_length > int_max - data_offset:
        raise BadLayout(path, f"data length {data_length} is impossibly large")
    declared = data_offset + data_length
    if size < declared:
        raise Truncated(path, "the metadata header" if header_end > size else "the declared data section", declared, size)
    if size > declared:
        raise BadLayout(path, f"{size - declared} bytes of trailing data after the declared end at {declared}")
    header_bytes = buf[PREAMBLE_SIZE:header_end]
    if zlib.crc32(header_bytes) != _u32(buf, 40):
        raise HeaderChecksumMismatch(path)
    _require_zeros(buf, header_end, data_offset, path)
    try:
        root = _json.parse(bytes(header_bytes))
    except _json.JSONParseError as e:
        raise InvalidJSON(path, str(e)) from None
    if not isinstance(root, dict):
        raise InvalidJSON(path, f"the header is {md.kind_name(root)}, not an object")
    entries = _tensor_entries(root, data_length, path)
    _check_coverage(entries, buf, data_offset, data_length, path)
    try:
        meta = md.parse(root)
    except ModelProblem as e:
        raise InvalidModel(path, e.message) from None
    tensors: Dict[str, np.ndarray] = {}
    if not header_only:
        bf16 = bfloat16_dtype()
        for e in entries:
            start = data_offset + e.offset
            raw = buf[start:start + e.length]
            if verify:
                found = zlib.crc32(raw)
                if found != e.crc32:
                    raise ChecksumMismatch(path, e.name, e.crc32, found)
            dt = bf16 if e.dtype == "bf16" and bf16 is not None else np.dtype(NUMPY_DTYPES[e.dtype])
            array = np.frombuffer(data, dtype=dt, count=e.length // dt.itemsize, offset=start).reshape(e.shape)
            array.flags.writeable = False
            tensors[e.name] = array
        try:
            md.validate_structure(meta, {e.name: (e.dtype, e.shape) for e in entries}, tensors)
        except ModelProblem as e:
            raise InvalidModel(path, e.message) from None
    return FileContents(major, minor, root, meta, entries, tensors, data_offset, size)


def _tensor_entries(root: Dict[str, Any], data_length: int, path: str) -> List[TensorEntry]:
    if "tensors" not in root:
        raise BadTensorEntry(path, "tensors", "the header has no tensor table")
    table = root["tensors"]
    if not isinstance(table, list):
        raise BadTensorEntry(path, "tensors", f"expected an array, found {md.kind_name(table)}")
    if len(table) > MAXIMUM_TENSOR_COUNT:
        raise BadTensorEntry(path, "tensors", f"{len(table)} tensors, more than the limit of {MAXIMUM_TENSOR_COUNT}")
    entries: List[TensorEntry] = []
    names = set()
    for i, o in enumerate(table):
        location = f"tensors[{i}]"
        if not isinstance(o, dict):
            raise BadTensorEntry(path, location, f"expected an object, found {md.kind_name(o)}")
        name = o.get("name")
        if not isinstance(name, str) or not name or len(name.encode("utf-8", "surrogatepass")) > MAXIMUM_NAME_BYTES:
            raise BadTensorEntry(path, location, f"expected a non-empty name of at most {MAXIMUM_NAME_BYTES} bytes")
        named = f"{location} '{name}'"

        def bad(detail: str) -> BadTensorEntry:
            return BadTensorEntry(path, named, detail)

        if name in names:
            raise bad("duplicate tensor name")
        names.add(name)
        dtype = o.get("dtype")
        if not isinstance(dtype, str):
            raise bad("expected a dtype string")
        if dtype not in DTYPE_SIZES:
            raise bad(f'unknown dtype "{dtype}" (expected one of {", ".join(DTYPE_NAMES)})')
        shape_items = o.get("shape")
        if not isinstance(shape_items, list):
            raise bad("expected a shape array")
        if len(shape_items) > MAXIMUM_RANK:
            raise bad(f"rank {len(shape_items)} exceeds the limit of {MAXIMUM_RANK}")
        shape = []
        for d in shape_items:
            n = md.int_value(d)
            if n is None or n < 0:
                raise bad("shape entries must be non-negative integers")
            shape.append(n)
        offset = md.int_value(o.get("offset"))
        if offset is None or offset < 0:
            raise bad("expected a non-negative integer offset")
        if offset % ALIGNMENT:
            raise bad(f"offset {offset} is not a multiple of {ALIGNMENT}")
        length = md.int_value(o.get("length"))
        if length is None or length < 0:
            raise bad("expected a non-negative integer length")
        expected: Optional[int] = DTYPE_SIZES[dtype]
        for d in shape:
            expected = expected * d  # type: ignore[operator]
            if expected > (1 << 63) - 1:
                expected = None
                break
        if expected is None:
            raise bad(f"shape {describe_shape(shape)} overflows")
        if expected != length:
            raise bad(f"length {length} does not match shape {describe_shape(shape)} of {dtype} ({expected} bytes)")
        if not (length <= data_length and offset <= data_length - length):
            raise bad(f"bytes {offset}..<{offset + length} lie outside the data section of {data_length} bytes")
        crc = md.int_value(o.get("crc32"))
        if crc is None or not 0 <= crc <= 0xFFFFFFFF:
            raise bad("expected a crc32 between 0 and 4294967295")
        entries.append(TensorEntry(name, dtype, shape, offset, length, crc))
    return entries


def _check_coverage(entries: List[TensorEntry], buf: memoryview, data_offset: int, data_length: int, path: str) -> None:
    """Tensors come in offset order without overlaps; every other byte of the data section is
    alignment padding, shorter than 64 bytes and zero."""
    position = 0
    previous: Optional[str] = None
    for e in entries:
        if e.offset < position and previous is not None:
            raise OverlappingTensors(path, previous, e.name)
        if e.offset - position >= ALIGNMENT:
            raise BadLayout(path, f"{e.offset - position} unused bytes before tensor '{e.name}'")
        _require_zeros(buf, data_offset + position, data_offset + e.offset, path)
        position = e.offset + e.length
        previous = e.name
    if data_length - position >= ALIGNMENT:
        raise BadLayout(path, f"{data_length - position} unused bytes after the last tensor")
    _require_zeros(buf, data_offset + position, data_offset + data_length, path)


# ---- writing ----

def _le_contiguous(array: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(array)
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and not np.little_endian):
        a = a.astype(a.dtype.newbyteorder("<"))
    return a


def encode(metadata_json: Dict[str, Any], minor: int, tensors: Sequence[Tuple[str, str, np.ndarray]]) -> List[Any]:
    """The file's bytes as a list of chunks: preamble, header, padding, tensors with their
    padding. `metadata_json` is the canonical metadata (without `tensors`); `tensors` are
    (name, dtype, C-contiguous little-endian array) in file order."""
    entries = []
    offset = 0
    for name, dtype, a in tensors:
        raw = memoryview(a).cast("B") if a.size else memoryview(b"")
        entries.append({"name": name, "dtype": dtype, "shape": [int(d) for d in a.shape], "offset": offset,
                        "length": a.nbytes, "crc32": zlib.crc32(raw)})
        offset = align_up(offset + a.nbytes)
    root = dict(metadata_json)
    root.pop("tensors", None)
    root["tensors"] = entries
    try:
        header = _json.serialize(root, indent=1).encode("utf-8")
    except UnicodeEncodeError as e:
        raise ModelProblem(f"the metadata holds a string that is not valid Unicode ({e.reason})") from None
    data_offset = align_up(PREAMBLE_SIZE + len(header))
    data_length = align_up(entries[-1]["offset"] + entries[-1]["length"]) if entries else 0
    head = struct.pack("<8sHHIQQQI", MAGIC, MAJOR_VERSION, minor, 0, len(header), data_offset, data_length, zlib.crc32(header))
    chunks: List[Any] = [head + struct.pack("<I", zlib.crc32(head)), header, bytes(data_offset - PREAMBLE_SIZE - len(header))]
    position = 0
    for (name, dtype, a), e in zip(tensors, entries):
        chunks.append(bytes(e["offset"] - position))
        chunks.append(memoryview(a).cast("B") if a.size else b"")
        position = e["offset"] + e["length"]
    chunks.append(bytes(data_length - position))
    return chunks


def write_atomically(path: str, chunks: Sequence[Any]) -> None:
    """Writes `chunks` to a temporary file beside `path`, flushes it to disk, then renames it over
    `path`: readers see the old file or the new one, never a half-written one."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    except OSError as e:
        raise CannotCreate(path, e.strerror or str(e)) from e
    try:
        try:
            with os.fdopen(fd, "wb") as f:
                for c in chunks:
                    f.write(c)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
        except OSError as e:
            raise WriteFailed(path, e.strerror or str(e)) from e
        try:
            dfd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass  # the rename is done; some file systems cannot sync a directory
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
