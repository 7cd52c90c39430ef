"""SCP-ECG sample coding: Huffman tables (section 2) and first / second differences.

EN 1064 (ISO 11073-91064) stores each lead of section 5 (reference beats) and 6
(rhythm) as its own Huffman bit stream, most significant bit first, starting on a
byte boundary. A code is a prefix of `prefix_bits`; when `total_bits` is larger,
the remaining bits hold the value itself (two's complement). A code whose mode
is 0 switches to another table instead of giving a value.

The decoder is vectorised: the 56 bits that follow every bit position are read
at once (`_windows`), every position's code length is looked up, and the chain
of code starts is followed by pointer doubling, so a 10 s 12-lead record
decodes in about a millisecond instead of the ~50 ms of a bit-by-bit loop. A
stream that switches tables (rare) takes a plain loop over the codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import CorruptFileError, UnsupportedFormatError

#: Section 2's "number of tables" value meaning "the default table of the standard".
DEFAULT_TABLE_MARK = 19999
_WINDOW = 56  # bits read after each position (a 64-bit word shifted by up to 7 bits)
_MAX_TABLES = 64
#: Longest Huffman stream of one lead (bytes): ~500 000 samples, 15 min at 500 Hz. The
#: vectorised decoder holds ~40 bytes per bit of the streams it decodes at once.
MAX_STREAM_BYTES = 256 * 1024
_BATCH_BYTES = 512 * 1024
_MAX_CODES = 4096


@dataclass(frozen=True)
class HuffmanCode:
    """One row of a Huffman table: `code` is the prefix, first bit most significant."""

    prefix_bits: int
    total_bits: int
    mode: int  # 1: a value code; 0: switch to table number `value` (1-based)
    value: int
    code: int


def default_table() -> list[HuffmanCode]:
    """The standard's default table: 0 -> '0'; +-k (k = 1..8) -> k ones, '0', sign bit;
    '1111111110' + 8-bit value; '1111111111' + 16-bit value."""
    codes = [HuffmanCode(1, 1, 1, 0, 0)]
    for k in range(1, 9):
        ones = (1 << k) - 1
        codes.append(HuffmanCode(k + 2, k + 2, 1, k, ones << 2))
        codes.append(HuffmanCode(k + 2, k + 2, 1, -k, (ones << 2) | 1))
    codes.append(HuffmanCode(10, 18, 1, 0, 0b1111111110))
    codes.append(HuffmanCode(10, 26, 1, 0, 0b1111111111))
    return codes


def parse_tables(body: bytes, what: str) -> list[list[HuffmanCode]]:
    """Tables of a section 2 body (after the 16-byte section header).

    Each code is 9 bytes: prefix bits, total bits, mode, base value (int16),
    base code (uint32, stored bit-reversed: the first bit in the lowest bit)."""
    if len(body) < 2:
        raise CorruptFileError(f"{what}: the Huffman table section is too short.")
    count = int.from_bytes(body[0:2], "little")
    if count == DEFAULT_TABLE_MARK:
        return [default_table()]
    if not 0 < count <= _MAX_TABLES:
        raise CorruptFileError(f"{what}: the Huffman table section declares {count} tables.")
    tables, pos = [], 2
    for t in range(count):
        if pos + 2 > len(body):
            raise CorruptFileError(f"{what}: Huffman table {t + 1} is truncated.")
        n = int.from_bytes(body[pos:pos + 2], "little")
        pos += 2
        if not 0 < n <= _MAX_CODES or pos + 9 * n > len(body):
            raise CorruptFileError(f"{what}: Huffman table {t + 1} declares {n} codes "
                                   f"that the section does not hold.")
        codes = []
        for _ in range(n):
            prefix, total, mode = body[pos], body[pos + 1], body[pos + 2]
            value = int.from_bytes(body[pos + 3:pos + 5], "little", signed=True)
            stored = int.from_bytes(body[pos + 5:pos + 9], "little")
            pos += 9
            if not 1 <= prefix <= 32 or total < prefix or total > _WINDOW:
                raise CorruptFileError(f"{what}: a Huffman code of {prefix} prefix bits and "
                                       f"{total} bits in all is impossible.")
            code = int(format(stored & ((1 << prefix) - 1), f"0{prefix}b")[::-1], 2)
            codes.append(HuffmanCode(prefix, total, mode, value, code))
        tables.append(codes)
    return tables


@dataclass(frozen=True)
class _Lookup:
    """A table as arrays indexed by the next `bits` bits of the stream."""

    bits: int
    total: np.ndarray  # int64 [2**bits]: code length incl. value bits; 0 = no such code
    prefix: np.ndarray  # int64 [2**bits]
    value: np.ndarray  # int64 [2**bits]
    mode: np.ndarray  # int64 [2**bits]


def _lookup(codes: list[HuffmanCode], what: str) -> _Lookup:
    bits = max(c.prefix_bits for c in codes)
    if bits > 20:
        raise UnsupportedFormatError(f"{what}: Huffman codes longer than 20 bits are not supported.")
    size = 1 << bits
    total, prefix = np.zeros(size, np.int64), np.zeros(size, np.int64)
    value, mode = np.zeros(size, np.int64), np.zeros(size, np.int64)
    for c in codes:
        lo = c.code << (bits - c.prefix_bits)
        hi = (c.code + 1) << (bits - c.prefix_bits)
        total[lo:hi], prefix[lo:hi], value[lo:hi], mode[lo:hi] = c.total_bits, c.prefix_bits, c.value, c.mode
    return _Lookup(bits, total, prefix, value, mode)


def _words(data: bytes) -> np.ndarray:
    """uint64 `[len(data)]`: the big-endian 64-bit word starting at each byte (zeros past the end)."""
    padded = np.frombuffer(bytes(data) + bytes(8), dtype=np.uint8)
    word = padded[:len(data)].astype(np.uint64)
    for k in range(1, 8):
        word = (word << np.uint64(8)) | padded[k:k + len(data)].astype(np.uint64)
    return word


def _windows_at(words: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """uint64: the `_WINDOW` bits starting at each bit position of `positions`."""
    shift = (positions & 7).astype(np.uint64)
    return (words[positions >> 3] << shift) >> np.uint64(64 - _WINDOW)


def _windows(data: bytes) -> np.ndarray:
    """uint64 `[8 * len(data)]`: the `_WINDOW` bits starting at every bit position."""
    return _windows_at(_words(data), np.arange(8 * len(data), dtype=np.int64))


def decode(data: bytes, count: int, tables: list[list[HuffmanCode]], what: str) -> np.ndarray:
    """`count` values (int64) of one lead's Huffman stream `data` (see `decode_leads`)."""
    return decode_leads([data], [count], tables, [what])[0]


def decode_leads(streams: list[bytes], counts: list[int], tables: list[list[HuffmanCode]],
                 whats: list[str]) -> list[np.ndarray]:
    """The values (int64 `[counts[i]]`) of each lead's Huffman stream `streams[i]`.

    All streams are decoded together (one pass over their bits). `whats[i]` names the
    lead in messages.

    Raises:
        CorruptFileError: a stream ends early or holds a code the table lacks.
    """
    for data, count, what in zip(streams, counts, whats):
        if count and not data:
            raise CorruptFileError(f"{what}: the lead holds no data but should have {count} samples.")
        if len(data) > MAX_STREAM_BYTES:
            raise UnsupportedFormatError(f"{what}: a lead's compressed data is {len(data)} bytes, that "
                                         f"of a long-term recording; this program reads resting ECGs "
                                         f"(at most {MAX_STREAM_BYTES} bytes per lead).")
    lookups = [_lookup(t, whats[0]) for t in tables]
    if len(tables) == 1 and not any(c.mode == 0 for c in tables[0]):
        out: list[np.ndarray] = []
        batch: list[int] = []
        for i in range(len(streams) + 1):  # leads in batches of at most _BATCH_BYTES
            held = sum(len(streams[j]) for j in batch)
            if batch and (i == len(streams) or held + len(streams[i]) > _BATCH_BYTES):
                out += _decode_single([streams[j] for j in batch], [counts[j] for j in batch], lookups[0],
                                      [whats[j] for j in batch])
                batch = []
            if i < len(streams):
                batch.append(i)
        return out
    return [_decode_switching(_windows(data), 8 * len(data), count, lookups, what)
            for data, count, what in zip(streams, counts, whats)]


def _values(win: np.ndarray, lk: _Lookup, idx: np.ndarray) -> np.ndarray:
    """The values of the codes whose index into `lk` is `idx` and windows are `win`."""
    total, prefix = lk.total[idx], lk.prefix[idx]
    extra = total - prefix
    raw = ((win >> (_WINDOW - total).astype(np.uint64)).astype(np.int64)
           & ((np.int64(1) << extra) - 1))
    signed = np.where((extra > 0) & (raw >= (np.int64(1) << np.maximum(extra - 1, 0))),
                      raw - (np.int64(1) << extra), raw)
    return lk.value[idx] + np.where(extra > 0, signed, 0)


def _decode_single(streams: list[bytes], counts: list[int], lk: _Lookup,
                   whats: list[str]) -> list[np.ndarray]:
    sizes = np.array([8 * len(s) for s in streams], np.int64)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    data = b"".join(streams)
    n = 8 * len(data)
    words = _words(data)
    # code length at every bit position, from the first lk.bits bits there (<= 20, so the
    # 32-bit word at each byte holds them at any shift 0-7)
    top = (words >> np.uint64(32)).astype(np.uint32)
    idx = ((top[:, None] << np.arange(8, dtype=np.uint32)[None, :]) >> np.uint32(32 - lk.bits)).ravel()
    length = lk.total.astype(np.int32)[idx]
    # next code start after each position (an invalid code, length 0, loops on itself;
    # the checks below catch it and a code running past its lead's stream)
    nxt = np.arange(n + 1, dtype=np.int32)
    nxt[:n] += length
    np.minimum(nxt, n, out=nxt)
    # the code starts of each lead: jumps of 1, 2, 4 .. 2**k codes by doubling over all bits,
    # then every 2**k-th start by a short loop over the leads together, then the rest filled in
    want = max(counts)
    jumps = [nxt]
    while len(jumps) < 6 and (1 << len(jumps)) < want:
        jumps.append(jumps[-1][jumps[-1]])
    stride = 1 << (len(jumps) - 1)
    coarse = np.empty((len(streams), -(-want // stride)), np.int32)
    coarse[:, 0] = starts
    far = jumps[-1]
    for j in range(1, coarse.shape[1]):
        coarse[:, j] = far[coarse[:, j - 1]]
    positions = coarse[:, :, None]
    for jump in jumps[:-1]:  # [p] -> [p, p+1] -> [p .. p+3] -> ...: in order
        positions = np.concatenate((positions, jump[positions]), axis=2)
    positions = positions.reshape(len(streams), -1)
    for row, count, start, size, what in zip(positions, counts, starts, sizes, whats):
        row = row[:count]
        stuck = np.flatnonzero(np.diff(row) <= 0)  # an invalid code: no progress
        last = int(row[-1]) if stuck.size == 0 else -1
        if stuck.size or last >= start + size or last + int(length[last]) > start + size:
            done = int(stuck[0]) if stuck.size else int(np.searchsorted(row, start + size))
            raise CorruptFileError(f"{what}: the Huffman data ends or breaks after {min(done, count - 1)} "
                                   f"of {count} samples. The file is damaged; export it again.")
    flat = np.minimum(positions[:, :want], n - 1).astype(np.int64).ravel()  # one pass for all leads
    values = _values(_windows_at(words, flat), lk, idx[flat].astype(np.int64)).reshape(len(streams), want)
    return [values[i, :count] for i, count in enumerate(counts)]


def _decode_switching(win: np.ndarray, nbits: int, count: int, lookups: list[_Lookup],
                      what: str) -> np.ndarray:
    out = np.empty(count, np.int64)
    lk, pos, i = lookups[0], 0, 0
    switches = 0
    while i < count:
        if pos >= nbits:
            raise CorruptFileError(f"{what}: the Huffman data ends after {i} of {count} samples.")
        w = win[pos]
        j = int(w >> np.uint64(_WINDOW - lk.bits))
        total = int(lk.total[j])
        if total == 0 or pos + total > nbits:
            raise CorruptFileError(f"{what}: invalid Huffman code at bit {pos}.")
        if lk.mode[j] == 0:
            target = int(lk.value[j])
            switches += 1
            if not 1 <= target <= len(lookups) or switches > 8 * count + 64:
                raise CorruptFileError(f"{what}: the Huffman data switches to table {target}, "
                                       f"which the file does not define.")
            lk = lookups[target - 1]
            pos += total
            continue
        out[i] = _values(np.array([w]), lk, np.array([j]))[0]
        pos += total
        i += 1
    return out


def undo_differences(values: np.ndarray, mode: int) -> np.ndarray:
    """Amplitudes (int64) from `values` stored as is (0), first (1) or second (2) differences.

    x[0] = d[0]; first: x[n] = d[n] + x[n-1]; second: x[1] = d[1],
    x[n] = d[n] + 2 x[n-1] - x[n-2]. Samples are 16-bit in SCP-ECG: as in the
    reference decoders (ECG Toolkit, ecgdatakit), the result wraps to int16 so that
    encoders using 16-bit arithmetic decode exactly."""
    if mode == 0 or len(values) == 0:
        out = values
    elif mode == 1:
        out = np.cumsum(values)
    elif len(values) < 3:
        out = values.copy()
    else:
        slope = np.empty(len(values) - 1, np.int64)
        slope[0] = values[1] - values[0]
        slope[1:] = slope[0] + np.cumsum(values[2:])
        out = np.concatenate(([values[0]], values[0] + np.cumsum(slope)))
    return out.astype(np.int16).astype(np.int64)
