"""A heat map as PNG bytes, with the standard library only (zlib + struct).

`heatmap_png(rows)` takes rows of values in [0, 1] and returns an 8-bit RGB PNG coloured
with an inferno-like ramp (black, purple, orange, pale yellow), scaled up by whole pixels
so small maps stay visible. Writes nothing: the CLI owns the file.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

# (position, (r, g, b)) anchors of the colour ramp, linearly interpolated.
RAMP = (
    (0.0, (0, 0, 4)),
    (0.25, (87, 16, 110)),
    (0.5, (188, 55, 84)),
    (0.75, (249, 142, 9)),
    (1.0, (252, 255, 164)),
)


def colour(value: float) -> tuple[int, int, int]:
    """The ramp's colour at `value` (clamped to [0, 1])."""
    v = min(max(value, 0.0), 1.0)
    for (a, ca), (b, cb) in zip(RAMP, RAMP[1:]):
        if v <= b:
            t = (v - a) / (b - a)
            return tuple(round(x + (y - x) * t) for x, y in zip(ca, cb))  # type: ignore[return-value]
    return RAMP[-1][1]


def _chunk(chunk_type: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + chunk_type + data + struct.pack(">I", zlib.crc32(chunk_type + data))


def heatmap_png(rows: Sequence[Sequence[float]], min_size: int = 256) -> bytes:
    """RGB PNG of `rows` (values in [0, 1]), each pixel repeated to reach `min_size`."""
    height, width = len(rows), len(rows[0]) if rows else 0
    if not height or not width:
        raise ValueError("an image needs at least one pixel")
    scale = max(1, -(-min_size // max(height, width)))
    raw = bytearray()
    for row in rows:
        line = bytearray(b"\x00")  # filter type 0 (none)
        for value in row:
            line += bytes(colour(value)) * scale
        raw += bytes(line) * scale
    header = struct.pack(">IIBBBBB", width * scale, height * scale, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + _chunk(b"IEND", b""))
