"""Post-processing at scale: bounded filter expressions, the metric registry, streaming file
commands, vectorised MinHash, blocked embedding dedup and clustering, the embedding cache,
ROUGE-L on rapidfuzz. Behaviour only (equality with references, recall, flat memory)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tracemalloc

import numpy as np
import orjson
import pytest

from dialforge.conversation import Conversation
from dialforge.errors import DialforgeError
from dialforge.io import read_conversations, write_conversations
from dialforge.score import Expression, dedup, dedup_file, export_file, filter_file, score, validate_filter
from dialforge.score.dedup import MinHasher, embedding_duplicates
from dialforge.score.registry import conversation_fields, get, metrics, register


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "dialforge.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def threads(data_dir):
    return read_conversations(data_dir / "oasst/en_100_tree.jsonl", "oasst")


# -- filter expressions ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("'a' * 9999999999 == 'a'", "repetition beyond"),
        ("[1] * 999999999999 == [1]", "repetition beyond"),
        ("'%0999999999d' % 1 == ''", "unsupported operand types str and int"),
        ("not " * 5000 + "x", "longer than"),
        ("not " * 100 + "x", "nested deeper than"),
        ("(lambda: 1)()", "is not allowed"),
        ("[x for x in y]", "is not allowed"),
        ("b'x' == x", "constant b'x' is not allowed"),
    ],
)
def test_expressions_are_bounded_at_compile_or_eval_time(text, message):
    with pytest.raises(DialforgeError, match=message):
        Expression(text)({"x": 1, "y": [1]})


@pytest.mark.parametrize(
    ("text", "where"),
    [
        # the audit's: ran past 60 s at 62 MB
        ("[[['a']*10000]*10000]*10000 == [[['a']*10000]*10000]*10000", "[['a'] * 10000] * 10000"),
        ("[['a']*10000]*10000 == [['a']*10000]*10000", "[['a'] * 10000] * 10000"),  # 0.27 s a record
        ("[[[]]*10000]*10000 == x", "[[[]] * 10000] * 10000"),  # empty lists count too
        ("['ab'*5000]*2 == x", "['ab' * 5000] * 2"),  # characters count
    ],
)
def test_a_value_built_past_the_size_budget_is_refused_at_once(text, where):
    import time

    start = time.perf_counter()
    with pytest.raises(DialforgeError) as e:
        Expression(text)({"x": 1})
    assert time.perf_counter() - start < 0.5
    assert str(e.value) == (
        f"filter expression {text!r}: repetition beyond 10000 items (nested items counted) in `{where}`"
    )


def test_a_nested_list_literal_past_the_size_budget_is_refused():
    text = "[" + ", ".join(["['a'] * 9000"] * 3) + "] == x"
    with pytest.raises(DialforgeError, match=r"the list holds more than 10000 items \(nested items counted\) in `\["):
        Expression(text)({"x": 1})


def test_one_records_work_is_bounded_by_a_step_budget():
    import time

    ok = " and ".join(["['a']*5000 + ['a']*5000 != x"] * 9)  # 9 x 10^4 steps: within the budget
    assert Expression(ok)({"x": 1}) is True
    text = " and ".join(["['a']*5000 + ['a']*5000 != x"] * 11)
    start = time.perf_counter()
    with pytest.raises(DialforgeError) as e:
        Expression(text)({"x": 1})
    assert time.perf_counter() - start < 0.5
    assert str(e.value) == f"filter expression {text!r}: more than 100000 steps of work on one record"
    # the budget is per record: the next record starts afresh
    assert Expression(ok)({"x": 1}) is True
    assert Expression("['a'] * 10000 == ['a'] * 10000")({}) is True  # the limit itself is allowed


def test_filter_on_a_score_no_record_has_warns(tmp_path, threads):
    data = tmp_path / "d.jsonl"
    write_conversations(threads[:5], data)
    r = _cli("filter", str(data), "--where", "distinct_1 > 0.1", "--out", str(tmp_path / "o.jsonl"))
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [
        f"WARNING dialforge.score: filter expression 'distinct_1 > 0.1': no record of {data} has 'distinct_1' "
        "(no scores file: run `dialforge score` first, or pass --scores); it is None in every record, "
        "so comparisons with it are false",
        f"{tmp_path / 'o.jsonl'}: kept 0 of 5 (distinct_1 > 0.1)",
    ]


def test_expression_errors_name_the_expression_and_field_never_false():
    with pytest.raises(DialforgeError, match=r"division by zero in `user_turns / 0` \(user_turns=3\)"):
        Expression("user_turns / 0 > 1")({"user_turns": 3})
    with pytest.raises(DialforgeError, match=r"cannot compare str with int \(mode='x'\)"):
        Expression("mode > 2")({"mode": "x"})
    with pytest.raises(DialforgeError, match="unsupported operand types int and str"):
        Expression("user_turns + mode == 1")({"user_turns": 1, "mode": "x"})
    # missing fields are None: ordering comparisons with None are false, arithmetic gives None
    assert Expression("workflow_depth >= 2")({}) is False
    assert Expression("workflow_depth + 1 > 2 or user_turns == 1")({"user_turns": 1}) is True
    assert Expression("workflow_depth == None")({}) is True


def test_fast_path_equals_checked_path_on_random_records():
    """Expressions without arithmetic run as plain bytecode; results must equal the checked
    closures on every record, including missing fields and type mixes."""
    rng = random.Random(0)
    exprs = [
        "user_turns >= 3 and termination_reason != 'error'",
        "mode in ['strategy', 'persona'] or not judge_mean > 5",
        "1 < user_turns <= 4 and (workflow_success == True or follow_up_rate >= 0.5)",
    ]
    for text in exprs:
        e = Expression(text)
        assert e._fast is not None
        for _ in range(2000):
            env = {
                k: rng.choice([None, 0, 1, 3, 5, 7.5, True, "error", "persona"])
                for k in (
                    "user_turns",
                    "termination_reason",
                    "mode",
                    "judge_mean",
                    "workflow_success",
                    "follow_up_rate",
                )
                if rng.random() < 0.8
            }
            try:
                checked = bool(e._fn(env))
            except DialforgeError:
                with pytest.raises(DialforgeError):
                    e(env)
                continue
            assert e(env) == checked, (text, env)


def test_validate_filter_uses_the_registry():
    assert validate_filter("user_turns >= 3 and judge_mean > 5 and termination_reason != 'error'")
    with pytest.raises(DialforgeError, match="unknown name 'turns'"):
        validate_filter("turns > 3")
    assert validate_filter("my_field > 1", extra_fields={"my_field"})


@pytest.mark.slow
def test_filter_file_streams_and_names_the_record(threads, tmp_path):
    threads = threads[:80]
    f = tmp_path / "t.jsonl"
    write_conversations(threads, f)
    score(f, _no_embedding())
    kept, read = filter_file(
        f, "user_turns >= 2 and distinct_1 > 0.5", tmp_path / "k.jsonl", tmp_path / "t.scores.jsonl"
    )
    rows = [json.loads(x) for x in (tmp_path / "t.scores.jsonl").read_text().splitlines()]
    want = [r["id"] for r in rows if r["user_turns"] >= 2 and r["distinct_1"] > 0.5]
    assert read == len(threads) and kept == len(want) > 0
    assert [c.id for c in read_conversations(tmp_path / "k.jsonl")] == want
    (tmp_path / "k.jsonl").write_text("kept\n")
    with pytest.raises(DialforgeError, match=r"t.jsonl:1: filter expression 'mtld / \(user_turns - user_turns\)"):
        filter_file(f, "mtld / (user_turns - user_turns) > 1", tmp_path / "k.jsonl", tmp_path / "t.scores.jsonl")
    assert (tmp_path / "k.jsonl").read_text() == "kept\n"  # nothing produced is lost
    with pytest.raises(DialforgeError, match="unknown name 'turns'"):
        filter_file(f, "turns > 1", tmp_path / "k.jsonl")


# -- the metric registry -----------------------------------------------------------------------
def _no_embedding():
    from dialforge.score import ScoreConfig

    return ScoreConfig(embedder=None, self_bleu_sample=20)


@pytest.mark.slow
def test_every_score_written_is_registered(threads, tmp_path):
    convs = threads[:30]
    convs[0].meta["workflow_eval"] = {"depth": 2, "relative_depth": 0.5, "success": True}
    convs[1].messages[0].meta["strategy_id"] = "s3"
    f = tmp_path / "t.jsonl"
    write_conversations(convs, f)
    summary = score(f, _no_embedding())
    per = [json.loads(x) for x in (tmp_path / "t.scores.jsonl").read_text().splitlines()]
    written = set().union(*per)
    assert {"workflow_depth", "strategies", "distinct_1"} <= written
    assert written <= conversation_fields()
    assert set(summary) <= {m.name for m in metrics("dataset")} | {"skipped_records"}
    for m in metrics():
        assert m.direction in ("higher", "lower", "n/a") and m.description
    assert get("self_bleu", "dataset").direction == "lower"
    with pytest.raises(ValueError, match="registered twice"):
        register(get("mtld"))
    listed = json.loads(_cli("metrics", "--json").stdout)
    want = [(m.name, m.level, m.direction) for m in metrics()]
    assert [(m["name"], m["level"], m["direction"]) for m in listed] == want


@pytest.mark.slow
def test_score_field_of_the_wrong_type_is_one_line(threads, tmp_path):
    good = [orjson.loads(orjson.dumps({"messages": [m.model_dump() for m in c.messages]})) for c in threads[:3]]
    bad_depth = json.loads(json.dumps(good[1]))
    bad_depth["meta"] = {"workflow_eval": {"depth": "deep"}}
    bad_sid = json.loads(json.dumps(good[2]))
    bad_sid["messages"][0]["meta"] = {"strategy_id": ["a", "b"]}
    f = tmp_path / "s.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in (good[0], bad_depth, bad_sid)))
    r = _cli("score", str(f), "--no-embedding")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0
    assert "s.jsonl:2: field 'meta.workflow_eval.depth': expected int, got str" in r.stderr
    assert not (tmp_path / "s.scores.jsonl").exists()
    r = _cli("score", str(f), "--no-embedding", "--on-error", "skip")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["conversations"] == 1 and json.loads(r.stdout)["skipped_records"] == 2


# -- streaming file commands -------------------------------------------------------------------
def _big_file(path, n, seed=0):
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(5000)]
    with path.open("w") as f:
        for i in range(n):
            msgs = []
            for t in range(4):
                msgs.append(
                    {"role": "user", "content": f"synthetic request {i} {t} " + " ".join(rng.sample(words, 400))}
                )
                msgs.append({"role": "assistant", "content": "synthetic answer " + " ".join(rng.sample(words, 400))})
            f.write(json.dumps({"messages": msgs, "meta": {"n": i}}) + "\n")
    return path


def _peak(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_file_commands_stream_in_flat_memory(tmp_path):
    """Peak Python allocations stay flat when the file grows 4x (and far below its size)."""
    from dialforge.io.reader import iter_conversations
    from dialforge.stats import conversation_stats

    small, big = _big_file(tmp_path / "s.jsonl", 60), _big_file(tmp_path / "b.jsonl", 240)
    size = big.stat().st_size
    jobs = {
        "stats": lambda p: conversation_stats(iter_conversations(p)),
        "filter": lambda p: filter_file(p, "n >= 0", tmp_path / "f.jsonl"),
        "export": lambda p: export_file(p, "sharegpt", tmp_path / "e.json"),
        "dedup": lambda p: dedup_file(p, tmp_path / "d.jsonl", tmp_path / "r.jsonl", near=None),
    }
    for name, job in jobs.items():
        a, b = _peak(lambda job=job: job(small)), _peak(lambda job=job: job(big))
        assert b < 1.3 * a and b < size / 2, (name, a, b, size)
    assert len(read_conversations(tmp_path / "e.json")) == 240


def test_streamed_sharegpt_array_holds_the_same_records(threads, tmp_path):
    from dialforge.io import formats

    write_conversations(iter(threads[:7]), tmp_path / "a.json", "sharegpt")
    want = [formats.to_sharegpt(c) for c in threads[:7]]
    assert orjson.loads((tmp_path / "a.json").read_bytes()) == want
    write_conversations(iter([]), tmp_path / "e.json", "sharegpt")
    assert orjson.loads((tmp_path / "e.json").read_bytes()) == []


# -- dedup -------------------------------------------------------------------------------------
def test_minhash_signature_equals_datasketch():
    """Same shingle hashes in, same signature out as datasketch's MinHash(seed=1) update_batch."""
    from datasketch import MinHash

    h = MinHasher(128)
    text = "the quick brown fox jumps over the lazy dog and the quick brown cat " * 3
    hv = h.shingles(text)
    ref = MinHash(num_perm=128, seed=1, hashfunc=lambda b: int(b))
    ref.update_batch([str(int(v)).encode() for v in hv])
    assert ref.scheme == "affine32"
    assert (h.signature(text) == ref.hashvalues).all()


def _reference_shingles(normalised: str) -> list[int]:
    """The shingle hashes written out with Python ints: a polynomial hash of each word's
    UTF-8 bytes, three consecutive words mixed, the top 32 bits."""
    from dialforge.score.dedup import _MIX, _P

    m = (1 << 64) - 1
    words = [sum(b * pow(_P, i, 1 << 64) for i, b in enumerate(w.encode())) & m for w in normalised.split(" ")]
    if len(words) < 3:
        import zlib

        return [zlib.crc32(normalised.encode())]
    mix = [int(x) for x in _MIX]
    triples = zip(words[:-2], words[1:-1], words[2:], strict=True)
    return [((a * mix[0] + b * mix[1] + c * mix[2]) & m) >> 32 for a, b, c in triples]


def test_batched_shingles_and_signatures_equal_one_text_at_a_time():
    """A batch (short texts, non-ASCII, one longer than a signature chunk) hashes as each text
    alone would, and each signature equals datasketch's for that text's shingles."""
    from datasketch import MinHash

    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(50)] + ["naïve", "日本語", "x"]
    texts = ["", "one", "two words", "exactly three words"]
    texts += [" ".join(rng.choices(vocab, k=rng.randint(3, 40))) for _ in range(30)]
    texts.append(" ".join(rng.choices(vocab, k=9000)))
    h = MinHasher(128)
    batch = h.batch_shingles(texts)
    assert [b.tolist() for b in batch] == [_reference_shingles(t) for t in texts]
    sigs = h.signatures(batch, chunk=256)
    for t, b, sig in zip(texts, batch, sigs, strict=True):
        ref = MinHash(num_perm=128, seed=1, hashfunc=lambda x: int(x))
        ref.update_batch([str(int(v)).encode() for v in b])
        assert (sig == ref.hashvalues).all(), t[:40]


def test_near_dedup_removes_exactly_the_pairs_at_or_above_the_threshold():
    """Pairs built to an exact Jaccard of their word 3-gram sets on either side of 0.8: none
    below is removed (candidates are confirmed by the exact Jaccard, not the MinHash
    estimate), and LSH finds nearly all above."""
    rng = random.Random(7)
    docs, above, below = [], set(), set()
    for k in range(60):
        words = [f"t{k}x{i}" for i in range(102)]  # 100 distinct shingles
        m = rng.choice([89, 90, 92, 94, 96])  # the first m words shared: Jaccard (m-2)/(202-m)
        other = words[:m] + [f"u{k}y{i}" for i in range(102 - m)]
        docs += [Conversation(id=f"a{k}", messages=[{"role": "user", "content": " ".join(words)}]),
                 Conversation(id=f"b{k}", messages=[{"role": "user", "content": " ".join(other)}])]  # fmt: skip
        (above if (m - 2) / (202 - m) >= 0.8 else below).add(f"b{k}")
    assert len(below) >= 15 and len(above) >= 30
    _, removed = dedup(docs, near=0.8)
    got = {r["id"] for r in removed}
    assert not got & below
    assert len(got & above) >= 0.9 * len(above)
    assert all(r["duplicate_of"] == "a" + r["id"][1:] for r in removed)


def _edit(c: Conversation, i: int) -> Conversation:
    msgs = [m.model_copy() for m in c.messages]
    k = max(range(len(msgs)), key=lambda j: len(msgs[j].content))
    words = msgs[k].content.split()
    words[len(words) // 2] = "EDITED"
    msgs[k] = msgs[k].model_copy(update={"content": " ".join(words) + " Thanks."})
    return Conversation(id=f"near{i}", messages=msgs, meta={})


def test_near_dedup_recall_and_no_false_positives_on_real_threads(threads):
    one_per_tree = {c.meta["message_tree_id"]: c for c in threads}  # threads of a tree share a prefix
    base = [c for c in one_per_tree.values() if len(" ".join(m.content for m in c.messages).split()) >= 150]
    assert len(base) >= 45
    plants = [_edit(c, i) for i, c in enumerate(base[:40])]
    kept, removed = dedup(base + plants, near=0.8)
    removed_ids = {r["id"] for r in removed}
    assert not removed_ids - {p.id for p in plants}  # no false positive
    recall = len(removed_ids) / len(plants)
    assert recall >= 0.84
    assert all(r["duplicate_of"] == base[int(r["id"][4:])].id for r in removed)


def test_blocked_embedding_dedup_equals_the_greedy_scan():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((700, 32)).astype(np.float32)
    dups = rng.integers(0, 700, 300)
    x = np.vstack([x, x[dups] + 0.15 * rng.standard_normal((300, 32)).astype(np.float32)])
    x = x[rng.permutation(len(x))]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    want, kept = np.full(len(x), -1), []
    for i, v in enumerate(x):  # the old survivor-by-survivor scan
        if kept:
            sims = x[kept] @ v
            j = int(np.argmax(sims))
            if sims[j] >= 0.9:
                want[i] = kept[j]
                continue
        kept.append(i)
    got = embedding_duplicates(x, 0.9, block=64, col_block=100)
    assert (got == want).all() and (got >= 0).sum() > 200


# -- clustering --------------------------------------------------------------------------------
@pytest.mark.slow
def test_blocked_kernel_equals_exact_and_faiss_clustering():
    from dialforge.induce.cluster import cluster, exact_threshold_clustering

    rng = np.random.default_rng(1)
    centres = rng.standard_normal((150, 48)).astype(np.float32)
    x = centres[rng.integers(0, 150, 2500)] + 0.7 * rng.standard_normal((2500, 48)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    exact = exact_threshold_clustering(x, 0.5)
    assert len(set(exact)) > 100
    assert (cluster(x, 0.5, kernel="blocked") == exact).all()
    assert (cluster(x, 0.5, kernel="faiss") == exact).all()
    assert (
        cluster(x, 0.5, method="components", kernel="blocked") == exact_threshold_clustering(x, 0.5, "components")
    ).all()


# -- embedder cache ----------------------------------------------------------------------------
@pytest.mark.slow
def test_embedder_creates_its_cache_folder_and_reuses_vectors(tmp_path, monkeypatch):
    from dialforge.induce.embed import Embedder, length_buckets

    folder = tmp_path / "new" / "cache"
    texts = ["short", "a somewhat longer sentence about planting tomatoes in spring", "short"]
    a = Embedder(cache_dir=folder).embed(texts)
    assert (folder / "embeddings.sqlite").exists()
    assert a.shape == (3, 384) and np.allclose(a[0], a[2])
    e = Embedder(cache_dir=folder)  # a new process would see the same file
    monkeypatch.setattr(e, "encode", lambda *a, **k: pytest.fail("cached text embedded again"))
    assert np.array_equal(e.embed(texts), a)
    plain = e._load().encode(texts, normalize_embeddings=True)
    assert np.abs(plain - a).max() < 1e-5
    batches = length_buckets([5, 300, 7, 120, 6, 250], batch_size=4, token_budget=512)
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert all(len(b) <= 4 and len(b) * max([5, 300, 7, 120, 6, 250][i] for i in b) <= 512 for b in batches)


# -- ROUGE-L tracker ---------------------------------------------------------------------------
def test_rouge_l_equals_rouge_score_on_real_star_turns(data_dir):
    from rouge_score import rouge_scorer

    from dialforge.workflows.tracker import rouge_l

    turns = []
    for line in (data_dir / "star/star_dialogues_subset.jsonl").read_text().splitlines()[:60]:
        turns += [e["Text"] for e in json.loads(line)["Events"] if e.get("Text")]
    assert len(turns) > 500
    ref = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rng = random.Random(0)
    pairs = [(rng.choice(turns), rng.choice(turns)) for _ in range(1500)] + list(zip(turns, turns[1:], strict=False))
    for a, b in pairs:
        assert rouge_l(a, b) == pytest.approx(ref.score(b, a)["rougeL"].fmeasure, abs=1e-12), (a, b)


# -- stats -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_stats_words_tokens_and_plurals(threads, tmp_path, tiny_model_dir):
    f = tmp_path / "one.jsonl"
    write_conversations(threads[:1], f)
    r = _cli("stats", str(f))
    assert r.returncode == 0, r.stderr
    assert "1 conversation;" in r.stdout and "0 skipped records" in r.stdout and "words" in r.stdout
    assert " tokens " not in r.stdout and " words " in r.stdout
    j = json.loads(_cli("stats", str(f), "--json").stdout)
    w = j["per_role"]["user"]["words"]
    j = json.loads(_cli("stats", str(f), "--json", "--tokenizer", str(tiny_model_dir)).stdout)
    assert j["length_unit"] == "tokens" and j["per_role"]["user"]["tokens"] > 0
    assert j["per_role"]["user"]["tokens"] != w
    r = _cli("stats", str(f), "--tokenizer", str(tmp_path / "nope"))
    assert r.returncode == 2 and "cannot load tokenizer" in r.stderr and "Traceback" not in r.stderr


def test_pipeline_rejects_a_filter_typo_before_any_request(tmp_path):
    from pathlib import Path

    from dialforge.config import load_config
    from dialforge.pipeline import PipelineConfig, run_pipeline

    root = Path(__file__).resolve().parents[1]
    cfg = load_config(
        PipelineConfig,
        root / "examples/quickstart.yaml",
        {"filter": "user_turn >= 2", "model.base_url": "http://127.0.0.1:9/v1", "model.model": "m"},
    )
    with pytest.raises(DialforgeError, match="unknown name 'user_turn'"):
        run_pipeline(cfg, tmp_path / "run")  # a dead server: any request would fail differently
    assert not (tmp_path / "run" / "induce").exists()


def test_local_backend_batch_default_is_the_measured_one():
    from dialforge.llm.config import TransformersBackendConfig
    from dialforge.llm.local import DEFAULT_BATCH_SIZE, TransformersBackend

    assert DEFAULT_BATCH_SIZE == 32  # docs/benchmarks.md, issue 18: fastest of 16/32/64 on the tiny model
    assert TransformersBackendConfig(model="m").batch_size == DEFAULT_BATCH_SIZE
    assert TransformersBackend("m").batch_size == DEFAULT_BATCH_SIZE


@pytest.mark.slow
def test_simulate_holds_no_stage_of_records_in_memory(tmp_path):
    """Peak Python allocations of a simulate stage stay flat when it makes 4x the
    conversations. In-process answers never yield to the loop, so the call cache must commit
    (and write the records) in chunks instead of holding every answer until the stage ends."""
    import asyncio
    import collections
    import hashlib

    from dialforge.llm import backend_config
    from dialforge.llm.pool import BackendPool
    from dialforge.simulate import SimulateConfig, simulate_async
    from dialforge.testing import ScriptedChatModel

    def reply(req):  # ~1.3 KB, different for every turn of every conversation
        h = hashlib.sha256(json.dumps(req.messages).encode()).hexdigest()
        return " ".join([h] * 20) + "?"

    def run(n: int) -> None:
        models = {m: ScriptedChatModel(reply, model_id=m) for m in ("sim", "asst")}
        for m in models.values():
            m.requests = collections.deque(maxlen=0)  # the test double would keep every request
        url = "http://127.0.0.1:9/v1"  # never contacted: the pool hands in the scripted models
        cfg = SimulateConfig(
            mode="socratic",
            seeds={"free": n},
            max_turns=4,
            user=backend_config(model="sim", base_url=url),
            assistant=backend_config(model="asst", base_url=url),
            concurrency=32,
            stop={"role_flip": False},
        )
        out = tmp_path / f"run{n}"
        s = asyncio.run(simulate_async(cfg, out, progress=False, pool=BackendPool(models)))
        assert s["termination_reasons"] == {"max_turns": n}

    small = _peak(lambda: run(100))
    big = _peak(lambda: run(400))
    size = {n: (tmp_path / f"run{n}/conversations.jsonl").stat().st_size for n in (100, 400)}
    grown = size[400] - size[100]
    # holding the answers until the stage ends took 60 MB here (4x), 15 MB at 100
    assert big - small < grown / 4, (small, big, grown)


def test_dataset_scores_spilled_to_disk_equal_the_ones_held_in_memory(threads):
    """`score` keeps its word and bigram hashes in a temporary file a chunk at a time (MTLD
    reads them back both ways, distinct-n counts them in hash partitions): with a chunk of 64
    values (hundreds of spills and partitions) every figure equals the one-chunk result."""
    from dialforge.score.scoring import DatasetScores, ScoreConfig, analyse

    cfg = ScoreConfig(embedder=None, self_bleu_sample=30)
    small, whole = DatasetScores(cfg, chunk=64), DatasetScores(cfg)
    for c in threads:
        per, words = analyse(c)
        small.add(c, per, words)
        whole.add(c, per, words)
    assert small.ids.on_disk > 64 * 10 and whole.ids.on_disk == 0
    got, want = small.result(), whole.result()
    assert got == want
    assert want["distinct_1"] > 0 and want["distinct_2"] > 0 and want["mtld"] > 0


def test_sorted_runs_index_equals_a_dict_of_lists():
    """Dedup's compact index (recent entries in a dict, older in sorted runs, frozen when
    full) answers exactly what a dict of lists answers, across merges and frozen runs."""
    from dialforge.score.dedup import _Runs

    rng = random.Random(3)
    runs, ref = _Runs(np.uint32, run=300, batch=37), {}
    for val in range(3000):
        key = rng.randrange(500)  # many repeats: one key spans runs
        runs.add(key, val)
        ref.setdefault(key, []).append(val)
        if val % 97 == 0:
            q = [rng.randrange(600) for _ in range(16)]
            want = sorted({v for k in q for v in ref.get(k, [])})
            assert runs.get(q).tolist() == want
    assert len(runs.frozen) >= 5
    q = list(range(600))
    assert runs.get(q).tolist() == list(range(3000))
