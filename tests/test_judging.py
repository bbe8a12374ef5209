"""Judging is incremental like every stage (only new conversations are judged, the judge folder
resumes), and pairwise MT-Bench with a baseline that covers part of the questions judges those
and says how many lack one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson

from dialforge.conversation import Conversation, Message
from dialforge.io.reader import write_conversations
from dialforge.testing import FakeOpenAIServer

JUDGE_REPLY = '{"complexity": 7, "relevancy": 8, "logicality": 9, "diversity": 6, "rationale": "ok"}'


def _convs(n: int) -> list[Conversation]:
    return [
        Conversation(
            id=f"c{i}",
            messages=[
                Message(role="user", content=f"question number {i} about topic {i * 7}"),
                Message(role="assistant", content=f"answer {i}"),
                Message(role="user", content=f"a follow-up on {i}?"),
                Message(role="assistant", content="more"),
            ],
        )
        for i in range(n)
    ]


def _score(data: Path, url: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "dialforge.cli", "score", str(data), "--no-embedding"]
    cmd += ["--judge-model", "judge", "--judge-base-url", url]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_appending_one_conversation_judges_only_that_one(tmp_path):
    data = tmp_path / "d.jsonl"
    write_conversations(_convs(40), data)
    with FakeOpenAIServer(reply=lambda body: JUDGE_REPLY) as srv:
        r = _score(data, srv.base_url)
        assert r.returncode == 0, r.stderr
        assert srv.served == 40
        write_conversations(_convs(41), data)  # one conversation appended
        r = _score(data, srv.base_url)
        assert r.returncode == 0, r.stderr
        assert srv.served == 41  # one request, not 41
        r = _score(data, srv.base_url)  # unchanged: nothing to judge
        assert r.returncode == 0, r.stderr
        assert srv.served == 41
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "d.jsonl",
        "d.jsonl.judge",
        "d.scores.jsonl",
        "d.scores_summary.json",
    ]  # no `d.jsonl.judge.old-*`: the folder resumed
    per = [orjson.loads(x) for x in (tmp_path / "d.scores.jsonl").read_bytes().splitlines()]
    assert len(per) == 41 and all(p["judge"]["mean"] == 7.5 for p in per)
    manifest = json.loads((tmp_path / "d.jsonl.judge" / "manifest.json").read_text())
    assert manifest["resumes"] == 2


def test_another_judge_model_judges_anew_and_keeps_the_old_folder(tmp_path):
    data = tmp_path / "d.jsonl"
    write_conversations(_convs(3), data)
    with FakeOpenAIServer(reply=lambda body: JUDGE_REPLY) as srv:
        assert _score(data, srv.base_url).returncode == 0
        cmd = [sys.executable, "-m", "dialforge.cli", "score", str(data), "--no-embedding"]
        r = subprocess.run(cmd + ["--judge-model", "judge2", "--judge-base-url", srv.base_url], capture_output=True)
        assert r.returncode == 0
        assert srv.served == 6
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("d.jsonl.judge.old-")]) == 1


def _mt_bench(data_dir: Path, out: Path, url: str, baseline: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "dialforge.cli", "eval", "mt-bench", "--model", "m", "--base-url", url]
    cmd += ["--judge", "judge", "--judge-base-url", url, "--out", str(out), "--mode", "pairwise"]
    cmd += ["--questions", str(data_dir / "fastchat/mt_bench/question.jsonl")]
    cmd += ["--reference-answers", str(data_dir / "fastchat/mt_bench/reference_answer/gpt-4.jsonl")]
    cmd += ["--judge-prompts", str(data_dir / "fastchat/judge_prompts.jsonl"), "--baseline-answers", str(baseline)]
    return subprocess.run(cmd, capture_output=True, text=True)


def _pair_reply(body: dict) -> str:
    user = body["messages"][-1]["content"]
    if body["model"] == "judge":
        return "[[A]]" if "MODEL-ANSWER" in user.split("Assistant B")[0] else "[[B]]"
    return f"MODEL-ANSWER to: {user[:40]}"


def test_pairwise_with_a_partial_baseline_judges_what_it_can(data_dir, tmp_path):
    full = (data_dir / "platolm/mt-bench/model_answer/PlatoLM-7b-v1.0.jsonl").read_text().splitlines()
    baseline = tmp_path / "base.jsonl"
    baseline.write_text("\n".join(full[:30]) + "\n")
    first = json.loads(full[0])["question_id"]
    missing = json.loads(full[30])["question_id"]
    with FakeOpenAIServer(reply=_pair_reply) as srv:
        for _attempt in (1, 2):  # a re-run: the same result, no traceback either time
            r = _mt_bench(data_dir, tmp_path / "pair", srv.base_url, baseline)
            assert r.returncode == 0, r.stderr
            assert "Traceback" not in r.stderr
            s = json.loads(r.stdout)
            assert (s["win"], s["loss"], s["tie"], s["error"]) == (60, 0, 0, 0)
            assert s["no_baseline"] == 50
            assert (
                f"warning: mtbench.judge: 50 of 80 questions have no answer in {baseline}: not judged "
                f"(first: {missing})"
            ) in r.stderr
    judged = {json.loads(x)["question_id"] for x in (tmp_path / "pair" / "judgments.jsonl").read_text().splitlines()}
    assert len(judged) == 30 and first in judged and missing not in judged


def test_a_baseline_record_of_the_wrong_shape_is_one_located_error(data_dir, tmp_path):
    baseline = tmp_path / "base.jsonl"
    baseline.write_text('{"question_id": 81, "choices": [{"turns": ["a", "b"]}]}\n{"question_id": 82, "choices": []}\n')
    with FakeOpenAIServer(reply=_pair_reply) as srv:
        r = _mt_bench(data_dir, tmp_path / "pair", srv.base_url, baseline)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        f"error: {baseline}:2: field 'choices[0].turns': expected a non-empty list of answer texts"
    )


def test_questions_of_the_wrong_shape_or_none_are_one_error_before_any_request(tmp_path):
    import pytest

    from dialforge.errors import DialforgeError
    from dialforge.score.mtbench import load_questions

    q = tmp_path / "q.jsonl"
    q.write_text('{"question_id": 1, "category": "writing", "turns": ["a", "b"]}\n{"question_id": 2, "turns": []}\n')
    with pytest.raises(DialforgeError) as e:
        load_questions(q)
    assert str(e.value) == f"{q}:2: field 'category': expected a string"
    q.write_text("")
    with pytest.raises(DialforgeError) as e:
        load_questions(q)
    assert str(e.value) == f"{q}: no questions"
