"""What a backend config names, checked without a client: a server's base URL, a model's
local path or hub id (a leaf: the configs, the pool and the HTTP client import it)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError


def resolve_model(name: str) -> str:
    """The local path or hub id to load for a model name: an embedded model's name
    (`smollm2-135m`, `dialforge-tiny`: embedded.py) is its cached folder (built on first use).
    Every in-process load goes through here."""
    from ..embedded import MODELS, embedded_path

    if name in MODELS:
        return str(embedded_path(name))
    if name.startswith(("/", "./", "../", "~")) and not Path(name).expanduser().exists():
        known = ", ".join(sorted(MODELS))
        raise ConfigError(f"model {name!r}: no such folder (a local model path, a hub id, or one of {known})")
    return name


def check_base_url(url: str) -> str:
    """A base URL a client can send to: http(s), a host, nothing else on the line. Raises
    ValueError saying what is wrong (a config error, before the first request)."""
    from urllib.parse import urlsplit

    if not isinstance(url, str) or not url.strip():
        raise ValueError("an empty URL: give the server's base URL, e.g. http://localhost:8000/v1")
    if url != url.strip() or any(c.isspace() for c in url):
        raise ValueError(f"{url!r} is not a URL (it contains spaces); e.g. http://localhost:8000/v1")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError as e:
        raise ValueError(f"{url!r} is not a URL ({e}); e.g. http://localhost:8000/v1") from None
    if parts.scheme not in ("http", "https"):
        what = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise ValueError(f"{url!r}: {what}; an OpenAI-compatible server URL is http(s)://HOST[:PORT]/PATH")
    if not parts.hostname:
        raise ValueError(f"{url!r}: no host; e.g. http://localhost:8000/v1")
    return url
