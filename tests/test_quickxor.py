"""QuickXorHash against published vectors and against a bit-by-bit reading of Microsoft's description."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from csvreport.quickxor import QuickXorHash, of_file


def bitwise(data: bytes) -> str:
    """Microsoft's description taken literally, one bit at a time: bit j of byte i goes to bit
    (11 * i + j) mod 160 of a 160-bit block stored little-endian; the 64-bit little-endian length
    is XORed into the block's last 8 bytes."""
    bits = [0] * 160
    for i, byte in enumerate(data):
        for j in range(8):
            if byte >> j & 1:
                bits[(11 * i + j) % 160] ^= 1
    block = bytearray(20)
    for n, bit in enumerate(bits):
        block[n // 8] |= bit << (n % 8)
    for k, byte in enumerate(len(data).to_bytes(8, "little")):
        block[12 + k] ^= byte
    return base64.b64encode(bytes(block)).decode()


def qxh(data: bytes, pieces: int = 1) -> str:
    hasher = QuickXorHash()
    step = max(1, len(data) // pieces)
    for start in range(0, len(data), step):
        hasher.update(data[start:start + step])
    return hasher.b64digest()


def test_published_vectors():
    # The empty input and "hello world", as other implementations of the algorithm publish them.
    assert qxh(b"") == "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
    assert qxh(b"hello world") == "aCgDG9jwBhDc4Q1yawMZAAAAAAA="
    assert bitwise(b"hello world") == "aCgDG9jwBhDc4Q1yawMZAAAAAAA="


def test_wrap_around_and_block_boundaries_match_the_bitwise_reading():
    # 15 bytes reach bit 154+8 > 160 (a byte split across the wrap); 160, 161, 320 and 1000 cross folds.
    for size in (1, 14, 15, 16, 159, 160, 161, 319, 320, 321, 1000):
        data = bytes((i * 37 + 11) % 256 for i in range(size))
        assert qxh(data) == bitwise(data), size
        assert qxh(data, pieces=7) == bitwise(data), size


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=700), st.integers(min_value=1, max_value=9))
def test_any_input_in_any_pieces(data, pieces):
    assert qxh(data, pieces) == bitwise(data)


def test_of_file_reads_in_chunks(tmp_path):
    data = bytes(range(256)) * 5000 + b"tail"
    path = tmp_path / "x.bin"
    path.write_bytes(data)
    assert of_file(path) == qxh(data, pieces=3)
    small = tmp_path / "s.bin"
    small.write_bytes(data[:3000])
    assert of_file(small) == bitwise(data[:3000])
