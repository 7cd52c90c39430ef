"""Helpers for tests that edit real SCP-ECG files: locate sections, recompute CRCs."""

from __future__ import annotations

import binascii


def crc(data: bytes) -> int:
    """CRC-CCITT (initial 0xFFFF), as SCP-ECG computes it."""
    return binascii.crc_hqx(data, 0xFFFF)


def pointers(data: bytes) -> dict[int, tuple[int, int]]:
    """{section id: (0-based start, length)} from section 0 (sections of length 0 left out)."""
    out = {}
    end = min(len(data), 6 + int.from_bytes(data[10:14], "little"))
    for pos in range(22, end - 9, 10):
        sid, length, index = (int.from_bytes(data[pos + a:pos + b], "little")
                              for a, b in ((0, 2), (2, 6), (6, 10)))
        if length:
            out[sid] = (index - 1, length)
    return out


def fix_crcs(data: bytearray) -> None:
    """Recompute every section CRC (where the section lies inside `data`) and the record CRC."""
    for start, length in pointers(data).values():
        if 0 <= start and start + length <= len(data) and length >= 2:
            data[start:start + 2] = crc(bytes(data[start + 2:start + length])).to_bytes(2, "little")
    if len(data) >= 2:
        data[0:2] = crc(bytes(data[2:])).to_bytes(2, "little")
