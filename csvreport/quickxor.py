"""QuickXorHash: the content hash SharePoint and OneDrive for Business report for a file.

Microsoft's description: a 160-bit block; byte i of the input is XORed into the block at
bit offset (11 * i) mod 160, wrapping around; the block is stored little-endian, and the
input length (64 bits, little-endian) is XORed into its last eight bytes. The hash is the
20 bytes in base64, as in `file.hashes.quickXorHash`.

Bytes 160 apart land on the same offset (11 * 160 is a multiple of 160), so the input is
first folded: every 160-byte block XORed together as one integer. Only the 160 folded bytes
are then placed, which keeps the cost per byte at a big-integer XOR.
"""

from __future__ import annotations

import base64
from pathlib import Path

WIDTH_BITS = 160
SHIFT = 11
BLOCK = 160  # bytes whose offsets repeat: 160 * 11 bits is a whole number of widths
_MASK = (1 << WIDTH_BITS) - 1
READ_CHUNK = BLOCK * 8192  # a multiple of BLOCK keeps the fold aligned


class QuickXorHash:
    def __init__(self) -> None:
        self._folded = 0  # XOR of every whole 160-byte block, as a little-endian integer
        self._pending = b""  # the bytes after the last whole block
        self._length = 0

    def update(self, data: bytes) -> None:
        self._length += len(data)
        if self._pending:
            data = self._pending + data
        whole = len(data) - len(data) % BLOCK
        folded = self._folded
        view = memoryview(data)
        for start in range(0, whole, BLOCK):
            folded ^= int.from_bytes(view[start:start + BLOCK], "little")
        self._folded = folded
        self._pending = bytes(view[whole:])

    def digest(self) -> bytes:
        folded = self._folded ^ int.from_bytes(self._pending, "little")
        block = 0
        for index, value in enumerate(folded.to_bytes(BLOCK, "little")):
            if value:
                offset = (index * SHIFT) % WIDTH_BITS
                placed = value << offset
                block ^= (placed | (placed >> WIDTH_BITS)) & _MASK
        out = bytearray(block.to_bytes(WIDTH_BITS // 8, "little"))
        for i, byte in enumerate(self._length.to_bytes(8, "little")):
            out[WIDTH_BITS // 8 - 8 + i] ^= byte
        return bytes(out)

    def b64digest(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


def of_file(path: Path) -> str:
    """The base64 QuickXorHash of a file, as SharePoint reports it."""
    hasher = QuickXorHash()
    with open(path, "rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            hasher.update(chunk)
    return hasher.b64digest()
