"""Keys a user put where a key does not belong, kept out of everything a run writes.

Two mistakes put a key in plain config values: a password in a URL's userinfo
(`http://user:KEY@host/v1`) and a key given to `--api-key-env` (which wants the *name* of the
variable that holds it). Both values are written to manifests and echoed in errors and logs;
`find_secrets` registers them with `llm.secrets` (so stderr and run.log mask them) and
`redact` masks them in what a manifest records.
"""

from __future__ import annotations

import os
import re
from typing import Any

from .secrets import MASK, mask_secrets, register_secret

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<password>[^@/\s]+)@")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def looks_like_a_key(value: str) -> bool:
    """An `api_key_env` value that is no variable name (`sk-...`, with dashes or dots), or
    a long unset one mixing letters and digits: a key given where its variable's name goes."""
    if not _ENV_NAME.match(value):
        return len(value) >= 8
    return (
        value not in os.environ
        and len(value) >= 24
        and any(c.isdigit() for c in value)
        and any(c.islower() for c in value)
    )


def find_secrets(data: Any) -> list[str]:
    """Register (and return) the URL passwords and mistaken `api_key_env` keys in `data`."""
    found: list[str] = []

    def walk(v: Any, key: str | None = None) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, str(k))
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x, key)
        elif isinstance(v, str):
            found.extend(m.group("password") for m in _USERINFO.finditer(v))
            if key == "api_key_env" and looks_like_a_key(v):
                found.append(v)

    walk(data)
    for s in found:
        register_secret(s)
    return found


def redact(data: Any) -> Any:
    """`data` (JSON-like) with URL passwords, mistaken `api_key_env` keys and every key this
    process knows replaced by `***`."""
    find_secrets(data)

    def walk(v: Any, key: str | None = None) -> Any:
        if isinstance(v, dict):
            return {k: walk(x, str(k)) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x, key) for x in v]
        if isinstance(v, str):
            if key == "api_key_env" and looks_like_a_key(v):
                return MASK
            return mask_secrets(_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", v))
        return v

    return walk(data)
