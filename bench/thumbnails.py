"""Thumbnails: Pillow (our path) against sharp (libvips, the Node.js reference) on the same files.

Each side decodes the file, applies EXIF orientation, makes the 300×300 centre crop and encodes a
JPEG (quality 85), one thread, several rounds after a warm-up; the figure is the median ratio
Pillow ÷ sharp per image (> 1: Pillow is slower). Also shown: our whole upload step
(`images.process_upload`: validation, upright metadata-free re-encode of the full image, thumbnail).

    .venv/bin/python -m bench.thumbnails [--rounds 7]      (needs `npm ci` in bench/thumbnails; make bench does it)
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, machine, ms, today, write
from tests.support import images as img

HERE = ROOT / "bench" / "thumbnails"
CORPUS = {
    "photo 4000×3000 JPEG (12 MP)": lambda: img.jpeg(4000, 3000, quality=92),
    "photo 2400×1600 JPEG, EXIF rotated": lambda: img.jpeg(2400, 1600, exif_orientation=6),
    "portrait 1080×1350 JPEG": lambda: img.jpeg(1080, 1350),
    "screenshot 1920×1080 PNG": lambda: img.png(1920, 1080),
    "RGBA 1024×1024 PNG": lambda: img.png(1024, 1024, mode="RGBA"),
    "1024×1024 WebP": lambda: img.webp(1024, 1024),
}


def noisy(data: bytes) -> bytes:
    """Flat colour compresses and decodes unrealistically fast: add photo-like noise, keep format and EXIF."""
    from PIL import Image, ImageFilter

    src = Image.open(io.BytesIO(data))
    exif = src.info.get("exif")
    noise = Image.effect_noise(src.size, 64).convert("L")
    mixed = Image.blend(src.convert("RGB"), Image.merge("RGB", [noise] * 3).filter(ImageFilter.GaussianBlur(1)), 0.35)
    if src.mode == "RGBA":
        mixed = mixed.convert("RGBA")
        mixed.putalpha(src.getchannel("A"))
    out = io.BytesIO()
    kwargs = {"exif": exif} if exif else {}
    mixed.save(out, src.format, **({"quality": 90} if src.format in ("JPEG", "WEBP") else {}), **kwargs)
    return out.getvalue()


def pillow_thumbnail(data: bytes) -> None:
    from PIL import Image, ImageOps

    from chalicelib.images import make_thumbnail

    im = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    make_thumbnail(im, 300)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    from chalicelib.images import process_upload

    if not (HERE / "node_modules" / "sharp").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True)
    tmp = Path(tempfile.mkdtemp(prefix="thumbs-"))
    files = {}
    for i, (name, make) in enumerate(CORPUS.items()):
        path = tmp / f"{i}.bin"
        path.write_bytes(noisy(make()))
        files[name] = path
    sharp = json.loads(subprocess.run(["node", str(HERE / "thumb.mjs"), str(args.rounds + 1), *map(str, files.values())],
                                      capture_output=True, text=True, check=True).stdout)
    rows = []
    ratios = []
    for name, path in files.items():
        data = path.read_bytes()
        pillow_thumbnail(data)  # warm-up
        pil = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            pillow_thumbnail(data)
            pil.append(time.perf_counter() - t0)
        full = []
        for _ in range(max(3, args.rounds // 2)):
            t0 = time.perf_counter()
            process_upload(data, max_pixels=40_000_000, max_bytes=10 * 1024 * 1024)
            full.append(time.perf_counter() - t0)
        sh = sharp[str(path)][1:]  # first round is sharp's warm-up
        ratio = statistics.median(pil) / statistics.median(sh)
        ratios.append(ratio)
        rows.append(f"| {name} ({len(data) // 1024} KB) | {ms(statistics.median(pil))} | {ms(statistics.median(sh))} | "
                    f"**{ratio:.2f}×** | {ms(statistics.median(full))} |")
    text = f"""# Thumbnails: Pillow against sharp

Measured {today()} on {machine()}; Pillow {__import__('PIL').__version__}, sharp 0.34.5 (libvips), one thread each,
{args.rounds} rounds after a warm-up, medians. Rerun: `.venv/bin/python -m bench.thumbnails`.

Same work on both sides: decode, EXIF orientation, 300×300 centre crop, JPEG quality 85. Images are
generated with photo-like noise (flat colour would flatter both decoders).

| image | Pillow thumbnail | sharp thumbnail | Pillow ÷ sharp | our whole upload step |
|---|---|---|---|---|
""" + "\n".join(rows) + f"""

Median ratio over the corpus: **{statistics.median(ratios):.2f}×**. The last column is what the upload
worker really does per file: validation, the upright, metadata-free re-encode of the full image
(kept as the avatar's image), and the thumbnail from the decoded pixels (decoded once).
"""
    write("thumbnails", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
