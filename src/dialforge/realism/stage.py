"""The realism step as the pipeline and the report call it: a card file per simulator, plus a
real-vs-real floor (REAL split in two by family) so the report can show what "as real as real
data" looks like at this sample size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from ..errors import DialforgeError
from ..io.files import atomic_write_bytes
from .card import RealismCard
from .config import RealismConfig
from .measure import realism
from .split import split_heldout

CARD_JSON = "realism_card.json"
CARD_MD = "realism_card.md"
FLOOR_JSON = "realism_floor.json"


def write_card(card: RealismCard, out_dir: str | Path, name: str = CARD_JSON) -> Path:
    """`name` (full card, JSON) and its markdown twin in `out_dir`."""
    out = Path(out_dir)
    path = out / name
    atomic_write_bytes(path, orjson.dumps(card.model_dump(mode="json"), option=orjson.OPT_INDENT_2))
    atomic_write_bytes(path.with_suffix(".md"), card.to_markdown().encode())
    return path


def read_card(path: str | Path) -> RealismCard:
    return RealismCard.model_validate_json(Path(path).read_bytes())


def realism_floor(real: str | Path, config: RealismConfig | None = None, **overrides: Any) -> RealismCard:
    """REAL's families split in half (seeded) and compared with each other."""
    from ..io import read_conversations

    cfg = config or RealismConfig()
    convs = read_conversations(real, cfg.real_format, on_error="skip")
    a, b = split_heldout(convs, 0.5, cfg.seed, salt="floor")
    if not a or not b:
        raise DialforgeError(f"{real}: too few conversation families for a real-vs-real floor")
    return realism(a, b, cfg.model_copy(update={"simulator_model": None}), **overrides)


def realism_stage(
    sim_file: str | Path,
    real_file: str | Path,
    out_dir: str | Path,
    *,
    config: RealismConfig | None = None,
    floor: bool = True,
) -> dict[str, Any]:
    """Write `realism_card.json|.md` (and `realism_floor.json|.md`) into `out_dir`; return the
    card's flat figures with `card`/`floor` paths (what a pipeline stage summary holds)."""
    cfg = config or RealismConfig()
    card = realism(sim_file, real_file, cfg)
    summary: dict[str, Any] = card.figures()
    summary["card"] = str(write_card(card, out_dir))
    if floor:
        fl = realism_floor(real_file, cfg)
        summary["floor"] = str(write_card(fl, out_dir, FLOOR_JSON))
        summary["floor_discriminator_auc"] = fl.discriminator.auc
        summary["floor_overall_realism"] = fl.overall.score
    return summary
