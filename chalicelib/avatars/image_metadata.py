"""Metadata removal without touching pixels: walks a JPEG's markers, a PNG's chunks or a WebP's RIFF
chunks, keeps what decoding and colour need, and drops everything else (EXIF with GPS, XMP, IPTC,
comments, text chunks, private chunks, bytes after the end of the image).

    clean(data, fmt) -> Cleaned   (the same compressed image data; raises StructureError)

Pure Python, no Pillow: the compressed image data is copied byte for byte, so the cleaned file
decodes to exactly the pixels of the upload. Anything that does not follow the format's structure
is refused rather than passed through, since a parser that skips what it does not understand is
where hostile payloads hide (a HTML page in a comment, a second image after EOI, a ZIP in a chunk).
"""
from __future__ import annotations

import dataclasses
import re
import struct
import zlib
from dataclasses import dataclass


class StructureError(Exception):
    """`code` is `corrupt` when the file ends too early or fails a checksum, `malformed` when its
    structure breaks the format's rules; `reason` is a sentence a user can read."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Cleaned:
    data: bytes
    width: int  # as stored, before any EXIF orientation
    height: int
    orientation: int  # EXIF orientation 1..8 (1 when absent or unreadable)
    lossless: bool  # PNG, lossless WebP
    animated: bool
    dropped: tuple[str, ...]  # what was removed, for logs: "APP1 Exif", "COM", "tEXt", "trailing 120 bytes"


def clean(data: bytes, fmt: str) -> Cleaned:
    if fmt == "JPEG":
        cleaned = clean_jpeg(data)
    elif fmt == "PNG":
        cleaned = clean_png(data)
    elif fmt == "WEBP":
        cleaned = clean_webp(data)
    else:
        raise StructureError("not_an_image", "The file is not a JPEG, PNG or WebP image")
    if cleaned.data is not data and cleaned.data == data:
        # Nothing to remove: the upload itself, not an equal copy, so that the step does not hold the
        # file twice while it decodes (3 MB less at the peak for a 1080p PNG screenshot).
        return dataclasses.replace(cleaned, data=data)
    return cleaned


def _incomplete(fmt: str, what: str) -> StructureError:
    return StructureError("corrupt", f"The {fmt} file is incomplete: {what}")


def _malformed(fmt: str, what: str) -> StructureError:
    return StructureError("malformed", f"The {fmt} file is malformed: {what}")


# ---- EXIF orientation ---------------------------------------------------------------------------

def exif_orientation(exif: bytes) -> int:
    """Orientation (tag 0x0112 of IFD0) from a TIFF-structured EXIF block, 1 when absent or unreadable:
    a viewer that cannot read the EXIF shows the pixels as stored, and so do we."""
    tiff = exif[6:] if exif.startswith(b"Exif\x00\x00") else exif
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    e = "<" if tiff[:2] == b"II" else ">"
    if struct.unpack_from(e + "H", tiff, 2)[0] != 42:
        return 1
    ifd = struct.unpack_from(e + "I", tiff, 4)[0]
    if ifd + 2 > len(tiff):
        return 1
    count = struct.unpack_from(e + "H", tiff, ifd)[0]
    for i in range(min(count, 1000)):
        entry = ifd + 2 + 12 * i
        if entry + 12 > len(tiff):
            break
        tag, kind, n = struct.unpack_from(e + "HHI", tiff, entry)
        if tag == 0x0112:
            if n < 1 or kind not in (3, 4):  # SHORT (the standard) or LONG (seen in the wild)
                return 1
            value = struct.unpack_from(e + ("H" if kind == 3 else "I"), tiff, entry + 8)[0]
            return value if 1 <= value <= 8 else 1
    return 1


# ---- JPEG ---------------------------------------------------------------------------------------

_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_TABLES = frozenset({0xC4, 0xCC, 0xDB, 0xDD})  # DHT, DAC, DQT, DRI: needed to decode
# In entropy-coded data 0xFF is followed by 0x00 (stuffing), 0xD0-0xD7 (restart) or 0xFF (fill);
# any other byte makes it a marker, which ends the scan.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def clean_jpeg(data: bytes) -> Cleaned:
    """Keep SOI, the JFIF header (without its embedded thumbnail), ICC profile, Adobe colour-transform
    segment, the frame, tables and scans, and EOI; drop every other APPn, COM and all bytes after EOI."""
    n = len(data)
    view = memoryview(data)
    if data[:2] != b"\xff\xd8":
        raise _malformed("JPEG", "it does not start with a start-of-image marker")
    parts: list = [b"\xff\xd8"]
    dropped: list[str] = []
    pos = 2
    size = None
    orientation = 1
    exif_seen = jfif_seen = adobe_seen = False
    scans = 0
    while True:
        if pos + 2 > n:
            raise _incomplete("JPEG", "it ends before its end-of-image marker")
        if data[pos] != 0xFF:
            raise _malformed("JPEG", f"unexpected data at byte {pos} where a marker should be")
        while pos + 1 < n and data[pos + 1] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos + 2 > n:
            raise _incomplete("JPEG", "it ends before its end-of-image marker")
        marker = data[pos + 1]
        if marker == 0xD9:
            if not scans:
                raise _malformed("JPEG", "it ends before any image data")
            parts.append(b"\xff\xd9")
            if pos + 2 < n:
                dropped.append(f"trailing {n - pos - 2} bytes")
            break
        if marker == 0xD8 or marker == 0x01 or 0xD0 <= marker <= 0xD7:
            raise _malformed("JPEG", f"marker 0xFF{marker:02X} at byte {pos} is out of place")
        if pos + 4 > n:
            raise _incomplete("JPEG", "it ends inside a segment header")
        length = (data[pos + 2] << 8) | data[pos + 3]
        end = pos + 2 + length
        if length < 2:
            raise _malformed("JPEG", f"the segment 0xFF{marker:02X} at byte {pos} has an impossible length")
        if end > n:
            raise _malformed("JPEG", f"the segment 0xFF{marker:02X} at byte {pos} claims {length} bytes "
                                     f"but only {n - pos - 2} remain")
        payload = view[pos + 4:end]
        if 0xE0 <= marker <= 0xEF:
            ident = bytes(payload[:14])
            if marker == 0xE0 and ident.startswith(b"JFIF\x00") and length >= 16 and not jfif_seen and not scans:
                # Version, units and density only: the JFIF thumbnail could show what a crop removed.
                jfif_seen = True
                parts.append(b"\xff\xe0\x00\x10" + bytes(payload[:12]) + b"\x00\x00")
                if length > 16:
                    dropped.append("JFIF thumbnail")
            elif marker == 0xE2 and ident.startswith(b"ICC_PROFILE\x00") and not scans:
                parts.append(view[pos:end])
            elif marker == 0xEE and ident.startswith(b"Adobe") and length >= 14 and not adobe_seen and not scans:
                # Says whether 3/4 components are YCbCr/YCCK or RGB/CMYK: without it the colours change.
                adobe_seen = True
                parts.append(b"\xff\xee\x00\x0e" + bytes(payload[:12]))
            else:
                if marker == 0xE1 and ident.startswith(b"Exif\x00") and not exif_seen:
                    exif_seen = True
                    orientation = exif_orientation(bytes(payload))
                dropped.append(f"APP{marker - 0xE0} {bytes(ident[:4]).decode('latin-1')!r}")
        elif marker == 0xFE:
            dropped.append("COM")
        elif marker in _SOF:
            if size is not None:
                raise _malformed("JPEG", "it has more than one frame header")
            if length < 8:
                raise _malformed("JPEG", "its frame header is too short")
            height, width, components = struct.unpack_from(">HHB", payload, 1)
            if length != 8 + 3 * components or components not in (1, 3, 4):
                raise _malformed("JPEG", "its frame header does not match its component count")
            if not width or not height:
                raise _malformed("JPEG", "its frame header gives a zero width or height")
            size = (width, height)
            parts.append(view[pos:end])
        elif marker in _TABLES:
            parts.append(view[pos:end])
        elif marker == 0xDA:
            if size is None:
                raise _malformed("JPEG", "image data comes before the frame header")
            found = _NEXT_MARKER.search(data, end)
            if found is None:
                raise _incomplete("JPEG", "it ends inside the image data")
            scans += 1
            parts.append(view[pos:found.start()])
            pos = found.start()
            continue
        else:
            raise _malformed("JPEG", f"unknown marker 0xFF{marker:02X} at byte {pos}")
        pos = end
    assert size is not None
    return Cleaned(b"".join(parts), size[0], size[1], orientation, lossless=False, animated=False,
                   dropped=tuple(dropped))


# ---- PNG ----------------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Critical chunks, plus ancillary chunks that change how the pixels look (transparency, colour,
# gamma, HDR) or are harmless numbers (density, background, significant bits). Every other ancillary
# chunk (tEXt, zTXt, iTXt with XMP or IPTC, eXIf, tIME, private chunks) is dropped.
_PNG_KEEP = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP",
                       b"sBIT", b"bKGD", b"pHYs", b"cICP", b"mDCv", b"cLLi"})
_APNG = frozenset({b"acTL", b"fcTL", b"fdAT"})


def clean_png(data: bytes) -> Cleaned:
    n = len(data)
    view = memoryview(data)
    if not data.startswith(PNG_SIGNATURE):
        raise _malformed("PNG", "its signature is wrong")
    parts: list = [PNG_SIGNATURE]
    dropped: list[str] = []
    pos = 8
    size = None
    orientation = 1
    frames = 1
    idat = False
    while True:
        if pos + 8 > n:
            raise _incomplete("PNG", "it ends before its IEND chunk")
        length = struct.unpack_from(">I", data, pos)[0]
        kind = bytes(view[pos + 4:pos + 8])
        if length > 0x7FFFFFFF or not kind.isalpha() or not kind.isascii():
            raise _malformed("PNG", f"the chunk at byte {pos} has an invalid header")
        end = pos + 12 + length
        if end > n:
            raise _incomplete("PNG", f"the {kind.decode()} chunk at byte {pos} claims {length} bytes "
                                     f"but only {max(0, n - pos - 12)} remain")
        body = view[pos + 8:end - 4]
        if zlib.crc32(body, zlib.crc32(kind)) != struct.unpack_from(">I", data, end - 4)[0]:
            raise StructureError("corrupt", f"The PNG file is damaged: the {kind.decode()} chunk at byte {pos} "
                                            "fails its checksum")
        if size is None:
            if kind != b"IHDR" or length != 13:
                raise _malformed("PNG", "its first chunk is not a valid IHDR header")
            width, height = struct.unpack_from(">II", body)
            if not width or not height:
                raise _malformed("PNG", "its header gives a zero width or height")
            size = (width, height)
        elif kind == b"IHDR":
            raise _malformed("PNG", "it has more than one IHDR header")
        if kind == b"IEND":
            if not idat:
                raise _malformed("PNG", "it has no image data")
            parts.append(view[pos:end])
            if end < n:
                dropped.append(f"trailing {n - end} bytes")
            break
        if kind in _PNG_KEEP:
            idat = idat or kind == b"IDAT"
            parts.append(view[pos:end])
        elif not kind[0] & 0x20:  # uppercase first letter: critical, a decoder must understand it
            raise _malformed("PNG", f"unknown critical chunk {kind.decode()!r}")
        else:
            if kind == b"eXIf" and orientation == 1:
                orientation = exif_orientation(bytes(body))
            elif kind == b"acTL" and length >= 4:
                frames = struct.unpack_from(">I", body)[0]
            dropped.append(kind.decode())
        pos = end
    return Cleaned(b"".join(parts), size[0], size[1], orientation, lossless=True, animated=frames > 1,
                   dropped=tuple(dropped))


# ---- WebP ---------------------------------------------------------------------------------------

_VP8X_ICC, _VP8X_ALPHA, _VP8X_ANIMATION = 0x20, 0x10, 0x02


def clean_webp(data: bytes) -> Cleaned:
    """Simple files keep their one bitstream chunk; extended (VP8X) files keep VP8X with corrected
    flags, ICCP, ALPH and the bitstream, and lose EXIF, XMP and unknown chunks. RIFF size recomputed."""
    n = len(data)
    if n < 20 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise _malformed("WebP", "its RIFF header is wrong")
    riff_end = 8 + struct.unpack_from("<I", data, 4)[0]
    if riff_end > n:
        raise _incomplete("WebP", f"its header announces {riff_end} bytes but the file has {n}")
    dropped: list[str] = [f"trailing {n - riff_end} bytes"] if riff_end < n else []
    chunks = []
    pos = 12
    while pos < riff_end:
        if pos + 8 > riff_end:
            raise _malformed("WebP", f"a chunk header at byte {pos} is cut short")
        fourcc = data[pos:pos + 4]
        length = struct.unpack_from("<I", data, pos + 4)[0]
        end = pos + 8 + length
        if end > riff_end:
            raise _malformed("WebP", f"the chunk {fourcc!r} at byte {pos} claims {length} bytes "
                                     f"but only {riff_end - pos - 8} remain")
        padded = min(end + (length & 1), riff_end)
        chunks.append((fourcc, pos, end, padded))
        pos = padded
    if not chunks:
        raise _malformed("WebP", "it has no chunks")
    view = memoryview(data)
    first = chunks[0][0]
    orientation = 1
    animated = False
    if first in (b"VP8 ", b"VP8L"):
        _, start, end, _ = chunks[0]
        width, height = _bitstream_size(first, view[start + 8:end])
        kept = _chunk(view, start, end)
        lossless = first == b"VP8L"
        dropped += [c[0].decode("latin-1") for c in chunks[1:]]
    elif first == b"VP8X":
        _, start, end, _ = chunks[0]
        if end - start != 18:
            raise _malformed("WebP", "its VP8X header has the wrong size")
        flags = data[start + 8]
        width = 1 + int.from_bytes(data[start + 12:start + 15], "little")
        height = 1 + int.from_bytes(data[start + 15:start + 18], "little")
        names = [c[0] for c in chunks[1:]]
        animated = bool(flags & _VP8X_ANIMATION) or b"ANMF" in names
        bitstreams = [c for c in chunks[1:] if c[0] in (b"VP8 ", b"VP8L")]
        if animated:
            # Refused by the caller; nothing to clean.
            return Cleaned(data, width, height, 1, lossless=False, animated=True, dropped=())
        if len(bitstreams) != 1:
            raise _malformed("WebP", f"it has {len(bitstreams)} image bitstreams instead of one")
        bitstream = bitstreams[0][0]
        lossless = bitstream == b"VP8L"
        body = []
        icc = False
        for fourcc, cstart, cend, _ in chunks[1:]:
            piece = _chunk(view, cstart, cend)
            if fourcc == b"ICCP" and not icc:
                icc = True
                body += piece
            elif fourcc in (b"VP8 ", b"VP8L") or (fourcc == b"ALPH" and bitstream == b"VP8 "):
                body += piece
            else:
                if fourcc == b"EXIF" and orientation == 1:
                    orientation = exif_orientation(bytes(view[cstart + 8:cend]))
                dropped.append(fourcc.decode("latin-1"))
        new_flags = (flags & _VP8X_ALPHA) | (_VP8X_ICC if icc else 0)
        header = b"VP8X" + struct.pack("<I", 10) + bytes([new_flags, 0, 0, 0]) + data[start + 12:start + 18]
        kept = [header, *body]
    else:
        raise _malformed("WebP", f"its first chunk {first!r} is not VP8, VP8L or VP8X")
    payload = b"".join(kept)
    out = b"RIFF" + struct.pack("<I", 4 + len(payload)) + b"WEBP" + payload
    return Cleaned(out, width, height, orientation, lossless=lossless, animated=animated, dropped=tuple(dropped))


def _chunk(view: memoryview, start: int, end: int) -> list:
    """A chunk with its pad byte (odd lengths are padded to even; a file may have left the pad out)."""
    return [view[start:end], b"\x00"] if (end - start) & 1 else [view[start:end]]


def _bitstream_size(fourcc: bytes, body: memoryview) -> tuple[int, int]:
    if fourcc == b"VP8 ":
        if len(body) < 10 or bytes(body[3:6]) != b"\x9d\x01\x2a":
            raise _malformed("WebP", "its VP8 bitstream header is wrong")
        width, height = struct.unpack_from("<HH", body, 6)
        return width & 0x3FFF, height & 0x3FFF
    if len(body) < 5 or body[0] != 0x2F:
        raise _malformed("WebP", "its VP8L bitstream header is wrong")
    bits = int.from_bytes(body[1:5], "little")
    return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
