"""Image checks and derivatives with Pillow: what the upload worker (and the generation worker)
do to bytes before anything is shown to a user.

    process_upload(data, ...)  -> ProcessedImage  (validated, upright, metadata-free image + thumbnail)

Refusals raise ImageRejectedError with a stable `code` and a sentence a user can read; the caller
turns them into `status: rejected`. Pillow is imported here only, and this module only inside the
workers, so the API Lambda never pays for it.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

# Magic numbers first: Pillow knows dozens of formats (some with a history of parser bugs); a file
# that does not start like one of ours is never handed to it.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
)
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
JPEG_QUALITY = 90
THUMBNAIL_QUALITY = 85


class ImageRejectedError(Exception):
    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class ImageInfo:
    format: str  # JPEG | PNG | WEBP
    width: int
    height: int
    bytes: int  # size of the stored (cleaned) image


@dataclass(frozen=True)
class ProcessedImage:
    info: ImageInfo
    image: bytes
    image_content_type: str
    thumbnail: bytes
    thumbnail_content_type: str = "image/jpeg"


def sniff_format(data: bytes) -> str | None:
    """JPEG, PNG or WEBP from the first bytes, or None."""
    for signature, fmt in _SIGNATURES:
        if data.startswith(signature):
            return fmt
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def process_upload(data: bytes, *, max_pixels: int, max_bytes: int, thumb_size: int = 300) -> ProcessedImage:
    """Validate `data` and return the cleaned image and its square thumbnail.

    Order matters for hostile files: size, then magic bytes, then the header's pixel count (read
    without decoding), and only then the full decode.
    """
    if not data:
        raise ImageRejectedError("empty", "The file is empty")
    if len(data) > max_bytes:
        raise ImageRejectedError("too_large", f"The file is larger than {max_bytes // (1024 * 1024)} MB")
    sniffed = sniff_format(data)
    if sniffed is None:
        raise ImageRejectedError("not_an_image", "The file is not a JPEG, PNG or WebP image")

    from PIL import Image, ImageOps

    try:
        im = Image.open(io.BytesIO(data), formats=[sniffed])
    except Image.DecompressionBombError:  # Pillow's own ceiling (~179 MP), far above ours
        raise ImageRejectedError("too_many_pixels",
                                 f"The image has more than {max_pixels // 1_000_000} megapixels") from None
    except (OSError, SyntaxError, ValueError):
        raise ImageRejectedError("corrupt", f"The file looks like {sniffed} but its header is damaged") from None
    width, height = im.size
    if width * height > max_pixels:
        raise ImageRejectedError(
            "too_many_pixels",
            f"The image is {width}x{height} pixels; at most {max_pixels // 1_000_000} megapixels are accepted")
    if getattr(im, "is_animated", False):
        raise ImageRejectedError("animated", "Animated images cannot be used as avatars; upload a still photo")
    try:
        im.load()
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        raise ImageRejectedError("corrupt", "The image could not be decoded: the file is damaged or incomplete") from None

    icc_profile = im.info.get("icc_profile")
    # EXIF orientation is applied to the pixels, then every metadata block (EXIF with GPS, XMP,
    # text chunks) is dropped: only pixels and the colour profile leave the service.
    upright = ImageOps.exif_transpose(im)
    upright.info = {}
    cleaned = _normalise_mode(upright, sniffed)
    image_bytes = _encode(cleaned, sniffed, icc_profile)
    thumbnail = make_thumbnail(cleaned, thumb_size)
    return ProcessedImage(
        info=ImageInfo(format=sniffed, width=cleaned.width, height=cleaned.height, bytes=len(image_bytes)),
        image=image_bytes, image_content_type=CONTENT_TYPES[sniffed], thumbnail=thumbnail)


def make_thumbnail(im, size: int) -> bytes:
    """A size×size centre crop as JPEG (transparent areas on white)."""
    from PIL import Image

    rgb = im if im.mode == "RGB" else _flatten(im)
    side = min(rgb.width, rgb.height)
    left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
    # reducing_gap lets Pillow shrink by whole factors first: ~3x faster on big photos, same look.
    thumb = rgb.resize((size, size), Image.Resampling.LANCZOS, box=(left, top, left + side, top + side),
                       reducing_gap=3.0)
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
    return out.getvalue()


def _normalise_mode(im, fmt: str):
    """Modes each encoder writes well: CMYK, 16-bit and palette inputs become RGB(A) or L."""
    if im.mode in ("RGB", "L"):
        return im
    if fmt == "JPEG" or im.mode.startswith("I") or im.mode in ("F", "CMYK", "YCbCr", "LAB", "HSV", "1"):
        return _flatten(im)
    if im.mode in ("RGBA", "LA"):
        return im
    return im.convert("RGBA")  # P, PA, RGBa, La: keep any transparency


def _flatten(im):
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA", "P"):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        # 16-bit greyscale: scale to 8 bits instead of clipping everything to white.
        _, high = im.getextrema()
        scaled = im.point(lambda v: v / 256) if high > 255 else im
        return scaled.convert("L").convert("RGB")
    return im.convert("RGB")


def _encode(im, fmt: str, icc_profile: bytes | None) -> bytes:
    out = io.BytesIO()
    extra = {"icc_profile": icc_profile} if icc_profile else {}
    if fmt == "JPEG":
        im.save(out, "JPEG", quality=JPEG_QUALITY, **extra)
    elif fmt == "PNG":
        im.save(out, "PNG", compress_level=3, **extra)  # level 6 costs 2-3x the time for ~5% smaller files
    else:
        im.save(out, "WEBP", quality=JPEG_QUALITY, method=3, **extra)
    return out.getvalue()
