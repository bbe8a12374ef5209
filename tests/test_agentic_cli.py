"""`dialforge agent`: the example over HTTP (fake server), offline on dialforge-tiny, and bad
input as one error line with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dialforge.agentic.fake import agentic_reply
from dialforge.testing import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "agent_tools.yaml"


def test_example_over_http_exports_pass_the_checks(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    with FakeOpenAIServer(reply=agentic_reply()) as srv:
        r = cli(
            "agent",
            "--config",
            str(EXAMPLE),
            "--out",
            str(out),
            "--base-url",
            srv.base_url,
            "--model",
            "fake",
            "--samples",
            "2",
            "--set",
            "goals_per_task=1",
        )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert (summary["conversations"], summary["kept"]) == (6, 6)
    assert summary["tasks"]["all"]["pass^2"] == 1.0
    assert "restaurant_book: 2 conversations, success 1.0, pass^1 1.0, partial 1.0, 4 calls (0 tool errors)" in r.stderr
    for fmt, path in (("openai", out / "exports" / "openai.jsonl"), ("llamafactory", out / "exports" / "llamafactory")):
        c = cli("check", str(path), "--for", fmt)
        assert c.returncode == 0, c.stdout + c.stderr
        assert "0 problems" in c.stdout + c.stderr
    assert json.loads((out / "summary.json").read_text())["kept"] == 6
    # the report shows success on the final state and pass^k per task
    rep = cli("report", str(out), "--out", str(tmp_path / "r.html"))
    assert rep.returncode == 0, rep.stderr
    import re

    html = (tmp_path / "r.html").read_text()
    section = re.search(r'<section id="agent">.*?</section>', html, re.S)
    assert section is not None, "no agent section"
    assert "pass^2" in section.group(0) and "restaurant_book" in section.group(0)
    row = re.search(r"<tr><td[^>]*>all</td>(.*?)</tr>", section.group(0)).group(1)
    assert re.findall(r">([^<]*)</td>", row)[:4] == ["6", "1.00", "1.00", "1.00"]  # convs, success, partial, pass^1


def test_dialforge_run_runs_the_agent_example(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    with FakeOpenAIServer(reply=agentic_reply()) as srv:
        r = cli(
            "run",
            str(EXAMPLE),
            "--out",
            str(out),
            "--base-url",
            srv.base_url,
            "--model",
            "fake",
            "--set",
            "samples=1",
            "--set",
            "goals_per_task=1",
        )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["kept"] == 3
    assert (out / "exports" / "openai.jsonl").read_text().count("\n") == 3


def test_unknown_task_is_one_error_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        "tasks: [restaurant_cancel]\nuser: {model: m, base_url: 'http://127.0.0.1:9/v1'}\n"
        "agent: {model: m, base_url: 'http://127.0.0.1:9/v1'}\n"
    )
    r = cli("agent", "--config", str(cfg), "--out", str(tmp_path / "run"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr
    assert str(cfg) in lines[0] and "tasks" in lines[0] and "unknown task 'restaurant_cancel'" in lines[0]


def test_missing_star_folder_is_one_error_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("agent", "--config", str(EXAMPLE), "--out", str(tmp_path / "run"), "--set", "star_dir=/nonexistent/star")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")
    assert "star_dir" in r.stderr and "/nonexistent/star: no such file or folder" in r.stderr


@pytest.mark.slow
def test_example_runs_offline_on_the_tiny_model(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    r = cli(
        "agent",
        "--config",
        str(EXAMPLE),
        "--out",
        str(out),
        "--model",
        "dialforge-tiny",
        "--samples",
        "1",
        "--set",
        "goals_per_task=1",
        "--set",
        "max_turns=2",
        "--set",
        "tasks=[plane_book]",
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    # random text: no call parses and nothing is booked, so nothing counts as a success
    assert summary["conversations"] == 1 and summary["kept"] == 0
    rec = json.loads((out / "conversations.jsonl").read_text().splitlines()[0])
    assert rec["meta"]["agentic"]["success"] is False and rec["meta"]["termination_reason"] == "max_turns"
    assert rec["tools"][0]["function"]["name"] == "plane_search"


def test_a_star_folder_without_the_domains_file_is_one_error_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "star"
    (empty / "dbs").mkdir(parents=True)
    (empty / "dbs" / "plane.json").write_text(
        '[{"Name": "Price", "Type": "Integer", "Min": "!os.system(1)", "Max": 3}]'
    )
    r = cli(
        "agent",
        "--config",
        str(EXAMPLE),
        "--out",
        str(tmp_path / "run"),
        "--set",
        f"star_dir={empty}",
        "--set",
        "tasks=[hotel_book]",
    )
    assert (r.returncode, r.stderr.count("\n")) == (2, 1)
    assert r.stderr == f"error: {empty / 'dbs' / 'hotel.json'}: no STAR database for domain 'hotel'\n"
    r = cli(
        "agent",
        "--config",
        str(EXAMPLE),
        "--out",
        str(tmp_path / "run2"),
        "--set",
        f"star_dir={empty}",
        "--set",
        "tasks=[plane_book]",
    )
    assert r.returncode == 2 and r.stderr.startswith(f"error: {empty / 'dbs' / 'plane.json'}: field [0].Price: ")
    assert "ValueError: unsupported expression" in r.stderr and "Traceback" not in r.stderr
