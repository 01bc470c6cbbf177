"""The web page, served by the API: sign-in, the jobs page and the read-along player.

Static HTML, CSS and plain ES modules shipped inside the package (``pages/``,
``static/``; no build step). The pages call the same ``/v1`` routes as any
client, authenticated by the session cookie that ``POST /ui/session`` sets
(:data:`scheduler.api.auth.SESSION_COOKIE`), so the page's JavaScript never
holds the key.
"""

from scheduler.api.ui.routes import install

__all__ = ["install"]
