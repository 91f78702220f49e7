"""The page with 200 avatars in a project, in Debian's Chromium: first contentful paint and the time
until the first 20 thumbnails show, at desktop and phone width.

A fresh local stack gets one project of 200 uploaded avatars (real uploads through S3 and the upload
worker). Each round opens the project in a new browser context (empty cache, signed in through
localStorage) and reads, from the navigation start: FCP (PerformanceObserver), the moment 20
thumbnails are decoded and drawn (checked every animation frame), how many cards and thumbnail
requests the page made by then (lazy loading and the 24-item page), and the cumulative layout shift.

    .venv/bin/python -m bench.page [--avatars 200] [--rounds 7]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.common import machine, pct, start_stack, today, write
from tests.support.browser import chromium_path
from tests.support.uploads import browser_post

VIEWPORTS = {"desktop 1280×900": {"width": 1280, "height": 900}, "phone 390×844": {"width": 390, "height": 844}}

# Installed before the page's own scripts: records FCP and layout shifts from the first moment.
OBSERVE = """
window.__bench = { cls: 0 };
new PerformanceObserver((l) => { for (const e of l.getEntries()) if (e.name === 'first-contentful-paint') window.__bench.fcp = e.startTime; })
  .observe({ type: 'paint', buffered: true });
new PerformanceObserver((l) => { for (const e of l.getEntries()) if (!e.hadRecentInput) window.__bench.cls += e.value; })
  .observe({ type: 'layout-shift', buffered: true });
"""
# Every animation frame: when the thumbnails on screen are all drawn (what the person sees first), and
# when the first 20 are — scrolling the 20th card into view as soon as it exists, as a person scrolling
# down would (lazy loading fetches only what nears the screen, so without a scroll a phone never asks).
WATCH = """() => {
  const b = window.__bench;
  const imgs = [...document.querySelectorAll('#avatar-grid .avatar-card img')];
  const shown = (i) => i.complete && i.naturalWidth > 0;
  const thumbs = () => performance.getEntriesByType('resource').filter((r) => r.name.includes('/thumbs/')).length;
  if (b.visible === undefined && imgs.length) {
    const onScreen = imgs.filter((i) => { const r = i.getBoundingClientRect(); return r.top < innerHeight && r.bottom > 0; });
    if (onScreen.length && onScreen.every(shown)) { b.visible = performance.now(); b.visibleCount = onScreen.length; b.requestedAtVisible = thumbs(); }
  }
  if (imgs.length >= 20 && !b.scrolled && b.visible !== undefined) { b.scrolled = performance.now(); imgs[19].scrollIntoView({ block: 'end' }); }
  if (imgs.length < 20 || !imgs.slice(0, 20).every(shown) || b.visible === undefined) return false;
  return { at: performance.now(), cards: document.querySelectorAll('#avatar-grid .avatar-card').length, requested: thumbs() };
}"""


def portrait(i: int) -> bytes:
    """A 480×600 JPEG, different per i (a coloured backdrop and a face-like oval), as a real photo's size class."""
    import io

    from PIL import Image, ImageDraw

    im = Image.new("RGB", (480, 600), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
    draw = ImageDraw.Draw(im)
    draw.ellipse((150, 120, 330, 350), fill=(230, 190, 160))
    draw.rectangle((100, 420, 380, 600), fill=((i * 17) % 256, 60, 120))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=85)
    return out.getvalue()


def seed(stack, n: int) -> tuple[str, str]:
    user = "bench-page"
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {stack.token(user)}"
    pid = http.post(stack.api("/projects"), json={"name": "Two hundred faces"}, timeout=10).json()["id"]
    photos = [portrait(i) for i in range(20)]
    pending = []
    for start in range(0, n, 20):
        count = min(20, n - start)
        files = [{"name": f"Face {start + k + 1:03d}", "contentType": "image/jpeg", "size": len(photos[k])} for k in range(count)]
        created = http.post(stack.api(f"/projects/{pid}/avatars/uploads"), json={"files": files}, timeout=30).json()
        pending += [(item["upload"], photos[k]) for k, item in enumerate(created["items"])]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda p: browser_post(p[0]["url"], p[0]["fields"], p[1]).status_code, pending))
    assert all(c in (200, 201, 204) for c in codes), codes
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        count = http.get(stack.api(f"/projects/{pid}"), timeout=10).json()["avatarCount"]
        if count >= n:
            break
        time.sleep(1)
    else:
        raise SystemExit(f"only {count} of {n} avatars ready after 10 minutes")
    return stack.token(user), pid


def measure(browser, base_url: str, token: str, pid: str, viewport: dict) -> dict:
    context = browser.new_context(viewport=viewport, base_url=base_url)
    context.add_init_script(f"localStorage.setItem('avatar-creator.token', {token!r}); localStorage.setItem('avatar-creator.user', 'bench-page');")
    context.add_init_script(OBSERVE)
    page = context.new_page()
    page.goto(f"/#/projects/{pid}")
    try:
        done = page.wait_for_function(WATCH, polling="raf", timeout=60_000).json_value()
    except Exception:
        state = page.evaluate("() => ({ url: location.href, imgs: [...document.querySelectorAll('#avatar-grid img')].map(i => [i.complete, i.naturalWidth, i.getBoundingClientRect().top | 0]), scrollH: document.documentElement.scrollHeight, vw: innerWidth, vh: innerHeight })")
        raise SystemExit(f"20 thumbnails never showed: {state}")
    page.wait_for_timeout(300)  # late layout shifts (e.g. a card resizing when its image arrives) would show here
    bench = page.evaluate("window.__bench")
    context.close()
    return {"fcp": bench.get("fcp"), "visible": bench["visible"], "visibleCount": bench["visibleCount"],
            "requestedAtVisible": bench["requestedAtVisible"], "twenty": done["at"], "cards": done["cards"],
            "requested": done["requested"], "cls": bench["cls"]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--avatars", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    stack = start_stack()
    try:
        t0 = time.monotonic()
        token, pid = seed(stack, args.avatars)
        print(f"seeded {args.avatars} avatars in {time.monotonic() - t0:.0f}s", flush=True)
        results: dict[str, list[dict]] = {name: [] for name in VIEWPORTS}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), headless=True,
                                        args=["--no-sandbox", "--disable-dev-shm-usage"])
            for name, viewport in VIEWPORTS.items():
                measure(browser, stack.outputs["ApiUrl"], token, pid, viewport)  # warm-up: the server's first requests
            for _ in range(args.rounds):
                for name, viewport in VIEWPORTS.items():  # interleaved: noise hits both alike
                    results[name].append(measure(browser, stack.outputs["ApiUrl"], token, pid, viewport))
            browser.close()
    finally:
        stack.stop()

    rows = []
    for name, runs in results.items():
        fcp = [r["fcp"] for r in runs if r["fcp"] is not None]
        visible = [r["visible"] for r in runs]
        twenty = [r["twenty"] for r in runs]
        span = lambda v: f"{statistics.median(v):.0f} ms ({pct(v, 10):.0f}–{pct(v, 90):.0f})"  # noqa: E731
        rows.append(f"| {name} | {span(fcp)} | {span(visible)} | {statistics.median([r['visibleCount'] for r in runs]):.0f} "
                    f"of {statistics.median([r['requestedAtVisible'] for r in runs]):.0f} "
                    f"| {span(twenty)} | {max(r['cards'] for r in runs)} "
                    f"| {max(r['cls'] for r in runs):.3f} |")
        print(rows[-1], flush=True)
    write("page", f"""# The page with {args.avatars} avatars (Chromium)

Measured {today()} on {machine()}; {args.rounds} rounds per viewport after one warm-up each, interleaved,
each in a new browser context (empty cache) against a fresh local stack.
Rerun: `.venv/bin/python -m bench.page --avatars {args.avatars} --rounds {args.rounds}` (or `make bench`).

One project holds {args.avatars} uploaded avatars. Times are from the navigation start of
`/#/projects/{{id}}` (signed in), median (p10–p90), checked every animation frame:
"thumbnails on screen shown" is when every card image in the viewport is decoded ("n of m": n on
screen, m thumbnails fetched by then — lazy loading fetches only what nears the screen); "first 20
thumbnails shown" is when the first 20 are, the 20th card being scrolled into view as soon as the
thumbnails on screen are drawn (a person scrolling down). The page asks the API for one page of 20
avatars (the cursor fetches more when the end of the grid nears the screen), and every `<img>` has
`width`/`height`, so the grid does not move when images arrive (CLS). "Cards in the page" is counted
when the 20th thumbnail shows: more than 20 means scrolling to it brought the end of the grid near
the screen and the next page came by cursor.

| viewport | first contentful paint | thumbnails on screen shown | on screen of fetched | first 20 thumbnails shown | cards in the page | layout shift (max CLS) |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

The whole local stack (API, S3 emulator, page) runs on the same 2 cores as Chromium, so these are
upper bounds for a real deployment with a CDN in front of the bucket.
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
