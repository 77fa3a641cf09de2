"""Synthetic phone screenshots: a 2-bit palette PNG drawn from the scripted screen alone, so
replicas and reruns send identical images. Drawn once per screen and size for the process,
off the event loop before the first step (`warm_screenshot`)."""

from __future__ import annotations

import asyncio
import base64
import random
import struct
import zlib

DEFAULT_SCREENSHOT = (1080, 2400)


def _png(width: int, height: int, palette: bytes, rows: list[bytes]) -> bytes:
    """A 2-bit palette PNG (four colours: small to build, small to send)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + row for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 2, 3, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"PLTE", palette)
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


_SHOTS: dict[tuple[str, int, int, int], str] = {}  # drawn once per screen, size and weight, for the process
MAX_SCREENSHOT_BYTES = 16 << 20
PAD_CHUNK = b"paDd"  # a private ancillary PNG chunk: viewers and models skip it, the wire carries it


def cached_screenshot(screen_json: str, width: int, height: int, pad_to: int = 0) -> str:
    key = (screen_json, width, height, pad_to)
    found = _SHOTS.get(key)
    if found is None:
        found = _SHOTS[key] = screenshot(screen_json, width, height, pad_to)
    return found


async def warm_screenshot(screen_json: str, width: int, height: int, pad_to: int = 0) -> None:
    """Draw a screen's screenshot off the event loop (about 40 ms of CPU, once per screen)."""
    key = (screen_json, width, height, pad_to)
    if key not in _SHOTS:
        _SHOTS[key] = await asyncio.to_thread(screenshot, screen_json, width, height, pad_to)


def padded(png: bytes, size: int, seed: int) -> bytes:
    """`png` grown to `size` bytes with a private chunk of incompressible bytes (a real
    screenshot's weight on the wire: a phone's PNG is tens to hundreds of KB), the image
    itself unchanged. A PNG already that large, or a size too small for a chunk, is kept."""
    extra = size - len(png) - 12  # length, type and CRC of the chunk
    if extra <= 0:
        return png
    data = random.Random(seed).randbytes(extra)
    chunk = struct.pack(">I", extra) + PAD_CHUNK + data + struct.pack(">I", zlib.crc32(PAD_CHUNK + data) & 0xFFFFFFFF)
    end = png.rindex(b"IEND") - 4  # before the IEND chunk's length
    return png[:end] + chunk + png[end:]


def screenshot(screen_json: str, width: int, height: int, pad_to: int = 0) -> str:
    """A synthetic phone screenshot as base64 PNG, derived only from the scripted screen, so
    replicas (and reruns) send identical images: a status bar, an app-coloured header and
    list rows whose layout follows the screen's content. About 5 ms to draw. With `pad_to`,
    the PNG weighs that many bytes (see `padded`)."""
    seed = zlib.crc32(screen_json.encode())
    colour = bytes((((seed >> 16) & 0x7F) + 64, ((seed >> 8) & 0x7F) + 64, (seed & 0x7F) + 64))
    palette = b"\x20\x20\x20" + colour + b"\xf4\xf4\xf4" + b"\xdc\xdc\xdc"  # dark, app colour, white, grey
    packed = (width + 3) // 4  # four 2-bit pixels a byte

    def row(*segments: tuple[int, int]) -> bytes:  # (palette index, pixels), cut on 4-pixel edges
        out = b""
        for index, pixels in segments:
            out += bytes((index * 0x55,)) * (pixels // 4)
        return out.ljust(packed, bytes((3 * 0x55,)))[:packed]

    dark, band, line = row((0, width)), row((1, width)), row((3, width))
    rows: list[bytes] = []
    bar, header = height // 40, height // 10
    row_h = max(8, height // (8 + seed % 5))
    for y in range(height):
        if y < bar:
            rows.append(dark)
        elif y < bar + header:
            rows.append(band)
        else:
            k, inner = divmod(y - bar - header, row_h)
            if inner < 2:
                rows.append(line)
            else:
                cut = width * (3 + (seed >> (k % 24)) % 5) // 10
                icon = width // 8 if inner < row_h // 3 else 0
                rows.append(row((1, icon), (2, cut - icon), (3, width - cut)))
    return base64.b64encode(padded(_png(width, height, palette, rows), pad_to, seed)).decode()
