"""Screenshots of a real phone's weight: the drawn PNG grown to --screenshot-bytes with a
private chunk, still a valid PNG showing the same image."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest

from simulator.profiles import AutoglmProfile
from simulator.profiles.screenshot import screenshot


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk, each CRC checked."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    out, at = [], 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at:at + 4])
        kind, data = png[at + 4:at + 8], png[at + 8:at + 8 + length]
        (crc,) = struct.unpack(">I", png[at + 8 + length:at + 12 + length])
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF, kind
        out.append((kind, data))
        at += 12 + length
    assert at == len(png)
    return out


@pytest.mark.parametrize("size", [50_000, 100 * 1024, 400_000])
def test_a_padded_screenshot_weighs_what_was_asked_and_shows_the_same_image(size: int) -> None:
    plain = base64.b64decode(screenshot('{"current_app": "Maps"}', 1080, 2400))
    heavy = base64.b64decode(screenshot('{"current_app": "Maps"}', 1080, 2400, size))
    assert len(plain) < 20_000 and len(heavy) == size
    kept = [c for c in chunks(heavy) if c[0] != b"paDd"]
    assert kept == chunks(plain)  # every chunk of the image itself, unchanged and in order
    assert chunks(heavy)[-1][0] == b"IEND"
    padding = next(data for kind, data in chunks(heavy) if kind == b"paDd")
    assert len(zlib.compress(padding)) > 0.99 * len(padding)  # incompressible: the wire carries every byte


def test_the_profile_sends_the_weight_on_every_newest_user_message() -> None:
    profile = AutoglmProfile(screenshot_size=(1080, 2400), screenshot_bytes=120_000)
    messages = profile.request_messages("sys", [], '** Screen Info **\n\n{"current_app": "Maps"}')
    url = messages[-1]["content"][1]["image_url"]["url"]
    assert len(base64.b64decode(url.split(",", 1)[1])) == 120_000
