"""chalicelib.images on real Pillow: what is accepted, what is refused and why, what leaves."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from chalicelib import images
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
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "corrupt"),
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
