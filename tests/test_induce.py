"""IDEAS induction end to end on the real OASST threads."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys

import numpy as np
import orjson
import pytest

from dialforge.errors import DialforgeError
from dialforge.induce import (
    FilterConfig,
    InduceConfig,
    StrategyLibrary,
    cluster,
    exact_threshold_clustering,
    filter_dialogues,
    induce_async,
)
from dialforge.io import read_conversations
from dialforge.llm import BackendPool, backend_config
from dialforge.testing import ScriptedChatModel

# Obviously synthetic strategy phrases for the scripted extractor (not dialogue data).
SYNTH = [
    "Ask for more details about a point in the previous answer",
    "Request a concrete example of the idea",
    "Ask how to apply the advice in practice",
    "Challenge the answer and propose an alternative",
    "Ask for a shorter summary of the explanation",
]


def scripted_reply(req):
    if req.schema_name == "ExtractedStrategy":
        msg = req.messages[-1]["content"].split("The user's next message:\n", 1)[1]
        h = int(hashlib.sha1(msg.encode()).hexdigest(), 16)
        phrase = SYNTH[h % len(SYNTH)] + (" again" if h % 3 == 0 else "")
        return json.dumps({"analysis": "synthetic", "strategy": phrase})
    first = req.messages[-1]["content"].splitlines()[1][2:]
    return json.dumps({"strategy": "In general: " + first})


def _cfg(data_dir, **kw):
    return InduceConfig(
        dialogues=[str(data_dir / "oasst/en_100_tree.jsonl")],
        format="oasst",
        model=backend_config(model="scripted"),
        **kw,
    )


def _induce(cfg, out, backend):
    """Induction with the scripted extractor handed in through a backend pool."""
    return asyncio.run(induce_async(cfg, out, progress=False, pool=BackendPool({"scripted": backend})))


def test_filter_rules_on_real_threads(data_dir):
    convs = read_conversations(data_dir / "oasst/en_100_tree.jsonl", "oasst")
    kept, dropped = filter_dialogues(convs, FilterConfig())
    assert len(convs) == 564 and len(kept) == 510
    assert dict(dropped) == {"refusal in assistant turn": 54}
    assert all(
        not any(k in m.content for m in c.messages if m.role == "assistant" for k in ("sorry", "I cannot"))
        for c in kept
    )


@pytest.mark.slow
def test_induce_oasst_scripted(data_dir, tmp_path):
    backend = ScriptedChatModel(scripted_reply)
    out = tmp_path / "run"
    lib = _induce(_cfg(data_dir), out, backend)
    assert lib.counts["dialogues_read"] == 564
    assert lib.counts["dialogues_kept"] == 510
    # OASST threads of one tree share prefixes: 309 thread turns are 140 distinct turns, and
    # each is extracted and counted once (weight = the number of threads it appears in)
    assert lib.counts["turns"] == 309
    assert lib.counts["distinct_turns"] == lib.counts["extracted"] == 140
    assert lib.counts["original_strategies"] == 10
    # each phrase and its "again" variant cluster together; at cosine 0.5 MiniLM also joins
    # the two "explanation" phrases (more details / shorter summary)
    assert lib.counts["clusters"] == 4
    assert sorted(len(s.members) for s in lib.strategies) == [2, 2, 2, 4]
    assert sum(s.size for s in lib.strategies) == 140
    assert all(s.text.startswith("In general: ") and s.abstracted for s in lib.strategies)
    # provenance: every strategy traces back to real OASST user turns
    threads = {c.id: c for c in read_conversations(data_dir / "oasst/en_100_tree.jsonl", "oasst")}
    for s in lib.strategies:
        assert s.examples
        for ex in s.examples:
            users = threads[ex.conversation_id].turns("user")
            assert users[ex.turn_index].content == ex.instruction
    # extracted records are in the IDEAS training shape, with the full history
    rec = json.loads((out / "extracted.jsonl").open().readline())
    assert {"history", "instruction", "strategy", "analysis", "conversation_id", "turn_index"} <= rec.keys()
    assert len(rec["history"]) == 2 * rec["turn_index"]
    recs = [json.loads(x) for x in (out / "extracted.jsonl").read_text().splitlines()]
    assert sum(r["weight"] for r in recs) == 309 and max(r["weight"] for r in recs) > 1
    assert all(len(r["sources"]) == r["weight"] for r in recs)
    # provenance for the ranker: each strategy keeps the real answers its turns followed
    answers = {m.content[:1200] for c in threads.values() for m in c.messages if m.role == "assistant"}
    assert all(s.contexts and set(s.contexts) <= answers for s in lib.strategies)
    calls = len(backend.requests)
    assert calls == 140 + 4
    # beside the library: embeddings + assignments (re-abstraction needs no re-embedding)
    assert np.load(out / "embeddings.npy").shape == (10, 384)
    assert len((out / "assignments.jsonl").read_text().splitlines()) == 140
    # resume: nothing is sent again, the library is identical
    lib2 = _induce(_cfg(data_dir), out, backend)
    assert len(backend.requests) == calls
    assert [s.model_dump() for s in lib2.strategies] == [s.model_dump() for s in lib.strategies]
    usage = json.loads((out / "usage.json").read_text())
    assert usage["stages"]["extract"]["scripted"]["calls"] == 140
    # distinct turns only: no request is made twice, and the resume skips finished turns
    assert usage["stages"]["extract"]["scripted"]["cache_hits"] == 0
    abstract = usage["stages"]["abstract"]["scripted"]
    # the kernel skips stored clusters: the re-run asks nothing, not even the cache
    assert (abstract["calls"], abstract["cache_hits"], abstract["failures"]) == (4, 0, 0)


def test_repetition_ratio_is_indel():
    """IDEAS used python-Levenshtein's `ratio` (Indel): an insertion costs less than with the
    normalised Levenshtein distance. Synthetic pair: Levenshtein 0.73, Indel 0.84."""
    from rapidfuzz.distance import Levenshtein

    from dialforge.conversation import Conversation, Message
    from dialforge.simulate.simulators import indel_ratio

    a = "How do I sort a list of numbers in Python"
    b = a + " efficiently ok"
    assert Levenshtein.normalized_similarity(a, b) < 0.8 <= indel_ratio(a, b)
    conv = Conversation(
        id="x",
        messages=[
            Message(role="user", content=a),
            Message(role="assistant", content="ok"),
            Message(role="user", content=b),
        ],
    )
    kept, dropped = filter_dialogues([conv], FilterConfig())
    assert not kept and dropped == {"near-duplicate user turns": 1}


@pytest.mark.slow
def test_abstraction_prompt_defines_high_level_strategy_and_singletons_are_abstracted(data_dir, tmp_path):
    backend = ScriptedChatModel(scripted_reply)
    lib = _induce(_cfg(data_dir, threshold=0.99), tmp_path / "run", backend)
    singles = [s for s in lib.strategies if len(s.members) == 1]
    assert singles and all(s.abstracted and s.text.startswith("In general: ") for s in singles)
    prompt = next(r for r in backend.requests if r.schema_name == "HighLevelStrategy").messages[0]["content"]
    assert "high-level instructional strategy is a general principle" in prompt
    assert "free of any topic" in prompt and "how to pose the next instruction" in prompt


@pytest.mark.slow
def test_induce_oasst_tiny_model(data_dir, tiny_model_dir, tmp_path):
    """The in-process tiny model: structured outputs parse through constrained decoding."""
    cfg = InduceConfig(
        dialogues=[str(data_dir / "oasst/en_100_tree.jsonl")],
        format="oasst",
        max_dialogues=40,
        model=backend_config(model=str(tiny_model_dir), batch_size=16, params={"temperature": 0.0, "max_tokens": 64}),
    )
    lib = asyncio.run(induce_async(cfg, tmp_path / "run", progress=False))
    assert lib.counts["dialogues_read"] == 40
    assert lib.counts["dialogues_kept"] == 38
    assert lib.counts["turns"] == 21 and lib.counts["distinct_turns"] < 21  # threads share prefixes
    # every structured output parsed: a unit not extracted gave a degenerate strategy (random
    # weights write one-word or punctuation 'strategies'), kept and left out, never a JSON failure
    records = [json.loads(x) for x in (tmp_path / "run/extracted.jsonl").read_text().splitlines()]
    assert not [r for r in records if "error" in r]
    degenerate = [r for r in records if "degenerate" in r]
    assert lib.counts["extracted"] + len(degenerate) == lib.counts["distinct_turns"]
    assert sum(s.size for s in lib.strategies) == lib.counts["extracted"]
    assert 1 <= lib.counts["clusters"] <= lib.counts["original_strategies"] <= lib.counts["extracted"]


@pytest.mark.slow
def test_components_match_exact_threshold_clustering():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(30, 32))
    x = np.repeat(centers, 20, axis=0) + 0.3 * rng.normal(size=(600, 32))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    exact = exact_threshold_clustering(x, 0.7)
    approx = cluster(x, 0.7, k=32)
    assert (approx == exact).all()
    assert len(set(exact)) == 30
    assert (cluster(x, 0.7, "components") == exact_threshold_clustering(x, 0.7, "components")).all()
    # order independence: permuting the input permutes the labels consistently
    perm = rng.permutation(600)
    again = cluster(x[perm], 0.7, k=32)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(approx[perm], again) == 1.0
    leader = cluster(x, 0.7, method="leader")
    assert adjusted_rand_score(exact, leader) > 0.95


@pytest.mark.slow
def test_bad_inputs_are_one_clear_line(data_dir, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    only_first = tmp_path / "first.jsonl"
    only_first.write_text('{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}\n')
    base = [sys.executable, "-m", "dialforge.cli", "induce", "--model", "m", "--base-url", "http://127.0.0.1:9/v1"]
    for args, msg in [
        (["--dialogues", str(empty)], "no records (empty file)"),
        (["--dialogues", str(only_first)], "no user turns to extract"),
        (
            ["--dialogues", str(data_dir / "oasst/en_100_tree.jsonl"), "--embedder", str(tmp_path / "nope")],
            "embedder path",
        ),
    ]:
        r = subprocess.run(base + args + ["--out", str(tmp_path / "o")], capture_output=True, text=True)
        assert r.returncode == 2, r.stderr
        assert msg in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.slow
def test_strategies_show_and_assign(data_dir, tmp_path):
    out = tmp_path / "run"
    lib = _induce(_cfg(data_dir), out, ScriptedChatModel(scripted_reply))
    r = subprocess.run(
        [sys.executable, "-m", "dialforge.cli", "strategies", "show", str(out), "--top", "3"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and lib.strategies[0].id in r.stdout and "size" in r.stdout
    labels = tmp_path / "labels.jsonl"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "dialforge.cli",
            "strategies",
            "assign",
            str(out / "library.json"),
            "--records",
            str(out / "extracted.jsonl"),
            "--out",
            str(labels),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    rows = [orjson.loads(x) for x in labels.read_bytes().splitlines()]
    assert len(rows) == 140
    ids = {s.id: s for s in lib.strategies}
    expected = {
        a["id"]: a["strategy_id"] for a in map(orjson.loads, (out / "assignments.jsonl").read_bytes().splitlines())
    }
    for row in rows:
        assert row["strategy_id"] == expected[row["id"]]
        assert row["strategy_text"] == ids[row["strategy_id"]].text
    # an unseen strategy string goes to the nearest centroid
    unseen = tmp_path / "unseen.jsonl"
    unseen.write_text(json.dumps({"id": "x", "strategy": "Please request a concrete example"}) + "\n")
    from dialforge.induce.assign import assign_records

    assign_records(out, unseen, tmp_path / "u.jsonl")
    row = json.loads((tmp_path / "u.jsonl").read_text())
    assert row["strategy_text"] == "In general: Request a concrete example of the idea"


@pytest.mark.slow
def test_library_schema_round_trip(data_dir, tmp_path):
    out = tmp_path / "run"
    lib = _induce(_cfg(data_dir, singletons="merge"), out, ScriptedChatModel(scripted_reply))
    assert StrategyLibrary.load(out / "library.json") == lib
    data = json.loads((out / "library.json").read_text())
    data["schema_version"] = 99
    (out / "bad.json").write_text(json.dumps(data))
    with pytest.raises(DialforgeError, match="schema version 99"):
        StrategyLibrary.load(out / "bad.json")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", ":1: not a strategy library (the library.json that `dialforge induce` writes): broken JSON"),
        (b'{"a": 1}\n{"b": 2}\n', ":2: not a strategy library"),
        (b"[1, 2]", ": not a strategy library"),
        (b'{"a": 1}', ": not a strategy library"),
        (
            b'{"schema_version": 1, "strategies": []}',
            ": not a strategy library (the library.json that `dialforge induce` writes): "
            "field 'created_at': Field required",
        ),
    ],
)
def test_a_file_that_is_no_library_is_one_error_line(tmp_path, content, says):
    """`strategies show` (and every command that loads a library) on an empty file, JSON
    Lines, a list or a wrong-shaped object: exit 2, one line naming the file, no traceback."""
    bad = tmp_path / "lib.json"
    bad.write_bytes(content)
    r = subprocess.run(
        [sys.executable, "-m", "dialforge.cli", "strategies", "show", str(bad)], capture_output=True, text=True
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"error: {bad}{says}") and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1


def _flaky_reply(fail: set[str]):
    """The scripted extractor, except that turns whose hash is in `fail` get no JSON back
    (request and repair both fail: a failed job)."""

    def reply(req):
        if req.schema_name == "ExtractedStrategy":
            msg = req.messages[1]["content"] if len(req.messages) > 1 else ""
            if hashlib.sha1(msg.encode()).hexdigest()[:1] in fail:
                return "no json here"
        return scripted_reply(req)

    return reply


@pytest.mark.slow
def test_induce_failed_extractions_are_kept_warned_and_retried(data_dir, tmp_path):
    """Extraction runs on the stage kernel: a failed turn is a failed record (kept, warned
    about in the manifest), and a re-run retries exactly those, then the library counts all."""
    from dialforge.run.health import run_warnings

    out = tmp_path / "run"
    cfg = _cfg(data_dir, max_dialogues=120)
    flaky = ScriptedChatModel(_flaky_reply({"0", "1", "2", "3", "4", "5", "6", "7"}))  # about half
    lib = _induce(cfg, out, flaky)
    recs = [json.loads(x) for x in (out / "extracted.jsonl").read_text().splitlines()]
    failed = [r for r in recs if r.get("error")]
    assert failed and len(failed) < len(recs)
    assert lib.counts["extracted"] == len(recs) - len(failed)
    warnings = run_warnings(out)
    assert f"extract: {len(failed)}/{len(recs)} jobs failed (see run.log)" in warnings
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["extract"]["failed"] == len(failed)
    # the server is mended: only the failed turns are asked again
    good = ScriptedChatModel(scripted_reply)
    lib2 = _induce(cfg, out, good)
    extract_calls = [r for r in good.requests if r.schema_name == "ExtractedStrategy"]
    assert len(extract_calls) == len(failed)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["extract"]["retried"] == len(failed)
    assert manifest["stages"]["extract"]["failed"] == 0
    assert lib2.counts["extracted"] == len(recs) and not run_warnings(out)
    # output in plan order, each turn once
    recs2 = [json.loads(x) for x in (out / "extracted.jsonl").read_text().splitlines()]
    assert [r["id"] for r in recs2] == [r["id"] for r in recs]


@pytest.mark.slow
def test_induce_cli_strict_exits_3_on_failed_extractions(data_dir, tmp_path):
    """`dialforge induce --strict` turns the extraction health warning into exit 3 (over HTTP)."""
    from dialforge.testing import FakeOpenAIServer, example_for_schema

    def reply(body):
        if hashlib.sha1(body["messages"][1]["content"].encode()).hexdigest()[:1] in "0123":
            return "not json"
        return json.dumps(example_for_schema(body["response_format"]["json_schema"]["schema"]))

    args = [
        sys.executable, "-m", "dialforge.cli", "induce",
        "--dialogues", str(data_dir / "oasst/en_100_tree.jsonl"), "--from", "oasst",
        "--max-dialogues", "30", "--out", str(tmp_path / "run"), "--base-url", "URL", "--model", "m",
    ]  # fmt: skip
    with FakeOpenAIServer(reply=reply) as srv:
        args[args.index("URL")] = srv.base_url
        r = subprocess.run([*args, "--strict"], capture_output=True, text=True)
    assert r.returncode == 3, r.stderr[-2000:]
    assert "library.json" in r.stderr and "warning: extract: " in r.stderr and "jobs failed" in r.stderr
    assert (tmp_path / "run/library.json").exists()  # the library is written; strict only sets the status


@pytest.mark.parametrize(
    "text,why",
    [
        ("strategemethod", "one word"),
        ("Strategies:", "one word"),
        ("2023-2024-18-10-24, 2023-2024-18-10, 2023-2024-18-10", "one word"),
        ("EKABCommon, Monday, 14.01.2018, 1:18:58, The Global Business", "mostly digits and punctuation"),
        ("Dialogue so far: the user asks", "an echo of the prompt"),
        ("Request examples", None),
        ("Dig deeper into a detail of the previous answer", None),
    ],
)
def test_degenerate_strategies_are_failed_extractions_not_library_entries(text, why):
    """What SmolLM2-135M wrote as 'strategies' in the quickstart (left column): each is a
    failed job (retried, counted in the stage's health warning), never a library entry."""
    from dialforge.induce.extract import degenerate_strategy

    assert degenerate_strategy(text) == why
