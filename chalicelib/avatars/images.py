"""Image checks and derivatives with Pillow: what the upload worker (and the generation worker)
do to bytes before anything is shown to a user.

    process_upload(data, ...)    -> ProcessedImage  (validated original without metadata, thumbnail, display copy)
    thumbnail_from_bytes(data)   -> bytes           (a thumbnail, e.g. of a stored image with a chosen crop)

The original keeps its pixels: chalicelib.avatars.image_metadata removes metadata from the compressed file
without decoding it, and it is re-encoded only when its EXIF orientation says the pixels must turn
(JPEG at quality 95, PNG and lossless WebP losslessly). Derivatives are decoded at the smallest size
they need (JPEG DCT scaling via `draft`), which is also the validating decode.

Refusals raise ImageRejectedError with a stable `code` and a sentence a user can read; the caller
turns them into `status: rejected`. Pillow is imported here only, and this module only inside the
workers, so the API Lambda never pays for it.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

from chalicelib.avatars import image_metadata

# Magic numbers first: Pillow knows dozens of formats (some with a history of parser bugs); a file
# that does not start like one of ours is never handed to it.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
)
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
ROTATED_QUALITY = 95  # a lossy original whose pixels had to turn: re-encoded once, close to its source
THUMBNAIL_QUALITY = 85
DISPLAY_SIZE = 1024
DISPLAY_QUALITY = 82
DISPLAY_METHOD = 4  # libwebp's effort (sharp's default too)
# Resize in two steps: a whole-factor box reduce, then the filter over at least this factor. On a
# 1080 px square shrunk to 300 px, 1.5 is 2-3x faster than 2.0 (which does no reduce there) and differs
# from a single Lanczos pass by 0.5/255 on average: invisible at thumbnail size.
REDUCING_GAP = 1.5
DISPLAY_BAND = 128  # rows of the display copy resized at a time (see _display_pixels)

# Pillow's Image.Transpose for each EXIF orientation (as ImageOps.exif_transpose does).
_TRANSPOSE = {2: 0, 3: 3, 4: 1, 5: 5, 6: 4, 7: 6, 8: 2}


class ImageRejectedError(Exception):
    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class ImageInfo:
    format: str  # JPEG | PNG | WEBP
    width: int  # upright
    height: int
    bytes: int  # size of the stored (cleaned) image


@dataclass(frozen=True)
class Crop:
    """A square in the upright image's pixels."""
    x: int
    y: int
    size: int


@dataclass(frozen=True)
class ProcessedImage:
    info: ImageInfo
    image: bytes
    image_content_type: str
    thumbnail: bytes
    thumbnail_content_type: str = "image/jpeg"
    display: bytes = b""
    display_content_type: str = "image/webp"
    reencoded: bool = False  # True only when the EXIF orientation had to be applied to the pixels
    dropped: tuple[str, ...] = ()  # metadata removed, for logs


def sniff_format(data: bytes) -> str | None:
    """JPEG, PNG or WEBP from the first bytes, or None."""
    for signature, fmt in _SIGNATURES:
        if data.startswith(signature):
            return fmt
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def process_upload(data: bytes, *, max_pixels: int, max_bytes: int, thumb_size: int = 300,
                   display_size: int = DISPLAY_SIZE) -> ProcessedImage:
    """Validate `data`; return the original without metadata, its square thumbnail and a display copy.

    Order matters for hostile files: size, magic bytes, the file's structure (walked without
    decoding), the header's pixel count, and only then a decode.
    """
    fmt = _sniff_checked(data, max_bytes)

    def steps() -> ProcessedImage:
        cleaned = _clean(data, fmt)
        _check_pixels(cleaned.width, cleaned.height, max_pixels)
        if cleaned.animated:
            raise ImageRejectedError("animated", "Animated images cannot be used as avatars; upload a still photo")
        return _derive(cleaned, fmt, max_pixels, thumb_size, display_size)

    return _guard(steps)


def thumbnail_from_bytes(data: bytes, *, size: int = 300, crop: Crop | None = None, max_pixels: int = 40_000_000,
                         max_bytes: int = 50 * 1024 * 1024) -> bytes:
    """A size×size JPEG of `crop` (the centre square when None) of an image, upright.

    Made for stored images (already cleaned and upright) when a user picks a crop, so the file's
    structure is not walked again; any EXIF orientation is still applied, so an upload works too."""
    fmt = _sniff_checked(data, max_bytes)

    def make() -> bytes:
        im = _open(data, fmt, max_pixels)
        orientation = image_metadata.exif_orientation(im.info.get("exif") or b"")
        upright_size = _upright_size(im.size, orientation)
        box = _crop_box(upright_size, crop)
        if fmt == "JPEG":
            _draft(im, box[2] - box[0], size)
        im.load()
        work = _transpose(im, orientation)
        return _thumbnail(work, upright_size, box, size)

    return _guard(make)


# ---- steps ----------------------------------------------------------------------------------------

def _sniff_checked(data: bytes, max_bytes: int) -> str:
    if not data:
        raise ImageRejectedError("empty", "The file is empty")
    if len(data) > max_bytes:
        raise ImageRejectedError("too_large", f"The file is larger than {max_bytes // (1024 * 1024)} MB")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageRejectedError("not_an_image", "The file is not a JPEG, PNG or WebP image")
    return fmt


def _clean(data: bytes, fmt: str) -> image_metadata.Cleaned:
    try:
        return image_metadata.clean(data, fmt)
    except image_metadata.StructureError as exc:
        raise ImageRejectedError(exc.code, exc.reason) from None


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageRejectedError(
            "too_many_pixels",
            f"The image is {width}x{height} pixels; at most {max_pixels // 1_000_000} megapixels are accepted")


def _guard(step):
    """Run a Pillow step; whatever Pillow raises on a hostile file becomes a refusal, never a crash.

    Pillow's parsers raise OSError, SyntaxError and ValueError as documented, but malformed EXIF,
    ICC or palette data also surface as TypeError, KeyError, IndexError, struct.error and others, so
    the net is wide on purpose. MemoryError is not the file's fault (limits are checked first) and
    propagates so the message is retried."""
    from PIL import Image

    try:
        return step()
    except (ImageRejectedError, MemoryError):
        raise
    except Image.DecompressionBombError:
        raise ImageRejectedError("too_many_pixels", "The image has too many pixels") from None
    except Exception:  # noqa: BLE001 - see the docstring
        raise ImageRejectedError("corrupt", "The image could not be decoded: the file is damaged or incomplete") \
            from None


def _open(data: bytes, fmt: str, max_pixels: int):
    from PIL import Image

    im = Image.open(io.BytesIO(data), formats=[fmt])
    _check_pixels(*im.size, max_pixels)  # Pillow's reading of the header, as well as ours
    if getattr(im, "is_animated", False):
        raise ImageRejectedError("animated", "Animated images cannot be used as avatars; upload a still photo")
    return im


def _derive(cleaned: image_metadata.Cleaned, fmt: str, max_pixels: int, thumb_size: int,
            display_size: int) -> ProcessedImage:
    im = _open(cleaned.data, fmt, max_pixels)
    icc_profile = im.info.get("icc_profile")
    upright_size = _upright_size(im.size, cleaned.orientation)
    if cleaned.orientation == 1:
        stored = cleaned.data
        if fmt == "JPEG":
            # The decode at reduced size reads the whole entropy-coded stream, so it fails on the same
            # truncated or corrupt data as a full decode would, at a fraction of the cost and memory.
            _draft(im, min(upright_size), thumb_size, max(upright_size), display_size)
        im.load()
        # Pillow's WebP decoder keeps libwebp's two RGBA canvases (twice the image's own memory) for as
        # long as the opened image lives. When the display copy is made smaller, the opened image goes
        # once it is made; when the pixels are the display copy as they are, a copy of them lets the
        # canvases go before the encoders run (1024² lossless WebP: step peak 25 -> 18 MB, for a 1 ms
        # copy). A copy of a larger image would only add to the decode's own peak.
        work = im.copy() if fmt == "WEBP" and max(upright_size) <= display_size else im
        del im
    else:
        im.load()
        sampling = _jpeg_sampling(im) if fmt == "JPEG" else -1
        work = _transpose(im, cleaned.orientation)
        # The turned copy is all that is needed now: free the decoded pixels (and, for WebP, the
        # decoder's canvases) before the original is encoded.
        im.close()
        del im
        stored = _encode_original(work, fmt, cleaned.lossless, icc_profile, sampling)
        if fmt == "JPEG":
            # A second decode at reduced size (and turning that) costs less than shrinking the full one.
            del work
            im = _open(cleaned.data, fmt, max_pixels)
            _draft(im, min(upright_size), thumb_size, max(upright_size), display_size)
            im.load()
            work = _transpose(im, cleaned.orientation)
            del im
    # Peak memory is the decoded image plus what is made from it, so the display copy is made first,
    # the decoded image let go, and the thumbnail cut from the display copy when it has enough pixels.
    display = _display_pixels(work, upright_size, display_size)
    box = _crop_box(upright_size, None)
    if min(display.size) >= 1.5 * thumb_size:
        source = display
    else:
        source = work
    del work
    thumbnail = _thumbnail(source, upright_size, box, thumb_size)
    del source
    display_bytes = _encode_display(display, icc_profile)
    return ProcessedImage(
        info=ImageInfo(format=fmt, width=upright_size[0], height=upright_size[1], bytes=len(stored)),
        image=stored, image_content_type=CONTENT_TYPES[fmt], thumbnail=thumbnail, display=display_bytes,
        reencoded=cleaned.orientation != 1, dropped=cleaned.dropped)


def _jpeg_sampling(im) -> int:
    from PIL import JpegImagePlugin

    return JpegImagePlugin.get_sampling(im)


def _upright_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


def _transpose(im, orientation: int):
    if orientation == 1:
        return im
    out = im.transpose(_TRANSPOSE[orientation])
    out.info = {k: v for k, v in im.info.items() if k == "transparency"}
    return out


def _draft(im, side: int, thumb_size: int, long_side: int = 0, display_size: int = 0) -> None:
    """Ask libjpeg to decode at 1/2, 1/4 or 1/8 scale where the outputs still get enough pixels:
    the thumbnail's square (`side` source pixels → thumb_size) and the display copy's long side."""
    scale = max(thumb_size / side, display_size / long_side if long_side else 0.0)
    if scale < 1:
        im.draft(im.mode if im.mode in ("RGB", "L", "CMYK") else None,
                 (max(1, math.ceil(im.width * scale)), max(1, math.ceil(im.height * scale))))


def _crop_box(upright_size: tuple[int, int], crop: Crop | None) -> tuple[int, int, int, int]:
    if crop is not None:
        return crop.x, crop.y, crop.x + crop.size, crop.y + crop.size
    width, height = upright_size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def _thumbnail(work, upright_size: tuple[int, int], box: tuple[int, int, int, int], size: int) -> bytes:
    """A size×size JPEG of `box` (upright full-size coordinates) from `work`, which may be a
    reduced decode: the box is scaled to it. Transparent areas go on white."""
    from PIL import Image

    fx, fy = work.width / upright_size[0], work.height / upright_size[1]
    scaled = (box[0] * fx, box[1] * fy, box[2] * fx, box[3] * fy)
    # Cut and shrink first, then put transparency on white: 300×300 pixels to convert, not millions.
    simple = work.mode in ("RGB", "RGBA", "L", "LA") and "transparency" not in work.info
    # Hamming (a two-tap window, like bilinear) for the last 1-3x: on a 1080×1350 JPEG the resize is
    # half the thumbnail's instructions with bicubic and 40% fewer with Hamming (callgrind), and the
    # result stays within 0.6-0.95/255 on average of a Lanczos resize of the full-resolution image
    # (bicubic 0.55-0.65): no visible difference at 300 px. The display copy, seen large, keeps Lanczos.
    thumb = (work if simple else _flatten(work)).resize((size, size), Image.Resampling.HAMMING, box=scaled,
                                                         reducing_gap=REDUCING_GAP)
    if thumb.mode != "RGB":
        thumb = _flatten(thumb)
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
    return out.getvalue()


def _display_pixels(work, upright_size: tuple[int, int], long_side: int):
    """Upright, `long_side` px on the long side (never enlarged), RGB or RGBA (transparency kept)."""
    from PIL import Image

    width, height = upright_size
    factor = min(1.0, long_side / max(width, height))
    target = (max(1, round(width * factor)), max(1, round(height * factor)))
    im = _web_mode(work)
    if im.size == target:
        return im
    if max(im.width / target[0], im.height / target[1]) >= 2 * REDUCING_GAP:
        # A box reduce runs first, and the filter then reads its (small) output.
        return im.resize(target, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    # Pillow filters rows first, into a temporary image as tall as the source: resized in bands, that
    # temporary is a band's height, which takes 2.5-3 MB off the step's peak for a 1-2 MP upload. The
    # filter reads across the bands' edges (at most 2/255 from one pass, no seams), for ~10% more time.
    out = Image.new(im.mode, target)
    scale = im.height / target[1]
    for top in range(0, target[1], DISPLAY_BAND):
        bottom = min(target[1], top + DISPLAY_BAND)
        band = im.resize((target[0], bottom - top), Image.Resampling.LANCZOS,
                         box=(0, top * scale, im.width, bottom * scale))
        out.paste(band, (0, top))
    return out


def _encode_display(im, icc_profile: bytes | None) -> bytes:
    """WebP without metadata other than an RGB colour profile (without it a wide-gamut photo would
    look washed out)."""
    extra = {"icc_profile": icc_profile} if _profile_space(icc_profile) == b"RGB " else {}
    out = io.BytesIO()
    im.save(out, "WEBP", quality=DISPLAY_QUALITY, method=DISPLAY_METHOD, **extra)
    return out.getvalue()


def _profile_space(icc_profile: bytes | None) -> bytes | None:
    return icc_profile[16:20] if icc_profile and len(icc_profile) >= 20 else None


def _web_mode(im):
    """RGB or RGBA for WebP (a browser format): greyscale, palette, CMYK and 16-bit become 8-bit colour."""
    if im.mode in ("RGB", "RGBA"):
        return im
    if im.mode in ("LA", "PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info) \
            or (im.mode in ("L", "RGB") and "transparency" in im.info):
        return im.convert("RGBA")
    return _flatten(im)


def _encode_original(upright, fmt: str, lossless: bool, icc_profile: bytes | None, sampling: int) -> bytes:
    """The upright original when the EXIF orientation had to be applied: the same format, lossless
    where the upload was, otherwise quality 95 with the upload's chroma subsampling."""
    out = io.BytesIO()
    extra = {"icc_profile": icc_profile} if icc_profile else {}
    image = upright
    image.info = {k: v for k, v in upright.info.items() if k == "transparency"}
    if fmt == "JPEG":
        image.save(out, "JPEG", quality=ROTATED_QUALITY, subsampling=sampling if sampling >= 0 else 0, **extra)
    elif fmt == "PNG":
        if "transparency" in image.info:
            extra["transparency"] = image.info["transparency"]
        image.save(out, "PNG", compress_level=6, **extra)
    else:
        if image.mode not in ("RGB", "RGBA"):
            image = _web_mode(image)
        kwargs = {"lossless": True, "quality": 100, "exact": True} if lossless else {"quality": ROTATED_QUALITY}
        image.save(out, "WEBP", method=4, **kwargs, **extra)
    return out.getvalue()


def _flatten(im):
    """RGB for JPEG: transparency on white, 16-bit greyscale scaled to 8 bits, CMYK and others converted."""
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA", "P", "RGBa", "La") or "transparency" in im.info:
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
