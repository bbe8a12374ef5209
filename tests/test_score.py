"""Metrics against hand-computed values, determinism, filter/dedup/export, MT-Bench."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from dialforge import Conversation, read_conversations, write_conversations
from dialforge.conversation import Message
from dialforge.errors import DialforgeError
from dialforge.score import (
    Expression,
    dedup,
    dedup_file,
    distinct_n,
    embedding_diversity,
    entropy_bits,
    export,
    filter_conversations,
    is_follow_up,
    mtld,
    parse_rating,
    self_bleu,
    summarise_single,
)


def test_distinct_n_by_hand():
    assert distinct_n(["a b a", "b c"], 1) == pytest.approx(3 / 5)
    assert distinct_n(["a b a", "b c"], 2) == pytest.approx(3 / 3)
    assert distinct_n(["a a a a"], 2) == pytest.approx(1 / 3)
    assert distinct_n([], 1) == 0.0


def test_mtld_by_hand():
    assert mtld("a a a a".split()) == 2.0  # TTR hits 0.5 every second token: 2 factors
    assert mtld("a b c d".split()) == 4.0  # never reaches 0.72: the length
    assert mtld("a b a b c".split()) == 5.0  # one factor each way (2/3 and 3/5 <= 0.72)
    assert mtld([]) == 0.0


def test_embedding_diversity_by_hand():
    same = np.tile(np.array([[1.0, 0.0, 0.0]]), (4, 1))
    d = embedding_diversity(same)
    assert d["mean_cosine"] == pytest.approx(1.0) and d["vendi"] == pytest.approx(1.0)
    d = embedding_diversity(np.eye(3))
    assert d["mean_cosine"] == pytest.approx(0.0) and d["vendi"] == pytest.approx(3.0)


@pytest.mark.slow
def test_self_bleu_and_follow_up_and_entropy():
    assert self_bleu(["the cat sat on the mat today"] * 3) == pytest.approx(1.0)
    assert self_bleu(["alpha beta gamma delta", "one two three four", "red green blue black"]) < 0.1
    assert is_follow_up("Can you explain that step in more detail?", "First, preheat the oven.")
    assert is_follow_up(
        "Why does the oven temperature matter when I preheat?", "Preheat the oven; temperature matters."
    )
    assert not is_follow_up("What is the capital of France?", "Bananas are yellow.")
    assert entropy_bits(Counter(a=1, b=1)) == pytest.approx(1.0)
    assert entropy_bits(Counter(a=4)) == 0.0


def test_parse_rating_fastchat_rules():
    assert parse_rating("Rating: [[7]]") == 7.0
    assert parse_rating("I give it [6.5] overall") == 6.5
    assert parse_rating("no rating at all") == -1.0
    # what a small judge writes instead (0 of 6 SmolLM2 judgments parsed before)
    assert parse_rating("[Rating: 5]") == 5.0 and parse_rating("Rating: 4/10") == 4.0
    assert parse_rating("rating: 55") == -1.0  # outside 1-10: not a rating


def test_platolm_published_mt_bench_score(data_dir):
    """PlatoLM-7B's 160 GPT-4 judgments reproduce its published MT-Bench 6.33 (6.74 / 5.91)."""
    from dialforge.score.mtbench import load_jsonl

    judgments = load_jsonl(data_dir / "platolm/mt-bench/model_judgment/gpt-4_single.jsonl")
    # re-parse the judge's text instead of trusting the stored score
    reparsed = [{**j, "score": parse_rating(j["judgment"])} for j in judgments]
    assert [j["score"] for j in reparsed] == [j["score"] for j in judgments]
    cats = {q["question_id"]: q["category"] for q in load_jsonl(data_dir / "fastchat/mt_bench/question.jsonl")}
    s = summarise_single(reparsed, cats)
    assert round(s["mean"], 2) == 6.33
    assert round(s["turns"][1], 2) == 6.74 and round(s["turns"][2], 2) == 5.91
    assert s["judged"] == 160 and s["unparsed"] == 0 and len(s["categories"]) == 8


@pytest.fixture(scope="module")
def threads(data_dir):
    return read_conversations(data_dir / "oasst/en_100_tree.jsonl", "oasst")[:40]


@pytest.mark.slow
def test_score_file_is_deterministic(threads, tmp_path):
    from dialforge.score import ScoreConfig, score

    f = tmp_path / "t.jsonl"
    write_conversations(threads, f)
    a = score(f, ScoreConfig(embedding_sample=50, self_bleu_sample=30))
    per = (tmp_path / "t.scores.jsonl").read_text()
    b = score(f, ScoreConfig(embedding_sample=50, self_bleu_sample=30))
    assert a == b and per == (tmp_path / "t.scores.jsonl").read_text()
    assert a["conversations"] == 40 and 0 < a["distinct_2"] <= 1 and a["embedding_vendi"] > 1
    assert json.loads((tmp_path / "t.scores_summary.json").read_text())["dataset"] == a
    rows = [json.loads(x) for x in per.splitlines()]
    assert [r["id"] for r in rows] == [c.id for c in threads]
    assert all(r["user_turns"] == c.n_user_turns for r, c in zip(rows, threads, strict=True))


@pytest.mark.slow
def test_self_bleu_equals_nltk_sentence_bleu(threads):
    """Counting each text's n-grams once gives nltk's figure exactly (ties, short texts, a
    text shorter than 4 words, repeated texts)."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    from dialforge.score.metrics import words

    texts = [m.content for c in threads for m in c.messages if m.role == "user"][:40]
    texts += ["ok", "thanks a lot", texts[0], texts[1], "why?"]
    s = [w for w in (words(t) for t in texts) if w]
    smooth = SmoothingFunction().method1
    want = float(np.mean([sentence_bleu(s[:i] + s[i + 1 :], h, smoothing_function=smooth) for i, h in enumerate(s)]))
    assert self_bleu(texts, sample_size=len(texts)) == want
    assert self_bleu(texts[:20], sample_size=8, seed=3) > 0


def test_streamed_dataset_scores_equal_the_metrics_over_all_texts(threads, tmp_path):
    """The accumulator (word ids, integer bigrams, per-conversation numbers) gives what the
    metric functions give over every user text at once."""
    from dialforge.score import ScoreConfig, score
    from dialforge.score.metrics import words

    convs = threads + [
        Conversation(
            id="wf",
            messages=[{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"}],
            meta={"workflow_eval": {"depth": 2, "relative_depth": 0.5, "success": True}, "termination_reason": "x"},
        )
    ]
    f = tmp_path / "t.jsonl"
    write_conversations(convs, f)
    got = score(f, ScoreConfig(embedder=None, self_bleu_sample=20))
    users = [m.content for c in convs for m in c.messages if m.role == "user"]
    assert got["distinct_1"] == round(distinct_n(users, 1), 4)
    assert got["distinct_2"] == round(distinct_n(users, 2), 4)
    assert got["mtld"] == round(mtld([w for t in users for w in words(t)]), 3)
    assert got["self_bleu"] == round(self_bleu(users, 20), 4)
    assert got["user_turns_mean"] == round(np.mean([c.n_user_turns for c in convs]), 4)
    assert got["termination_reasons"] == {"none": 40, "x": 1}
    assert got["workflow_depth"] == 2.0 and got["workflow_success"] == 1.0
    rows = [json.loads(x) for x in (tmp_path / "t.scores.jsonl").read_text().splitlines()]
    for r, c in zip(rows, convs, strict=True):
        body = c.dialogue()
        pairs = [(body[i].content, body[i - 1].content) for i in range(1, len(body))
                 if body[i].role == "user" and body[i - 1].role == "assistant"]  # fmt: skip
        assert r["follow_ups"] == sum(is_follow_up(q, a) for q, a in pairs)
        assert r["assistant_tokens"] == sum(len(words(m.content)) for m in c.messages if m.role == "assistant")
    assert sum(r["follow_ups"] for r in rows) > 5


def test_fast_paths_equal_their_plain_definitions(threads):
    """count_words = len(words), MTLD checking only repeats = the per-token check, the
    follow-up check with a lazily tokenised answer = the set definition, on real turns and
    random streams (ASCII and not)."""
    import random
    import re

    from dialforge.score.metrics import _REFER, _STOP, count_words, follows_up, words

    def mtld_pass(tokens, threshold=0.72):  # the textbook loop: check after every token
        factors, types, count, ttr = 0.0, set(), 0, 1.0
        for tok in tokens:
            count += 1
            types.add(tok)
            ttr = len(types) / count
            if ttr <= threshold:
                factors, types, count, ttr = factors + 1, set(), 0, 1.0
        if count > 0:
            factors += (1 - ttr) / (1 - threshold)
        return len(tokens) / factors if factors > 0 else float(len(tokens))

    def follow_up(q, a):
        if _REFER.search(q):
            return True
        content = {w for w in words(q) if len(w) >= 5 and w not in _STOP}
        return len(content & set(words(a))) >= 2

    texts = [m.content for c in threads for m in c.messages]
    rng = random.Random(0)
    texts += ["".join(rng.choice("ab _-!\n\t9Zé日") for _ in range(rng.randint(0, 40))) for _ in range(300)]
    assert all(count_words(t) == len(re.findall(r"\w+", t)) for t in texts)
    for _ in range(500):
        toks = [str(rng.randint(0, rng.randint(1, 30))) for _ in range(rng.randint(0, 150))]
        want = (mtld_pass(toks) + mtld_pass(toks[::-1])) / 2 if toks else 0.0
        assert mtld(toks) == want
    for c in threads:
        for q, a in zip(c.messages[1:], c.messages, strict=False):
            assert follows_up(q.content, words(q.content), a.content) == follow_up(q.content, a.content)


def test_filter_expressions_and_errors(threads):
    scores = {
        c.id: {"user_turns": c.n_user_turns, "judge": {"mean": 7.5 if i % 2 else 3.0}} for i, c in enumerate(threads)
    }
    kept = filter_conversations(threads, scores, "user_turns >= 2 and judge_mean > 5")
    assert len(kept) == sum(1 for i, c in enumerate(threads) if c.n_user_turns >= 2 and i % 2)
    assert len(filter_conversations(threads, scores, "source in ['oasst']")) == 40
    with pytest.raises(DialforgeError, match="unknown name 'turns'"):
        filter_conversations(threads, scores, "turns > 2")
    with pytest.raises(DialforgeError, match="syntax error"):
        Expression("user_turns >")
    with pytest.raises(DialforgeError, match="call is not allowed"):
        Expression("__import__('os').system('true')")


def test_new_assistant_turns_leave_out_seed_exchanges():
    """The funnel keeps only conversations with an answer of their own: a socratic run seeded
    with a real exchange whose simulator flips role at once holds only the seed's answer."""
    from dialforge.score.scoring import analyse

    seed = [
        Message(role="user", content="A synthetic seed question?", meta={"seed": True}),
        Message(role="assistant", content="A synthetic seed answer.", meta={"seed": True}),
    ]
    only_seed = Conversation(id="s", messages=seed, meta={"termination_reason": "role_flip"})
    assert analyse(only_seed)[0]["new_assistant_turns"] == 0
    more = seed + [Message(role="user", content="And then?"), Message(role="assistant", content="Then this.")]
    assert analyse(Conversation(id="m", messages=more, meta={}))[0]["new_assistant_turns"] == 1
    empty = [Message(role="user", content="Hi?"), Message(role="assistant", content="  ")]
    assert analyse(Conversation(id="e", messages=empty, meta={}))[0]["new_assistant_turns"] == 0


def test_dedup_planted_duplicates(threads):
    base = threads[:30]
    exact = [Conversation(id=f"dup{i}", messages=base[i].messages, meta={}) for i in range(3)]
    near = []
    for i in (10, 11):
        msgs = [m.model_copy() for m in base[i].messages]
        msgs[-1] = msgs[-1].model_copy(update={"content": msgs[-1].content + " Thanks."})
        near.append(Conversation(id=f"near{i}", messages=msgs, meta={}))
    kept, removed = dedup(base + exact + near, near=0.8)
    assert len(kept) == 30
    reasons = Counter(r["reason"].split(" (")[0] for r in removed)
    assert reasons == {"exact": 3, "near-duplicate": 2}
    assert {r["duplicate_of"] for r in removed if r["id"].startswith("dup")} == {c.id for c in base[:3]}
    assert {r["duplicate_of"] for r in removed if r["id"].startswith("near")} == {base[10].id, base[11].id}


def test_dedup_thresholds_outside_zero_one_are_refused(threads, tmp_path):
    """A Jaccard or cosine threshold of 1.5 would silently dedup nothing: CLI, config and API
    all refuse it (exit 2 / a named error); the CLI summary names what it removed."""
    data = tmp_path / "t.jsonl"
    write_conversations(threads[:6] + threads[:2], data)
    cmd = [sys.executable, "-m", "dialforge.cli", "dedup", str(data), "--out", str(tmp_path / "d.jsonl")]
    r = subprocess.run([*cmd, "--near", "1.5"], capture_output=True, text=True)
    assert r.returncode == 2 and "Invalid value for '--near'" in r.stderr and "Traceback" not in r.stderr
    for off in ([], ["--embedding", "0"]):  # --embedding 0, like --near 0, is off
        r = subprocess.run(cmd + off, capture_output=True, text=True)
        assert r.returncode == 0 and "kept 6 of 8; removed 2 exact; report" in r.stderr, r.stderr
    with pytest.raises(DialforgeError, match=r"dedup embedding threshold 1.8 is outside \(0, 1\]"):
        dedup_file(data, tmp_path / "x.jsonl", tmp_path / "r.jsonl", embedding=1.8)
    from dialforge.pipeline import DedupStage

    with pytest.raises(ValueError, match="less than or equal to 1"):
        DedupStage(near=1.8)


def test_export_llamafactory_and_formats(threads, tmp_path):
    written = export(threads, "llamafactory", tmp_path / "lf", name="oasst_threads")
    info = json.loads((tmp_path / "lf/dataset_info.json").read_text())
    assert info["oasst_threads"]["file_name"] == "oasst_threads.json"
    assert info["oasst_threads"]["formatting"] == "sharegpt"
    back = read_conversations(written[0])
    assert [[(m.role, m.content) for m in c.messages] for c in back] == [
        [(m.role, m.content) for m in c.messages] for c in threads
    ]
    export(threads[:2], "llamafactory", tmp_path / "lf", name="second")
    assert set(json.loads((tmp_path / "lf/dataset_info.json").read_text())) == {"oasst_threads", "second"}
    export(threads, "hf", tmp_path / "hf")
    assert len(read_conversations(tmp_path / "hf")) == 40


@pytest.mark.slow
def test_mt_bench_end_to_end(data_dir, tmp_path):
    from dialforge.testing import FakeOpenAIServer

    def reply(body):
        user = body["messages"][-1]["content"]
        if body["model"] == "mute-judge":
            return "I cannot decide."
        if body["model"] == "judge":
            if "Assistant B" in user:  # pairwise: prefer whichever position holds our model's answer
                return "[[A]]" if "MODEL-ANSWER" in user.split("Assistant B")[0] else "[[B]]"
            if "trip to Hawaii" in user:
                return "I cannot decide."  # no rating: recorded as -1, not fatal
            return "Solid answer. Rating: [[8]]"
        return f"MODEL-ANSWER to: {user[:40]}"

    with FakeOpenAIServer(reply=reply) as srv:
        base = [
            sys.executable,
            "-m",
            "dialforge.cli",
            "eval",
            "mt-bench",
            "--model",
            "m",
            "--base-url",
            srv.base_url,
            "--judge",
            "judge",
            "--judge-base-url",
            srv.base_url,
            "--questions",
            str(data_dir / "fastchat/mt_bench/question.jsonl"),
            "--reference-answers",
            str(data_dir / "fastchat/mt_bench/reference_answer/gpt-4.jsonl"),
            "--judge-prompts",
            str(data_dir / "fastchat/judge_prompts.jsonl"),
        ]
        r = subprocess.run(base + ["--out", str(tmp_path / "single")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "warning" not in r.stderr  # 2 of 160 unparsed: FastChat's -1, not a broken judge
        judgments = [json.loads(x) for x in (tmp_path / "single/judgments.jsonl").read_text().splitlines()]
        assert len(judgments) == 160
        unparsed = [j for j in judgments if j["score"] == -1]
        assert len(unparsed) == 2 and all(j["judgment"] == "I cannot decide." for j in unparsed)
        assert {j["judge"][1] for j in judgments} == {
            "single-v1",
            "single-math-v1",
            "single-v1-multi-turn",
            "single-math-v1-multi-turn",
        }
        math_j = next(j for j in judgments if j["judge"][1] == "single-math-v1")
        assert "[The Start of Reference Answer]" in math_j["user_prompt"]
        assert "overall" in r.stdout and "8.00" in r.stdout
        answers = [json.loads(x) for x in (tmp_path / "single/answers.jsonl").read_text().splitlines()]
        assert len(answers) == 80 and all(len(a["choices"][0]["turns"]) == 2 for a in answers)
        # pairwise against PlatoLM-7B's real answers, both positions judged
        r = subprocess.run(
            base
            + [
                "--out",
                str(tmp_path / "pair"),
                "--mode",
                "pairwise",
                "--baseline-answers",
                str(data_dir / "platolm/mt-bench/model_answer/PlatoLM-7b-v1.0.jsonl"),
            ],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr
        s = json.loads(r.stdout)
        assert s["win"] == 160 and s["loss"] == 0
        # a judge whose replies never hold a rating: said, and --strict makes it exit 3
        mute = [x if x != "judge" else "mute-judge" for x in base]
        r = subprocess.run(mute + ["--out", str(tmp_path / "mute"), "--strict"], capture_output=True, text=True)
        assert r.returncode == 3, r.stderr
        assert "judged 0, unparsed 160" in r.stdout
        assert (
            "warning: mtbench.judge: 160/160 judgments have no [[rating]] the parser could read (judgments.jsonl)"
            in r.stderr
        )


def test_llm_judge_scores_with_an_unparsable_reply(threads, tmp_path):
    """Question-quality judge over the loopback server: JSON, prose with scores, and junk."""
    from dialforge.llm import backend_config
    from dialforge.score import ScoreConfig, score
    from dialforge.testing import FakeOpenAIServer

    firsts: dict[str, Conversation] = {}
    for c in threads:  # threads of one OASST tree share their opening: take three trees
        firsts.setdefault(c.messages[0].content, c)
    threads = list(firsts.values())[:3]

    def reply(body):
        prompt = body["messages"][1]["content"] if len(body["messages"]) > 1 else ""
        if threads[1].messages[0].content[:60] in prompt:
            return "Complexity: 5, Relevancy: 5, Logicality: 6, Diversity: 4"  # prose: parsed loosely
        if threads[2].messages[0].content[:60] in prompt:
            return "I cannot rate this."
        return '{"complexity": 7, "relevancy": 8, "logicality": 9, "diversity": 6, "rationale": "ok"}'

    f = tmp_path / "t.jsonl"
    write_conversations(threads[:3], f)
    with FakeOpenAIServer(reply=reply) as srv:
        summary = score(
            f, ScoreConfig(embedder=None, concurrency=1, judge=backend_config(model="judge", base_url=srv.base_url))
        )
    per = [json.loads(x) for x in (tmp_path / "t.scores.jsonl").read_text().splitlines()]
    assert per[0]["judge"]["mean"] == 7.5 and per[1]["judge"]["complexity"] == 5
    # the third conversation: no scores after one repair attempt -> recorded, raw kept, not fatal
    assert "error" in per[2]["judge"] and per[2]["judge"]["raw"] == ["I cannot rate this."] * 2
    assert summary["judge"]["judged"] == 2 and summary["judge"]["unparsed"] == 1
    assert summary["judge"]["mean"] == (7.5 + 5.0) / 2
