"""A small reader for ASN.1 DER (and the BER indefinite lengths AWS's PKCS#7 uses).

It exists because this script runs on the PE primary with Python 3.6 and the standard
library only: no third-party library may be installed there, so certificates, requests
and PKCS#7 signatures are read with these few functions.

Elements are ``(tag, value)``: ``tag`` is the identifier byte (0x30 SEQUENCE, 0x31 SET,
0xA0 context [0] constructed, ...), ``value`` the content octets. For an element of
indefinite length (BER, constructed only) the value is the encodings of its children
without the end-of-contents marker, so :func:`children` reads it like any other.
Every malformed or truncated input raises ``ValueError``.
"""

import base64
import binascii
import re
from typing import List, Tuple

INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
SEQUENCE = 0x30
SET = 0x31
CONSTRUCTED = 0x20

MAX_DEPTH = 32


def read(data: bytes, pos: int = 0, _depth: int = 0) -> Tuple[int, bytes, int, int]:
    """The element at ``pos``: (tag, value, start of the whole element, end of it)."""
    start = pos
    if pos + 2 > len(data):
        raise ValueError(f"truncated DER: no element header at offset {pos}")
    tag, length = data[pos], data[pos + 1]
    if tag & 0x1F == 0x1F:
        raise ValueError(f"multi-byte DER tags are not supported (offset {pos})")
    pos += 2
    if length == 0x80:  # indefinite length: children up to an end-of-contents marker
        if not tag & CONSTRUCTED:
            raise ValueError(f"indefinite length on a primitive element (offset {start})")
        if _depth >= MAX_DEPTH:
            raise ValueError("DER nested too deeply")
        end = pos
        while data[end : end + 2] != b"\x00\x00":
            end = read(data, end, _depth + 1)[3]
        return tag, data[pos:end], start, end + 2
    if length & 0x80:
        size = length & 0x7F
        if size > 4 or pos + size > len(data):
            raise ValueError(f"truncated or oversized DER length (offset {start})")
        length = int.from_bytes(data[pos : pos + size], "big")
        if length < 0x80 or data[pos] == 0:
            raise ValueError(f"non-minimal DER length (offset {start})")
        pos += size
    if pos + length > len(data):
        raise ValueError(
            f"truncated DER: element at offset {start} needs {length} bytes, {len(data) - pos} left"
        )
    return tag, data[pos : pos + length], start, pos + length


def children(data: bytes) -> List[Tuple[int, bytes, bytes]]:
    """(tag, value, whole encoding) of each element in ``data``, which they must fill exactly."""
    out = []
    pos = 0
    while pos < len(data):
        tag, value, start, pos = read(data, pos)
        out.append((tag, value, data[start:pos]))
    return out


def one(data: bytes, tag: int) -> bytes:
    """The value of the single element ``data`` holds, which must have ``tag``."""
    elements = children(data)
    if len(elements) != 1:
        raise ValueError(f"expected one DER element, found {len(elements)}")
    if elements[0][0] != tag:
        raise ValueError(f"expected DER tag 0x{tag:02x}, found 0x{elements[0][0]:02x}")
    return elements[0][1]


def expect(element: Tuple[int, bytes, bytes], tag: int) -> bytes:
    """The value of ``element`` (from :func:`children`), which must have ``tag``."""
    if element[0] != tag:
        raise ValueError(f"expected DER tag 0x{tag:02x}, found 0x{element[0]:02x}")
    return element[1]


def oid(value: bytes) -> str:
    """An OBJECT IDENTIFIER's value as dotted text, e.g. ``1.2.840.10040.4.3``."""
    if not value or value[-1] & 0x80:
        raise ValueError("truncated OBJECT IDENTIFIER")
    numbers = []
    number = 0
    for byte in value:
        if number == 0 and byte == 0x80:
            raise ValueError("non-minimal OBJECT IDENTIFIER")
        number = (number << 7) | (byte & 0x7F)
        if not byte & 0x80:
            numbers.append(number)
            number = 0
    first = min(numbers[0] // 40, 2)
    parts = [first, numbers[0] - 40 * first, *numbers[1:]]
    return ".".join(str(part) for part in parts)


def integer(value: bytes) -> int:
    """An INTEGER's value (two's complement, as DER encodes it)."""
    if not value:
        raise ValueError("empty INTEGER")
    return int.from_bytes(value, "big", signed=True)


def unsigned(value: bytes) -> int:
    """An INTEGER's value that must not be negative (keys, serial numbers, signatures)."""
    number = integer(value)
    if number < 0:
        raise ValueError("negative INTEGER")
    return number


def bit_string(value: bytes) -> bytes:
    """A BIT STRING's bytes; it must be whole bytes (no unused bits), as keys are."""
    if not value or value[0] != 0:
        raise ValueError("BIT STRING is not whole bytes")
    return value[1:]


def octet_string(tag: int, value: bytes) -> bytes:
    """An OCTET STRING's bytes, primitive (0x04) or constructed from chunks (0x24, BER)."""
    if tag == OCTET_STRING:
        return value
    if tag == OCTET_STRING | CONSTRUCTED:
        return b"".join(octet_string(chunk_tag, chunk) for chunk_tag, chunk, _ in children(value))
    raise ValueError(f"expected an OCTET STRING, found tag 0x{tag:02x}")


def pem_blocks(text: str, label: str) -> List[bytes]:
    """The DER of each ``-----BEGIN <label>-----`` block in ``text``, in order."""
    pattern = r"-----BEGIN {0}-----(.*?)-----END {0}-----".format(re.escape(label))
    blocks = []
    for body in re.findall(pattern, text, re.S):
        try:
            blocks.append(base64.b64decode("".join(body.split()), validate=True))
        except binascii.Error as error:
            raise ValueError(f"bad base64 in a PEM {label} block: {error}") from None
    return blocks
