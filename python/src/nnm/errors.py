"""The errors of reading and writing `.nnm` files.

Each class is one of the Swift reader's error cases (`NNMError` in Sources/NNFormat) with the same
one-line message, which starts with the file's path. `exit_status` is the category's documented
exit status: 65 for bad data, 66 for a missing input, 73 when the output cannot be created,
74 when writing failed.
"""

from __future__ import annotations

from typing import List, Optional

__all__ = [
    "NNMError", "CannotOpen", "EmptyFile", "Truncated", "WrongMagic", "UnsupportedVersion", "UnknownFlags",
    "PreambleChecksumMismatch", "HeaderTooLarge", "HeaderChecksumMismatch", "InvalidJSON", "BadLayout",
    "BadTensorEntry", "OverlappingTensors", "NonZeroPadding", "ChecksumMismatch", "InvalidModel",
    "CannotCreate", "WriteFailed", "ModelProblem", "EXIT_BAD_DATA", "EXIT_MISSING_INPUT",
    "EXIT_CANNOT_CREATE", "EXIT_WRITE_FAILED", "EXIT_USAGE",
]

EXIT_USAGE = 64
EXIT_BAD_DATA = 65
EXIT_MISSING_INPUT = 66
EXIT_CANNOT_CREATE = 73
EXIT_WRITE_FAILED = 74


def describe_shape(shape: List[int]) -> str:
    """"784x256", "scalar" for rank 0 (ShapeMath.describe)."""
    return "x".join(str(d) for d in shape) if shape else "scalar"


class NNMError(ValueError):
    """Base of every `.nnm` error; `path` names the file, `str(error)` is one actionable line."""

    exit_status = EXIT_BAD_DATA
    category = "bad input"

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail


class CannotOpen(NNMError):
    """The file does not exist or cannot be read (exit status 66)."""

    exit_status = EXIT_MISSING_INPUT
    category = "missing input"

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, f"cannot open: {reason}")
        self.reason = reason


class EmptyFile(NNMError):
    def __init__(self, path: str) -> None:
        super().__init__(path, "the file is empty")


class Truncated(NNMError):
    """The file ends before a structure it declares is complete."""

    def __init__(self, path: str, what: str, expected_bytes: int, found_bytes: int) -> None:
        super().__init__(path, f"truncated: {what} needs {expected_bytes} bytes, the file has {found_bytes}")
        self.what, self.expected_bytes, self.found_bytes = what, expected_bytes, found_bytes


class WrongMagic(NNMError):
    def __init__(self, path: str) -> None:
        super().__init__(path, "not an .nnm model file (wrong magic bytes)")


class UnsupportedVersion(NNMError):
    def __init__(self, path: str, major: int, minor: int) -> None:
        super().__init__(path, f"format version {major}.{minor} is not supported (this reader understands 1.x); use a newer nnconv")
        self.major, self.minor = major, minor


class UnknownFlags(NNMError):
    def __init__(self, path: str, flags: int) -> None:
        super().__init__(path, f"the file uses features this reader does not know (flags 0x{flags:x})")
        self.flags = flags


class PreambleChecksumMismatch(NNMError):
    def __init__(self, path: str) -> None:
        super().__init__(path, "corrupt: the preamble checksum does not match")


class HeaderTooLarge(NNMError):
    def __init__(self, path: str, size: int, limit: int) -> None:
        super().__init__(path, f"the metadata header is {size} bytes, more than the limit of {limit}")
        self.size, self.limit = size, limit


class HeaderChecksumMismatch(NNMError):
    def __init__(self, path: str) -> None:
        super().__init__(path, "corrupt: the metadata header checksum does not match")


class InvalidJSON(NNMError):
    def __init__(self, path: str, detail: str) -> None:
        super().__init__(path, f"the metadata header is not valid JSON: {detail}")


class BadLayout(NNMError):
    """The preamble's sizes do not describe the file (declared length vs actual, bad offsets)."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(path, f"corrupt layout: {detail}")


class BadTensorEntry(NNMError):
    """An entry of the tensor table is malformed."""

    def __init__(self, path: str, location: str, detail: str) -> None:
        super().__init__(path, f"{location}: {detail}")
        self.location = location


class OverlappingTensors(NNMError):
    def __init__(self, path: str, first: str, second: str) -> None:
        super().__init__(path, f"tensors '{first}' and '{second}' overlap or are out of order")
        self.first, self.second = first, second


class NonZeroPadding(NNMError):
    def __init__(self, path: str, offset: int) -> None:
        super().__init__(path, f"corrupt: padding byte at offset {offset} is not zero")
        self.offset = offset


class ChecksumMismatch(NNMError):
    def __init__(self, path: str, tensor: str, expected: int, found: int) -> None:
        super().__init__(path, f"corrupt: tensor '{tensor}' fails its checksum (stored crc32 {expected:08x}, computed {found:08x})")
        self.tensor, self.expected, self.found = tensor, expected, found


class ModelProblem(Exception):
    """What is wrong with a model's description or tensors (`ModelError` in Sources/NNCore),
    before a path is known; `InvalidModel` carries it with the path."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @staticmethod
    def invalid_field(location: str, expected: str, found: str) -> "ModelProblem":
        return ModelProblem(f"{location}: expected {expected}, found {found}")

    @staticmethod
    def missing_tensor(location: str, name: str) -> "ModelProblem":
        return ModelProblem(f"{location}: names tensor '{name}', which the model does not contain")

    @staticmethod
    def shape_mismatch(tensor: str, expected: List[int], found: List[int]) -> "ModelProblem":
        return ModelProblem(f"tensor '{tensor}': expected shape {describe_shape(expected)}, found {describe_shape(found)}")

    @staticmethod
    def unsupported_dtype(tensor: str, dtype: str) -> "ModelProblem":
        return ModelProblem(f"tensor '{tensor}': dtype {dtype} cannot be used here (expected f16, bf16, f32 or f64)")

    @staticmethod
    def do_not_chain(location: str, expected: int, found: int) -> "ModelProblem":
        return ModelProblem(f"{location}: input size {found} does not match the previous output size {expected}")


class InvalidModel(NNMError):
    """The metadata or tensors are inconsistent (shapes that do not chain, missing tensors, ...)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(path, problem)
        self.problem = problem


class CannotCreate(NNMError):
    """The output file could not be created (a missing directory, no permission): exit status 73."""

    exit_status = EXIT_CANNOT_CREATE
    category = "cannot create"

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, f"cannot write: {reason}")
        self.reason = reason


class WriteFailed(NNMError):
    """Writing failed part-way; the previous file, if any, is unchanged: exit status 74."""

    exit_status = EXIT_WRITE_FAILED
    category = "write failed"

    def __init__(self, path: str, reason: str, cause: Optional[BaseException] = None) -> None:
        super().__init__(path, f"write failed: {reason}; the previous file, if any, is unchanged")
        self.reason = reason
