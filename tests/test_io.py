from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dialforge import Conversation, RecordError, read_conversations, write_conversations
from dialforge.errors import DialforgeError
from dialforge.io import ReadReport


def test_oasst_threads_exact_counts(data_dir):
    path = data_dir / "oasst/en_100_tree.jsonl"
    threads = read_conversations(path, "oasst")
    # 626 root-to-leaf paths; 226 end on an unanswered prompter turn and are cut back to
    # their last assistant message, after which 62 coincide with another thread.
    assert len(threads) == 564
    assert len({c.id for c in threads}) == 564
    assert all(c.messages[0].role == "user" and c.messages[-1].role == "assistant" for c in threads)
    assert all(not c.role_order_problems() for c in threads)
    assert sum(c.n_user_turns for c in threads) == 922
    best = read_conversations(path, "oasst-best")
    assert len(best) == 100
    assert len({c.meta["message_tree_id"] for c in best}) == 100
    # best mode follows rank 0 at each step: its threads are a subset of all threads
    assert {c.id for c in best} <= {c.id for c in threads}


def test_oasst_best_follows_rank_zero(data_dir):
    rec = json.loads((data_dir / "oasst/en_100_tree.jsonl").open().readline())
    best = read_conversations(data_dir / "oasst/en_100_tree.jsonl", "oasst-best")[0]
    node = rec["prompt"]
    for msg in best.messages[1:]:
        ranked = [r for r in node["replies"] if r.get("rank") is not None]
        node = min(ranked, key=lambda r: r["rank"]) if ranked else node["replies"][0]
        assert msg.content == node["text"]


def test_ids_are_stable_across_reads(data_dir):
    a = read_conversations(data_dir / "fastchat/dummy_conversation.json")
    b = read_conversations(data_dir / "fastchat/dummy_conversation.json")
    assert [c.id for c in a] == [c.id for c in b]
    assert len(a) == len(b) == 500


def test_sharegpt_tool_calls_round_trip(data_dir, tmp_path):
    src = data_dir / "llamafactory/glaive_toolcall_en_demo.json"
    convs = read_conversations(src)
    assert len(convs) == 300
    calls = [c for conv in convs for c in conv.tool_calls]
    observations = sum(1 for c in convs for m in c.messages if m.role == "tool")
    raw = json.loads(src.read_text())
    raw_calls = [json.loads(t["value"]) for r in raw for t in r["conversations"] if t["from"] == "function_call"]
    assert len(calls) == len(raw_calls) == 211
    # structured: name and arguments as the source has them, ids numbered per conversation
    assert [(c.name, c.arguments) for c in calls] == [(r["name"], r["arguments"]) for r in raw_calls]
    assert calls[0].id == "call_1" and calls[0].name == "search_recipes"
    assert calls[0].arguments == {"ingredients": ["chicken", "bell peppers", "rice"]}
    assert observations == sum(1 for r in raw for t in r["conversations"] if t["from"] == "observation") == 211
    # every tool result names the call it answers
    pairs = [(c.messages[i - 1], m) for c in convs for i, m in enumerate(c.messages) if m.role == "tool"]
    assert all(m.tool_call_id == prev.tool_calls[0].id for prev, m in pairs)
    assert sorted({m.tool_call_id for _, m in pairs}) == ["call_1", "call_2", "call_3"]
    # the tool list is data in OpenAI's schema (109 records have "[]": no tools)
    assert sum(1 for c in convs if c.tools) == 191 and "tools" not in convs[0].meta
    assert convs[0].tools[0]["type"] == "function" and convs[0].tools[0]["function"]["name"] == "search_recipes"
    # a tool call and its observation sit inside the assistant's turn: roles still alternate
    assert sum(1 for c in convs if c.role_order_problems()) == 0
    # sharegpt -> canonical jsonl -> sharegpt gives back the same records (tools: the same
    # string where there are tools; a record with "[]" loses the empty column)
    write_conversations(convs, tmp_path / "c.jsonl", "openai")
    back = read_conversations(tmp_path / "c.jsonl")
    assert [c.to_record() for c in back] == [c.to_record() for c in convs]
    write_conversations(back, tmp_path / "s.json", "sharegpt")
    again = json.loads((tmp_path / "s.json").read_text())
    assert again == [r if r["tools"] != "[]" else {"conversations": r["conversations"]} for r in raw]


@pytest.mark.slow
def test_fastchat_sharegpt_and_hf_round_trip(data_dir, tmp_path):
    convs = read_conversations(data_dir / "fastchat/dummy_conversation.json")
    assert len(convs) == len(json.loads((data_dir / "fastchat/dummy_conversation.json").read_text()))
    assert convs[0].meta["source_id"] == "identity_0"
    write_conversations(convs, tmp_path / "ds", "hf")
    back = read_conversations(tmp_path / "ds")
    assert [c.to_record() for c in back] == [c.to_record() for c in convs]
    write_conversations(convs, tmp_path / "s.jsonl", "sharegpt")
    assert [c.to_record() for c in read_conversations(tmp_path / "s.jsonl")] == [c.to_record() for c in convs]


BAD = [
    ('{"messages":[{"role":"bot","content":"hi"}]}', "line 1", "messages[0].role", "unknown role 'bot'"),
    ('{"messages":[{"role":"user","content":"  "}]}', "line 1", "messages[0].content", "empty message"),
    ('{"messages":[{"role":"user"', "line 1", None, "broken JSON"),
    ('{"messages":[{"role":"user"}]}', "line 1", "messages[0].content", "missing field"),
    ('{"conversations":[{"from":"human"}]}', "line 1", "conversations[0].value", "missing field"),
    ('{"conversations":[{"from":"robot","value":"x"}]}', "line 1", "conversations[0].from", "unknown role"),
]


@pytest.mark.parametrize("line,where,field,msg", BAD)
def test_bad_record_names_file_line_field(tmp_path, line, where, field, msg):
    good = '{"messages":[{"role":"user","content":"hello"},{"role":"assistant","content":"hi"}]}'
    p = tmp_path / "bad.jsonl"
    p.write_text(good + "\n" + line + "\n" + good + "\n")
    fmt = "sharegpt" if "conversations" in line else "openai"
    if fmt == "sharegpt":
        p.write_text(line + "\n")
    with pytest.raises(RecordError) as e:
        read_conversations(p, fmt)
    text = str(e.value)
    lineno = 1 if fmt == "sharegpt" else 2
    assert text.startswith(f"{p}:{lineno}: ")
    if field:
        assert f"field '{field}'" in text
    assert msg in text
    # skip mode: the bad record is counted, the rest kept; a file with no good record is an error
    report = ReadReport(path=str(p))
    if fmt == "sharegpt":
        with pytest.raises(DialforgeError, match="none of the 1 records could be read"):
            read_conversations(p, fmt, on_error="skip", report=report)
    else:
        assert len(read_conversations(p, fmt, on_error="skip", report=report)) == 2
    assert len(report.skipped) == 1 and report.skipped[0].line == lineno


def test_alternation_required_by_consumer(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text('{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}\n')
    assert len(read_conversations(p)) == 1  # fine for a plain read
    with pytest.raises(RecordError, match=r"a.jsonl:1: field 'messages': roles do not alternate: two user turns"):
        read_conversations(p, require_alternation=True)


def test_json_array_errors_name_record_index(tmp_path):
    p = tmp_path / "a.json"
    p.write_text(
        json.dumps(
            [{"conversations": [{"from": "human", "value": "x"}]}, {"conversations": [{"from": "human", "value": ""}]}]
        )
    )
    with pytest.raises(RecordError, match=r"a.json\[record 1\]: field 'conversations\[0\].value': empty"):
        read_conversations(p)


def test_empty_file_is_a_clear_error(tmp_path):
    p = tmp_path / "e.jsonl"
    p.write_text("")
    with pytest.raises(DialforgeError, match="empty file"):
        read_conversations(p, "openai")


def test_content_ids():
    a = Conversation.from_messages([{"role": "user", "content": "x"}])
    b = Conversation.from_messages([{"role": "user", "content": "y"}])
    assert a.id != b.id and a.id == Conversation.from_messages([{"role": "user", "content": "x"}]).id


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dialforge.cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.slow
def test_cli_convert_and_stats(data_dir, tmp_path):
    out = tmp_path / "o.jsonl"
    r = _cli("convert", str(data_dir / "oasst/en_100_tree.jsonl"), str(out), "--from", "oasst")
    assert r.returncode == 0, r.stderr
    assert len(out.read_text().splitlines()) == 564
    r = _cli("stats", str(out), "--json")
    assert r.returncode == 0
    s = json.loads(r.stdout)
    assert s["conversations"] == 564
    assert s["per_role"]["user"]["messages"] == 922 and s["per_role"]["assistant"]["messages"] == 922
    assert s["conversations_with_problems"] == 0


def test_cli_version():
    import dialforge

    r = _cli("--version")
    assert (r.returncode, r.stdout) == (0, f"dialforge {dialforge.__version__}\n")


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [["filter", "--where", "user_turns >= 1", "--out"], ["dedup", "--out"], ["export", "--to", "sharegpt", "--out"]],
)
def test_post_processing_fails_on_a_bad_record_unless_told_to_skip(tmp_path, args):
    """filter, dedup and export treat a bad record as stats, convert and score do: an error
    naming file:line:field by default, skipped and counted with --on-error skip."""
    p = tmp_path / "bad.jsonl"
    p.write_text(
        '{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}\n'
        '{"messages":[{"role":"bot","content":"x"}]}\n'
    )
    out = tmp_path / "o.jsonl"
    r = _cli(args[0], str(p), *args[1:], str(out))
    assert r.returncode == 2 and "bad.jsonl:2: field 'messages[0].role': unknown role 'bot'" in r.stderr
    assert not out.exists()
    r = _cli(args[0], str(p), *args[1:], str(out), "--on-error", "skip")
    assert r.returncode == 0 and "1 bad records skipped" in r.stderr
    assert len(out.read_text().splitlines()) == 1


@pytest.mark.slow
def test_cli_user_error_is_one_line_exit_2(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"messages":[{"role":"bot","content":"x"}]}\n')
    r = _cli("stats", str(p))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0
    assert "bad.jsonl:1: field 'messages[0].role': unknown role 'bot'" in r.stderr
    assert "Traceback" not in r.stderr
    r = _cli("--debug", "stats", str(p))
    assert "Traceback" in r.stderr
    r = _cli("stats", str(p), "--on-error", "skip")
    assert r.returncode == 2 and "none of the 1 records could be read" in r.stderr
    with p.open("a") as f:
        f.write('{"messages":[{"role":"user","content":"x"}]}\n')
    r = _cli("stats", str(p), "--on-error", "skip", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["skipped_records"] == 1
