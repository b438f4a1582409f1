"""Draws the two app icons with the standard library only (zlib + struct PNG writer).

    python -m appPackage.icons      # rewrites appPackage/color.png and appPackage/outline.png

color.png: 192×192, full colour (accent background, white phone with a check mark).
outline.png: 32×32, white on transparent (a phone outline), as Teams requires.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

Pixel = tuple[int, int, int, int]
HERE = Path(__file__).resolve().parent
ACCENT: Pixel = (0x0F, 0x6C, 0xBD, 255)
WHITE: Pixel = (255, 255, 255, 255)
GREEN: Pixel = (0x10, 0x7C, 0x10, 255)
CLEAR: Pixel = (0, 0, 0, 0)


def png(width: int, height: int, pixel: Callable[[int, int], Pixel]) -> bytes:
    """An 8-bit RGBA PNG (no interlace, filter 0 on every row)."""
    rows = b"".join(
        b"\x00" + b"".join(struct.pack("4B", *pixel(x, y)) for x in range(width)) for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def _in_rounded_rect(x: int, y: int, x0: int, y0: int, x1: int, y1: int, r: int) -> bool:
    if not (x0 <= x <= x1 and y0 <= y <= y1):
        return False
    cx = x0 + r if x < x0 + r else x1 - r if x > x1 - r else x
    cy = y0 + r if y < y0 + r else y1 - r if y > y1 - r else y
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def _near_segment(x: float, y: float, ax: float, ay: float, bx: float, by: float, width: float) -> bool:
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)))
    px, py = ax + t * dx, ay + t * dy
    return (x - px) ** 2 + (y - py) ** 2 <= (width / 2) ** 2


def color_pixel(x: int, y: int) -> Pixel:
    # A white phone (body 64..128 × 32..160) with an accent screen, a home dot and a green check badge.
    if (x - 130) ** 2 + (y - 134) ** 2 <= 30**2:
        inner = (x - 130) ** 2 + (y - 134) ** 2 <= 24**2
        if inner and (
            _near_segment(x, y, 117, 134, 126, 144, 7) or _near_segment(x, y, 126, 144, 144, 122, 7)
        ):
            return WHITE
        return GREEN if inner else WHITE
    if _in_rounded_rect(x, y, 58, 30, 126, 162, 14):
        if _in_rounded_rect(x, y, 66, 46, 118, 136, 4):
            return ACCENT
        if (x - 92) ** 2 + (y - 149) ** 2 <= 6**2:
            return ACCENT
        return WHITE
    return ACCENT


def outline_pixel(x: int, y: int) -> Pixel:
    # A phone outline, 2 px stroke, with a home dot: white, everything else transparent.
    outer = _in_rounded_rect(x, y, 9, 3, 22, 28, 3)
    inner = _in_rounded_rect(x, y, 11, 5, 20, 26, 1)
    dot = 14 <= x <= 17 and 22 <= y <= 23
    return WHITE if (outer and not inner) or dot else CLEAR


def write_icons(directory: Path = HERE) -> tuple[Path, Path]:
    color = directory / "color.png"
    outline = directory / "outline.png"
    color.write_bytes(png(192, 192, color_pixel))
    outline.write_bytes(png(32, 32, outline_pixel))
    return color, outline


if __name__ == "__main__":
    for path in write_icons():
        print(path)
