"""The UI's HTML pages: read from ``pages/``, filled in, sent with their security headers.

Pages are files with ``{{name}}`` slots that the server fills with escaped
text; everything dynamic after that is done by the page's modules in
``static/js`` (the Content-Security-Policy allows no inline script).
"""

from __future__ import annotations

import functools
import html
from pathlib import Path
from typing import Final

from fastapi.responses import HTMLResponse

PAGES: Final = Path(__file__).resolve().parent / "pages"

#: Only this origin's scripts, styles, media and connections; no plugins, frames or <base>.
#: (CSP Level 3: https://www.w3.org/TR/CSP3/ ; 'self' also covers same-origin EventSource.)
CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)

#: Headers of every page: pages differ by tenant and session, so no cache keeps them.
PAGE_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@functools.cache
def _template(name: str) -> str:
    return (PAGES / f"{name}.html").read_text(encoding="utf-8")


def page(template: str, status: int = 200, **slots: str) -> HTMLResponse:
    """Return page ``template`` with each ``{{slot}}`` replaced by its value, HTML-escaped."""
    text = _template(template)
    for slot, value in slots.items():
        text = text.replace("{{" + slot + "}}", html.escape(value))
    return HTMLResponse(text, status_code=status, headers=PAGE_HEADERS)
