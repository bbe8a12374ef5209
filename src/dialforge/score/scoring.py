"""`dialforge score`: per-conversation and per-dataset metrics, written beside the data."""

from __future__ import annotations

import logging
import math
import statistics
from array import array
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ..config import portable_path
from ..conversation import Conversation
from ..errors import DialforgeError, RecordError
from ..io.files import atomic_write_bytes, atomic_writer
from ..io.reader import iter_conversations_located as iter_located
from ..io.report import OnError, ReadReport
from ..llm.client import run_sync
from . import metrics as M
from .config import ScoreConfig

log = logging.getLogger("dialforge.score")


def locate(path: str | Path) -> tuple[Path, Path, Path]:
    """(conversations file, per-conversation scores, dataset summary) for a file or run dir."""
    p = Path(path)
    if p.is_dir():
        data = p / "conversations.jsonl"
        if not data.exists():
            raise DialforgeError(f"{p}: no conversations.jsonl in this run directory")
        return data, p / "scores.jsonl", p / "scores_summary.json"
    stem = p.name.rsplit(".", 1)[0]
    return p, p.with_name(stem + ".scores.jsonl"), p.with_name(stem + ".scores_summary.json")


def _number(v: Any, field: str, kinds: tuple[type, ...] = (int, float)) -> Any:
    if v is None or (isinstance(v, kinds) and not (isinstance(v, bool) and bool not in kinds)):
        return v
    raise RecordError(f"expected {' or '.join(k.__name__ for k in kinds)}, got {type(v).__name__}", field=field)


def _strategies(conv: Conversation) -> list[Any]:
    out = []
    for i, m in enumerate(conv.messages):
        if m.role == "user" and "strategy_id" in m.meta:
            sid = m.meta["strategy_id"]
            if not isinstance(sid, (str, int)) or isinstance(sid, bool):
                raise RecordError(
                    f"expected a string, got {type(sid).__name__}", field=f"messages[{i}].meta.strategy_id"
                )
            out.append(sid)
    return out


def _workflow(conv: Conversation, s: dict[str, Any]) -> None:
    wf = conv.meta.get("workflow_eval")
    if wf is None:
        return
    if not isinstance(wf, dict):
        raise RecordError(f"expected an object, got {type(wf).__name__}", field="meta.workflow_eval")
    kinds: dict[str, tuple[type, ...]] = {"depth": (int,), "relative_depth": (int, float), "success": (bool,)}
    for k, allowed in kinds.items():
        if k in wf:
            s[f"workflow_{k}"] = _number(wf[k], f"meta.workflow_eval.{k}", allowed)


class _Turns:
    """One pass over a conversation's dialogue: each user text is tokenised once; answers are
    only counted (and tokenised for a follow-up check that needs it)."""

    def __init__(self, conv: Conversation) -> None:
        self.users: list[str] = []
        self.user_words: list[list[str]] = []
        self.assistant_chars = self.assistant_tokens = self.new_answers = 0
        self.pairs = self.follow_ups = self.eligible = self.seed_users = 0
        prev: Any = None  # the previous dialogue message
        for m in conv.messages:
            if m.role == "system":
                continue
            if m.role == "user":
                if m.meta.get("seed"):  # a real person's words that seeded the run: not simulated
                    self.seed_users += 1
                else:
                    self._user(m.content, prev)
            elif m.role == "assistant":
                self.assistant_chars += len(m.content)
                self.assistant_tokens += M.count_words(m.content)
                self.new_answers += bool(m.content.strip()) and not m.meta.get("seed")
            prev = m

    def _user(self, text: str, prev: Any) -> None:
        w = M.words(text)
        self.users.append(text)
        self.user_words.append(w)
        if prev is None:
            return
        self.eligible += 1
        if prev.role == "assistant":
            self.pairs += 1
            self.follow_ups += M.follows_up(text, w, prev.content)


def _lexical(user_words: list[list[str]]) -> dict[str, Any]:
    """distinct-1, distinct-2 (as `M.distinct_words`) and MTLD of the user turns, one pass."""
    uni: set[str] = set()
    bi: set[tuple[str, str]] = set()
    flat: list[str] = []
    for w in user_words:
        uni.update(w)
        bi.update(zip(w, w[1:], strict=False))
        flat += w
    n_bi = sum(len(w) - 1 for w in user_words if w)
    return {
        "distinct_1": round(len(uni) / len(flat), 4) if flat else 0.0,
        "distinct_2": round(len(bi) / n_bi, 4) if n_bi else 0.0,
        "mtld": round(M.mtld(flat), 3),
    }


def analyse(conv: Conversation) -> tuple[dict[str, Any], list[list[str]]]:
    """`conversation_scores` and the user turns' words, for the dataset metrics (so `score`
    tokenises each text once)."""
    t = _Turns(conv)
    s: dict[str, Any] = {"id": conv.id, "user_turns": len(t.users), "messages": len(conv.messages)}
    s["seed_user_turns"] = t.seed_users
    s["user_chars"] = sum(len(x) for x in t.users)
    s["user_tokens"] = sum(len(w) for w in t.user_words)
    s["assistant_chars"] = t.assistant_chars
    s["assistant_tokens"] = t.assistant_tokens
    s["new_assistant_turns"] = t.new_answers
    s.update(_lexical(t.user_words))
    s["follow_ups"] = t.follow_ups
    s["follow_up_rate"] = round(t.follow_ups / t.pairs, 4) if t.pairs else None
    strategies = _strategies(conv)
    if strategies:
        s["strategies"] = strategies
    s["termination_reason"] = conv.meta.get("termination_reason")
    for k in ("mode", "simulator_model", "assistant_model", "seed_id"):
        if k in conv.meta:
            s[k] = conv.meta[k]
    _workflow(conv, s)
    s["_follow_up_eligible"] = t.eligible
    return s, t.user_words


def conversation_scores(conv: Conversation) -> dict[str, Any]:
    """Per-conversation scores (see the registry). A score input of the wrong type
    (`workflow_eval.depth` text, `strategy_id` a list) raises a RecordError naming the field."""
    return analyse(conv)[0]


def _mean(xs: Any) -> float | None:
    return round(statistics.fmean(xs), 4) if len(xs) else None


class _Spill:
    """A growing sequence of 64-bit values in bounded memory: a buffer of `chunk` values,
    written to an anonymous temporary file when full. Read back forwards or backwards in
    chunks, and counted distinct by hash partitions of at most `chunk` values each."""

    def __init__(self, chunk: int = 1 << 18) -> None:
        self.chunk = chunk
        self.buf = array("q")
        self.file: Any = None
        self.on_disk = 0

    def __len__(self) -> int:
        return self.on_disk + len(self.buf)

    def add_array(self, values: np.ndarray) -> None:
        self.buf.frombytes(values.astype(np.int64, copy=False).tobytes())
        if len(self.buf) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        if not self.buf:
            return
        if self.file is None:
            import tempfile

            self.file = tempfile.TemporaryFile(prefix="dialforge-score-")
        self.file.seek(self.on_disk * 8)
        self.file.write(memoryview(self.buf).cast("B"))
        self.on_disk += len(self.buf)
        self.buf = array("q")

    def chunks(self, reverse: bool = False) -> Iterator[np.ndarray]:
        """The values in chunks of at most `chunk`, in order (or in reverse order, each chunk reversed)."""
        mem = np.frombuffer(self.buf, dtype=np.int64) if self.buf else np.empty(0, dtype=np.int64)
        if reverse and len(mem):
            yield mem[::-1]
        starts = list(range(0, self.on_disk, self.chunk))
        for s in reversed(starts) if reverse else starts:
            self.file.seek(s * 8)
            part = np.fromfile(self.file, dtype=np.int64, count=min(self.chunk, self.on_disk - s))
            yield part[::-1] if reverse else part
        if not reverse and len(mem):
            yield mem

    def tokens(self, reverse: bool = False) -> Iterator[int]:
        for part in self.chunks(reverse):
            for s in range(0, len(part), 1 << 16):  # Python ints 64k at a time (a list of 1M: 36 MB)
                yield from part[s : s + (1 << 16)].tolist()

    def distinct(self) -> int:
        """How many distinct values, exactly: in memory when they fit one chunk, else by
        partitions on the top bits (each value's partition file holds at most ~`chunk` of them)."""
        n = len(self)
        if n <= self.chunk:
            return int(np.unique(np.concatenate(list(self.chunks()) or [np.empty(0, np.int64)])).size)
        import tempfile

        bits = max(1, math.ceil(math.log2(n / self.chunk)) + 1)
        parts = [tempfile.TemporaryFile(prefix="dialforge-score-") for _ in range(1 << bits)]
        try:
            for part in self.chunks():
                key = part.view(np.uint64) >> np.uint64(64 - bits)
                order = np.argsort(key, kind="stable")
                bounds = np.searchsorted(key[order], np.arange(1 << bits, dtype=np.uint64))
                for b, (lo, hi) in enumerate(zip(bounds.tolist(), [*bounds.tolist()[1:], len(part)], strict=True)):
                    if hi > lo:
                        parts[b].write(part[order[lo:hi]].tobytes())
            total = 0
            for f in parts:
                f.seek(0)
                total += int(np.unique(np.fromfile(f, dtype=np.int64)).size)
            return total
        finally:
            for f in parts:
                f.close()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class DatasetScores:
    """Dataset scores accumulated one conversation at a time (`score` streams the file), in
    memory that does not grow with the data: seeded reservoir samples of the user texts (for
    self-BLEU and the embedding sample), each user word as its 64-bit hash and each in-turn
    bigram as a hash of the pair, spilled to a temporary file 256k at a time (MTLD reads
    them back forwards and backwards, distinct-n counts them by hash partitions), and running
    sums and counters. Hashes stand in for words because these metrics only compare words
    for equality (a collision among a few million 64-bit values is a one-in-billions event)."""

    def __init__(self, cfg: ScoreConfig, chunk: int = 1 << 18) -> None:
        self.cfg = cfg
        sizes = {cfg.self_bleu_sample, cfg.embedding_sample}
        self.samples = {k: M.Reservoir(k, cfg.seed) for k in sizes}
        self.ids = _Spill(chunk)  # every user word's hash, in order (MTLD needs only equality)
        self.pairs = _Spill(chunk)  # a hash of every pair of words inside one user turn
        self.starts = array("q")  # where each user turn begins in the words not yet cut
        self.n_users = 0
        self.series: dict[str, _Mean] = {k: _Mean() for k in _SERIES}
        self.counts = Counter[str]()  # follow-ups and eligible user turns
        self.reasons = Counter[str]()
        self.strategies = Counter[str]()
        self.judged: list[dict[str, Any]] = []
        self.unparsed = 0

    @property
    def n(self) -> int:
        return self.series["user_turns"].n

    def add(self, conv: Conversation, per: dict[str, Any], user_words: list[list[str]] | None = None) -> None:
        if user_words is None:
            user_words = [M.words(m.content) for m in conv.messages if m.role == "user"]
        for m in conv.messages:
            if m.role == "user":
                self.n_users += 1
                for r in self.samples.values():
                    r.add(m.content)
        buf = self.ids.buf
        for w in user_words:
            self.starts.append(len(buf))
            buf.extend(map(hash, w))
        if len(buf) >= self.ids.chunk:
            self._cut()
            self.ids.flush()
        self._numbers(per)

    def _cut(self) -> None:
        """The in-turn word pairs of the words buffered since the last cut, hashed at once
        with numpy (bigrams never cross a turn: `starts` marks where each turn begins)."""
        buf = self.ids.buf
        if len(buf) >= 2:
            u = np.frombuffer(buf, dtype=np.int64).view(np.uint64)
            inside = np.ones(u.size - 1, dtype=bool)  # pair (i, i+1) lies inside one turn
            cuts = np.frombuffer(self.starts, dtype=np.int64)
            inside[cuts[(cuts > 0) & (cuts < u.size)] - 1] = False
            pairs = ((u[:-1] * np.uint64(0x9E3779B97F4A7C15)) ^ u[1:])[inside]
            self.pairs.add_array(pairs.view(np.int64))
        self.starts = array("q")

    def _distinct(self) -> tuple[float, float]:
        """distinct-1 and distinct-2 of every user turn, counted once at the end with numpy
        (sorting the hashes beats growing two hash sets word by word: 20% of `score`)."""
        self._cut()
        if not len(self.ids):
            return 0.0, 0.0
        d1 = self.ids.distinct() / len(self.ids)
        d2 = self.pairs.distinct() / len(self.pairs) if len(self.pairs) else 0.0
        return round(d1, 4), round(d2, 4)

    def _numbers(self, per: dict[str, Any]) -> None:
        se = self.series
        se["user_turns"].add(per["user_turns"])
        se["user_chars"].add(per["user_chars"] / max(per["user_turns"], 1))
        se["assistant_chars"].add(per["assistant_chars"])
        for k in _WORKFLOW:
            if per.get(k) is not None:
                se[k].add(float(per[k]))
        self.counts.update(follow_ups=per["follow_ups"], eligible=per["_follow_up_eligible"])
        self.reasons[per.get("termination_reason") or "none"] += 1
        self.strategies.update(str(s) for s in per.get("strategies") or [])
        judge = per.get("judge")
        if isinstance(judge, dict):
            if "mean" in judge:
                self.judged.append(judge)
            self.unparsed += "error" in judge

    def result(self) -> dict[str, Any]:
        cfg, se = self.cfg, self.series
        distinct_1, distinct_2 = self._distinct()
        n = len(self.ids)
        mtld = M.mtld_passes(self.ids.tokens(), self.ids.tokens(reverse=True), n) if n else 0.0
        self.ids.close()
        self.pairs.close()
        out: dict[str, Any] = {
            "conversations": self.n,
            "user_turns_mean": se["user_turns"].mean(),
            "user_chars_mean": se["user_chars"].mean(),
            "assistant_chars_mean": se["assistant_chars"].mean(),
            "distinct_1": distinct_1,
            "distinct_2": distinct_2,
            "mtld": round(mtld, 3),
            "self_bleu": round(M.self_bleu(self.samples[cfg.self_bleu_sample].items, cfg.self_bleu_sample), 4),
            "termination_reasons": dict(self.reasons),
        }
        eligible = self.counts["eligible"]
        out["follow_up_rate"] = round(self.counts["follow_ups"] / eligible, 4) if eligible else None
        if cfg.embedder and self.n_users >= 2:
            out.update(self._embedding())
        self._strategies(out)
        out.update({k: se[k].mean() for k in _WORKFLOW if se[k].n})
        self._judge(out)
        return out

    def _embedding(self) -> dict[str, Any]:
        from ..induce.embed import Embedder

        cfg = self.cfg
        vecs = Embedder(cfg.embedder or "", cache_dir=cfg.embedding_cache).embed(
            self.samples[cfg.embedding_sample].items
        )
        return {f"embedding_{k}": round(v, 4) for k, v in M.embedding_diversity(vecs).items()}

    def _strategies(self, out: dict[str, Any]) -> None:
        strat = self.strategies
        if strat:
            out["strategies_used"] = len(strat)
            out["strategy_entropy_bits"] = round(M.entropy_bits(strat), 4)
            if self.cfg.library:
                from ..induce.library import StrategyLibrary

                size = len(StrategyLibrary.load(self.cfg.library).strategies)
                out["strategy_coverage"] = round(len(strat) / size, 4)

    def _judge(self, out: dict[str, Any]) -> None:
        if self.judged:
            from .judge import CRITERIA

            out["judge"] = {c: _mean([j[c] for j in self.judged]) for c in (*CRITERIA, "mean")}
            out["judge"]["judged"] = len(self.judged)
            out["judge"]["unparsed"] = self.unparsed


class _Mean:
    """A running mean (`statistics.fmean` of the values, to the last digit: exact sums)."""

    __slots__ = ("n", "parts")

    def __init__(self) -> None:
        self.n = 0
        self.parts: list[float] = []  # math.fsum's partials: exact, a few floats long

    def add(self, x: float) -> None:
        self.n += 1
        _fsum_add(self.parts, float(x))

    def mean(self) -> float | None:
        return round(math.fsum(self.parts) / self.n, 4) if self.n else None


def _fsum_add(partials: list[float], x: float) -> None:
    """Add `x` to Shewchuk's non-overlapping partials (what math.fsum keeps internally)."""
    i = 0
    for y in partials:
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo:
            partials[i] = lo
            i += 1
        x = hi
    partials[i:] = [x]


_WORKFLOW = ("workflow_depth", "workflow_relative_depth", "workflow_success")
_SERIES = ("user_turns", "user_chars", "assistant_chars", *_WORKFLOW)


def dataset_scores(convs: list[Conversation], per: list[dict[str, Any]], cfg: ScoreConfig) -> dict[str, Any]:
    acc = DatasetScores(cfg)
    for c, p in zip(convs, per, strict=True):
        acc.add(c, p)
    return acc.result()


def _scored(
    data: Path, on_error: OnError, report: ReadReport
) -> Iterator[tuple[Conversation, dict[str, Any], list[list[str]]]]:
    for conv, line, index in iter_located(data, on_error=on_error, report=report):
        try:
            per, words = analyse(conv)
        except RecordError as e:
            err = RecordError(e.message, path=data, line=line, index=None if line else index, field=e.field)
            if on_error == "fail":
                raise err from None
            report.skipped.append(err)
            log.warning("skipped bad record: %s", err)
            continue
        yield conv, per, words


def _row(per: dict[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in per.items() if not k.startswith("_")}) + b"\n"


def run_library(path: str | Path) -> str | None:
    """The strategy library a `simulate` run directory was made with, if it is still there."""
    manifest = Path(path) / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        lib = ((orjson.loads(manifest.read_bytes()).get("config") or {}).get("strategy") or {}).get("library")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return lib if isinstance(lib, str) and Path(lib).exists() else None


def score(path: str | Path, cfg: ScoreConfig | None = None, *, on_error: OnError = "skip") -> dict[str, Any]:
    """Score a file or run directory. Without a judge the file streams: one conversation in
    memory at a time plus what the dataset metrics keep (user texts and word n-grams)."""
    cfg = cfg or ScoreConfig()
    if cfg.library is None and (lib := run_library(path)) is not None:
        cfg = cfg.model_copy(update={"library": lib})  # strategy coverage without --library
    data, per_path, summary_path = locate(path)
    report = ReadReport(path=str(data))
    acc = DatasetScores(cfg)
    with atomic_writer(per_path) as f:
        if cfg.judge is None:
            for conv, per, words in _scored(data, on_error, report):
                acc.add(conv, per, words)
                f.write(_row(per))
        else:
            scored = list(_scored(data, on_error, report))
            convs = [c for c, _, _ in scored]
            if convs:
                from .judge_stage import judge_conversations, judge_dir

                verdicts, _ = run_sync(
                    judge_conversations(convs, cfg.judge, judge_dir(path), concurrency=cfg.concurrency)
                )
                for c, p, _ in scored:
                    if c.id in verdicts:
                        p["judge"] = verdicts[c.id]
            for c, p, w in scored:
                acc.add(c, p, w)
                f.write(_row(p))
        if not acc.n:
            raise DialforgeError(f"{data}: no conversations to score")
    summary = acc.result()
    if report.skipped:
        summary["skipped_records"] = len(report.skipped)
    config = cfg.model_dump(mode="json")
    if isinstance(config.get("library"), str):
        config["library"] = portable_path(config["library"], summary_path.parent)
    atomic_write_bytes(
        summary_path,
        orjson.dumps(
            {"source": portable_path(str(data), summary_path.parent), "config": config, "dataset": summary},
            option=orjson.OPT_INDENT_2,
        ),
    )
    return summary
