"""Two identical runs write byte-identical outputs: the quickstart config, run twice into two
folders against a deterministic loopback server. Times and paths stay out of every content
hash (library.json holds its creation time and where its dialogues came from; its hash feeds
conversation ids and strategy sampling), and out of every output but the run's bookkeeping."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from dialforge.config import content_hash
from dialforge.testing import EXAMPLE_TEXT, FakeOpenAIServer, example_for_schema

ROOT = Path(__file__).resolve().parents[1]
#: A run's bookkeeping: when and how long, not what (manifests, logs, usage with latencies,
#: the call cache, the lock, the report page that shows them).
BOOKKEEPING = {".lock", "manifest.json", "pipeline.json", "run.log", "usage.json", "report.html"}


_WORDS = (
    "river cost engine winter theory garden signal market protein orbit ladder vaccine harbor "
    "grammar battery poetry tariff glacier kernel violin mortgage enzyme compass festival"
).split()
_TEMPLATES = (
    "Why would {0} affect {1} more than {2}?",
    "How does the {0} compare with a {1} when {2} changes?",
    "Can you give an example where {0} and {1} fail together?",
    "What happens to {0} if the {1} is removed first?",
    "Which matters more for {0}: {1} or {2}?",
    "Is there evidence that {0} improves {1}?",
)


def _text(seed: str, salt: str) -> str:
    """A deterministic question, different for every request (repetition and copy checks
    see real variety): a template and three words drawn by a hash of the request."""
    d = hashlib.sha256((salt + seed).encode()).digest()
    words = [_WORDS[b % len(_WORDS)] for b in d[1:4]]
    return _TEMPLATES[d[0] % len(_TEMPLATES)].format(*words)


def _reply(body: dict) -> str:
    """Deterministic text that depends on the request (a JSON object for a structured one)."""
    rf = body.get("response_format") or {}
    seed = orjson.dumps(body.get("messages") or []).decode()
    if rf.get("type") == "json_schema":
        example = example_for_schema(rf["json_schema"]["schema"])
        return orjson.dumps(_fill(example, seed)).decode()
    return _text(seed, "reply")


def _fill(value: Any, seed: str, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, seed, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, seed, key) for v in value]
    if isinstance(value, str) and value.startswith(EXAMPLE_TEXT):
        return "probe the weak point" if key == "strategy" else _text(seed, key)
    return value


def _timeless(value: Any) -> Any:
    """A realism card without its timings and input paths (see the note in the test)."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k not in ("seconds", "path")}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def _run(out: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "dialforge.cli", "run", str(ROOT / "examples" / "quickstart.yaml")]
    cmd += ["--out", str(out), "--base-url", url, "--model", "fake", "--set", "simulate.seeds.limit=6"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=out.parent)


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in BOOKKEEPING and not p.name.endswith((".sqlite", ".sqlite-wal", ".sqlite-shm"))
    }


@pytest.mark.slow
def test_two_identical_quickstart_runs_write_the_same_bytes(tmp_path):
    with FakeOpenAIServer(_reply) as srv:
        a, b = tmp_path / "first", tmp_path / "second"
        for out in (a, b):
            r = _run(out, srv.base_url)
            assert r.returncode == 0, r.stderr[-3000:]
    fa, fb = _files(a), _files(b)
    assert sorted(fa) == sorted(fb)
    lib_a, lib_b = orjson.loads(fa.pop("induce/library.json")), orjson.loads(fb.pop("induce/library.json"))
    assert lib_a.pop("created_at") != "" and lib_b.pop("created_at") != ""
    assert lib_a == lib_b
    assert lib_a["sources"] == ["../realism/induce_dialogues.jsonl"]
    # realism cards say how long each measure took and which files it read (absolute paths):
    # the rest of them must agree
    for name in [n for n in fa if n.rsplit("/", 1)[-1].startswith("realism_")]:
        a_, b_ = fa.pop(name), fb.pop(name)
        if name.endswith(".json"):
            assert _timeless(orjson.loads(a_)) == _timeless(orjson.loads(b_)), name
    differ = [name for name in fa if fa[name] != fb[name]]
    assert differ == []
    # the strategy simulator ran, on the library: its conversations carry strategy ids
    convs = [orjson.loads(x) for x in fa["simulate/strategy/conversations.jsonl"].splitlines()]
    assert len(convs) == 6
    assert any("strategy_id" in m.get("meta", {}) for c in convs for m in c["messages"])
    summary = orjson.loads(fa["simulate/strategy/scores_summary.json"])
    assert summary["source"] == "conversations.jsonl"
    assert summary["config"]["library"] == "../../induce/library.json"
    assert content_hash(a / "induce" / "library.json") == content_hash(b / "induce" / "library.json")
    assert content_hash(a / "induce") == content_hash(b / "induce")


def test_a_librarys_content_hash_leaves_out_its_time_and_paths(tmp_path):
    lib = {"schema_version": 1, "created_at": "2026-01-01T00:00:00+00:00", "sources": ["/a/x.jsonl"], "strategies": []}
    one, two = tmp_path / "one" / "library.json", tmp_path / "two" / "library.json"
    for p, created, src in ((one, "2026-01-01T00:00:00+00:00", "/a/x.jsonl"), (two, "2027-05-05T09:09:09+00:00", "y")):
        p.parent.mkdir()
        p.write_bytes(orjson.dumps({**lib, "created_at": created, "sources": [src]}))
    assert content_hash(one) == content_hash(two)
    (two.parent / "run.log").write_text("13:00 started")
    (two.parent / ".lock").write_text("123")
    assert content_hash(one.parent) == content_hash(two.parent)
    two.write_bytes(orjson.dumps({**lib, "strategies": [{"id": "s1"}]}))
    assert content_hash(one) != content_hash(two)  # what it holds still counts
    plain = tmp_path / "plain.json"  # a JSON file that is no artifact: every byte counts
    plain.write_bytes(b'{"created_at": 1}')
    assert content_hash(plain) == hashlib.sha256(b'{"created_at": 1}').hexdigest()
