"""Every export as its consumer takes it: OpenAI's fine-tuning format, LLaMA-Factory's columns
and turn order, TRL's SFTTrainer (a real gradient step), HF datasets' typed features; tool
calls as data from read to write; `dialforge check` and `dialforge export RUN_DIR`.

Tool-call fixtures are obviously synthetic; real tool-call data is LLaMA-Factory's glaive demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dialforge import Conversation, read_conversations, write_conversations
from dialforge.errors import DialforgeError
from dialforge.io.check import check
from dialforge.io.consumers import HOSTNAMES, scrub
from dialforge.score.export import export_conversations, export_file_result, export_sources, llamafactory_entry

LOCAL_MODEL = str(Path.home() / ".cache/dialforge/tiny-model-v1")
NOT_TOP = "not a key of the fine-tuning format (top level: messages, tools, parallel_tool_calls)"


def _tool(name: str, prop: str) -> dict:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"SYNTHETIC test tool {name}",
            "parameters": {"type": "object", "properties": {prop: {"type": "string"}}, "required": [prop]},
        },
    }


def tool_conv(i: int, *, parallel: bool = False, system: bool = False) -> Conversation:
    """An obviously synthetic conversation with one call (or two parallel ones) and results."""
    name, prop = ("synthetic_lookup", "query") if i % 2 == 0 else ("synthetic_counter", "label")
    calls = [{"id": f"call_{i}a", "name": name, "arguments": {prop: f"value-{i}"}}]
    if parallel:
        calls.append({"id": f"call_{i}b", "name": name, "arguments": {prop: f"other-{i}", "n": [1, 2]}})
    msgs: list[dict] = [{"role": "system", "content": "SYNTHETIC system prompt."}] if system else []
    msgs += [
        {"role": "user", "content": f"SYNTHETIC user turn {i}: call the test tool."},
        {"role": "assistant", "tool_calls": calls},
        *({"role": "tool", "content": f"SYNTHETIC result {c['id']}", "tool_call_id": c["id"]} for c in calls),
        {"role": "assistant", "content": f"SYNTHETIC answer {i}.", "meta": {"model": LOCAL_MODEL}},
    ]
    meta = {"assistant_model": LOCAL_MODEL, "host": next(iter(HOSTNAMES), "x"), "seed_id": f"s{i}"}
    return Conversation.from_messages(msgs, meta=meta, tools=[_tool(name, prop)])


def plain_conv(i: int) -> Conversation:
    return Conversation.from_messages(
        [
            {"role": "user", "content": f"SYNTHETIC question {i}?"},
            {"role": "assistant", "content": f"SYNTHETIC reply {i}."},
            {"role": "user", "content": "SYNTHETIC follow-up left unanswered."},
        ],
        meta={"simulator": "persona", "user_model": LOCAL_MODEL},
    )


# -- OpenAI -----------------------------------------------------------------------------------


def test_openai_export_is_exactly_the_fine_tuning_format(tmp_path):
    out = tmp_path / "ft.jsonl"
    r = export_conversations([tool_conv(0), plain_conv(1)], "openai", out)
    assert r.summary() == (
        f"exported 2 conversations: {out}, {tmp_path / 'ft.meta.jsonl'}; checked as openai: 0 problems"
    )
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines[0] == {
        "messages": [
            {"role": "user", "content": "SYNTHETIC user turn 0: call the test tool."},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_0a",
                        "type": "function",
                        "function": {"name": "synthetic_lookup", "arguments": '{"query":"value-0"}'},
                    }
                ],
            },
            {"role": "tool", "content": "SYNTHETIC result call_0a", "tool_call_id": "call_0a"},
            {"role": "assistant", "content": "SYNTHETIC answer 0."},
        ],
        "tools": [_tool("synthetic_lookup", "query")],
    }
    # a conversation ending on a user turn is valid here (OpenAI trains on the assistant turns)
    assert set(lines[1]) == {"messages"} and [m["role"] for m in lines[1]["messages"]] == ["user", "assistant", "user"]
    # dialforge's ids and meta: the sidecar, line by line, with local paths cut to their name
    side = [json.loads(x) for x in (tmp_path / "ft.meta.jsonl").read_text().splitlines()]
    assert side[0] == {
        "line": 1,
        "id": tool_conv(0).id,
        "meta": {"assistant_model": "tiny-model-v1", "host": "<host>", "seed_id": "s0"},
        "message_meta": [{}, {}, {}, {"model": "tiny-model-v1"}],
    }
    assert side[1] == {
        "line": 2,
        "id": plain_conv(1).id,
        "meta": {"simulator": "persona", "user_model": "tiny-model-v1"},
    }
    assert str(Path.home()) not in out.read_text() + (tmp_path / "ft.meta.jsonl").read_text()


def test_openai_export_leaves_out_what_openai_refuses(tmp_path):
    no_reply = Conversation.from_messages([{"role": "user", "content": "SYNTHETIC question alone."}])
    r = export_conversations([no_reply, plain_conv(0)], "openai", tmp_path / "ft.jsonl")
    assert (r.written, dict(r.skipped)) == (1, {"conversations without an assistant message": 1})
    assert "left out 1 conversations without an assistant message" in r.summary()


BAD_OPENAI = [
    # (record, problems as `check` prints them after "FILE:1: ")
    (
        {
            "id": "x",
            "meta": {},
            "messages": [{"role": "user", "content": "q", "meta": {}}, {"role": "assistant", "content": "a"}],
        },
        [
            "field 'id': not a key of the fine-tuning format (top level: messages, tools, parallel_tool_calls)",
            "field 'meta': not a key of the fine-tuning format (top level: messages, tools, parallel_tool_calls)",
            "field 'messages[0].meta': not a message key of the fine-tuning format",
        ],
    ),
    (
        {"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "r"}]},
        [
            "field 'messages[1].tool_call_id': a tool message needs the id of the call it answers",
            "field 'messages': no assistant message (nothing to train on)",
        ],
    ),
    (
        {
            "messages": [
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{x"}}],
                },
                {"role": "tool", "content": "r", "tool_call_id": "c2"},
                {"role": "assistant", "content": "a", "weight": 2},
            ]
        },
        [
            "field 'messages[1].tool_calls[0].function.arguments': not valid JSON",
            "field 'messages[2].tool_call_id': 'c2' answers no earlier tool call",
            "field 'messages[3].weight': expected 0 or 1, got 2",
        ],
    ),
    (
        {
            "messages": [
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "g", "arguments": "{}"}}],
                },
                {"role": "tool", "content": "r", "tool_call_id": "c1"},
                {"role": "assistant", "content": "a"},
            ],
            "tools": [_tool("f", "x")],
        },
        ["field 'messages[1].tool_calls[0].function.name': calls 'g', which is not in the record's tools"],
    ),
    (
        {
            "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            "tools": [_tool("synthetic lookup", "x")],
        },
        ["field 'tools[0].function.name': 'synthetic lookup': a function name is 1-64 of a-z, A-Z, 0-9, _ and -"],
    ),
]


@pytest.mark.parametrize("rec,expected", BAD_OPENAI)
def test_check_openai_names_each_problem(tmp_path, rec, expected):
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps(rec) + "\n")
    problems, n = check(p, "openai")
    assert [str(x) for x in problems] == [f"{p}:1: {e}" for e in expected]
    assert n == len(expected)


def test_check_finds_local_paths_and_the_canonical_file_is_not_an_upload(tmp_path):
    canonical = tmp_path / "c.jsonl"
    write_conversations([plain_conv(0)], canonical)  # dialforge's own file: id and meta at the top
    problems, _ = check(canonical, "openai")
    assert [str(x) for x in problems] == [
        f"{canonical}:1: field 'id': {NOT_TOP}",
        f"{canonical}:1: field 'meta': {NOT_TOP}",
        f"{canonical}:1: holds '{Path.home()}', a local path or host name of this machine",
    ]


def test_scrub_cuts_paths_and_host_names_but_not_urls():
    host = next(iter(HOSTNAMES))
    assert scrub(
        {
            "model": "/home/someone/.cache/dialforge/tiny-model-v1",
            "win": "C:\\Users\\x\\model.bin",
            "error": "cannot open /var/lib/data/a.json: denied",
            "url": "http://localhost:8000/v1",
            "ratio": "3/4 and/or",
            "host": host,
            "list": ["~/models/m1", 3],
        }
    ) == {
        "model": "tiny-model-v1",
        "win": "model.bin",
        "error": "cannot open a.json: denied",
        "url": "http://localhost:8000/v1",
        "ratio": "3/4 and/or",
        "host": "<host>",
        "list": ["m1", 3],
    }


# -- LLaMA-Factory ------------------------------------------------------------------------------


def _entry(cols: dict, file_name: str = "d.json") -> dict:
    tags = llamafactory_entry("x.json")["tags"]
    return {"file_name": file_name, "formatting": "sharegpt", "columns": cols, "tags": tags}


def test_llamafactory_declares_only_the_columns_the_file_has(tmp_path):
    out = tmp_path / "lf"
    export_conversations([plain_conv(0)], "llamafactory", out, name="d")
    info = json.loads((out / "dataset_info.json").read_text())
    assert info == {"d": _entry({"messages": "conversations"})}
    # a trailing unanswered user turn is cut: LLaMA-Factory skips an example of odd length
    assert json.loads((out / "d.json").read_text()) == [
        {
            "conversations": [
                {"from": "human", "value": "SYNTHETIC question 0?"},
                {"from": "gpt", "value": "SYNTHETIC reply 0."},
            ]
        }
    ]
    # tools and a system prompt in some rows: both declared; the other entry is kept
    export_conversations([tool_conv(0, system=True), tool_conv(1)], "llamafactory", out, name="t")
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["d"] == _entry({"messages": "conversations"})
    assert info["t"] == _entry({"messages": "conversations", "system": "system", "tools": "tools"}, "t.json")
    rows = json.loads((out / "t.json").read_text())
    assert rows[0] == {
        "system": "SYNTHETIC system prompt.",
        "conversations": [
            {"from": "human", "value": "SYNTHETIC user turn 0: call the test tool."},
            {"from": "function_call", "value": '{"name": "synthetic_lookup", "arguments": {"query": "value-0"}}'},
            {"from": "observation", "value": "SYNTHETIC result call_0a"},
            {"from": "gpt", "value": "SYNTHETIC answer 0."},
        ],
        "tools": json.dumps([_tool("synthetic_lookup", "query")["function"]]),
    }
    assert set(rows[1]) == {"conversations", "tools"}
    assert check(out, "llamafactory") == ([], 0)


def test_llamafactory_leaves_out_what_it_would_skip_and_says_so(tmp_path):
    twice = Conversation.from_messages(
        [
            {"role": "user", "content": "SYNTHETIC first."},
            {"role": "user", "content": "SYNTHETIC second."},
            {"role": "assistant", "content": "SYNTHETIC reply."},
        ]
    )
    alone = Conversation.from_messages([{"role": "user", "content": "SYNTHETIC question alone."}])
    r = export_conversations([twice, plain_conv(0), alone], "llamafactory", tmp_path / "lf", name="d")
    assert (r.written, dict(r.skipped)) == (
        1,
        {
            "conversations with roles out of LLaMA-Factory's order (human at position 1)": 1,
            "conversations without a turn": 1,
        },
    )
    # OpenAI takes two user turns in a row; it refuses the one without a reply and tool names
    # outside its pattern
    spaced = tool_conv(0).model_copy(update={"tools": [_tool("synthetic lookup", "query")]})
    r = export_conversations([twice, plain_conv(0), alone, spaced], "openai", tmp_path / "o.jsonl")
    assert (r.written, dict(r.skipped)) == (
        2,
        {
            "conversations without an assistant message": 1,
            "conversations with a tool name OpenAI refuses (1-64 of a-z, A-Z, 0-9, _ and -)": 1,
        },
    )


def test_check_refuses_a_file_that_is_not_utf8(tmp_path):
    p = tmp_path / "u.jsonl"
    p.write_bytes(b'{"messages": [{"role": "user", "content": "caf\xe9"}]}\n')
    problems, n = check(p, "openai")
    assert [str(x) for x in problems] == [f"{p}:1: not UTF-8 text (byte 47 of the line)"] and n == 1


def test_llamafactory_tool_without_parameters_gets_an_empty_schema(tmp_path):
    bare = {"type": "function", "function": {"name": "synthetic_clock", "description": "SYNTHETIC"}}
    conv = tool_conv(0).model_copy(update={"tools": [bare, _tool("synthetic_lookup", "query")]})
    r = export_conversations([conv], "llamafactory", tmp_path / "lf", name="b")
    assert r.checked_as == "llamafactory"
    tools = json.loads(json.loads((tmp_path / "lf/b.json").read_text())[0]["tools"])
    assert tools[0] == {
        "name": "synthetic_clock",
        "description": "SYNTHETIC",
        "parameters": {"type": "object", "properties": {}},
    }
    assert tools[1] == _tool("synthetic_lookup", "query")["function"]
    # text beside a call cannot go into a function_call turn: left out, and counted
    assert conv.messages[1].tool_calls
    conv.messages[1].content = "SYNTHETIC let me look."
    r = export_conversations([conv], "llamafactory", tmp_path / "lf", name="b")
    assert dict(r.skipped) == {"assistant texts beside tool calls": 1}


def test_llamafactory_parallel_calls_and_their_results(tmp_path):
    out = tmp_path / "lf"
    export_conversations([tool_conv(2, parallel=True)], "llamafactory", out, name="p")
    turns = json.loads((out / "p.json").read_text())[0]["conversations"]
    assert [t["from"] for t in turns] == ["human", "function_call", "observation", "gpt"]
    assert json.loads(turns[1]["value"]) == [
        {"name": "synthetic_lookup", "arguments": {"query": "value-2"}},
        {"name": "synthetic_lookup", "arguments": {"query": "other-2", "n": [1, 2]}},
    ]
    # joined as LLaMA-Factory's own OpenAI converter joins them, and split again on reading
    assert turns[2]["value"] == "SYNTHETIC result call_2a\n</tool_response>\n<tool_response>\nSYNTHETIC result call_2b"
    back = read_conversations(out / "p.json")[0]
    assert [(m.role, m.tool_call_id) for m in back.messages] == [
        ("user", None),
        ("assistant", None),
        ("tool", "call_1"),
        ("tool", "call_2"),
        ("assistant", None),
    ]
    assert [c.arguments for c in back.tool_calls] == [c.arguments for c in tool_conv(2, parallel=True).tool_calls]


def test_check_llamafactory_finds_what_llamafactory_refuses(tmp_path):
    """The defect LLaMA-Factory 0.9.3 showed: `system` and `tools` declared, no row has them."""
    (tmp_path / "dataset_info.json").write_text(
        json.dumps({"d": _entry({"messages": "conversations", "system": "system", "tools": "tools"})})
    )
    rows = [
        {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
        {"conversations": [{"from": "human", "value": "q"}, {"from": "human", "value": "again"}]},
        {"conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": "f(x)"}]},
    ]
    (tmp_path / "d.json").write_text(json.dumps(rows, indent=2))
    problems, n = check(tmp_path, "llamafactory")
    d = tmp_path / "d.json"
    assert [str(p) for p in problems] == [
        f"{d}:14: field 'conversations[1].from': 'human' at this position: LLaMA-Factory skips the example "
        "(expects gpt or function_call)",
        f"{d}:26: field 'conversations[1].value': not valid JSON (LLaMA-Factory raises 'Invalid JSON format in "
        "function message')",
        f"{d}: field 'd.columns.system': declares column 'system', which no record of d.json has "
        "(LLaMA-Factory fails with KeyError: 'system')",
        f"{d}: field 'd.columns.tools': declares column 'tools', which no record of d.json has "
        "(LLaMA-Factory fails with KeyError: 'tools')",
    ]
    assert n == 4


def test_glaive_to_openai_and_back_keeps_every_call(data_dir, tmp_path):
    """LLaMA-Factory's glaive demo -> openai export -> read -> llamafactory export: the same
    turns, the same calls (arguments equal as JSON), the same tools."""
    src = data_dir / "llamafactory/glaive_toolcall_en_demo.json"
    r = export_file_result(src, "openai", tmp_path / "g.jsonl")
    assert (r.written, r.checked_as) == (300, "openai")
    lines = [json.loads(x) for x in (tmp_path / "g.jsonl").read_text().splitlines()]
    n_calls = sum(len(m.get("tool_calls", [])) for rec in lines for m in rec["messages"])
    assert n_calls == 211 and sum(1 for rec in lines if "tools" in rec) == 191
    back = export_file_result(tmp_path / "g.jsonl", "llamafactory", tmp_path / "lf", name="g")
    assert back.written == 300
    raw = json.loads(src.read_text())
    again = json.loads((tmp_path / "lf/g.json").read_text())
    for a, b in zip(raw, again, strict=True):
        assert [t["from"] for t in a["conversations"]] == [t["from"] for t in b["conversations"]]
        for ta, tb in zip(a["conversations"], b["conversations"], strict=True):
            if ta["from"] == "function_call":
                assert json.loads(ta["value"]) == json.loads(tb["value"])
            else:
                assert ta["value"] == tb["value"]
        assert json.loads(a["tools"]) == json.loads(b.get("tools", "[]"))


OLD_FN = {"name": "synthetic_lookup", "arguments": json.dumps({"query": "q"})}


def test_old_files_with_tool_calls_as_text_are_read_as_data(tmp_path):
    """Before tool calls were data: the call as assistant text with meta.kind, the tool list a
    JSON string in meta, the call id in the tool message's meta."""
    old = {
        "id": "old1",
        "messages": [
            {"role": "user", "content": "SYNTHETIC question."},
            {
                "role": "assistant",
                "content": json.dumps([{"id": "c9", "type": "function", "function": OLD_FN}]),
                "meta": {"kind": "tool_call"},
            },
            {"role": "tool", "content": "SYNTHETIC result.", "meta": {"tool_call_id": "c9"}},
            {
                "role": "assistant",
                "content": '{"name": "synthetic_counter", "arguments": {"label": "z"}}',
                "meta": {"kind": "tool_call"},
            },
            {"role": "tool", "content": "SYNTHETIC count."},
            {"role": "assistant", "content": "SYNTHETIC answer."},
        ],
        "meta": {"tools": json.dumps([_tool("synthetic_lookup", "query")["function"]]), "seed_id": "s"},
    }
    p = tmp_path / "old.jsonl"
    p.write_text(json.dumps(old) + "\n")
    c = read_conversations(p)[0]
    assert [(x.id, x.name, x.arguments) for x in c.tool_calls] == [
        ("c9", "synthetic_lookup", {"query": "q"}),
        ("call_2", "synthetic_counter", {"label": "z"}),
    ]
    assert [m.tool_call_id for m in c.messages if m.role == "tool"] == ["c9", "call_2"]
    assert c.tools == [_tool("synthetic_lookup", "query")] and c.meta == {"seed_id": "s"}
    assert all(m.meta == {} and (m.content == "" or not m.tool_calls) for m in c.messages)
    assert c.role_order_problems() == []


# -- HF ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_hf_export_typed_structured_and_without_local_paths(tmp_path):
    from datasets import load_from_disk

    r = export_conversations([tool_conv(0, parallel=True), plain_conv(1)], "hf", tmp_path / "ds")
    assert r.checked_as == "hf"
    ds = load_from_disk(str(tmp_path / "ds"))
    row = ds[0]
    assert row["messages"][1]["tool_calls"] == [
        {
            "id": "call_0a",
            "type": "function",
            "function": {"name": "synthetic_lookup", "arguments": '{"query":"value-0"}'},
        },
        {
            "id": "call_0b",
            "type": "function",
            "function": {"name": "synthetic_lookup", "arguments": '{"query":"other-0","n":[1,2]}'},
        },
    ]
    assert json.loads(row["tools"]) == [_tool("synthetic_lookup", "query")]
    assert json.loads(row["meta"])["assistant_model"] == "tiny-model-v1"
    assert ds[1]["tools"] is None and str(Path.home()) not in json.dumps(ds.to_list())
    back = read_conversations(tmp_path / "ds")
    assert [c.tool_calls for c in back] == [tool_conv(0, parallel=True).tool_calls, []]


# -- export RUN_DIR and the CLI ----------------------------------------------------------------------


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "dialforge.cli", *args], capture_output=True, text=True)


def _run_dir(tmp_path: Path) -> Path:
    """The layout `dialforge run` leaves: simulate/NAME/{conversations,filtered,final}.jsonl."""
    run = tmp_path / "run"
    a, b = run / "simulate/alpha", run / "simulate/beta"
    write_conversations([plain_conv(i) for i in range(3)], a / "conversations.jsonl")
    write_conversations([plain_conv(0)], a / "final.jsonl")
    write_conversations([tool_conv(i) for i in range(2)], b / "conversations.jsonl")
    (run / "pipeline.json").write_text("{}")
    return run


def test_export_sources_of_a_run_directory(tmp_path):
    run = _run_dir(tmp_path)
    got = [(s.name, s.path, s.kind) for s in export_sources(run)]
    assert got == [
        ("alpha", run / "simulate/alpha/final.jsonl", "final"),
        ("beta", run / "simulate/beta/conversations.jsonl", "unfiltered"),
    ]
    assert [s.path for s in export_sources(run / "simulate/alpha")] == [run / "simulate/alpha/final.jsonl"]
    with pytest.raises(DialforgeError, match="no conversations here"):
        export_sources(tmp_path / "run/simulate")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DialforgeError, match="no conversations here"):
        export_sources(tmp_path / "empty")


@pytest.mark.slow
def test_cli_export_run_dir_and_check(tmp_path):
    run = _run_dir(tmp_path)
    out = tmp_path / "exp"
    r = _cli("export", str(run), "--to", "openai", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [
        f"alpha: from {run}/simulate/alpha/final.jsonl (final: filtered and deduplicated): exported 1 conversation: "
        f"{out}/alpha.openai.jsonl, {out}/alpha.openai.meta.jsonl; checked as openai: 0 problems",
        f"beta: from {run}/simulate/beta/conversations.jsonl (unfiltered: the folder has no final.jsonl): "
        f"exported 2 conversations: {out}/beta.openai.jsonl, {out}/beta.openai.meta.jsonl; "
        "checked as openai: 0 problems",
    ]
    r = _cli("check", str(out / "beta.openai.jsonl"), "--for", "openai")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", f"{out}/beta.openai.jsonl: 0 problems for openai\n")
    canonical = run / "simulate/alpha/final.jsonl"
    r = _cli("check", str(canonical), "--for", "openai")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stdout.splitlines()[0] == (f"{canonical}:1: field 'id': {NOT_TOP}")
    assert r.stderr == f"error: {canonical}: 3 problems for openai\n"
    r = _cli("export", str(run), "--to", "llamafactory", "--out", str(out / "lf"))
    assert r.returncode == 0, r.stderr
    assert set(json.loads((out / "lf/dataset_info.json").read_text())) == {"alpha", "beta"}
    r = _cli("check", str(out / "lf"), "--for", "llamafactory")
    assert r.returncode == 0, r.stdout
    r = _cli("check", str(out / "lf"), "--for", "axolotl")
    assert (r.returncode, r.stderr.strip()) == (
        2,
        "error: unknown consumer 'axolotl' (expected one of openai, trl, llamafactory, hf)",
    )


# -- TRL: a real gradient step with assistant_only_loss -------------------------------------------

# ChatML that renders `tools` and `tool_calls` (arguments as OpenAI's JSON string), with the
# {% generation %} markers assistant_only_loss needs.
TOOL_TEMPLATE = (
    "{% if tools %}<|im_start|>system\nTools: {{ tools | tojson }}<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['role'] == 'assistant' %}{% generation %}"
    "{% if m['content'] %}{{ m['content'] }}{% endif %}"
    "{% if m['tool_calls'] %}{% for c in m['tool_calls'] %}<tool_call>{\"name\": \"{{ c['function']['name'] }}\", "
    "\"arguments\": {{ c['function']['arguments'] }}}</tool_call>{% endfor %}{% endif %}"
    "<|im_end|>{% endgeneration %}"
    "{% else %}{{ m['content'] }}<|im_end|>{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tool_model(tiny_model_dir, tmp_path_factory):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = TOOL_TEMPLATE
    path = tmp_path_factory.mktemp("toolmodel")
    tok.save_pretrained(path)
    import shutil

    for f in Path(tiny_model_dir).iterdir():
        if f.suffix in (".json", ".safetensors") and not (path / f.name).exists():
            shutil.copy(f, path / f.name)
    return path, tok


def _sft_step(model_dir: Path, tok, data: Path, out: Path):
    import torch
    from datasets import load_dataset
    from trl import SFTConfig, SFTTrainer

    ds = load_dataset("json", data_files=str(data), split="train")
    args = SFTConfig(
        output_dir=str(out),
        max_steps=1,
        per_device_train_batch_size=2,
        assistant_only_loss=True,
        max_length=512,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        learning_rate=1e-2,
    )
    trainer = SFTTrainer(model=str(model_dir), args=args, train_dataset=ds, processing_class=tok)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    result = trainer.train()
    moved = sum(not torch.equal(a, b.detach()) for a, b in zip(before, trainer.model.parameters(), strict=True))
    return trainer, result, moved


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["openai", "trl"])
def test_trl_trains_on_the_export_with_tools(tool_model, tmp_path, fmt):
    model_dir, tok = tool_model
    data = tmp_path / f"d.{fmt}.jsonl"
    export_conversations([tool_conv(i) for i in range(4)], fmt, data)
    trainer, result, moved = _sft_step(model_dir, tok, data, tmp_path / "o")
    assert result.global_step == 1 and result.training_loss > 0 and moved > 0
    ex = trainer.train_dataset[1]
    text = tok.decode(ex["input_ids"])
    # the tools reached the chat template as data (the row's own schema, no other row's keys)
    tools = json.dumps([_tool("synthetic_counter", "label")])
    assert f"Tools: {tools}" in text
    # the loss is on the assistant's call and answer only
    trained = tok.decode([t for t in ex["labels"] if t != -100])
    assert trained == (
        '<tool_call>{"name": "synthetic_counter", "arguments": {"label":"value-1"}}</tool_call><|im_end|>'
        "SYNTHETIC answer 1.<|im_end|>"
    )


@pytest.mark.slow
def test_trl_trains_on_the_plain_openai_export(tiny_model_dir, data_dir, tmp_path):
    from transformers import AutoTokenizer

    convs = read_conversations(data_dir / "oasst/en_100_tree.jsonl", "oasst-best")[:6]
    data = tmp_path / "plain.jsonl"
    export_conversations(convs, "openai", data)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    trainer, result, moved = _sft_step(tiny_model_dir, tok, data, tmp_path / "o")
    assert result.global_step == 1 and result.training_loss > 0 and moved > 0
    assert "tools" not in trainer.train_dataset.column_names
