"""Held-out real dialogues: a seeded split by conversation family that induction never sees.

Each family (an OASST tree, else the opening message) goes to the held-out side when a hash
of (seed, family) falls below `fraction`. The side of a family depends only on the seed and
the family, not on file order or on which other dialogues are present, so re-running on a
grown file keeps every earlier decision, and threads of one tree never straddle the split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..conversation import Conversation
from ..errors import DialforgeError
from .features import group_key


def _unit(seed: int, key: str, salt: str) -> float:
    h = hashlib.sha256((f"{salt}\0" if salt else "").encode() + f"{seed}\0{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def split_heldout(
    convs: Sequence[Conversation], fraction: float = 0.1, seed: int = 0, salt: str = ""
) -> tuple[list[Conversation], list[Conversation]]:
    """(kept, held_out). With two or more families each side gets at least one. Splits with
    different `salt`s are independent: the real-vs-real floor splits the held-out part again
    with its own salt (the same salt and seed would put every family on one side)."""
    if not 0 < fraction < 1:
        raise DialforgeError(f"held-out fraction must be between 0 and 1, not {fraction}")
    keys = [group_key(c) for c in convs]
    unit = {k: _unit(seed, k, salt) for k in set(keys)}
    held = {k for k, u in unit.items() if u < fraction}
    if len(unit) >= 2:
        ordered = sorted(unit, key=lambda k: unit[k])
        if not held:
            held = {ordered[0]}
        elif len(held) == len(unit):
            held.discard(ordered[-1])
    kept = [c for c, k in zip(convs, keys, strict=True) if k not in held]
    out = [c for c, k in zip(convs, keys, strict=True) if k in held]
    return kept, out


def split_heldout_file(
    src: str | Path,
    kept_out: str | Path,
    heldout_out: str | Path,
    *,
    fraction: float = 0.1,
    seed: int = 0,
    fmt: str = "auto",
) -> dict[str, Any]:
    """Split a dialogue file into the part induction may see and the held-out real reference."""
    from ..io import read_conversations, write_conversations

    convs = read_conversations(src, fmt, on_error="skip")
    kept, held = split_heldout(convs, fraction, seed)
    write_conversations(kept, kept_out)
    write_conversations(held, heldout_out)
    return {
        "source": str(src),
        "kept": len(kept),
        "held_out": len(held),
        "fraction": fraction,
        "seed": seed,
        "kept_path": str(kept_out),
        "held_out_path": str(heldout_out),
    }
