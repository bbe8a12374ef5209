"""Malformed input files to every reader, through the installed CLI: each gives exit 2, one
line on stderr naming the file, the line (or record index, or byte offset) and the field, and
no traceback; `--on-error skip` skips the bad record, counts it and keeps the rest."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dialforge.io import ReadReport, read_conversations, read_seeds

GOOD = {
    "openai": {"messages": [{"role": "user", "content": "synthetic q"}, {"role": "assistant", "content": "a"}]},
    "sharegpt": {"conversations": [{"from": "human", "value": "synthetic q"}, {"from": "gpt", "value": "a"}]},
    "oasst": {
        "message_tree_id": "t",
        "prompt": {
            "text": "synthetic q",
            "role": "prompter",
            "replies": [{"text": "synthetic a", "role": "assistant"}],
        },
    },
    "mtbench101": {"task": "CM", "id": 1, "history": [{"user": "synthetic q", "bot": "synthetic a"}]},
    "ultrachat": {"id": "0", "data": ["synthetic q", "synthetic a"]},
    "chatlog": {"conversation": [{"role": "user", "content": "synthetic q"}]},
    "convlab3": {
        "dataset": "synth",
        "dialogue_id": "s-1",
        "goal": {},
        "turns": [{"speaker": "user", "utterance": "q"}],
    },
    "sgd": {"dialogue_id": "1", "services": ["X"], "turns": [{"speaker": "USER", "utterance": "synthetic q"}]},
    "taskmaster": {"conversation_id": "c", "utterances": [{"index": 0, "speaker": "USER", "text": "synthetic q"}]},
    "star": {"DialogueID": 1, "Events": [{"Agent": "User", "Action": "utter", "Text": "synthetic q"}]},
    "abcd": {"convo_id": 1, "original": [["customer", "synthetic q"], ["agent", "synthetic a"]]},
    "alpaca": {"instruction": "synthetic do", "input": "", "output": "synthetic done"},
}

# (case id, format of the file, the bad record, field named, cause)
RECORD_CASES = [
    (
        "meta-list",
        "openai",
        {"messages": [{"role": "user", "content": "x", "meta": [1, 2]}]},
        "messages[0].meta",
        "expected an object, got array",
    ),
    (
        "meta-string",
        "openai",
        {"messages": [{"role": "user", "content": "x", "meta": "m"}]},
        "messages[0].meta",
        "expected an object, got string",
    ),
    (
        "record-meta-string",
        "openai",
        {"messages": [{"role": "user", "content": "x"}], "meta": "m"},
        "meta",
        "expected an object, got string",
    ),
    (
        "part-text-int",
        "openai",
        {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
        "messages[0].content[0].text",
        "expected a string, got number",
    ),
    (
        "part-text-null",
        "openai",
        {"messages": [{"role": "user", "content": [{"type": "text", "text": None}]}]},
        "messages[0].content[0].text",
        "expected a string, got null",
    ),
    (
        "part-image",
        "openai",
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
        "messages[0].content[0]",
        "only text content parts",
    ),
    ("role-list", "openai", {"messages": [{"role": ["user"], "content": "x"}]}, "messages[0].role", "unknown role"),
    ("messages-empty", "openai", {"messages": []}, "messages", "expected a non-empty list"),
    (
        "content-number",
        "openai",
        {"messages": [{"role": "user", "content": 7}]},
        "messages[0].content",
        "expected a string, got number",
    ),
    (
        "oasst-text-null",
        "oasst",
        {"message_tree_id": "t", "prompt": {"text": None, "role": "prompter"}},
        "prompt.text",
        "expected a string, got null",
    ),
    (
        "oasst-text-int",
        "oasst",
        {"prompt": {"text": "q", "role": "prompter", "replies": [{"text": 3, "role": "assistant"}]}},
        "prompt.replies[0].text",
        "expected a string, got number",
    ),
    ("oasst-role-list", "oasst", {"prompt": {"text": "q", "role": ["prompter"]}}, "prompt.role", "unknown role"),
    (
        "sharegpt-value-int",
        "sharegpt",
        {"conversations": [{"from": "human", "value": 1}]},
        "conversations[0].value",
        "expected a string, got number",
    ),
    (
        "sharegpt-from-list",
        "sharegpt",
        {"conversations": [{"from": ["human"], "value": "x"}]},
        "conversations[0].from",
        "unknown role",
    ),
    ("mtbench101-turn", "mtbench101", {"task": "CM", "history": ["q"]}, "history[0]", "expected an object"),
    (
        "mtbench101-user-null",
        "mtbench101",
        {"history": [{"user": None, "bot": "a"}]},
        "history[0].user",
        "expected a string, got null",
    ),
    ("ultrachat-int", "ultrachat", {"id": "1", "data": ["q", 2]}, "data[1]", "expected a string, got number"),
    (
        "chatlog-role",
        "chatlog",
        {"conversation": [{"role": "robot", "content": "x"}]},
        "conversation[0].role",
        "unknown role 'robot'",
    ),
    (
        "convlab3-speaker",
        "convlab3",
        {"dataset": "s", "turns": [{"speaker": "wizard", "utterance": "x"}]},
        "turns[0].speaker",
        "unknown speaker 'wizard'",
    ),
    (
        "sgd-utterance-null",
        "sgd",
        {"services": ["X"], "turns": [{"speaker": "USER", "utterance": None}]},
        "turns[0].utterance",
        "expected a string, got null",
    ),
    (
        "taskmaster-text-missing",
        "taskmaster",
        {"utterances": [{"index": 0, "speaker": "USER"}]},
        "utterances[0].text",
        "missing field (the record has keys: index, speaker)",
    ),
    (
        "star-text-null",
        "star",
        {"Events": [{"Agent": "User", "Action": "utter", "Text": None}]},
        "Events[0].Text",
        "expected a string, got null",
    ),
    ("abcd-line-shape", "abcd", {"original": [["customer"]]}, "original[0]", "expected [speaker, text]"),
    ("alpaca-output-int", "alpaca", {"instruction": "do", "output": 3}, "output", "expected a string, got number"),
    (
        "alpaca-input-list",
        "alpaca",
        {"instruction": "do", "input": ["x"], "output": "y"},
        "input",
        "expected a string, got array",
    ),
]


CLI_SKIP = {"meta-list", "part-text-int", "oasst-text-null"}  # the rest check skip mode in-process


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "dialforge.cli", *args], capture_output=True, text=True)


def _one_line_error(r) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    err = r.stderr.strip()
    assert "Traceback" not in err
    assert err.count("\n") == 0, err
    return err


@pytest.mark.slow
@pytest.mark.parametrize("case,fmt,bad,field,cause", RECORD_CASES, ids=[c[0] for c in RECORD_CASES])
def test_bad_record(tmp_path, case, fmt, bad, field, cause):
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps(GOOD[fmt]) + "\n" + json.dumps(bad) + "\n")
    out = tmp_path / "out.jsonl"
    err = _one_line_error(_cli("convert", str(src), str(out)))
    assert f"{src}:2: field '{field}': " in err and cause in err
    assert not out.exists()
    # skip mode: the bad record is skipped and counted, the good one kept
    report = ReadReport(path=str(src))
    kept = read_conversations(src, on_error="skip", report=report)
    assert len(kept) == 1 and report.n_skipped == 1 and report.skipped[0].field == field
    if case in CLI_SKIP:
        r = _cli("convert", str(src), str(out), "--on-error", "skip")
        assert r.returncode == 0, r.stderr
        assert "1 bad records skipped" in r.stderr and f"skipped: {src}:2: field '{field}'" in r.stderr
        assert len(out.read_text().splitlines()) == 1


SEED_CASES = [
    ("seed-text-int", {"text": 5}, [], "field 'text': expected a string, got number"),
    ("seed-text-null", {"text": None}, [], "field 'text': expected a string, got null"),
    ("seed-turns-empty", {"turns": []}, [], "field 'turns': expected a non-empty list of strings, got an empty list"),
    ("seed-turns-int", {"turns": [3]}, [], "field 'turns[0]': expected a string, got number"),
    ("seed-number", 5, [], "expected a string or an object, found a JSON number"),
    ("seed-blank", {"text": "  "}, [], "field 'text': empty prompt"),
    ("seed-no-field", {"body": "x"}, [], "no prompt field"),
    (
        "seed-text-field-miss",
        {"text": "x"},
        ["--text-field", "body"],
        "field 'body': missing field (the record has keys: text)",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("case,bad,args,msg", SEED_CASES, ids=[c[0] for c in SEED_CASES])
def test_bad_seed_record(tmp_path, case, bad, args, msg):
    good = {"text": "synthetic ok", "body": "synthetic ok"}
    src = tmp_path / "seeds.jsonl"
    src.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    err = _one_line_error(_cli("seeds", str(src), *args))
    assert f"{src}:2: " in err and msg in err
    report = ReadReport(path=str(src))
    text_field = args[1] if args else None
    assert read_seeds(src, text_field=text_field, on_error="skip", report=report) == ["synthetic ok"]
    assert report.n_skipped == 1 and report.skipped[0].line == 2
    if case == "seed-text-int":
        r = _cli("seeds", str(src), *args, "--on-error", "skip")
        assert r.returncode == 0 and "1 seed prompts from 2 records (prompts), 1 bad records skipped" in r.stderr


_ARRAY = json.dumps([GOOD["openai"], GOOD["openai"]], indent=2)
# (case id, file name, content, command, what the one line must say)
FILE_CASES = [
    (
        "garbage-text",
        "bad.jsonl",
        b"this is not json at all\n",
        "convert",
        ["bad.jsonl:1: broken JSON", "found 'this is not json at all'"],
    ),
    (
        "garbage-binary",
        "bad.jsonl",
        b"\x80\x81garbage\n",
        "convert",
        ["bad.jsonl:1: byte offset 0: byte 0x80 is not UTF-8"],
    ),
    ("png", "bad.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "convert", ["bad.jsonl: byte offset 8: NUL byte"]),
    (
        "latin1-line-2",
        "bad.jsonl",
        (json.dumps(GOOD["openai"]) + "\n").encode() + b'{"messages": "caf\xe9"}\n',
        "convert",
        ["bad.jsonl:2: byte offset", "byte 0xe9 is not UTF-8"],
    ),
    (
        "utf16-no-bom",
        "bad.jsonl",
        (json.dumps(GOOD["openai"]) + "\n").encode("utf-16-le"),
        "convert",
        ["bad.jsonl: byte offset 1: NUL byte", "UTF-16 without a byte-order mark"],
    ),
    ("array-in-jsonl", "bad.jsonl", _ARRAY.encode(), "convert", ["bad.jsonl:1: found the start of a JSON array"]),
    (
        "one-line-array-in-jsonl",
        "bad.jsonl",
        json.dumps([GOOD["openai"]] * 2).encode(),
        "convert",
        ["bad.jsonl:1: found a JSON array (2 items), expected a record"],
    ),
    (
        "jsonl-named-json",
        "bad.json",
        (json.dumps(GOOD["openai"]) + "\n" + json.dumps(GOOD["openai"])).encode(),
        "convert",
        ["bad.json:2: more than one JSON value: this looks like JSON Lines"],
    ),
    ("truncated-json", "bad.json", _ARRAY[:-30].encode(), "convert", ["bad.json:", "broken JSON"]),
    ("json-scalar", "bad.json", b'"hello"', "convert", ["bad.json: found a JSON string, expected records"]),
    (
        "unknown-shape",
        "bad.jsonl",
        b'{"a": 1, "b": 2}\n',
        "convert",
        ["bad.jsonl:1: no reader knows a record with keys a, b"],
    ),
    (
        "prompts-as-dialogues",
        "bad.jsonl",
        b'{"instruction": "synthetic", "input": ""}\n',
        "convert",
        ["bad.jsonl:1: this file holds prompts, not conversations"],
    ),
    (
        "multiwoz-log-int",
        "bad.json",
        json.dumps({"SNG1.json": {"goal": {}, "log": [{"text": 1}]}}).encode(),
        "convert",
        ["bad.json[record 0]: field 'log[0].text': expected a string, got number"],
    ),
    (
        "taskmaster-no-utterances",
        "bad.jsonl",
        b'{"conversation_id": "c"}\n',
        "convert --from taskmaster",
        ["bad.jsonl:1: field 'utterances': missing field (the record has keys: conversation_id)"],
    ),
    (
        "all-bad-skip",
        "bad.jsonl",
        b'{"messages": [1]}\n{"messages": [2]}\n',
        "convert --on-error skip",
        ["bad.jsonl: none of the 2 records could be read (first: ", "bad.jsonl:1: field 'messages[0]'"],
    ),
    (
        "seed-text-latin1",
        "seeds.txt",
        b"synthetic one\nsynth\xe9tic two\n",
        "seeds",
        ["seeds.txt:2: byte offset 19: byte 0xe9"],
    ),
    (
        "seed-utf16-no-bom",
        "seeds.txt",
        "synthetic\n".encode("utf-16-le"),
        "seeds",
        ["seeds.txt: byte offset 1: NUL byte"],
    ),
    ("seed-garbage-jsonl", "seeds.jsonl", b"{not json\n", "seeds", ["seeds.jsonl:1: broken JSON", "found '{not json'"]),
]


@pytest.mark.slow
@pytest.mark.parametrize("case,name,content,cmd,says", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_bad_file(tmp_path, case, name, content, cmd, says):
    src = tmp_path / name
    src.write_bytes(content)
    words = cmd.split()
    args = [words[0], str(src)] + ([str(tmp_path / "out.jsonl")] if words[0] == "convert" else []) + words[1:]
    err = _one_line_error(_cli(*args))
    for s in says:
        assert s in err, (s, err)
    assert str(tmp_path) in err  # the file is named in full
