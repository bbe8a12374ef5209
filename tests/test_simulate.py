"""The self-play engine: stop rules, strategy mode with QC, mixed backends, SIGKILL resume."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from dialforge.llm import LLM, backend_config
from dialforge.llm.types import Completion
from dialforge.simulate import Engine, SimulateConfig, load_seeds, make_simulator, simulate_async
from dialforge.simulate.engine import Seed
from dialforge.testing import FakeOpenAIServer, ScriptedChatModel
from dialforge.tiny import build_tokenizer

Q = "What is a good way to learn to play the guitar as an adult?"


def _cfg(**kw):
    base = dict(
        mode="persona",
        personas=["a retired engineer"],
        seeds={"free": 1},
        user=backend_config(model="sim"),
        assistant=backend_config(model="asst"),
        max_turns=4,
    )
    base.update(kw)
    return SimulateConfig(**base)


def _run(cfg, user_reply, assistant_reply, seed_msgs=None):
    user = ScriptedChatModel(user_reply, "sim")
    asst = ScriptedChatModel(assistant_reply, "asst")
    engine = Engine(cfg, make_simulator(cfg, LLM(user)), LLM(asst))
    seed = Seed(
        "s", seed_msgs if seed_msgs is not None else [{"role": "user", "content": Q, "meta": {"seed": True}}], Q
    )
    return asyncio.run(engine.run_one("c1", seed, 0)), user, asst


def _counter(prefix):
    """Distinct synthetic turns: the prefix, a counter and random letters (no dialogue data)."""
    import random

    rng = random.Random(prefix)
    n = iter(range(1000))
    letters = "abcdefghijklmnopqrstuvwxyz"
    return lambda req: (
        f"{prefix} number {next(n)} "
        + " ".join("".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(10))
        + "?"
    )


def test_max_turns_and_roles_alternate():
    conv, user, _ = _run(_cfg(), _counter("Tell me more, point"), _counter("Here is an answer"))
    assert conv.meta["termination_reason"] == "max_turns"
    assert conv.meta["user_turns"] == 3  # simulated ones: the seed question is the 4th
    assert [m.role for m in conv.messages] == ["user", "assistant"] * 4
    assert not conv.role_order_problems()
    # the user simulator sees the dialogue with roles swapped, headed by what it was asked
    # for its first turn (a strict template wants a user message first), and its
    # instruction after the history, in the last user message (roles alternate)
    last = user.requests[-1].messages
    assert last[0]["role"] == "system" and "retired engineer" in last[0]["content"]
    assert last[1]["role"] == "user" and last[1]["content"].startswith("(Start the conversation")
    assert last[1]["content"].endswith(f"Topic: {Q})")
    assert last[2] == {"role": "assistant", "content": Q}
    assert [m["role"] for m in last[1:]] == ["user", "assistant"] * 3 + ["user"]  # before the 4th turn
    assert last[-1]["content"].startswith(conv.messages[5].content)  # the last answer, then the instruction
    assert last[-1]["content"].endswith(
        "(Now write the user's next message to the assistant: one short follow-up question or request about "
        "its answer, in your own words, one or two sentences. No preamble, no quotation marks, no role label.)"
    )
    assert conv.messages[1].meta["model"] == "asst" and conv.messages[2].meta["model"] == "sim"


@pytest.mark.parametrize(
    "user_turns,reason",
    [
        (["[END]"], "end_signal"),
        (["Thanks for your help, goodbye!"], "goodbye"),
        ([Q], "repetition"),
        (["Sure! Here is a complete answer to that question: practise daily."], "role_flip"),
        ([""], "empty_turn"),
    ],
)
def test_user_stop_rules(user_turns, reason):
    conv, _, _ = _run(_cfg(stop={"resample": 0}), list(user_turns), _counter("An answer"))
    assert conv.meta["termination_reason"] == reason
    # the dialogue still ends on an answer; the stopping turn is kept in meta, not in the data
    assert [m.role for m in conv.messages] == ["user", "assistant"]


ANSWER = "Start with three chords, practise ten minutes a day and learn songs you love."


@pytest.mark.parametrize(
    "text,reason",
    [
        ("Here's a plan: learn three chords first.", "role_flip"),
        ("I'm glad I could assist you with that!", "role_flip"),
        ("I'm sorry, but I can't assist with that.", "role_flip"),
        ("Practise ten minutes a day and learn songs you love.", "copied"),  # the answer, echoed
        ("This message is self-explanatory, without elaborating beyond what the user already knows.", "leak"),
        ("As the user, I want to know which chords come first.", "leak"),
        ("Which chords? (Now write back a response that tells a story)", "leak"),
        ("What about (write-once) chord charts?", None),
        ("2", "degenerate"),
        ("Thanks, that is all I needed. Goodbye!", "goodbye"),
        ("Thank you for your help! Which chords should I learn first?", None),  # a question goes on
        ("Here is my practice log: ten minutes daily. Is that enough?", None),  # a user's own 'here is'
    ],
)
def test_user_turn_checks_catch_what_small_models_write(text, reason):
    from dialforge.simulate.config import StopConfig
    from dialforge.simulate.stops import check_user_turn

    got = check_user_turn(text, [Q], StopConfig(), last_answer=ANSWER)
    assert (got.value if got else None) == reason


def test_instruction_words_in_a_turn_are_a_leak_but_the_dialogue_s_words_are_not():
    from dialforge.simulate.config import StopConfig
    from dialforge.simulate.simulators import PERSONA_SYSTEM
    from dialforge.simulate.stops import check_user_turn

    told = (PERSONA_SYSTEM,)
    leaked = "Ask, instruct, push back, or follow up on what the assistant said about chords."
    assert check_user_turn(leaked, [], StopConfig(), instructions=told).value == "leak"
    fine = "Which three chords are the easiest ones for a beginner to learn first?"
    assert check_user_turn(fine, [], StopConfig(), instructions=told) is None


def test_labels_and_quotes_are_stripped_from_a_user_turn():
    from dialforge.simulate.stops import clean_turn

    assert clean_turn("User: Which chords first?") == "Which chords first?"
    assert clean_turn("Writing your next message to the assistant: Which chords first?") == "Which chords first?"
    assert clean_turn('"Which chords first?"') == "Which chords first?"
    assert clean_turn("Which chords first?") == "Which chords first?"


def test_a_goodbye_phrase_inside_an_answer_does_not_end_the_dialogue():
    from dialforge.simulate.stops import GOODBYES, says_goodbye

    assert not says_goodbye("You're welcome! Which day would you like to book?", GOODBYES, 200)
    assert not says_goodbye("You're welcome. I have booked the table for two on Friday at 7.", GOODBYES, 200)
    assert says_goodbye("You're welcome, goodbye!", GOODBYES, 200)
    assert says_goodbye("Great, the table is booked. Have a nice day!", GOODBYES, 200)


def test_a_bad_user_turn_is_drawn_again_and_counted():
    """A role flip, then a copy of the answer, then a real question: the third draw is the
    turn, and the two redrawn ones are recorded on it (a small model often gets it right on
    the next draw; the conversation does not end on the first slip)."""
    replies = ["Sure! Here is what you should do.", ANSWER, "Which three chords should I learn first?"]
    replies += [f"And how long until I can play song number {i} of my list?" for i in range(5)]
    conv, user, _ = _run(_cfg(max_turns=2), replies, lambda r: ANSWER)
    assert conv.meta["termination_reason"] == "max_turns"
    assert [m.content for m in conv.messages if m.role == "user"] == [Q, "Which three chords should I learn first?"]
    assert conv.messages[2].meta["redrawn"] == [
        "role_flip: Sure! Here is what you should do.",
        f"copied: {ANSWER}",
    ]
    assert conv.meta["user_turns"] == 1  # simulated turns only: the seed question is a real person's
    # each draw is a distinct sample (a cache would otherwise replay the same bad reply)
    idx = [r.sample_index for r in user.requests]
    assert len(set(idx)) == len(idx) == 3
    # after `resample` redraws the conversation ends on the last reason
    conv, _, _ = _run(_cfg(stop={"resample": 1}), ["2", "D"], lambda r: ANSWER)
    assert conv.meta["termination_reason"] == "degenerate" and conv.meta["user_turns"] == 0
    assert conv.meta["redrawn_user_turns"] == ["degenerate: 2"] and conv.meta["final_user_turn"] == "D"


def test_assistant_role_flip_and_error_and_budget():
    conv, _, _ = _run(_cfg(), _counter("Next"), [Q, Q, Q])  # the assistant asks the user's question back
    assert conv.meta["termination_reason"] == "role_flip"
    assert conv.messages == conv.messages[:1] and conv.meta["final_assistant_turn"] == Q
    assert conv.meta["redrawn_assistant_turns"] == [f"role_flip: {Q}"] * 2  # drawn three times in all
    # a slip drawn again: the second draw is the answer
    conv, _, asst = _run(_cfg(max_turns=1), _counter("Next"), [Q, "Practise ten minutes a day."])
    assert conv.meta["termination_reason"] == "max_turns" and conv.messages[1].content == "Practise ten minutes a day."
    assert conv.messages[1].meta["redrawn"] == [f"role_flip: {Q}"]
    conv, _, _ = _run(_cfg(), _counter("Next"), [Completion(error="HTTP 500: boom")])
    assert conv.meta["termination_reason"] == "error" and "boom" in conv.meta["error"]
    cfg = _cfg(stop={"max_context_chars": 500})
    conv, _, _ = _run(cfg, _counter("Next"), lambda r: "x " * 200)
    assert conv.meta["termination_reason"] == "context_budget"
    assert conv.meta["user_turns"] == 0  # the seed question only


def test_a_seed_limit_that_leaves_out_a_whole_file_says_so(data_dir, caplog):
    """`limit` keeps the first N seeds of all the files: questions come first, so a limit
    below the question count uses no exchange at all, and the log says which file."""
    from dialforge.simulate.config import SeedConfig

    questions = str(data_dir / "fastchat/mt_bench/question.jsonl")  # 80 questions
    exchanges = str(data_dir / "fastchat/dummy_conversation.json")
    with caplog.at_level("WARNING", logger="dialforge.simulate"):
        seeds = load_seeds(SeedConfig(questions=[questions], exchanges=[exchanges], limit=60, free=2))
    assert len(seeds) == 62 and not any(len(s.messages) == 2 for s in seeds)
    assert f"seeds: limit 60 is reached before {exchanges}, so none of its seeds is used" in caplog.text
    caplog.clear()
    seeds = load_seeds(SeedConfig(questions=[questions], exchanges=[exchanges], limit=100))
    assert sum(len(s.messages) == 2 for s in seeds) == 20 and "limit" not in caplog.text


def test_free_mode_opens_the_topic():
    conv, user, _ = _run(_cfg(max_turns=2), _counter("Opening"), _counter("Answer"), seed_msgs=[])
    assert conv.messages[0].role == "user" and conv.messages[0].content.startswith("Opening number 0")
    assert "Start the conversation" in user.requests[0].messages[-1]["content"]
    assert conv.meta["termination_reason"] == "max_turns"


@pytest.fixture(scope="module")
def library(tmp_path_factory, data_dir):
    """A strategy library induced from real OASST threads with the scripted extractor."""
    from test_induce import scripted_reply

    from dialforge.induce import InduceConfig, induce_async
    from dialforge.llm import BackendPool

    out = tmp_path_factory.mktemp("lib") / "run"
    pool = BackendPool({"scripted": ScriptedChatModel(scripted_reply)})
    cfg = InduceConfig(
        dialogues=[str(data_dir / "oasst/en_100_tree.jsonl")], format="oasst", model=backend_config(model="scripted")
    )
    asyncio.run(induce_async(cfg, out, progress=False, pool=pool))
    return out / "library.json"


@pytest.mark.slow
def test_strategy_mode_rejects_an_instruction_that_copies_a_strategy_or_has_no_range(library):
    """A small model pastes the strategy text in as the instruction (`The Apollo 11 landing
    was a pivotal moment ...` from a junk library): a leak, rejected. The schema carries the
    real range of strategy_number, so constrained decoding cannot pick 164."""
    from dialforge.simulate.simulators import strategy_pick

    cfg = _cfg(
        mode="strategy",
        personas=[],
        seeds={"questions": ["unused"]},
        strategy={"library": str(library), "candidates": 3, "threshold": -1, "judge": False},
        max_turns=2,
    )
    fresh = _counter("Example please")
    calls = []

    def user(req):
        calls.append(req)
        listing = req.messages[1]["content"].split("Strategies:\n", 1)[1].split("\n\n")[0]
        first = listing.splitlines()[0].split(". ", 1)[1]
        text = f"{first} and so on" if len(calls) == 1 else fresh(req)
        return json.dumps({"strategy_number": 1, "instruction": text})

    conv, _, _ = _run(cfg, user, _counter("Answer"))
    assert conv.meta["termination_reason"] == "max_turns"
    assert conv.messages[2].meta["rejections"] == ["engine stop: leak"]
    schema = strategy_pick(3).model_json_schema()["properties"]
    assert (schema["strategy_number"]["minimum"], schema["strategy_number"]["maximum"]) == (1, 3)
    assert schema["instruction"]["minLength"] == 12


def test_strategy_mode_qc_rejects_and_resamples(library):
    cfg = _cfg(
        mode="strategy",
        personas=[],
        seeds={"questions": ["unused"]},
        strategy={"library": str(library), "candidates": 3, "threshold": -1},
        max_turns=3,
    )
    n = iter(range(100))
    fresh = _counter("Example please")

    def user(req):
        i = next(n)
        # every other attempt repeats the seed question: QC must reject it and resample
        text = Q if i % 2 == 0 else fresh(req)
        return json.dumps({"strategy_number": 2, "instruction": text})

    conv, sim, _ = _run(cfg, user, _counter("Answer"))
    assert conv.meta["termination_reason"] == "max_turns"
    users = [m for m in conv.messages if m.role == "user"]
    assert len(users) == 3
    for m in users[1:]:
        assert m.meta["strategy_id"].startswith("s-") and m.meta["strategy"]
        assert m.meta["candidates"] == 3
        assert len(m.meta["rejections"]) == 1 and "repeats an earlier instruction" in m.meta["rejections"][0]
    assert len(sim.requests) == 4  # 2 turns x (1 rejected + 1 accepted)
    # the chosen strategy is the 2nd of the candidates listed in the prompt
    prompt = sim.requests[1].messages[-1]["content"]
    assert f"2. {users[1].meta['strategy']}" in prompt


@pytest.mark.slow
def test_strategy_mode_stops_after_consecutive_rejections(library):
    cfg = _cfg(
        mode="strategy",
        personas=[],
        seeds={"questions": ["unused"]},
        strategy={"library": str(library), "max_rejections": 6},
    )
    conv, sim, _ = _run(cfg, lambda r: json.dumps({"strategy_number": 1, "instruction": Q}), _counter("A"))
    assert conv.meta["termination_reason"] == "rejections"
    assert len(conv.meta["rejections"]) == 6 and len(sim.requests) == 6


@pytest.mark.slow
def test_strategy_mode_judge_rejects(library):
    cfg = _cfg(
        mode="strategy",
        personas=[],
        seeds={"questions": ["unused"]},
        max_turns=2,
        strategy={"library": str(library), "judge": {"model": "judge"}},
    )
    verdicts = iter(
        [
            {"analysis": "off topic", "result": "no"},
            "no JSON at all",  # an unparseable verdict is a rejection, never an approval
            "still no JSON",
            {"analysis": "a follow-up on the answer", "result": "yes"},
        ]
    )
    judge_backend = ScriptedChatModel(lambda r: (lambda v: v if isinstance(v, str) else json.dumps(v))(next(verdicts)))
    judge = LLM(judge_backend)
    fresh = _counter("Why")
    user = ScriptedChatModel(lambda r: json.dumps({"strategy_number": 1, "instruction": fresh(r)}), "sim")
    engine = Engine(cfg, make_simulator(cfg, LLM(user), judge), LLM(ScriptedChatModel(_counter("A"), "asst")))
    conv = asyncio.run(engine.run_one("c", Seed("s", [{"role": "user", "content": Q, "meta": {"seed": True}}], Q), 0))
    rej = conv.messages[2].meta["rejections"]
    assert rej[0] == "judge: off topic" and rej[1].startswith("judge gave no verdict") and len(rej) == 2
    assert conv.messages[2].content.startswith("Why number 2 ")
    # reasons before the verdict, temperature 0, the paper's criteria
    req = judge_backend.requests[0]
    assert list(req.schema["properties"]) == ["analysis", "result"]
    assert req.params.temperature == 0.0
    assert "correct AND logically coherent" in req.messages[0]["content"]
    assert "### New instruction\nWhy number 0" in req.messages[1]["content"]


@pytest.mark.slow
def test_strategy_mode_engine_stops_are_rejections(library):
    """A role flip or a goodbye is a rejection that resamples, not the end of the dialogue."""
    cfg = _cfg(
        mode="strategy",
        personas=[],
        seeds={"questions": ["unused"]},
        max_turns=2,
        strategy={"library": str(library), "threshold": -1},
    )
    replies = iter(["Sure! Here is a summary of everything.", "Thanks for your help, goodbye!"])
    fresh = _counter("Next")

    def user(req):
        text = next(replies, None) or fresh(req)
        return json.dumps({"strategy_number": 1, "instruction": text})

    conv, _, _ = _run(cfg, user, _counter("Answer"))
    assert conv.meta["termination_reason"] == "max_turns"
    assert conv.messages[2].meta["rejections"] == ["engine stop: role_flip", "engine stop: goodbye"]


@pytest.mark.slow
def test_strategy_mode_judge_defaults_to_the_assistant_model(library, fake_server, tmp_path):
    def reply(body):
        rf = body.get("response_format") or {}
        name = rf.get("json_schema", {}).get("name")
        if name == "Verdict":
            return json.dumps({"analysis": "fine", "result": "yes"})
        if name == "StrategyPick":
            return json.dumps({"strategy_number": 1, "instruction": f"Follow-up {len(fake_server.requests)} xq?"})
        return f"Answer {len(fake_server.requests)} zz"

    fake_server.reply = reply
    base = dict(
        mode="strategy",
        seeds={"questions": [], "exchanges": []},
        user=backend_config(model="sim", base_url=fake_server.base_url),
        assistant=backend_config(model="asst", base_url=fake_server.base_url),
        max_turns=2,
    )
    seeds = tmp_path / "q.txt"
    seeds.write_text(Q + "\n")
    base["seeds"] = {"questions": [str(seeds)]}
    cfg = SimulateConfig(**base, strategy={"library": str(library)})
    asyncio.run(simulate_async(cfg, tmp_path / "on", progress=False))
    verdicts = [
        b
        for b in fake_server.requests
        if (b.get("response_format") or {}).get("json_schema", {}).get("name") == "Verdict"
    ]
    assert verdicts and all(b["model"] == "asst" and b["temperature"] == 0.0 for b in verdicts)
    manifest = json.loads((tmp_path / "on/manifest.json").read_text())
    assert manifest["models"]["judge"] == "asst"
    row = json.loads((tmp_path / "on/conversations.jsonl").read_text().splitlines()[0])
    assert row["messages"][2]["meta"]["judge"] == "asst"
    # judge: false opts out, and the manifest says so
    n = len(fake_server.requests)
    cfg = SimulateConfig(**base, strategy={"library": str(library), "judge": False})
    asyncio.run(simulate_async(cfg, tmp_path / "off", progress=False))
    assert not [b for b in fake_server.requests[n:] if "Verdict" in json.dumps(b.get("response_format"))]
    manifest = json.loads((tmp_path / "off/manifest.json").read_text())
    assert manifest["models"]["judge"] == "off (judge: false)"
    # scoring the run finds the run's library: strategy coverage without --library
    from dialforge.score import ScoreConfig, score

    summary = score(tmp_path / "off", ScoreConfig(embedder=None))
    assert summary["strategy_coverage"] is not None and summary["strategy_coverage"] > 0


@pytest.mark.slow
def test_mixed_backends_http_user_and_local_assistant(tmp_path, tiny_model_dir, data_dir):
    """The user simulator behind a loopback HTTP server, the assistant an in-process model."""
    with FakeOpenAIServer(reply=lambda b: hashlib.md5(json.dumps(b).encode()).hexdigest() + "?") as srv:
        cfg = SimulateConfig(
            mode="socratic",
            seeds={"questions": [str(data_dir / "oasst/en_100_text.jsonl")], "limit": 3},
            user=backend_config(model="sim", base_url=srv.base_url),
            assistant=backend_config(model=str(tiny_model_dir), params={"max_tokens": 16}),
            max_turns=3,
            stop={"role_flip": False},
        )
        summary = asyncio.run(simulate_async(cfg, tmp_path / "run", progress=False))
        served = srv.served
    assert summary["conversations"] == 3
    rows = [json.loads(x) for x in (tmp_path / "run/conversations.jsonl").read_text().splitlines()]
    assert served == 3 * 2
    for r in rows:
        assert r["meta"]["simulator_model"] == "sim" and r["meta"]["assistant_model"] == str(tiny_model_dir)
        assert r["meta"]["termination_reason"] in ("max_turns", "empty_turn")
    usage = json.loads((tmp_path / "run/usage.json").read_text())
    assert usage["stages"]["simulate.user"]["sim"]["calls"] == 6


def test_seeds_from_real_files(data_dir):
    from dialforge.simulate import SeedConfig

    seeds = load_seeds(
        SeedConfig(
            questions=[str(data_dir / "fastchat/mt_bench/question.jsonl")],
            exchanges=[str(data_dir / "fastchat/dummy_conversation.json")],
            free=2,
        )
    )
    qs = [s for s in seeds if len(s.messages) == 1]
    assert len(qs) == 80  # the MT-Bench first turns
    assert len([s for s in seeds if not s.messages]) == 2
    assert all(len(s.messages) == 2 for s in seeds if len(s.messages) == 2)


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path, data_dir):
    def reply(body):
        h = hashlib.sha256(json.dumps(body["messages"]).encode()).hexdigest()
        return f"{h}?" if body["model"] == "sim" else f"Answer {h}."

    with FakeOpenAIServer(reply=reply, delay_s=0.02) as srv:
        cfg = {
            "mode": "socratic",
            "seeds": {"questions": [str(data_dir / "oasst/prompt_lottery_en_250_text.jsonl")], "limit": 60},
            "user": {"model": "sim", "base_url": srv.base_url},
            "assistant": {"model": "asst", "base_url": srv.base_url},
            "max_turns": 4,
            "concurrency": 8,
        }
        path = tmp_path / "sim.yaml"
        path.write_text(yaml.safe_dump(cfg))
        out = tmp_path / "run"
        cmd = [sys.executable, "-m", "dialforge.cli", "simulate", "--config", str(path), "--out", str(out)]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        conv_file = out / "conversations.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if conv_file.exists() and len(conv_file.read_bytes().splitlines()) >= 10:
                break
            time.sleep(0.01)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        before = conv_file.read_bytes()
        done_before = before[: before.rfind(b"\n") + 1]
        n_before = len(done_before.splitlines())
        assert 10 <= n_before < 60
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    after = conv_file.read_bytes()
    rows = [json.loads(x) for x in after.splitlines()]
    assert len(rows) == 60 and len({r["id"] for r in rows}) == 60
    assert set(done_before.splitlines()) <= set(after.splitlines())  # finished conversations are kept as they were
    assert all(r["meta"]["termination_reason"] == "max_turns" for r in rows)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["resumes"] == 1


@pytest.mark.slow
def test_strategy_mode_with_trained_marker_format(library, tmp_path):
    """A strategy-conditioned trained simulator is prompted exactly as trained (candidates in
    the system prompt, roles swapped) and answers with the IDEAS markers."""
    from dialforge.train.strategy_data import CANDIDATES_HEADER, format_target

    sim_dir = tmp_path / "sim"
    build_tokenizer([Q, "Answer number", "Marker number"] * 5, vocab_size=400).save_pretrained(sim_dir)
    cfg = _cfg(
        mode="strategy",
        personas=[],
        seeds={"questions": ["unused"]},
        user_format="trained",
        user_tokenizer=str(sim_dir),
        max_turns=3,
        strategy={"library": str(library), "candidates": 4, "threshold": -1},
    )
    fresh = _counter("Marker")
    calls = iter(range(100))

    def user(req):
        system = req.messages[0]["content"]
        assert system.startswith(CANDIDATES_HEADER) and req.messages[1]["role"] == "assistant"
        assert req.prompt is not None  # token ids, rendered as in training (ChatML: roles swapped)
        first = system.splitlines()[1].split(". ", 1)[1]
        if next(calls) == 0:  # the first try names a strategy that was not offered
            return format_target("Invent a brand-new unrelated strategy", fresh(req))
        return format_target(first, fresh(req))

    conv, sim, _ = _run(cfg, user, _counter("Answer"))
    users = [m for m in conv.messages if m.role == "user"]
    assert conv.meta["termination_reason"] == "max_turns" and len(users) == 3
    assert "is not among the candidates" in users[1].meta["rejections"][0]
    assert all(m.meta["strategy_id"].startswith("s-") for m in users[1:])
    assert users[1].content.startswith("Marker number 1 ")


@pytest.mark.slow
def test_strategy_mode_llm_ranker(library):
    """The LLM ranker picks the fitting strategies from the embedding shortlist."""
    cfg = _cfg(
        mode="strategy",
        personas=[],
        seeds={"questions": ["unused"]},
        max_turns=2,
        strategy={"library": str(library), "candidates": 1, "threshold": -1, "ranker": "llm"},
    )
    fresh = _counter("Ranked")
    seen = {}

    def user(req):
        if req.schema_name == "Fitting":
            return json.dumps({"numbers": [3, 99]})  # only the third of the shortlist fits (99: ignored)
        seen["prompt"] = req.messages[-1]["content"]
        return json.dumps({"strategy_number": 1, "instruction": fresh(req)})

    conv, sim, _ = _run(cfg, user, _counter("Answer"))
    ranked = next(r for r in sim.requests if r.schema_name == "Fitting")
    third = ranked.messages[-1]["content"].split("Strategies:\n", 1)[1].splitlines()[2].split(". ", 1)[1]
    assert conv.messages[2].meta["strategy"] == third
    assert f"1. {third}" in seen["prompt"]


def test_roles_on_one_endpoint_share_one_backend():
    from dialforge.llm.config import same_endpoint

    a = backend_config(model="m", params={"temperature": 0.9}, system_prompt="be a user")
    b = backend_config(model="m", params={"temperature": 0.1})
    assert same_endpoint(a, b)
    assert not same_endpoint(a, backend_config(model="m", base_url="http://127.0.0.1:1/v1"))
