"""chalicelib.avatars.images on real Pillow: what is accepted, what is refused and why, what leaves."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from chalicelib.avatars import images
from tests.support import images as img

MB = 1024 * 1024
LIMITS = {"max_pixels": 40_000_000, "max_bytes": 10 * MB}


def process(data: bytes, **overrides):
    return images.process_upload(data, **{**LIMITS, **overrides})


def refusal(data: bytes, **overrides) -> images.ImageRejectedError:
    with pytest.raises(images.ImageRejectedError) as caught:
        process(data, **overrides)
    assert len(caught.value.reason) > 10
    return caught.value


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize("data, fmt", [
    (b"\xff\xd8\xff\xe0rest", "JPEG"), (b"\x89PNG\r\n\x1a\nrest", "PNG"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "WEBP"), (b"GIF89a", None), (b"<svg xmlns=", None), (b"PK\x03\x04", None),
    (b"RIFF\x00\x00\x00\x00WAVEfmt ", None), (b"", None),
])
def test_format_is_sniffed_from_magic_bytes(data, fmt):
    assert images.sniff_format(data) == fmt


@pytest.mark.parametrize("width, height", [(1200, 800), (800, 1200), (300, 300), (40, 30)])
def test_thumbnail_is_a_square_centre_crop_of_the_requested_size(width, height):
    out = process(img.jpeg(width, height))
    thumb = opened(out.thumbnail)
    assert (thumb.size, thumb.format) == ((300, 300), "JPEG")
    assert (out.info.width, out.info.height, out.info.format) == (width, height, "JPEG")
    assert out.info.bytes == len(out.image)


def test_portrait_thumbnail_keeps_the_middle_of_the_picture():
    out = process(img.jpeg(400, 1200))
    img.assert_upright(opened(out.thumbnail))  # a top/bottom crop would be all red or all blue


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied_and_removed(orientation):
    out = process(img.jpeg(800, 600, exif_orientation=orientation))
    stored = opened(out.image)
    expected = (600, 800) if orientation in (6, 8) else (800, 600)
    assert stored.size == expected == (out.info.width, out.info.height)
    assert stored.getexif().get(0x0112, 1) == 1
    img.assert_upright(stored)
    img.assert_upright(opened(out.thumbnail))


def test_gps_and_text_metadata_do_not_leave_the_service():
    jpeg = process(img.jpeg(200, 200, gps=True))
    assert not opened(jpeg.image).getexif()
    png = process(img.png(200, 200, text={"Location": "-6.2, 106.8", "Author": "someone"}))
    stored = opened(png.image)
    assert "Location" not in stored.info and "Author" not in stored.info and "exif" not in stored.info


@pytest.mark.parametrize("make, fmt, content_type", [
    (lambda: img.png(120, 90), "PNG", "image/png"),
    (lambda: img.webp(120, 90), "WEBP", "image/webp"),
    (lambda: img.png(120, 90, mode="RGBA"), "PNG", "image/png"),
    (lambda: img.png(120, 90, mode="P"), "PNG", "image/png"),
    (lambda: img.png(120, 90, mode="I;16"), "PNG", "image/png"),
    (lambda: img.jpeg(120, 90, mode="CMYK"), "JPEG", "image/jpeg"),
    (lambda: img.jpeg(120, 90, mode="L"), "JPEG", "image/jpeg"),
])
def test_other_formats_and_colour_modes_are_kept_in_their_format(make, fmt, content_type):
    out = process(make())
    assert (out.info.format, out.image_content_type) == (fmt, content_type)
    assert opened(out.image).format == fmt
    assert opened(out.thumbnail).mode == "RGB"


def test_sixteen_bit_greyscale_is_scaled_not_clipped_to_white():
    out = process(img.png(64, 64, mode="I;16"))
    low, high = opened(out.thumbnail).convert("L").getextrema()
    assert high - low > 20


@pytest.mark.parametrize("data, code", [
    (b"", "empty"),
    (img.text_as_png(), "not_an_image"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "not_an_image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "malformed"),
    (img.truncated_jpeg(), "corrupt"),
])
def test_broken_or_foreign_files_are_refused(data, code):
    assert refusal(data).code == code


def test_pixel_limit_is_checked_from_the_header_before_decoding():
    bomb = img.png_bomb()
    assert len(bomb) < 100_000  # tiny on disk, 144 MP when decoded
    error = refusal(bomb)
    assert error.code == "too_many_pixels" and "12000x12000" in error.reason


def test_size_limit_is_enforced_on_the_bytes():
    error = refusal(img.jpeg(100, 100), max_bytes=1000)
    assert error.code == "too_large"


def test_animated_webp_is_refused():
    frames = [img.upright(64, 64), img.upright(64, 64).transpose(Image.Transpose.ROTATE_180)]
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], duration=100)
    assert refusal(out.getvalue()).code == "animated"


def test_header_beyond_pillows_own_bomb_ceiling_is_refused_as_too_many_pixels():
    error = refusal(img.png_bomb(20_000, 20_000))
    assert error.code == "too_many_pixels"


# ---- originals keep their pixels; nothing private is stored --------------------------------------

def pixels(data: bytes) -> tuple:
    im = opened(data)
    im.load()
    return im.mode, im.size, im.tobytes(), im.info.get("transparency")


def stored_outputs(out) -> list[bytes]:
    return [out.image, out.thumbnail, out.display]


def assert_nothing_private(data: bytes) -> None:
    for marker in (img.SECRET, b"Exif\x00\x00", b"http://ns.adobe.com/xap", b"Photoshop 3.0", b"8BIM", b"<html",
                   b"<script", b"PK\x03\x04", b"MakerNote", b"xpacket"):
        assert marker not in data, f"{marker!r} was stored"
    im = opened(data)
    assert not im.getexif(), "EXIF was stored"
    leaked = {"exif", "xmp", "XML:com.adobe.xmp", "comment", "Comment", "Raw profile type iptc"} & set(im.info)
    assert not leaked, f"{leaked} stored"


HOSTILE = {
    "JPEG with GPS EXIF, XMP, IPTC, maker note, HTML comment, JFIF thumbnail, data after EOI": img.hostile_jpeg,
    "progressive JPEG with all of the above": lambda: img.hostile_jpeg(progressive=True),
    "PNG with eXIf (GPS), tEXt, zTXt (IPTC), iTXt (XMP), tIME, private chunk, data after IEND": img.hostile_png,
    "RGBA PNG with the same": lambda: img.hostile_png(mode="RGBA"),
    "palette PNG with the same": lambda: img.hostile_png(mode="P"),
    "lossy WebP with EXIF (GPS), XMP, unknown chunk, data after RIFF": img.hostile_webp,
    "lossless WebP with the same": lambda: img.hostile_webp(lossless=True),
    "WebP with alpha and the same": lambda: img.hostile_webp(mode="RGBA"),
}


@pytest.mark.parametrize("make", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_metadata_is_dropped_and_the_pixels_stay_exactly_the_same(make):
    upload = make()
    assert img.SECRET in upload  # the corpus really carries the payload
    out = process(upload)
    assert not out.reencoded
    assert pixels(out.image) == pixels(upload)
    for stored in stored_outputs(out):
        assert_nothing_private(stored)


@pytest.mark.parametrize("orientation", [3, 6, 8])
@pytest.mark.parametrize("make", [img.hostile_jpeg, img.hostile_png, lambda **k: img.hostile_webp(lossless=True, **k),
                                  img.hostile_webp], ids=["jpeg", "png", "lossless-webp", "lossy-webp"])
def test_rotated_hostile_uploads_are_turned_upright_and_still_carry_nothing_private(make, orientation):
    out = process(make(orientation=orientation))
    assert out.reencoded
    expected = (160, 240) if orientation in (6, 8) else (240, 160)
    assert opened(out.image).size == expected == (out.info.width, out.info.height)
    for stored in stored_outputs(out):
        assert_nothing_private(stored)
        img.assert_upright(opened(stored))


@pytest.mark.parametrize("make", [lambda: img.hostile_png(orientation=6),
                                  lambda: img.hostile_webp(lossless=True, orientation=6)], ids=["png", "webp"])
def test_a_lossless_upload_that_must_turn_is_turned_without_loss(make):
    out = process(make())
    assert out.reencoded
    stored = opened(out.image)
    assert stored.convert("RGB").tobytes() == img.upright(160, 240).tobytes()


def test_a_rotated_jpeg_is_re_encoded_at_high_quality():
    photo = img.photo(480, 320)
    source = io.BytesIO()
    photo.transpose(Image.Transpose.ROTATE_90).save(source, "JPEG", quality=92, exif=img.gps_exif(6))
    out = process(source.getvalue())
    stored = opened(out.image).convert("RGB")
    decoded_upright = opened(source.getvalue()).transpose(Image.Transpose.ROTATE_270).convert("RGB")
    from PIL import ImageChops, ImageStat

    error = ImageStat.Stat(ImageChops.difference(stored, decoded_upright)).mean
    assert max(error) < 2.5, f"mean error {error} after the rotation re-encode"


EXACT = {
    "baseline JPEG": lambda: img.jpeg(321, 199),
    "progressive JPEG": lambda: _save(img.photo(300, 200), "JPEG", quality=88, progressive=True),
    "4:4:4 JPEG": lambda: _save(img.photo(300, 200), "JPEG", quality=95, subsampling=0),
    "greyscale JPEG": lambda: img.jpeg(200, 120, mode="L"),
    "CMYK JPEG (Adobe segment kept)": lambda: img.jpeg(200, 120, mode="CMYK"),
    "JPEG with restart markers": lambda: _save(img.photo(300, 200), "JPEG", quality=85, restart_marker_blocks=4),
    "JPEG with an ICC profile": lambda: _save(img.photo(200, 120), "JPEG", icc_profile=_srgb()),
    "RGB PNG": lambda: img.png(211, 97),
    "RGBA PNG": lambda: img.png(120, 90, mode="RGBA"),
    "palette PNG with transparency": lambda: _save(img.upright(64, 48).convert("P"), "PNG", transparency=0),
    "16-bit PNG": lambda: img.png(64, 64, mode="I;16"),
    "interlaced PNG with an ICC profile": lambda: _save(img.photo(120, 80), "PNG", icc_profile=_srgb(), interlace=1),
    "lossy WebP": lambda: img.webp(150, 100),
    "lossless WebP": lambda: _save(img.photo(150, 100), "WEBP", lossless=True),
    "WebP with alpha and ICC": lambda: _save(img.upright(150, 100, "RGBA"), "WEBP", icc_profile=_srgb()),
}


def _save(im: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **kwargs)
    return out.getvalue()


def _srgb() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("make", EXACT.values(), ids=EXACT.keys())
def test_an_upload_needing_no_rotation_decodes_to_exactly_the_uploaded_pixels(make):
    upload = make()
    out = process(upload)
    assert pixels(out.image) == pixels(upload)
    assert opened(out.image).info.get("icc_profile") == opened(upload).info.get("icc_profile")


def test_a_clean_upload_is_stored_byte_for_byte_apart_from_metadata():
    upload = img.png(100, 60)
    assert process(upload).image == upload


@pytest.mark.parametrize("make", [lambda: img.png(100, 60), lambda: img.jpeg(120, 80), lambda: img.webp(90, 60)],
                         ids=["png", "jpeg", "webp"])
def test_an_upload_with_nothing_to_remove_is_kept_not_copied(make):
    from chalicelib.avatars import image_metadata

    upload = make()
    assert image_metadata.clean(upload, images.sniff_format(upload)).data is upload
    hostile = img.hostile_jpeg(96, 64)
    assert image_metadata.clean(hostile, "JPEG").data != hostile


def test_webp_flags_and_riff_size_are_fixed_after_dropping_chunks():
    out = process(img.hostile_webp(mode="RGBA"))
    data = out.image
    assert img.riff_chunks(data) == [b"VP8X", b"ALPH", b"VP8 "]
    assert int.from_bytes(data[4:8], "little") == len(data) - 8
    flags = data[20]
    assert flags & 0x10 and not flags & (0x08 | 0x04 | 0x02)  # alpha kept; EXIF, XMP, animation cleared


def test_png_and_jpeg_keep_only_what_decoding_and_colour_need():
    assert img.png_chunks(process(img.hostile_png()).image) == [b"IHDR", b"IDAT", b"IEND"]
    assert img.jpeg_markers(process(img.hostile_jpeg()).image) == [0xE0, 0xDB, 0xDB, 0xC0, 0xC4, 0xC4, 0xC4, 0xC4]
    jfif = process(img.hostile_jpeg()).image[2:20]
    assert jfif[-2:] == b"\x00\x00"  # no JFIF thumbnail


# ---- malformed structure is refused, never passed through ------------------------------------------

def _jpeg_cut_segment() -> bytes:
    base = img.jpeg(64, 64)
    return base[:2] + b"\xff\xe1\xff\xf0Exif\x00\x00" + b"x" * 100  # APP1 claims 65520 bytes


MALFORMED = {
    "JPEG segment longer than the file": (_jpeg_cut_segment, "malformed", "claims"),
    "JPEG segment with length 1": (lambda: img.with_jpeg_segments(img.jpeg(64, 64), b"\xff\xfe\x00\x01"),
                                   "malformed", "impossible length"),
    "JPEG with garbage between segments": (lambda: img.with_jpeg_segments(img.jpeg(64, 64),
                                                                          img.jpeg_segment(0xFE, b"hi") + b"<html>"),
                                           "malformed", "unexpected data"),
    "JPEG with an unknown marker": (lambda: img.with_jpeg_segments(img.jpeg(64, 64), img.jpeg_segment(0xF7, b"x")),
                                    "malformed", "unknown marker"),
    "JPEG with two frame headers": (lambda: img.with_jpeg_segments(
        img.jpeg(64, 64), img.jpeg_segment(0xC0, b"\x08\x00\x10\x00\x10\x01\x01\x11\x00")), "malformed", "frame"),
    "JPEG without EOI": (lambda: img.jpeg(64, 64)[:-2], "corrupt", "inside the image data"),
    "JPEG that ends inside a segment": (lambda: img.jpeg(64, 64)[:300], "malformed", "claims"),
    "PNG with a bad CRC": (lambda: img.png(64, 64)[:-1] + b"\x00", "corrupt", "checksum"),
    "PNG chunk longer than the file": (lambda: img.with_png_chunks(img.png(64, 64), b"\x00\x10\x00\x00tEXtabc"),
                                       "corrupt", "claims"),
    "PNG with an unknown critical chunk": (lambda: img.with_png_chunks(img.png(64, 64), img.png_chunk(b"EVIL", b"x")),
                                           "malformed", "critical"),
    "PNG without IEND": (lambda: img.png(64, 64)[:-12], "corrupt", "IEND"),
    "WebP chunk longer than the file": (lambda: _webp_with(b"EXIF" + b"\xff\xff\x00\x00" + b"x" * 10),
                                        "malformed", "claims"),
    "WebP RIFF size beyond the file": (lambda: img.webp(64, 64)[:-10], "corrupt", "announces"),
    "WebP with a foreign first chunk": (lambda: b"RIFF\x0c\x00\x00\x00WEBPJUNK\x00\x00\x00\x00", "malformed",
                                        "first chunk"),
}


def _webp_with(chunk: bytes) -> bytes:
    data = img.webp(64, 64)
    body = data[12:] + chunk
    return b"RIFF" + (4 + len(body)).to_bytes(4, "little") + b"WEBP" + body


@pytest.mark.parametrize("make, code, words", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_structure_is_refused_with_the_reason(make, code, words):
    error = refusal(make())
    assert error.code == code
    assert words in error.reason


def _without_segment(data: bytes, marker: int) -> bytes:
    out, pos = data[:2], 2
    while data[pos + 1] != 0xDA:
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if data[pos + 1] != marker:
            out += data[pos:pos + 2 + length]
        pos += 2 + length
    return out + data[pos:]


def _png_rewritten(data: bytes, change) -> bytes:
    """A PNG whose chunks' bodies are passed through `change(kind, body)`, CRCs recomputed (valid structure)."""
    out, pos = data[:8], 8
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        out += img.png_chunk(kind, change(kind, data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return out


def _bogus_sampling(data: bytes) -> bytes:
    sof = data.index(b"\xff\xc0")
    return data[:sof + 11] + b"\x00" + data[sof + 12:]  # first component: sampling factors 0x0


_BIG = _save(img.photo(2400, 1600), "JPEG", quality=90)
CORRUPT = {
    "JPEG cut in half": img.truncated_jpeg,
    "JPEG without quantisation tables (reduced decode)": lambda: _without_segment(_BIG, 0xDB),
    "JPEG with bogus sampling factors": lambda: _bogus_sampling(img.jpeg(64, 64)),
    "PNG whose deflate stream is cut": lambda: _png_rewritten(img.png(300, 200), lambda k, b: b[:len(b) // 2]
                                                               if k == b"IDAT" else b),
    "PNG whose deflate stream is garbage": lambda: _png_rewritten(img.png(300, 200), lambda k, b: b"\x78\x9c" +
                                                                   b"\xff" * 50 if k == b"IDAT" else b),
    "WebP cut short (RIFF size fixed up)": lambda: _riff_fixed(img.webp(300, 200)[:120]),
}


def _riff_fixed(data: bytes) -> bytes:
    """A WebP whose chunk is cut but whose RIFF and chunk sizes were rewritten to match (structure valid)."""
    body = data[20:]
    return b"RIFF" + (12 + len(body)).to_bytes(4, "little") + b"WEBP" + data[12:16] + len(body).to_bytes(4, "little") \
        + body


@pytest.mark.parametrize("make", CORRUPT.values(), ids=CORRUPT.keys())
def test_damaged_image_data_is_refused(make):
    assert refusal(make()).code in ("corrupt", "malformed")


def _decodes(data: bytes, reduced: bool) -> bool:
    im = opened(data)
    if reduced:
        im.draft("RGB", (im.width // 8, im.height // 8))
    try:
        im.load()
    except OSError:
        return False
    return True


@pytest.mark.parametrize("data", [
    _BIG, _BIG[:len(_BIG) // 2], _BIG[:len(_BIG) // 3] + b"\xff\xd9", _without_segment(_BIG, 0xDB),
    _without_segment(_BIG, 0xC4), _bogus_sampling(_BIG), _BIG[:5000] + bytes(200) + _BIG[5200:],
], ids=["intact", "cut", "cut-with-EOI", "no-DQT", "no-DHT", "bogus-sampling", "zeroed-scan"])
def test_the_reduced_jpeg_decode_fails_exactly_when_the_full_decode_does(data):
    assert _decodes(data, reduced=True) == _decodes(data, reduced=False)


def test_a_hostile_file_that_trips_pillow_is_refused_not_raised():
    data = _bogus_sampling(img.hostile_jpeg())
    assert refusal(data).code == "corrupt"


# ---- display copy and thumbnails -------------------------------------------------------------------

@pytest.mark.parametrize("make, size", [
    (lambda: img.jpeg(4000, 3000), (1024, 768)),
    (lambda: img.jpeg(1200, 2400, exif_orientation=6), (1024, 512)),
    (lambda: img.png(640, 480, mode="RGBA"), (640, 480)),
    (lambda: img.webp(2048, 1024), (1024, 512)),
])
def test_display_copy_is_an_upright_webp_of_at_most_1024_px_without_metadata(make, size):
    out = process(make())
    display = opened(out.display)
    assert (display.format, display.size, out.display_content_type) == ("WEBP", size, "image/webp")
    img.assert_upright(display)
    assert_nothing_private(out.display)


def test_display_copy_keeps_transparency():
    im = img.upright(200, 100, "RGBA")
    im.putalpha(Image.linear_gradient("L").resize(im.size))
    display = opened(process(_save(im, "PNG")).display)
    assert display.mode == "RGBA"
    assert display.getchannel("A").getextrema()[0] < 20


@pytest.mark.parametrize("size, target", [((1080, 1350), (819, 1024)), ((1920, 1080), (1024, 576)),
                                          ((1000, 333), (1000, 333)), ((3300, 900), (1024, 279))])
def test_display_pixels_resized_in_bands_match_one_resize(size, target):
    from PIL import ImageChops

    photo = img.photo(*size)
    display = images._display_pixels(photo, size, 1024)
    whole = photo.resize(target, Image.Resampling.LANCZOS, reducing_gap=images.REDUCING_GAP)
    assert display.size == target
    # Same filter across the bands' edges: no seam, at most a rounding step apart anywhere.
    assert max(high for _, high in ImageChops.difference(display, whole).getextrema()) <= 2


def test_lossless_webp_display_copy_is_the_upload_pixels_as_they_are():
    upload = _save(img.upright(640, 480), "WEBP", lossless=True)
    out = process(upload)
    assert pixels(out.image) == pixels(upload)
    assert opened(out.display).size == (640, 480)


@pytest.mark.parametrize("crop, colour", [
    (images.Crop(0, 0, 100), img.TOP), (images.Crop(0, 500, 100), img.BOTTOM), (images.Crop(350, 0, 50), img.TOP),
])
def test_thumbnail_of_a_chosen_crop_shows_that_square(crop, colour):
    stored = process(img.jpeg(400, 600)).image
    thumb = opened(images.thumbnail_from_bytes(stored, crop=crop)).convert("RGB")
    assert thumb.size == (300, 300)
    middle = thumb.getpixel((150, 150))
    assert all(abs(a - b) < 40 for a, b in zip(middle, colour)), (middle, colour)


def test_thumbnail_from_a_large_jpeg_uses_a_reduced_decode_and_stays_sharp():
    photo = img.photo(4000, 3000)
    data = _save(photo, "JPEG", quality=90)
    thumb = opened(images.thumbnail_from_bytes(data)).convert("RGB")
    reference = photo.crop((500, 0, 3500, 3000)).resize((300, 300), Image.Resampling.LANCZOS)
    from PIL import ImageChops, ImageStat

    assert max(ImageStat.Stat(ImageChops.difference(thumb, reference)).mean) < 6


@pytest.mark.parametrize("make", [lambda: img.hostile_jpeg(96, 64), lambda: img.hostile_jpeg(96, 64, progressive=True),
                                  lambda: img.hostile_png(96, 64), lambda: img.hostile_webp(96, 64),
                                  lambda: img.hostile_webp(96, 64, lossless=True)],
                         ids=["jpeg", "progressive-jpeg", "png", "webp", "lossless-webp"])
def test_damaged_files_are_refused_or_stored_clean_never_raise(make):
    import random

    rng = random.Random(18)
    original = make()
    for _ in range(150):
        data = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            if rng.random() < 0.2:
                del data[at:at + rng.randint(1, 40)]
            else:
                data[at] = rng.randrange(256)
        try:
            out = process(bytes(data))
        except images.ImageRejectedError as exc:
            assert exc.code in ("corrupt", "malformed", "not_an_image", "too_many_pixels", "animated")
            continue
        assert img.SECRET not in out.image and b"Exif\x00\x00" not in out.image
