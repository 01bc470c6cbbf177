"""API keys: each key is a tenant. Keys come from ``TTSBATCH_API_KEYS`` or a file.

A tenant's id is derived from its key (a hash prefix), so keys are never
stored in Redis or the store, and rotating a key starts a new tenant.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from ttsbatch.errors import ConfigError
from ttsbatch.settings import ApiSettings

#: The web page's session cookie: it holds the API key for the browser's session (HttpOnly,
#: SameSite=Strict; set by ``POST /ui/session``, read by :func:`scheduler.api.deps.get_tenant`).
SESSION_COOKIE = "ttsbatch_session"


def tenant_of(key: str) -> str:
    """Return the tenant id of an API key."""
    return "t" + hashlib.sha256(key.encode()).hexdigest()[:16]


def load_keys(settings: ApiSettings) -> dict[str, str]:
    """Return ``{tenant id: key}`` from the settings.

    Raises:
        ConfigError: the keys file cannot be read.
    """
    raw = [k.strip() for k in settings.keys.get_secret_value().split(",")]
    if settings.keys_file:
        path = Path(settings.keys_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(
                f"{path}: cannot read TTSBATCH_API_KEYS_FILE ({exc.strerror or exc})"
            ) from exc
        raw += [line.split("#", 1)[0].strip() for line in lines]
    return {tenant_of(key): key for key in raw if key}


class KeyRing:
    """Checks bearer keys in constant time."""

    def __init__(self, keys: dict[str, str]) -> None:
        self._keys = keys

    def __len__(self) -> int:
        return len(self._keys)

    def tenant(self, key: str) -> str | None:
        """Return the tenant of a presented key, or None if it is not a key of ours."""
        tenant = tenant_of(key)
        known = self._keys.get(tenant)
        if known is not None and hmac.compare_digest(known.encode(), key.encode()):
            return tenant
        return None
