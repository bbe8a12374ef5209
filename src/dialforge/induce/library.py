"""The strategy library: the artifact induction produces and deduction consumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import format_validation_error, portable_path
from ..errors import DialforgeError
from ..io.files import atomic_write_bytes

SCHEMA_VERSION = 1


class SourceTurn(BaseModel):
    """Where a strategy was seen: a real user turn of a real dialogue."""

    model_config = ConfigDict(extra="forbid")

    conversation_id: str
    turn_index: int
    instruction: str
    strategy: str


class Strategy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    text: str
    size: int = Field(description="extracted turns in the cluster")
    members: list[str] = Field(description="ids of the original (extracted) strategies")
    examples: list[SourceTurn]
    centroid: list[float]
    abstracted: bool = Field(description="False when the text is a singleton kept as-is")
    contexts: list[str] = Field(
        default_factory=list,
        description="distinct assistant answers that preceded member turns in the real dialogues "
        "(provenance: the default ranker scores a strategy by how close the current answer is to these)",
    )


class StrategyLibrary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    created_at: str
    embedder: str
    threshold: float
    method: str
    abstraction_model: str
    sources: list[str]
    counts: dict[str, Any]
    strategies: list[Strategy]

    def save(self, path: str | Path) -> None:
        """Sources in the same run directory are written relative to the library's folder
        (see `portable_path`); `created_at` and `sources` are outside its content hash."""
        data = self.model_dump(mode="json")
        data["sources"] = [portable_path(s, Path(path).parent) for s in self.sources]
        atomic_write_bytes(path, orjson.dumps(data, option=orjson.OPT_INDENT_2))

    @classmethod
    def load(cls, path: str | Path) -> StrategyLibrary:
        p = Path(path)
        if p.is_dir():
            p = p / "library.json"
        if not p.exists():
            raise DialforgeError(f"{p}: strategy library not found")
        what = "not a strategy library (the library.json that `dialforge induce` writes)"
        try:
            data = orjson.loads(p.read_bytes())
        except orjson.JSONDecodeError as e:
            raise DialforgeError(f"{p}:{e.lineno}: {what}: broken JSON ({e.msg})") from None
        if not isinstance(data, dict) or "schema_version" not in data:
            raise DialforgeError(f"{p}: {what}")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise DialforgeError(f"{p}: library schema version {data.get('schema_version')} is not {SCHEMA_VERSION}")
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise DialforgeError(format_validation_error(e, f"{p}: {what}")) from None

    def centroids(self) -> np.ndarray:
        return np.asarray([s.centroid for s in self.strategies], dtype=np.float32)

    def by_id(self) -> dict[str, Strategy]:
        return {s.id: s for s in self.strategies}
