"""The format registry as the one seam: a format entry's reader, writers and seed rule; every
list of format names derives from it; io's modules read, write and keep files safe apart."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from dialforge import Conversation
from dialforge.errors import DialforgeError, RecordError
from dialforge.io import files, output, registry, report
from dialforge.io.check import CONSUMERS
from dialforge.io.prompts import PROMPT_FIELDS
from dialforge.io.registry import (
    EXPORT_FORMATS,
    WRITE_FORMATS,
    Export,
    ExportFormat,
    Format,
    check_export_format,
    exporter,
)
from dialforge.io.seeds import not_an_opening, seed_text
from dialforge.io.writers import Writer, as_export, jsonl_writer
from dialforge.score.export import CHECKED_AS, export_conversations, export_target

IO = Path(__file__).resolve().parents[1] / "src" / "dialforge" / "io"


def _conv(*turns: str) -> Conversation:
    roles = ["user", "assistant"]
    return Conversation.from_messages([{"role": roles[i % 2], "content": t} for i, t in enumerate(turns)])


def test_every_list_of_format_names_derives_from_the_registry():
    assert WRITE_FORMATS == ("openai", "sharegpt", "hf")
    assert EXPORT_FORMATS == ("openai", "sharegpt", "hf", "llamafactory", "trl")
    assert EXPORT_FORMATS == tuple(f.name for f in registry.FORMATS if f.export is not None)
    assert registry.export_format_names() == EXPORT_FORMATS
    from dialforge.score import EXPORT_FORMATS as score_names

    assert score_names == EXPORT_FORMATS
    assert get_args(ExportFormat) == EXPORT_FORMATS
    assert CHECKED_AS == {"openai": "openai", "hf": "hf", "llamafactory": "llamafactory", "trl": "trl"}


def test_export_format_type_and_check_refuse_other_names():
    class Cfg(BaseModel):
        export: list[ExportFormat] = ["sharegpt"]

    assert Cfg(export=["trl", "llamafactory"]).export == ["trl", "llamafactory"]
    with pytest.raises(ValidationError, match="Input should be 'openai', 'sharegpt', 'hf', 'llamafactory' or 'trl'"):
        Cfg(export=["axolotl"])
    assert Cfg.model_json_schema()["properties"]["export"]["items"]["enum"] == list(EXPORT_FORMATS)
    assert check_export_format("hf") == "hf"
    with pytest.raises(ValueError, match=r"^unknown export format 'x' \(expected one of openai, sharegpt, hf, "):
        check_export_format("x")


def test_unknown_formats_name_the_registrys_own(tmp_path):
    with pytest.raises(DialforgeError, match=r"^unknown output format 'trl' \(expected one of openai, sharegpt, hf\)$"):
        output.write_conversations([], tmp_path / "o.jsonl", "trl")  # an export, not a convert format
    with pytest.raises(DialforgeError, match=r"^unknown export format 'oasst' \(expected one of openai, sharegpt, "):
        export_conversations([], "oasst", tmp_path / "o.jsonl")
    assert not list(tmp_path.iterdir())


def test_every_export_is_checked_by_a_consumer_the_check_knows():
    for f in registry.FORMATS:
        if f.export is not None:
            assert f.export.check_as is None or f.export.check_as in CONSUMERS, f.name
    assert exporter("sharegpt").check_as is None


def test_export_target_follows_each_formats_layout():
    out = Path("/o")
    assert {fmt: export_target(out, "sim", fmt) for fmt in EXPORT_FORMATS} == {
        "openai": out / "sim.openai.jsonl",
        "trl": out / "sim.trl.jsonl",
        "sharegpt": out / "sim.sharegpt.json",
        "hf": out / "sim",
        "llamafactory": out,  # one dataset folder, one dataset_info.json entry per simulator
    }
    assert [fmt for fmt in EXPORT_FORMATS if exporter(fmt).folder] == ["hf", "llamafactory"]


def test_a_new_export_format_is_one_entry(tmp_path, monkeypatch):
    """A format with an export writer works through `export` as soon as it is registered."""

    def to_lines(c: Conversation) -> dict:
        return {"turns": [m.content for m in c.messages]}

    toy = Format("toy", "turns as strings", export=Export(as_export(jsonl_writer(to_lines)), suffix=".jsonl"))
    monkeypatch.setitem(registry.BY_NAME, "toy", toy)
    assert toy.kinds == "write"
    r = export_conversations([_conv("hi", "hello"), _conv("a", "b")], "toy", tmp_path / "t.jsonl")
    assert (r.written, r.paths, r.checked_as) == (2, [tmp_path / "t.jsonl"], None)
    assert (tmp_path / "t.jsonl").read_bytes() == b'{"turns":["hi","hello"]}\n{"turns":["a","b"]}\n'
    assert export_target(tmp_path, "sim", "toy") == tmp_path / "sim.toy.jsonl"


def test_writer_folder_outputs_refuse_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(DialforgeError, match="is a file; this output is a folder"):
        output.write_conversations([_conv("q", "a")], tmp_path / "f", "hf")
    w = Writer(lambda convs, path: len(list(convs)), folder=True)
    assert registry.writer("hf").folder and w.folder and not registry.writer("openai").folder


# -- seed rules ------------------------------------------------------------------------------


def test_a_conversation_formats_seed_is_its_first_user_turn_unless_its_entry_says_otherwise():
    rec = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q1"}]}
    assert seed_text(rec) == "q1"
    # alpaca's rule: the instruction (and input) as a prompt, not the conversation it reads
    assert registry.BY_NAME["alpaca"].seed_rule is PROMPT_FIELDS
    assert seed_text({"instruction": "Do it.", "input": "x", "output": "done", "text": "T"}) == "T"
    # a format with a parser and no rule of its own: the first user turn of what it reads
    toy = Format("toy", "", parse=lambda rec: [_conv(rec["q"], "a")])
    assert toy.seed_rule.text({"q": "hi"}) == "hi"
    answers = Format("toy", "", parse=lambda rec: [Conversation.from_messages([{"role": "assistant", "content": "a"}])])
    with pytest.raises(RecordError, match="^a toy conversation without a user turn$"):
        answers.seed_rule.text({})
    # no parser, no rule: a prompt record's field
    assert Format("plain", "").seed_rule is PROMPT_FIELDS


def test_oasst_flat_messages_seed_only_their_openings():
    opening = {"message_id": "a", "parent_message_id": None, "role": "prompter", "text": "Hi?"}
    answer = {"message_id": "b", "parent_message_id": "a", "role": "assistant", "text": "Hello"}
    inner = {"message_id": "c", "parent_message_id": "b", "role": "prompter", "text": "More?"}
    assert [not_an_opening(r) for r in (opening, answer, inner)] == [False, True, True]
    assert seed_text(opening) == "Hi?"
    assert not not_an_opening({"text": "t"}) and not not_an_opening("a string")


def test_read_seeds_counts_non_openings_and_skips_bad_records(tmp_path):
    from dialforge.io import read_seeds

    recs = [
        {"message_id": "a", "parent_message_id": None, "role": "prompter", "text": "Hi?"},
        {"message_id": "b", "parent_message_id": "a", "role": "assistant", "text": "Hello"},
        {"nothing": 1},
        {"question": "Why?"},
    ]
    p = tmp_path / "s.jsonl"
    p.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in recs))
    rep = report.ReadReport(path=str(p))
    assert read_seeds(p, on_error="skip", report=rep) == ["Hi?", "Why?"]
    assert (rep.records, rep.conversations, rep.not_openings, rep.n_skipped) == (4, 2, 1, 1)
    assert str(rep.skipped[0]).startswith(f"{p}:3: no prompt field: expected one of text, prompt, question")
    with pytest.raises(RecordError, match=r":3: no prompt field"):
        read_seeds(p)


# -- io's own layers -------------------------------------------------------------------------


def _io_imports(module: str) -> set[str]:
    """The io modules `module` imports (any import, lazy ones included)."""
    out = set()
    for node in ast.walk(ast.parse((IO / f"{module}.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out |= {node.module} if node.module else {a.name for a in node.names}
    return out


def test_io_reads_writes_and_keeps_files_safe_in_separate_modules():
    assert _io_imports("files") == set() and _io_imports("report") == set()
    assert _io_imports("prompts") == {"chat_formats", "formats"}
    for writing in ("writers", "llamafactory", "output"):
        assert not _io_imports(writing) & {"reader", "seeds", "report"}, writing
    assert not _io_imports("registry") & {"reader", "seeds", "output", "files"}
    assert not _io_imports("seeds") & {"reader", "output", "writers"}
    assert "reader" not in _io_imports("oasst_messages")


def test_old_import_paths_name_the_same_objects():
    from dialforge.io import ReadReport, atomic_write_bytes, write_conversations
    from dialforge.io import reader as r

    assert r.atomic_write_bytes is files.atomic_write_bytes is atomic_write_bytes
    assert r.aside_path is files.aside_path and r.atomic_open is files.atomic_open
    assert r.atomic_writer is files.atomic_open and r.check_output is files.check_output
    assert r.remove_stale_temps is files.remove_stale_temps
    assert r.ReadReport is report.ReadReport is ReadReport and r.OnError is report.OnError
    assert r.write_conversations is output.write_conversations is write_conversations
    assert r.WRITE_FORMATS is WRITE_FORMATS
