"""Every reader on real data where the repo vendors a sample, else on a tiny fixture the test
writes in the published shape with obviously synthetic text; exact counts."""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dialforge.errors import DialforgeError, RecordError
from dialforge.io import (
    FORMATS,
    ReadReport,
    _records,
    intents_for,
    iter_conversations,
    read_conversations,
    read_intents,
    read_seeds,
    write_conversations,
)

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "dialforge.cli", *args], capture_output=True, text=True)


def _jsonl(path: Path, recs: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def _read(path, fmt="auto", **kw):
    rep = ReadReport(path=str(path))
    convs = read_conversations(path, fmt, report=rep, **kw)
    return convs, rep


# -- real samples ---------------------------------------------------------------------------


def test_convlab3_multiwoz21_goals(data_dir):
    path = data_dir / "convlab3/multiwoz21_dummy_data.json"
    raw = json.loads(path.read_text())
    convs, rep = _read(path)
    assert rep.format == "convlab3" and len(convs) == 10
    assert sum(len(c.messages) for c in convs) == sum(len(r["turns"]) for r in raw) == 120
    assert all(not c.role_order_problems() for c in convs)
    # goal texts go to meta, HTML emphasis removed
    assert sum(1 for c in convs if c.meta.get("goal")) == 10
    assert convs[0].meta["goal"].startswith("You are looking for a place to stay. The hotel should be in the cheap")
    assert "<span" not in "".join(c.meta["goal"] for c in convs)
    assert convs[0].meta["source_id"] == raw[0]["dialogue_id"]
    assert [m.content for m in convs[0].messages] == [t["utterance"] for t in raw[0]["turns"]]


def test_convlab3_sgd_has_no_goal_text(data_dir):
    convs, rep = _read(data_dir / "convlab3/sgd_dummy_data.json")
    assert rep.format == "convlab3" and len(convs) == 10
    assert sum(len(c.messages) for c in convs) == 200 and sum(c.n_user_turns for c in convs) == 100
    assert not any("goal" in c.meta for c in convs)


def test_sgd_dialogues(data_dir):
    convs, rep = _read(data_dir / "sgd/train/dialogues_001_first10.json")
    assert rep.format == "sgd" and len(convs) == 10
    assert sum(len(c.messages) for c in convs) == 200
    assert convs[0].meta["source_id"] == "1_00000" and convs[0].meta["services"] == ["Restaurants_1"]
    assert convs[0].meta["intents"] == ["Restaurants_1:FindRestaurants", "Restaurants_1:ReserveRestaurant"]
    two, _ = _read(data_dir / "sgd/train/dialogues_100_first5.json", "sgd")
    assert len(two) == 5 and sum(len(c.messages) for c in two) == 84
    assert all(c.meta["services"] == ["Events_1", "Movies_1"] for c in two)


def test_star_dialogues_goal_and_task(data_dir):
    path = data_dir / "star/star_dialogues_subset.jsonl"
    convs, rep = _read(path)
    assert rep.format == "star" and len(convs) == 300
    raw = [json.loads(x) for x in path.read_text().splitlines()]
    said = {("User", "utter"), ("Wizard", "utter"), ("Wizard", "pick_suggestion")}
    assert sum(len(c.messages) for c in convs) == sum(
        1 for r in raw for e in r["Events"] if (e["Agent"], e["Action"]) in said
    )
    assert sum(c.n_user_turns for c in convs) == 2100
    assert all(c.meta["goal"] == " ".join(r["Scenario"]["UserTask"].split()) for c, r in zip(convs, raw, strict=True))
    single = [c for c in convs if c.meta.get("task")]
    assert len(single) == sum(1 for r in raw if len(r["Scenario"]["WizardCapabilities"]) == 1)


def test_abcd_conversations_merge_runs_and_keep_actions(data_dir):
    path = data_dir / "abcd/abcd_sample.json"
    raw = json.loads(path.read_text())
    convs, rep = _read(path)
    assert rep.format == "abcd" and len(convs) == 3
    for c, r in zip(convs, raw, strict=True):
        said = [who for who, _ in r["original"] if who != "action"]
        runs = sum(1 for i, w in enumerate(said) if i == 0 or w != said[i - 1])
        assert len(c.messages) == runs
        assert len(c.meta["actions"]) == sum(1 for who, _ in r["original"] if who == "action")
        assert c.meta["task"] == f"{r['scenario']['flow']}_{r['scenario']['subflow']}"
    assert convs[0].messages[0].content == "Hi!\nHow can I help you?"
    first_action = convs[0].meta["actions"][0]
    assert first_action["text"] == "Account has been pulled up for Crystal Minh."
    assert first_action["after_message"] == 4
    assert convs[0].messages[4].content == "thanks, may I ask the reason for the return?"


# -- synthetic fixtures in the published shapes -----------------------------------------------


def _synthetic(n: int, tag: str) -> list[str]:
    return [f"synthetic {tag} turn {i}" for i in range(n)]


FIXTURES = {
    "mtbench101": (
        [
            {
                "task": "CM",
                "id": 1,
                "history": [{"user": "synthetic q1", "bot": "synthetic a1"}, {"user": "q2", "bot": ""}],
            },
            {"task": "SI", "id": 2, "history": [{"user": "synthetic q1", "bot": "synthetic a1"}]},
        ],
        [3, 2],
    ),
    "ultrachat": ([{"id": "0", "data": _synthetic(4, "u")}, {"id": "1", "data": _synthetic(3, "u")}], [4, 3]),
    "chatlog": (
        [
            {
                "conversation_id": "lmsys-x",
                "model": "synthetic-model",
                "language": "English",
                "conversation": [
                    {"role": "user", "content": "synthetic hello"},
                    {"role": "assistant", "content": "synthetic hi"},
                ],
                "turn": 1,
            },
            {
                "conversation_hash": "wild-x",
                "conversation": [
                    {"role": "user", "content": "synthetic a", "language": "English", "timestamp": None},
                    {"role": "assistant", "content": "synthetic b", "language": "English", "timestamp": None},
                    {"role": "user", "content": "synthetic c", "language": "English", "timestamp": None},
                ],
            },
        ],
        [2, 3],
    ),
    "taskmaster": (
        [
            {
                "conversation_id": "dlg-1",
                "instruction_id": "restaurant-table-1",
                "utterances": [
                    {"index": 1, "speaker": "ASSISTANT", "text": "synthetic reply"},
                    {"index": 0, "speaker": "USER", "text": "synthetic request"},
                    {"index": 2, "speaker": "USER", "text": "synthetic thanks"},
                ],
            },
            {
                "conversation_id": "dlg-2",
                "instructions": "Synthetic goal: book a <b>table</b>.",
                "vertical": "restaurant",
                "utterances": [
                    {"index": 0, "speaker": "user", "text": "a"},
                    {"index": 1, "speaker": "user", "text": "b"},
                ],
            },
        ],
        [3, 1],
    ),
    "alpaca": (
        [
            {"instruction": "Synthetic instruction", "input": "synthetic input", "output": "synthetic output"},
            {"instruction": "Synthetic instruction 2", "input": "", "output": "synthetic output 2"},
        ],
        [2, 2],
    ),
}


@pytest.mark.parametrize("fmt", sorted(FIXTURES))
def test_synthetic_formats_detected_and_named(tmp_path, fmt):
    recs, lengths = FIXTURES[fmt]
    path = _jsonl(tmp_path / f"{fmt}.jsonl", recs)
    convs, rep = _read(path)
    assert rep.format == fmt
    assert [len(c.messages) for c in convs] == lengths
    named, _ = _read(path, fmt)
    assert [c.to_record() for c in named] == [c.to_record() for c in convs]
    # the same records as a JSON array read the same
    arr = tmp_path / f"{fmt}.json"
    arr.write_text(json.dumps(recs))
    assert [c.to_record() for c in _read(arr)[0]] == [c.to_record() for c in convs]


def test_synthetic_details():
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        mt, _ = _read(_jsonl(Path(d) / "m.jsonl", FIXTURES["mtbench101"][0]))
        assert mt[0].messages[-1].role == "user" and mt[0].meta["task"] == "CM"
        chat, _ = _read(_jsonl(Path(d) / "c.jsonl", FIXTURES["chatlog"][0]))
        assert chat[0].meta["source_id"] == "lmsys-x" and chat[0].meta["source_fields"]["model"] == "synthetic-model"
        assert chat[1].meta["source_id"] == "wild-x" and chat[1].messages[0].meta["language"] == "English"
        tm, _ = _read(_jsonl(Path(d) / "t.jsonl", FIXTURES["taskmaster"][0]))
        assert [m.content for m in tm[0].messages] == ["synthetic request", "synthetic reply", "synthetic thanks"]
        assert tm[1].messages[0].content == "a\nb"  # one speaker's utterances joined
        assert tm[1].meta["goal"] == "Synthetic goal: book a table." and tm[1].meta["task"] == "restaurant"
        al, _ = _read(_jsonl(Path(d) / "a.jsonl", FIXTURES["alpaca"][0]))
        assert al[0].messages[0].content == "Synthetic instruction\n\nsynthetic input"
        assert al[1].messages[0].content == "Synthetic instruction 2"


def test_multiwoz21_keyed_object(tmp_path):
    data = {
        f"SNG{i:04d}.json": {
            "goal": {"message": ["Synthetic goal <span class='emphasis'>one</span>", "and two"], "hotel": {"x": 1}},
            "log": [{"text": f"synthetic {i}-{j}", "metadata": {}} for j in range(4)],
        }
        for i in range(3)
    }
    path = tmp_path / "data.json"
    path.write_text(json.dumps(data))
    convs, rep = _read(path)
    assert rep.format == "multiwoz21" and len(convs) == 3
    assert [c.meta["source_id"] for c in convs] == list(data)
    assert all([m.role for m in c.messages] == ["user", "assistant"] * 2 for c in convs)
    assert convs[0].meta["goal"] == "Synthetic goal one and two" and convs[0].meta["domains"] == ["hotel"]


def test_self_instruct_instances(tmp_path):
    rec = {
        "id": "seed_task_0",
        "instruction": "Synthetic task",
        "instances": [{"input": "x", "output": "synthetic y"}, {"input": "", "output": "synthetic z"}],
    }
    convs, rep = _read(_jsonl(tmp_path / "s.jsonl", [rec]))
    assert rep.format == "alpaca" and [c.messages[0].content for c in convs] == [
        "Synthetic task\n\nx",
        "Synthetic task",
    ]


# -- large files stream ---------------------------------------------------------------------------


def test_big_json_streams_with_ijson_and_reads_the_same(data_dir, tmp_path, monkeypatch):
    path = data_dir / "sgd/train/dialogues_001_first10.json"
    whole = [c.to_record() for c in read_conversations(path)]
    mw = tmp_path / "mw.json"
    dialogues = {f"D{i}.json": {"goal": {}, "log": [{"text": f"t{i}"}, {"text": "r"}]} for i in range(40)}
    mw.write_text(json.dumps(dialogues))
    mw_whole = [c.to_record() for c in read_conversations(mw)]
    abcd = json.loads((data_dir / "abcd/abcd_sample.json").read_text())
    splits = tmp_path / "abcd_v1.1.json"  # the full ABCD file holds {train: [...], dev: [...], test: [...]}
    splits.write_text(json.dumps({"train": abcd[:2], "dev": abcd[2:], "test": []}))
    splits_whole = [c.to_record() for c in read_conversations(splits)]
    assert len(splits_whole) == 3
    monkeypatch.setattr(_records, "BIG_JSON", 1000)
    calls = []
    real = _records._stream_json
    monkeypatch.setattr(_records, "_stream_json", lambda p, e: calls.append(p) or real(p, e))
    assert [c.to_record() for c in read_conversations(path)] == whole
    assert [c.to_record() for c in read_conversations(mw)] == mw_whole
    assert [c.to_record() for c in read_conversations(splits)] == splits_whole
    assert {path, mw, splits} <= set(calls)
    broken = tmp_path / "broken.json"
    broken.write_text(path.read_text()[:5000])
    with pytest.raises(RecordError, match=r"broken.json: broken JSON after record 0") as e:
        read_conversations(broken, "sgd")
    assert "\n" not in str(e.value)


@pytest.mark.slow
def test_convert_streams_and_keeps_the_old_output_on_failure(tmp_path):
    src = _jsonl(tmp_path / "in.jsonl", [{"id": f"c{i}", "data": ["synthetic q", "synthetic a"]} for i in range(50)])
    dst = tmp_path / "out.jsonl"
    r = _cli("convert", str(src), str(dst))
    assert r.returncode == 0, r.stderr
    assert len(dst.read_text().splitlines()) == 50 and "50 conversations from 50 records (ultrachat)" in r.stderr
    before = dst.read_bytes()
    with src.open("a") as f:
        f.write('{"id": "bad", "data": [5]}\n')
    r = _cli("convert", str(src), str(dst))
    assert r.returncode == 2 and "in.jsonl:51: field 'data[0]': expected a string, got number" in r.stderr
    assert dst.read_bytes() == before  # nothing half-written replaced the old output
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_iter_conversations_is_lazy(tmp_path):
    src = _jsonl(tmp_path / "in.jsonl", [{"data": ["synthetic q", "synthetic a"]}] * 3 + [{"data": 1}])
    it = iter_conversations(src)
    assert next(it).messages[0].content == "synthetic q"  # a bad record further on has not been read yet


# -- encodings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "enc,bom", [("utf-8", codecs.BOM_UTF8), ("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE)]
)
@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_bom_and_utf16_files_are_read(tmp_path, enc, bom, suffix):
    recs = [{"messages": [{"role": "user", "content": "synthetic é"}, {"role": "assistant", "content": "ok ✓"}]}] * 2
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs) if suffix == ".jsonl" else json.dumps(recs)
    path = tmp_path / f"c{suffix}"
    path.write_bytes(bom + text.encode(enc))
    convs = read_conversations(path)
    assert len(convs) == 2 and convs[0].messages[0].content == "synthetic é"
    seeds = tmp_path / "s.txt"
    seeds.write_bytes(bom + "synthetic prompt é\nsecond\n".encode(enc))
    assert read_seeds(seeds) == ["synthetic prompt é", "second"]


# -- duplicates --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_duplicate_ids_reported_and_dedup_keeps_first(tmp_path):
    def rec(i, text):
        return {"id": f"c{i}", "messages": [{"role": "user", "content": text}]}

    src = _jsonl(tmp_path / "d.jsonl", [rec(0, "a"), rec(1, "b"), rec(0, "c"), rec(1, "d"), rec(0, "e")])
    convs, rep = _read(src)
    assert len(convs) == 5 and rep.duplicates == 3 and rep.duplicate_example == "'c0' again at " + f"{src}:3"
    kept, rep = _read(src, dedup_ids=True)
    assert [c.messages[0].content for c in kept] == ["a", "b"] and rep.duplicates == 3
    out = tmp_path / "o.jsonl"
    r = _cli("convert", str(src), str(out))
    assert r.returncode == 0 and "3 duplicate ids kept (first: 'c0' again at" in r.stderr
    r = _cli("convert", str(src), str(out), "--dedup-ids")
    assert r.returncode == 0 and "3 duplicate ids dropped" in r.stderr and len(out.read_text().splitlines()) == 2


def test_id_set_spills_to_sqlite_and_stays_exact(tmp_path, monkeypatch):
    from dialforge.io import _idset

    ids = _idset.IdSet(spill_at=3)
    assert [ids.add(k) for k in ["a", "b", "a", "c"]] == [True, True, False, True]
    assert not ids.spilled
    assert [ids.add(k) for k in ["d", "b", "e", "d", "a"]] == [True, False, True, False, False]
    assert ids.spilled and len(ids) == 5
    ids.close()
    # the reader gives the same report whether or not the ids spilled
    src = _jsonl(
        tmp_path / "d.jsonl", [{"id": f"c{i % 7}", "messages": [{"role": "user", "content": "x"}]} for i in range(20)]
    )
    small, rep_small = _read(src, dedup_ids=True)
    from dialforge.io import reader

    made: list = []
    monkeypatch.setattr(reader, "IdSet", lambda: made.append(_idset.IdSet(spill_at=2)) or made[-1])
    big, rep_big = _read(src, dedup_ids=True)
    assert made[0]._mem is None  # the ids went to SQLite
    assert [c.id for c in big] == [c.id for c in small] == [f"c{i}" for i in range(7)]
    assert rep_big.duplicates == rep_small.duplicates == 13


# -- generic mapping ---------------------------------------------------------------------------------


def _mapped_file(tmp_path):
    recs = [
        {
            "dialog_id": f"x{i}",
            "dialog": [{"speaker": "human", "text": "synthetic q"}, {"speaker": "bot", "text": "synthetic a"}],
        }
        for i in range(3)
    ]
    return _jsonl(tmp_path / "m.jsonl", recs)


@pytest.mark.slow
def test_mapping_flags_and_yaml(tmp_path):
    src = _mapped_file(tmp_path)
    out = tmp_path / "o.jsonl"
    flags = [
        "--messages",
        "dialog",
        "--role-field",
        "speaker",
        "--content-field",
        "text",
        "--roles",
        "human=user,bot=assistant",
    ]
    r = _cli("convert", str(src), str(out), *flags)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 3 and [m["role"] for m in rows[0]["messages"]] == ["user", "assistant"]
    m = tmp_path / "map.yaml"
    m.write_text(
        "messages: dialog\nrole_field: speaker\ncontent_field: text\n"
        "roles: {human: user, bot: assistant}\nid_field: dialog_id\n"
    )
    convs = read_conversations(src, f"mapping:{m}")
    assert [c.meta["source_id"] for c in convs] == ["x0", "x1", "x2"]
    r = _cli("convert", str(src), str(out), "--mapping", str(m))
    assert r.returncode == 0
    # a miss lists the keys the record does have
    r = _cli("convert", str(src), str(out), "--messages", "turns")
    assert r.returncode == 2
    assert "m.jsonl:1: field 'turns': missing field (the record has keys: dialog_id, dialog)" in r.stderr
    r = _cli("convert", str(src), str(out), "--messages", "dialog", "--role-field", "who")
    assert "field 'dialog[0].who': missing field (the record has keys: speaker, text)" in r.stderr
    r = _cli("convert", str(src), str(out), *flags[:6])
    assert r.returncode == 2 and "unknown role 'human'" in r.stderr
    r = _cli("convert", str(src), str(out), "--roles", "human=boss")
    assert r.returncode == 2 and "maps to 'boss'" in r.stderr


@pytest.mark.slow
def test_unknown_shape_names_the_keys(tmp_path):
    src = _mapped_file(tmp_path)
    r = _cli("convert", str(src), str(tmp_path / "o.jsonl"))
    assert r.returncode == 2
    assert "m.jsonl:1: no reader knows a record with keys dialog_id, dialog; pass --from" in r.stderr


# -- seeds ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_seed_files(tmp_path, data_dir):
    assert len(read_seeds(data_dir / "fastchat/mt_bench/question.jsonl")) == 80
    evalp = _jsonl(tmp_path / "e.jsonl", [{"class": "synthetic", "data": f"synthetic prompt {i}"} for i in range(3)])
    assert read_seeds(evalp) == [f"synthetic prompt {i}" for i in range(3)]
    alp = tmp_path / "a.json"
    alp.write_text(json.dumps([{"instruction": "Synthetic do", "input": "this"}, {"instruction": "Synthetic two"}]))
    assert read_seeds(alp) == ["Synthetic do\n\nthis", "Synthetic two"]
    # any dialogue file: its first user turns
    assert len(read_seeds(data_dir / "star/star_dialogues_subset.jsonl")) == 300
    custom = _jsonl(tmp_path / "c.jsonl", [{"q": {"body": "synthetic nested"}}])
    assert read_seeds(custom, text_field="q.body") == ["synthetic nested"]
    with pytest.raises(
        RecordError, match=r"c.jsonl:1: no prompt field.*has keys: q \(name the field with --text-field\)"
    ):
        read_seeds(custom)
    out = tmp_path / "seeds.jsonl"
    r = _cli("seeds", str(custom), "--text-field", "q.body", "--out", str(out))
    assert r.returncode == 0 and json.loads(out.read_text()) == {"text": "synthetic nested"}


def test_oasst_flat_message_export_is_read_as_threads(tmp_path, data_dir):
    """Messages linked by parent_message_id (a reply may come first in the file) become the
    root-to-leaf threads, each cut back to its last answer; an orphan reply has no thread."""

    def msg(mid, parent, role, text):
        return {"user_message_id": mid, "parent_message_id": parent, "role": role, "text": text}

    rows = [
        msg("d", "b", "prompter", "synthetic follow-up D"),
        msg("a", None, "prompter", "synthetic opening A"),
        msg("b", "a", "assistant", "synthetic answer B"),
        msg("c", "a", "assistant", "synthetic answer C"),
        msg("e", "d", "assistant", "synthetic answer E"),
        msg("f", "c", "prompter", "synthetic unanswered F"),
        msg("x", "missing", "assistant", "synthetic orphan X"),
    ]
    path = tmp_path / "flat.json"
    path.write_text(json.dumps(rows))
    report = ReadReport(path=str(path))
    convs = read_conversations(path, report=report)
    assert report.format == "oasst-messages" and report.records == 7 and report.conversations == 2
    assert [[m.content[10:] for m in c.messages] for c in convs] == [
        ["opening A", "answer B", "follow-up D", "answer E"],
        ["opening A", "answer C"],
    ]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rows[1]) + "\n" + json.dumps({"x": 1}) + "\n")
    with pytest.raises(RecordError, match=r"bad.jsonl:2: not an OASST message"):
        read_conversations(bad)
    no_id = tmp_path / "no_id.json"
    no_id.write_text(json.dumps([rows[1], {"parent_message_id": "a", "role": "assistant", "text": "synthetic"}]))
    with pytest.raises(RecordError, match=r"no_id.json\[record 1\]: a message without message_id"):
        read_conversations(no_id)
    real = read_conversations(data_dir / "oasst/realistic_seed_data.json")
    assert len(real) == 158 and all(c.messages[-1].role == "assistant" for c in real)
    assert len({c.messages[0].content for c in real}) == 74


def test_seeds_from_a_flat_oasst_message_list_are_the_thread_openings(data_dir):
    """OASST's flat message export (`role: prompter|assistant`, `parent_message_id`): the
    seeds are the 74 thread openings, not the 265 answers or the in-thread replies."""
    path = data_dir / "oasst/realistic_seed_data.json"
    rows = json.loads(path.read_text())
    openings = [r["text"].strip() for r in rows if r["role"] == "prompter" and r["parent_message_id"] is None]
    assert len(rows) == 444 and len(openings) == 74
    assert read_seeds(path) == openings
    r = _cli("seeds", str(path))
    assert r.returncode == 0
    assert "74 seed prompts from 444 records (prompts), 370 answers and in-thread replies left out" in r.stderr


def test_simulate_load_seeds_uses_text_field(tmp_path):
    from dialforge.simulate import load_seeds
    from dialforge.simulate.config import SeedConfig

    src = _jsonl(tmp_path / "s.jsonl", [{"body": "synthetic one"}, {"body": "synthetic two"}])
    seeds = load_seeds(SeedConfig(questions=[str(src)], text_field="body"))
    assert [s.topic for s in seeds] == ["synthetic one", "synthetic two"]
    with pytest.raises(RecordError, match="s.jsonl:1: no prompt field"):
        load_seeds(SeedConfig(questions=[str(src)]))


# -- intents for self-talk ------------------------------------------------------------------------------


@pytest.mark.slow
def test_intents_from_dialogue_goals(data_dir, tmp_path):
    star = read_intents(data_dir / "star/star_dialogues_subset.jsonl")
    assert isinstance(star, dict) and "*" in star  # multi-task dialogues' goals are for any workflow
    raw = [json.loads(x) for x in (data_dir / "star/star_dialogues_subset.jsonl").read_text().splitlines()]
    single = [r for r in raw if len(r["Scenario"]["WizardCapabilities"]) == 1]
    assert sum(len(v) for k, v in star.items() if k != "*") == len(single)
    assert len(star["bank_balance"]) == sum(
        1 for r in single if r["Scenario"]["WizardCapabilities"][0]["Task"] == "bank_balance"
    )
    mw = read_intents(data_dir / "convlab3/multiwoz21_dummy_data.json")
    assert isinstance(mw, list) and len(mw) == 10
    spread = intents_for(data_dir / "convlab3/multiwoz21_dummy_data.json", ["a", "b"])
    assert spread == {"a": mw, "b": mw}
    lines = tmp_path / "i.txt"
    lines.write_text("synthetic intent one\n\nsynthetic intent two\n")
    assert intents_for(lines, ["w"]) == {"w": ["synthetic intent one", "synthetic intent two"]}
    js = tmp_path / "intents.json"
    js.write_text(json.dumps({"w1": ["synthetic x"], "other": ["synthetic y"]}))
    assert intents_for(js, ["w1", "w2"]) == {"w1": ["synthetic x"]}
    with pytest.raises(DialforgeError, match="none of its intents is for these workflows"):
        intents_for(js, ["zzz"])
    with pytest.raises(DialforgeError, match="no dialogue in this file has a goal text"):
        read_intents(data_dir / "convlab3/sgd_dummy_data.json")


# -- the registry, `dialforge formats`, the README -------------------------------------------------------


@pytest.mark.slow
def test_formats_command_and_readme_list_every_format():
    r = _cli("formats")
    assert r.returncode == 0
    listed = [ln.split()[0] for ln in r.stdout.splitlines() if ln.strip()]
    assert listed == [f.name for f in FORMATS]
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Formats", 1)[1].split("\n## ", 1)[0]
    for f in FORMATS:
        assert f"`{f.name}`" in section, f.name


def test_writers_round_trip_new_readers(tmp_path, data_dir):
    convs = read_conversations(data_dir / "convlab3/multiwoz21_dummy_data.json")
    write_conversations(iter(convs), tmp_path / "c.jsonl")
    back = read_conversations(tmp_path / "c.jsonl")
    assert [c.to_record() for c in back] == [c.to_record() for c in convs]
    write_conversations(iter(convs), tmp_path / "s.json", "sharegpt")
    sg = read_conversations(tmp_path / "s.json")
    assert [[m.content for m in c.messages] for c in sg] == [[m.content for m in c.messages] for c in convs]
