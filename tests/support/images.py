"""Test images made with real Pillow: good photos in each accepted format and broken ones.

Every good image is drawn red on top and blue at the bottom *as it should be displayed*, so a
test can tell whether an EXIF rotation was applied (assert_upright).
"""
from __future__ import annotations

import io
import struct
import zlib

from PIL import ExifTags, Image, ImageDraw

TOP = (220, 30, 30)
BOTTOM = (30, 60, 220)

# What a viewer does for each EXIF orientation, inverted: the stored pixels of an upright picture.
_STORE_FOR_ORIENTATION = {
    1: None,
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}


def upright(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """A width×height picture: red upper half, blue lower half, a white mark top-left."""
    im = Image.new("RGB", (width, height), BOTTOM)
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 0, width, height // 2), fill=TOP)
    draw.rectangle((0, 0, max(1, width // 10), max(1, height // 10)), fill=(255, 255, 255))
    if mode == "I;16":  # full 16-bit range, as a scanner or a RAW converter writes it
        return im.convert("L").convert("I").point(lambda v: v * 257).convert("I;16")
    return im if mode == "RGB" else im.convert(mode)


def _stored(width: int, height: int, orientation: int | None) -> Image.Image:
    """The stored pixels (width×height) of a photo that displays upright after `orientation`."""
    transpose = _STORE_FOR_ORIENTATION.get(orientation or 1)
    if transpose is None:
        return upright(width, height)
    shown = (height, width) if orientation in (6, 8) else (width, height)
    return upright(*shown).transpose(transpose)


def _exif(orientation: int | None, gps: bool) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestCam"
    if orientation:
        exif[ExifTags.Base.Orientation] = orientation
    if gps:
        exif[ExifTags.IFD.GPSInfo] = {
            ExifTags.GPS.GPSLatitudeRef: "S", ExifTags.GPS.GPSLatitude: (6.0, 12.0, 30.0),
            ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (106.0, 49.0, 12.0),
        }
    return exif


def jpeg(width: int, height: int, *, exif_orientation: int | None = None, gps: bool = False,
         quality: int = 90, mode: str = "RGB") -> bytes:
    im = _stored(width, height, exif_orientation)
    if mode != "RGB":
        im = im.convert(mode)
    out = io.BytesIO()
    kwargs = {}
    if exif_orientation or gps:
        kwargs["exif"] = _exif(exif_orientation, gps).tobytes()
    im.save(out, "JPEG", quality=quality, **kwargs)
    return out.getvalue()


def png(width: int, height: int, *, mode: str = "RGB", text: dict | None = None) -> bytes:
    from PIL import PngImagePlugin

    im = upright(width, height, mode)
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    out = io.BytesIO()
    im.save(out, "PNG", pnginfo=info)
    return out.getvalue()


def webp(width: int, height: int, *, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    upright(width, height, mode).save(out, "WEBP", quality=80)
    return out.getvalue()


def text_as_png() -> bytes:
    """What a user gets when they rename notes.txt to photo.png."""
    return b"These are my notes, not a picture. Saved with the wrong extension by mistake.\n" * 4


def truncated_jpeg() -> bytes:
    """A real JPEG cut in half, as an interrupted transfer leaves it."""
    data = jpeg(400, 300)
    return data[: len(data) // 2]


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bomb(width: int = 12_000, height: int = 12_000) -> bytes:
    """A small valid PNG that decodes to width×height pixels (144 MP by default): all rows are zero,
    so a few kilobytes of deflate expand to 18 MB of 1-bit pixels, or 432 MB once made RGB."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)  # filter byte + one bit per pixel
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def assert_upright(im: Image.Image) -> None:
    """Red band on top, blue band at the bottom, as drawn by upright()."""
    rgb = im.convert("RGB")
    w, h = rgb.size
    top = rgb.getpixel((w // 2, h // 8))
    bottom = rgb.getpixel((w // 2, h - 1 - h // 8))
    assert top[0] > 150 and top[2] < 100, f"expected red at the top, got {top}"
    assert bottom[2] > 150 and bottom[0] < 100, f"expected blue at the bottom, got {bottom}"
