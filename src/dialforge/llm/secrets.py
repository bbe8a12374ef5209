"""API keys seen by this process, masked out of every string that leaves a backend: error
messages, logs, records. Masking happens on the whole text, before any truncation, so a cut
can never leave a fragment of a key behind."""

from __future__ import annotations

import logging

MASK = "***"
_SECRETS: set[str] = set()


def register_secret(secret: str | None) -> None:
    if secret and len(secret) >= 4:
        _SECRETS.add(secret)


def mask_secrets(text: str) -> str:
    for s in _SECRETS:
        if s in text:
            text = text.replace(s, MASK)
    return text


def truncate_masked(text: str, limit: int) -> str:
    """Mask, then cut to `limit` characters (the order matters)."""
    text = mask_secrets(text)
    return text if len(text) <= limit else text[:limit] + "..."


class MaskSecretsFilter(logging.Filter):
    """For log handlers: the formatted message with every known key masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            record.msg = mask_secrets(record.getMessage())
            record.args = None
        return True
