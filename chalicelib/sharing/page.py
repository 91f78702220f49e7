"""The public page of a share link: server-rendered HTML, every user text escaped, no script at all.

One template for every answer (the avatar, 404, 410, 429), so the page's shape tells nothing beyond
its status. The only external resource is the presigned image, allowed by origin in the CSP.
"""
from __future__ import annotations

import base64
import hashlib
from html import escape
from urllib.parse import urlsplit

# The page speaks the viewer's language (Lumiku's users hand links to Indonesian clients): Bahasa
# Indonesia when the browser asks for it first, English otherwise; `?lang=id|en` overrides.
LANGUAGES = ("en", "id")
LABELS = {
    "en": {
        "personaName": "Persona name", "personaAge": "Age", "personaPersonality": "Personality",
        "personaBackground": "Background", "gender": "Gender", "ageRange": "Age range", "ethnicity": "Ethnicity",
        "bodyType": "Body type", "hairStyle": "Hair style", "hairColor": "Hair colour", "eyeColor": "Eye colour",
        "skinTone": "Skin tone", "style": "Style", "prompt": "Prompt",
    },
    "id": {
        "personaName": "Nama persona", "personaAge": "Usia", "personaPersonality": "Kepribadian",
        "personaBackground": "Latar belakang", "gender": "Gender", "ageRange": "Rentang usia", "ethnicity": "Etnis",
        "bodyType": "Tipe tubuh", "hairStyle": "Gaya rambut", "hairColor": "Warna rambut", "eyeColor": "Warna mata",
        "skinTone": "Warna kulit", "style": "Gaya", "prompt": "Prompt",
    },
}
MESSAGES = {
    "en": {
        404: ("Link not found", "This share link does not exist. Check that it was copied whole."),
        410: ("Link no longer available", "This share link was revoked, has expired, or its avatar was deleted."),
        429: ("Too many requests", "Too many pages were opened from here. Try again in a minute."),
        500: ("Something went wrong", "This page could not be shown. Try again later."),
    },
    "id": {
        404: ("Tautan tidak ditemukan", "Tautan berbagi ini tidak ada. Pastikan tautan disalin utuh."),
        410: ("Tautan sudah tidak tersedia", "Tautan berbagi ini sudah dicabut, kedaluwarsa, atau avatarnya dihapus."),
        429: ("Terlalu banyak permintaan", "Terlalu banyak halaman dibuka dari sini. Coba lagi sebentar lagi."),
        500: ("Terjadi kesalahan", "Halaman ini tidak dapat ditampilkan. Coba lagi nanti."),
    },
}
TITLE_SUFFIX = {"en": "Avatar", "id": "Avatar"}


def language(accept_language: str | None, override: str | None = None) -> str:
    """`id` or `en`: the override when it is one of them, else the first of them the Accept-Language
    header ranks highest (q-values; `id-ID` and the old code `in` count as `id`), else `en`."""
    if override in LANGUAGES:
        return override
    ranked = []
    for position, part in enumerate((accept_language or "")[:512].split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        base = tag.strip().lower().split("-")[0]
        base = "id" if base == "in" else base
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if base in LANGUAGES and q > 0:
            ranked.append((-q, position, base))
    return min(ranked)[2] if ranked else "en"


STYLE = ("body{font-family:system-ui,sans-serif;margin:0;background:#f5f5f7;color:#1d1d1f}"
         "main{max-width:40rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:12px}"
         "img{display:block;width:100%;height:auto;border-radius:8px;background:#eee}"
         "h1{font-size:1.5rem;margin:1rem 0 .5rem}dl{display:grid;grid-template-columns:max-content 1fr;"
         "gap:.25rem 1rem;margin:0}dt{font-weight:600}dd{margin:0;white-space:pre-wrap;overflow-wrap:anywhere}"
         "p{line-height:1.5}")
_STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def headers(image_url: str | None = None, lang: str = "en") -> dict[str, str]:
    """Every answer of the page route carries these (errors too)."""
    img_src = _origin(image_url) or "'none'"
    csp = (f"default-src 'none'; img-src {img_src}; style-src '{_STYLE_HASH}'; "
           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow",
            "Referrer-Policy": "no-referrer", "Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY", "Content-Language": lang, "Vary": "Accept-Language"}


def _document(title: str, body: str, lang: str) -> str:
    return (f"<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            "<meta name=\"robots\" content=\"noindex, nofollow\">"
            "<meta name=\"referrer\" content=\"no-referrer\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
            f"<body><main>{body}</main></body></html>")


def render_avatar(view: dict, image_url: str | None, lang: str = "en") -> str:
    name = escape(view["name"])
    image = (f"<img src=\"{escape(image_url, quote=True)}\" alt=\"{name}\" referrerpolicy=\"no-referrer\">"
             if image_url else "")
    labels = LABELS[lang]
    rows = "".join(f"<dt>{escape(labels.get(key, key))}</dt><dd>{escape(value)}</dd>" for key, value in view["fields"])
    details = f"<dl>{rows}</dl>" if rows else ""
    return _document(f"{view['name']} — {TITLE_SUFFIX[lang]}", f"{image}<h1>{name}</h1>{details}", lang)


def render_message(status: int, lang: str = "en") -> str:
    messages = MESSAGES[lang]
    title, text = messages.get(status, messages[500])
    return _document(title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>", lang)
