"""The `.nnm` header's JSON dialect: strict parsing with the Swift reader's limits and messages,
and the Swift writer's deterministic serialization (so files are byte-identical).

Parsing takes a fast path through the standard library's `json` with hooks that reject what the
format forbids (duplicate names, NaN, too deep nesting, unpaired surrogates, numbers out of
range); when anything is wrong, a plain port of the Swift scanner (`_Scanner`) reads the text
again to report the same message, at the same byte offset, as `nnconv`.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Tuple

MAXIMUM_DEPTH = 64
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


class JSONParseError(Exception):
    """Why a JSON text was rejected; `offset` is the byte position in the text."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(f"invalid JSON at byte {offset}: {message}")
        self.offset = offset
        self.message = message


class _Reject(Exception):
    """Raised by the fast path's hooks: the text needs the exact scanner."""


def _integer(text: str) -> Any:
    if len(text) > 400:
        raise _Reject()
    value = int(text)
    if _INT64_MIN <= value <= _INT64_MAX:
        return value
    d = float(text)
    if not math.isfinite(d):
        raise _Reject()
    return d


def _number(text: str) -> float:
    if len(text) > 400:
        raise _Reject()
    d = float(text)
    if not math.isfinite(d):
        raise _Reject()
    return d


def _constant(_: str) -> Any:
    raise _Reject()


def _pairs(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Reject()
        out[k] = v
    return out


def _has_surrogate(s: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in s) if not s.isascii() else False


def _check_tree(value: Any, depth: int) -> None:
    # A value inside `depth` containers: the Swift scanner refuses to read one at depth 64.
    if depth >= MAXIMUM_DEPTH:
        raise _Reject()
    if isinstance(value, dict):
        for k, v in value.items():
            if _has_surrogate(k):
                raise _Reject()
            _check_tree(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_tree(v, depth + 1)
    elif isinstance(value, str) and _has_surrogate(value):
        raise _Reject()


def parse(data: bytes) -> Any:
    """Parses UTF-8 JSON text (RFC 8259) with the format's limits: at most 64 levels of
    nesting, no duplicate member names, no NaN, numbers of at most 400 characters that fit a
    double. Integers within int64 stay `int`, other numbers are `float`. Raises
    `JSONParseError` with the Swift reader's message and byte offset."""
    try:
        text = data.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_pairs, parse_int=_integer,
                           parse_float=_number, parse_constant=_constant)
        _check_tree(value, 0)
        return value
    except (_Reject, ValueError, RecursionError, UnicodeDecodeError):
        pass
    scanner = _Scanner(bytes(data))
    value = scanner.read_value()
    scanner.read_end()
    return value  # the stdlib and the scanner disagree: trust the port of the Swift reader


_WS = b" \t\n\r"
_DIGITS = b"0123456789"


class _Scanner:
    """A line-by-line port of `JSONScanner` in Sources/NNCore/JSON.swift (the slow, exact path)."""

    def __init__(self, data: bytes) -> None:
        self.b = data
        self.pos = 0
        self.depth = 0

    def fail(self, message: str) -> JSONParseError:
        return JSONParseError(self.pos, message)

    def skip_ws(self) -> None:
        b, n = self.b, len(self.b)
        while self.pos < n and b[self.pos] in _WS:
            self.pos += 1

    def read_end(self) -> None:
        self.skip_ws()
        if self.pos != len(self.b):
            raise self.fail("unexpected text after the document")

    def read_value(self) -> Any:
        if self.depth >= MAXIMUM_DEPTH:
            raise self.fail(f"nesting deeper than {MAXIMUM_DEPTH} levels")
        self.skip_ws()
        if self.pos >= len(self.b):
            raise self.fail("unexpected end of text")
        c = self.b[self.pos]
        if c == 0x7B:  # {
            obj: Dict[str, Any] = {}
            self.open(0x7B, "an object")
            started = False
            while True:
                key = self.next_member(started, obj)
                if key is None:
                    return obj
                started = True
                obj[key] = self.read_value()
        if c == 0x5B:  # [
            arr: List[Any] = []
            self.open(0x5B, "an array")
            started = False
            while self.next_element(started):
                started = True
                arr.append(self.read_value())
            return arr
        if c == 0x22:
            return self.parse_string()
        if c == ord("t"):
            self.literal(b"true")
            return True
        if c == ord("f"):
            self.literal(b"false")
            return False
        if c == ord("n"):
            self.literal(b"null")
            return None
        if c == ord("-") or c in _DIGITS:
            return self.parse_number()
        raise self.fail(f"unexpected character '{chr(c)}'")

    def literal(self, lit: bytes) -> None:
        if self.pos + len(lit) > len(self.b):
            raise self.fail("unexpected end of text")
        for i, ch in enumerate(lit):
            if self.b[self.pos + i] != ch:
                raise self.fail("invalid literal")
        self.pos += len(lit)

    def open(self, bracket: int, what: str) -> None:
        if self.depth >= MAXIMUM_DEPTH:
            raise self.fail(f"nesting deeper than {MAXIMUM_DEPTH} levels")
        self.skip_ws()
        if self.pos >= len(self.b) or self.b[self.pos] != bracket:
            raise self.fail(f"expected {what}")
        self.pos += 1
        self.depth += 1

    def next_member(self, started: bool, seen: Dict[str, Any]) -> Any:
        b = self.b
        self.skip_ws()
        if self.pos >= len(b):
            raise self.fail("unexpected end of text in an object" if started else "expected a member name in quotes")
        if started:
            if b[self.pos] == 0x7D:
                self.pos += 1
                self.depth -= 1
                return None
            if b[self.pos] != 0x2C:
                raise self.fail("expected ',' or '}'")
            self.pos += 1
            self.skip_ws()
        elif b[self.pos] == 0x7D:
            self.pos += 1
            self.depth -= 1
            return None
        if self.pos >= len(b) or b[self.pos] != 0x22:
            raise self.fail("expected a member name in quotes")
        key = self.parse_string()
        if key in seen:
            raise self.fail(f'duplicate member name "{key}"')
        seen[key] = None  # reserved; the caller stores the value
        self.skip_ws()
        if self.pos >= len(b) or b[self.pos] != 0x3A:
            raise self.fail("expected ':'")
        self.pos += 1
        return key

    def next_element(self, started: bool) -> bool:
        b = self.b
        self.skip_ws()
        if self.pos >= len(b):
            raise self.fail("unexpected end of text in an array" if started else "unexpected end of text")
        if b[self.pos] == 0x5D:
            self.pos += 1
            self.depth -= 1
            return False
        if started:
            if b[self.pos] != 0x2C:
                raise self.fail("expected ',' or ']'")
            self.pos += 1
        return True

    def hex4(self) -> int:
        if self.pos + 4 > len(self.b):
            raise self.fail("unexpected end of text in a \\u escape")
        v = 0
        for _ in range(4):
            c = self.b[self.pos]
            if 0x30 <= c <= 0x39:
                d = c - 0x30
            elif 0x61 <= c <= 0x66:
                d = c - 0x61 + 10
            elif 0x41 <= c <= 0x46:
                d = c - 0x41 + 10
            else:
                raise self.fail("invalid \\u escape")
            v = v << 4 | d
            self.pos += 1
        return v

    def parse_string(self) -> str:
        b, n = self.b, len(self.b)
        self.pos += 1
        out: List[str] = []
        run_start = self.pos

        def flush(end: int) -> None:
            if end > run_start:
                try:
                    out.append(b[run_start:end].decode("utf-8"))
                except UnicodeDecodeError:
                    raise JSONParseError(run_start, "string is not valid UTF-8") from None

        escapes = {0x22: '"', 0x5C: "\\", 0x2F: "/", 0x62: "\b", 0x66: "\f", 0x6E: "\n", 0x72: "\r", 0x74: "\t"}
        while self.pos < n:
            c = b[self.pos]
            if c == 0x22:
                flush(self.pos)
                self.pos += 1
                return "".join(out)
            if c < 0x20:
                raise self.fail("control character in a string")
            if c == 0x5C:
                flush(self.pos)
                self.pos += 1
                if self.pos >= n:
                    break
                e = b[self.pos]
                self.pos += 1
                if e in escapes:
                    out.append(escapes[e])
                elif e == 0x75:
                    code = self.hex4()
                    if 0xD800 <= code < 0xDC00:
                        if not (self.pos + 2 <= n and b[self.pos] == 0x5C and b[self.pos + 1] == 0x75):
                            raise self.fail("unpaired surrogate")
                        self.pos += 2
                        low = self.hex4()
                        if not 0xDC00 <= low < 0xE000:
                            raise self.fail("unpaired surrogate")
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    if 0xD800 <= code < 0xE000:
                        raise self.fail("unpaired surrogate")
                    out.append(chr(code))
                else:
                    raise self.fail("invalid escape")
                run_start = self.pos
                continue
            self.pos += 1
        raise self.fail("unterminated string")

    def parse_number(self) -> Any:
        b, n = self.b, len(self.b)
        start = self.pos
        is_integer = True
        if b[self.pos] == 0x2D:
            self.pos += 1

        def digits() -> int:
            s = self.pos
            while self.pos < n and b[self.pos] in _DIGITS:
                self.pos += 1
            return self.pos - s

        int_start = self.pos
        int_digits = digits()
        if int_digits == 0:
            raise self.fail("invalid number")
        if int_digits > 1 and b[int_start] == 0x30:
            raise self.fail("leading zero in a number")
        if self.pos < n and b[self.pos] == 0x2E:
            is_integer = False
            self.pos += 1
            if digits() == 0:
                raise self.fail("invalid number")
        if self.pos < n and b[self.pos] in b"eE":
            is_integer = False
            self.pos += 1
            if self.pos < n and b[self.pos] in b"+-":
                self.pos += 1
            if digits() == 0:
                raise self.fail("invalid number")
        if self.pos - start > 400:
            raise self.fail("number too long")
        text = b[start:self.pos].decode("ascii")
        if is_integer:
            value = int(text)
            if _INT64_MIN <= value <= _INT64_MAX:
                return value
        d = float(text)
        if not math.isfinite(d):
            raise JSONParseError(start, "number out of range")
        return d


# ---- serialization, as JSONValue.serialized(indent:) in Sources/NNCore/JSON.swift ----

_TWO_53 = float(1 << 53)


def format_double(d: float) -> str:
    """A double as Swift's writer prints it: integral values below 1e15 as `N.0`, others in
    Swift's shortest round-trip form (Python's `repr`, except that Swift switches to the
    exponential form above 2^53 where Python waits until 1e16)."""
    if not math.isfinite(d):
        return "null"
    if d == math.floor(d) and abs(d) < 1e15:
        return str(int(d)) + ".0"
    text = repr(d)
    if _TWO_53 < abs(d) < 1e16:
        sign = "-" if d < 0 else ""
        digits = text.lstrip("-").split(".")[0].rstrip("0")  # 16 integer digits, exponent 15
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e+15"
    return text


def _string(s: str, out: List[str]) -> None:
    out.append('"')
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')


def _write(v: Any, out: List[str], indent: int, level: int) -> None:
    def newline(lv: int) -> None:
        if indent > 0:
            out.append("\n" + " " * (indent * lv))

    if type(v).__module__ == "numpy" and hasattr(v, "item"):
        v = v.item()  # NumPy scalars (np.float32(0.5), np.int64(3)) as the Python numbers they hold
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, int):
        if _INT64_MIN <= v <= _INT64_MAX:
            out.append(str(v))
        else:
            out.append(format_double(float(v)))
    elif isinstance(v, float):
        out.append(format_double(v))
    elif isinstance(v, str):
        _string(v, out)
    elif isinstance(v, (list, tuple)):
        if not v:
            out.append("[]")
            return
        flat = all(not isinstance(x, (list, tuple, dict)) for x in v)
        out.append("[")
        for i, x in enumerate(v):
            if i > 0:
                out.append(", " if flat and indent > 0 else ",")
            if not flat:
                newline(level + 1)
            _write(x, out, indent, level + 1)
        if not flat:
            newline(level)
        out.append("]")
    elif isinstance(v, dict):
        if not v:
            out.append("{}")
            return
        out.append("{")
        for i, (k, x) in enumerate(v.items()):
            if i > 0:
                out.append(",")
            newline(level + 1)
            _string(str(k), out)
            out.append(": " if indent > 0 else ":")
            _write(x, out, indent, level + 1)
        newline(level)
        out.append("}")
    else:
        raise TypeError(f"cannot store a {type(v).__name__} in the header")


def serialize(value: Any, indent: int = 1) -> str:
    """Serializes as the Swift writer does (`indent` 1 for the header): members in order,
    arrays of scalars on one line, non-finite numbers as null."""
    out: List[str] = []
    _write(value, out, indent, 0)
    return "".join(out)
