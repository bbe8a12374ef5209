"""`dialforge export`: each format's export writer (`io.registry.Format.export`, shapes in
`io.consumers`), each output checked by its consumer's rules (`io.check`) before the export
reports success; and what a path exports (a file, a simulator folder, a run directory).

- `openai`: OpenAI's chat fine-tuning JSONL; dialforge's ids and meta in `OUT.meta.jsonl`.
- `trl`: the same messages with `tools` as a JSON string, for TRL's `SFTTrainer`.
- `sharegpt`: ShareGPT / FastChat (LLaMA-Factory's tool roles where there are tool calls).
- `llamafactory`: a dataset folder: the data file plus a `dataset_info.json` entry declaring
  only the columns the file has.
- `hf`: a `datasets` folder with typed features.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..conversation import Conversation
from ..errors import DialforgeError
from ..io.llamafactory import llamafactory_entry
from ..io.output import export_conversations
from ..io.reader import iter_conversations
from ..io.registry import EXPORT_FORMATS, exporter
from ..io.report import OnError
from ..io.writers import ExportResult

#: The consumer whose rules `export` checks each format's output against (`Export.check_as`).
CHECKED_AS = {name: spec.check_as for name in EXPORT_FORMATS if (spec := exporter(name)).check_as is not None}


def export(convs: Iterable[Conversation], fmt: str, out: str | Path, name: str = "dialforge") -> list[Path]:
    """Write `convs` (streamed: any iterable); for `llamafactory`, `out` is a dataset folder:
    the data file plus `dataset_info.json` (an existing one is updated, other entries kept)."""
    return export_conversations(convs, fmt, out, name).paths


def export_file(
    data: str | Path, fmt: str, out: str | Path, name: str = "dialforge", *, on_error: OnError = "skip"
) -> tuple[int, list[Path]]:
    """Export a conversation file one record at a time: (conversations written, paths)."""
    r = export_file_result(data, fmt, out, name, on_error=on_error)
    return r.written, r.paths


def export_file_result(
    data: str | Path, fmt: str, out: str | Path, name: str = "dialforge", *, on_error: OnError = "skip"
) -> ExportResult:
    exporter(fmt)  # an unknown format fails before the file is read
    return export_conversations(iter_conversations(data, on_error=on_error), fmt, out, name)


# -- what a path exports ----------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    name: str
    path: Path
    kind: str = "file"  # "final": a simulator's filtered, deduplicated file; "unfiltered": it has none

    def describe(self) -> str:
        if self.kind == "file":
            return str(self.path)
        what = (
            "final: filtered and deduplicated" if self.kind == "final" else "unfiltered: the folder has no final.jsonl"
        )
        return f"{self.name}: from {self.path} ({what})"


def _simulator_source(folder: Path) -> Source | None:
    final = folder / "final.jsonl"
    if final.exists():
        return Source(folder.name, final, "final")
    conv = folder / "conversations.jsonl"
    return Source(folder.name, conv, "unfiltered") if conv.exists() else None


def export_sources(path: str | Path) -> list[Source]:
    """What to export from a path: a file as it is; a simulator folder's `final.jsonl` (else
    its `conversations.jsonl`); a `dialforge run` directory's simulators (`simulate/NAME/`),
    each its final file."""
    p = Path(path)
    if not p.exists():
        raise DialforgeError(f"{p}: file not found")
    if p.is_file():
        return [Source(p.stem, p)]
    own = _simulator_source(p)
    if own is not None:
        return [own]
    sims = sorted(d for d in (p / "simulate").iterdir() if d.is_dir()) if (p / "simulate").is_dir() else []
    found = [s for s in (_simulator_source(d) for d in sims) if s is not None]
    if not found:
        raise DialforgeError(
            f"{p}: no conversations here (expected a run directory with simulate/NAME/final.jsonl, "
            "or a simulator folder with final.jsonl or conversations.jsonl)"
        )
    return found


def export_target(out: Path, name: str, fmt: str) -> Path:
    """Where simulator `name` goes inside the folder `out` (the format's `Export.layout`)."""
    return exporter(fmt).target(out, name, fmt)


__all__ = [
    "CHECKED_AS",
    "EXPORT_FORMATS",
    "ExportResult",
    "Source",
    "export",
    "export_conversations",
    "export_file",
    "export_file_result",
    "export_sources",
    "export_target",
    "llamafactory_entry",
]
