"""Read run directories into one plain data model, so every section renders from the same
facts and no section opens files. Whatever is missing (a standalone `simulate` run has no
pipeline.json, an old pipeline no funnel keys) is left out, never guessed."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # importing dialforge.realism costs seconds (scikit-learn): only when a card exists
    from ..realism.card import RealismCard

TINY_MODEL = re.compile(r"(^|[/\\])(dialforge-tiny|tiny-model-v\d+)[/\\]?$")


@dataclass
class Funnel:
    """generated -> ended by reason -> kept by the filter -> after dedup -> exported."""

    generated: int
    reasons: dict[str, int]
    failed: int | None = None  # error records (the filter drops them)
    kept_after_filter: int | None = None
    kept_after_dedup: int | None = None
    dedup_removed: int | None = None
    final: str | None = None
    exports: dict[str, str] = field(default_factory=dict)


@dataclass
class Sim:
    """One simulator's run directory."""

    key: str  # the simulator's name (its folder)
    label: str  # unique over the whole page
    dir: Path
    conversations: list[dict[str, Any]]
    scores: dict[str, dict[str, Any]]
    summary: dict[str, Any]
    manifest: dict[str, Any]
    funnel: Funnel
    realism: RealismCard | None = None
    floor: RealismCard | None = None


@dataclass
class Usage:
    """One usage.json: counters per stage key ("simulate.user") and model."""

    where: str
    stages: dict[str, dict[str, dict[str, float]]]
    wall_s: dict[str, float]


@dataclass
class Run:
    root: Path
    pipeline: dict[str, Any]
    sims: list[Sim]
    library: dict[str, Any] | None
    usage: list[Usage]
    models: dict[str, str]  # "where: role" -> model id
    config: Any
    warnings: list[str]  # the health warnings: the same lines the CLI printed and pipeline.json holds
    tiny: bool
    caveats: list[str] = field(default_factory=list)  # the realism cards' caveats (small samples): not warnings


def _json(p: Path, problems: list[str]) -> Any:
    if not p.exists():
        return None
    try:
        return orjson.loads(p.read_bytes())
    except orjson.JSONDecodeError as e:
        problems.append(f"{p}: not valid JSON ({e.args[0].splitlines()[0] if e.args else e}); left out")
        return None


_SHAPES: dict[str, dict[str, type]] = {
    "pipeline.json": {"stages": dict, "warnings": list, "config": dict},
    "manifest.json": {"stages": dict, "warnings": list, "config": dict, "models": dict},
    "usage.json": {"stages": dict, "stage_wall_s": dict},
    "scores_summary.json": {"dataset": dict},
}
_KIND: dict[type, str] = {dict: "an object", list: "a list"}


def _object(p: Path, problems: list[str]) -> dict[str, Any]:
    """A run file that holds one object (`_SHAPES`): a field of another type, or a stage
    entry that is no object, is left out with one problem line each (edited by hand or by
    another tool), never a traceback in a section that reads it."""
    data = _json(p, problems)
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append(f"{p}: not a JSON object; left out")
        return {}
    for key, kind in _SHAPES.get(p.name, {}).items():
        if key in data and not isinstance(data[key], kind):
            problems.append(f"{p}: field '{key}' is not {_KIND[kind]}; left out")
            del data[key]
    stages = data.get("stages")
    if isinstance(stages, dict):
        for name in [k for k, v in stages.items() if not isinstance(v, dict)]:
            problems.append(f"{p}: field 'stages.{name}' is not an object; left out")
            del stages[name]
    return data


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


#: What the report reads of each strategy, and the shape it needs (a hand-edited or foreign
#: library.json with another is left out field by field, each named once, never a traceback).
_STRATEGY_FIELDS: dict[str, tuple[str, Any]] = {
    "size": ("a number", lambda v: v is None or _is_number(v)),
    "centroid": ("a list of numbers", lambda v: isinstance(v, list) and all(_is_number(x) for x in v)),
    "members": ("a list", lambda v: isinstance(v, list)),
    "examples": ("a list of objects", lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v)),
}


def _library(p: Path, problems: list[str]) -> dict[str, Any] | None:
    lib = _json(p, problems)
    if lib is None:
        return None
    if not isinstance(lib, dict):
        problems.append(f"{p}: not a strategy library (expected an object); left out")
        return None
    if not isinstance(lib.get("strategies", []), list):
        problems.append(f"{p}: field 'strategies' is not a list; left out")
        lib["strategies"] = []
    if not isinstance(lib.get("counts", {}), dict):
        problems.append(f"{p}: field 'counts' is not an object; left out")
        lib.pop("counts")
    bad: dict[str, tuple[str, int]] = {}  # field -> (first location and value, count)
    kept = []
    for i, st in enumerate(lib.get("strategies") or []):
        if not isinstance(st, dict):
            bad.setdefault("", (f"field 'strategies[{i}]' is not an object", 0))
            bad[""] = (bad[""][0], bad[""][1] + 1)
            continue
        for name, (what, ok) in _STRATEGY_FIELDS.items():
            if name in st and not ok(st[name]):
                first, n = bad.get(name, (f"field 'strategies[{i}].{name}' is not {what} ({st[name]!r:.40})", 0))
                bad[name] = (first, n + 1)
                del st[name]
        kept.append(st)
    lib["strategies"] = kept
    for first, n in bad.values():
        problems.append(f"{p}: {first}" + (f" (and {n - 1} more like it)" if n > 1 else "") + "; left out")
    return lib


def _jsonl(p: Path, problems: list[str]) -> list[dict[str, Any]]:
    """Records of a JSONL file; a bad line is reported once per file and skipped."""
    if not p.exists():
        return []
    out, bad, first = [], 0, 0
    with p.open("rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                rec = None
            if isinstance(rec, dict):
                out.append(rec)
            else:
                bad += 1
                first = first or n
    if bad:
        problems.append(f"{p}:{first}: {bad} line(s) not a JSON object; skipped")
    return out


def _count_lines(p: Path) -> int | None:
    if not p.exists():
        return None
    with p.open("rb") as f:
        return sum(1 for line in f if line.strip())


def _conversations(d: Path, problems: list[str]) -> list[dict[str, Any]]:
    convs = []
    for i, c in enumerate(_jsonl(d, problems), 1):
        if isinstance(c.get("messages"), list):
            c.setdefault("id", f"#{i}")
            convs.append(c)
    return convs


def _funnel(root: Path, key: str, d: Path, convs: list[dict[str, Any]], select: dict[str, Any]) -> Funnel:
    reasons = Counter(str((c.get("meta") or {}).get("termination_reason") or "none") for c in convs)
    f = Funnel(generated=int(select.get("conversations", len(convs))), reasons=dict(reasons.most_common()))
    f.failed = select.get("failed")
    f.kept_after_filter = select.get("kept_after_filter")
    f.kept_after_dedup = select.get("kept_after_dedup", select.get("kept_after_filter_and_dedup"))
    f.dedup_removed = select.get("dedup_removed", _count_lines(d / "dedup_removed.jsonl"))
    final = select.get("final") or ("final.jsonl" if (d / "final.jsonl").exists() else None)
    if final:
        f.final = str(final) if "final" in select else str((d / final).relative_to(root))
        if f.kept_after_dedup is None:
            f.kept_after_dedup = _count_lines(root / f.final)
    exports = select.get("exports")
    if isinstance(exports, dict):
        f.exports = {str(k): str(v) for k, v in exports.items()}
    elif (root / "export").is_dir():
        for p in sorted((root / "export").glob(f"{key}.*.jsonl")):
            f.exports[p.name[len(key) + 1 : -len(".jsonl")]] = str(p.relative_to(root))
        if (root / "export" / key).is_dir():
            f.exports["folder"] = str((root / "export" / key).relative_to(root))
    return f


def _card(p: Path, problems: list[str]) -> RealismCard | None:
    if not p.exists():
        return None
    from ..realism import read_card

    try:
        return read_card(p)
    except Exception as e:  # a stale or hand-edited card must not stop the report
        problems.append(f"{p}: not a realism card ({str(e).splitlines()[0]}); left out")
        return None


def _sim_dirs(root: Path) -> list[tuple[Path, Path]]:
    """(folder, conversations file) for simulate runs and self-talk loops under `root`."""
    found = [(c.parent, c) for c in sorted(root.rglob("conversations.jsonl")) if (c.parent / "manifest.json").exists()]
    found += [(d.parent, d) for d in sorted(root.rglob("loop-*/dialogues.jsonl"))]
    return found


def _sim(root: Path, d: Path, conv_file: Path, pipeline: dict[str, Any], problems: list[str]) -> Sim:
    key = d.name if d != root else root.name
    stages = pipeline.get("stages") or {}
    convs = _conversations(conv_file, problems)
    summary = _object(d / "scores_summary.json", problems).get("dataset") or {}
    select = stages.get(f"select.{key}") or {}
    return Sim(
        key=key,
        label=key,
        dir=d,
        conversations=convs,
        scores={str(r.get("id")): r for r in _jsonl(d / "scores.jsonl", problems)},
        summary=summary if isinstance(summary, dict) else {},
        manifest=_object(d / "manifest.json", problems),
        funnel=_funnel(root, key, d, convs, select if isinstance(select, dict) else {}),
        realism=_card(d / "realism_card.json", problems),
        floor=_card(d / "realism_floor.json", problems),
    )


def _manifest_warnings(where: str, manifest: dict[str, Any]) -> list[str]:
    out = []
    for stage in (manifest.get("stages") or {}).values():
        if isinstance(stage, dict):
            out += [f"{where}: {w}" for w in stage.get("warnings") or []]
    out += [f"{where}: {w}" for w in manifest.get("warnings") or []]
    return out


def is_tiny(model: Any) -> bool:
    return isinstance(model, str) and bool(TINY_MODEL.search(model.strip()))


def _walk_strings(x: Any) -> list[str]:
    if isinstance(x, str):
        return [x]
    if isinstance(x, dict):
        return [s for v in x.values() for s in _walk_strings(v)]
    if isinstance(x, list):
        return [s for v in x for s in _walk_strings(v)]
    return []


def _usage(root: Path, problems: list[str]) -> list[Usage]:
    out = []
    for p in sorted(root.rglob("usage.json")):
        u = _object(p, problems)
        out.append(Usage(str(p.parent.relative_to(root)), u.get("stages") or {}, u.get("stage_wall_s") or {}))
    return out


def _manifests(root: Path, problems: list[str]) -> tuple[dict[str, str], list[str]]:
    """Models per "where: role" and the health warnings of every stage manifest."""
    models: dict[str, str] = {}
    warnings: list[str] = []
    for p in sorted(root.rglob("manifest.json")):
        m = _object(p, problems)
        where = str(p.parent.relative_to(root))
        where = root.name if where == "." else where
        for role, mid in (m.get("models") or {}).items():
            models[f"{where}: {role}"] = str(mid)
        warnings += _manifest_warnings(where, m)
    return models, warnings


def _card_warnings(sims: list[Sim]) -> list[tuple[str, str]]:
    """(the card's own text, the line labelled with its simulator) for each realism-card
    caveat; the floor's (one real-vs-real card shared by all) labelled once."""
    out = []
    for s in sims:
        out += [(w, f"{s.key} realism: {w}") for w in (s.realism.warnings if s.realism else [])]
        out += [(w, f"realism floor: {w}") for w in (s.floor.warnings if s.floor else [])]
    return out


def _warnings(pipeline: list[str], manifests: list[str], sims: list[Sim]) -> tuple[list[str], list[str]]:
    """(health warnings, card caveats): the warnings are pipeline.json's list (what the CLI
    printed) plus, for a run made by single commands, the stage manifests' own; a realism
    card's caveats are listed apart, labelled with their simulator."""
    cards = _card_warnings(sims)
    raw = {w for w, _ in cards}
    out = [w for w in pipeline if w not in raw]
    # a pipeline lists its stages' warnings itself ("persona: simulate: ..."): not twice
    out += [w for w in manifests if not any(p.endswith(w.split(": ", 1)[1]) for p in out)]
    return out, list(dict.fromkeys(labelled for _, labelled in cards))


def read_run(root: str | Path) -> Run:
    """Everything the report shows about one run directory."""
    root = Path(root)
    problems: list[str] = []
    pipeline = _object(root / "pipeline.json", problems)
    sims = [_sim(root, d, c, pipeline, problems) for d, c in _sim_dirs(root)]
    lib = next((p for p in (root / "library.json", root / "induce" / "library.json") if p.exists()), None)
    library = _library(lib, problems) if lib else None
    models, manifest_warnings = _manifests(root, problems)
    warnings, caveats = _warnings([str(w) for w in pipeline.get("warnings") or []], manifest_warnings, sims)
    config = pipeline.get("config") or next((s.manifest.get("config") for s in sims if s.manifest), None)
    named = [*models.values(), *_walk_strings(config), *_walk_strings((library or {}).get("abstraction_model"))]
    return Run(
        root=root,
        pipeline=pipeline,
        sims=sims,
        library=library,
        usage=_usage(root, problems),
        models=models,
        config=config,
        warnings=list(dict.fromkeys(warnings + problems)),
        tiny=any(is_tiny(m) for m in named),
        caveats=caveats,
    )


def read_runs(roots: list[Path]) -> list[Run]:
    """Runs with simulator labels unique over the page (the run's name is added when two runs
    share a simulator name)."""
    runs = [read_run(r) for r in roots]
    counts = Counter(s.key for r in runs for s in r.sims)
    for r in runs:
        for s in r.sims:
            if counts[s.key] > 1:
                rel = s.dir.relative_to(r.root)
                s.label = f"{r.root.name}/{rel}" if str(rel) != "." else r.root.name
    seen: Counter[str] = Counter()
    for r in runs:
        for s in r.sims:
            seen[s.label] += 1
            if seen[s.label] > 1:
                s.label = f"{s.label} ({seen[s.label]})"
    return runs
