"""The report: number and text formatting, reading run directories (pipeline, standalone
simulate, missing keys, bad lines), the embedded data, A/B intervals, and the page in headless
Chromium (no console errors, filters driven through the URL hash and by script, XSS inert)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dialforge.report import read_run, read_runs, render, write_report
from dialforge.report.ab import bootstrap_ci, differences
from dialforge.report.format import DASH, clean, cut, fmt_axis, fmt_metric, fmt_number, nice_ticks
from dialforge.report.payload import Payload, build, decode, messages
from dialforge.score.registry import get

ROOT = Path(__file__).resolve().parents[1]
XSS = '<script>document.title="PWNED";document.body.setAttribute("data-pwned","1")</script>'
XSS_IMG = "<img src=x onerror=\"document.body.setAttribute('data-pwned','2')\">"


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("Debian chromium is not installed (.ci/run installs it with apt-get; it failed or is not root)")
    return path


def _payload(html: str) -> Payload:
    meta = re.search(r'id="report-data">([A-Za-z0-9+/=]+)</script>', html).group(1)
    text = re.search(r'id="report-text">([A-Za-z0-9+/=]+)</script>', html).group(1)
    return decode(meta, text)


# -- formatting -------------------------------------------------------------------------------
def test_numbers_are_formatted_per_metric():
    ds = lambda n: get(n, "dataset")  # noqa: E731
    assert fmt_metric(1280.347, ds("mtld")) == "1,280.3"
    assert fmt_metric(0.84213, ds("distinct_1")) == "0.842"
    assert fmt_metric(25, ds("conversations")) == "25"
    assert fmt_metric(1234567, ds("conversations")) == "1,234,567"
    assert fmt_metric(-0.0, ds("strategy_entropy_bits")) == "0.0"  # never "-0.0"
    assert fmt_metric(-0.00001, ds("self_bleu")) == "0.000"
    assert fmt_metric(None, ds("strategy_coverage")) == DASH
    assert fmt_metric(float("nan"), ds("mtld")) == DASH
    assert fmt_metric("None", ds("mtld")) == DASH  # text where a number belongs is not shown as a number
    assert fmt_metric(True, get("workflow_success")) == "yes"
    assert fmt_metric(0.5, ds("embedding_mean_cosine")) == "0.500"  # range [-1, 1]: three decimals
    assert fmt_metric(7.25, get("judge_mean")) == "7.2"  # 1..10: one decimal
    assert fmt_number(3, 2) == "3" and fmt_number(3.0, 2) == "3.00"
    assert fmt_number(float("inf")) == DASH


def test_axis_ticks_are_short_and_round():
    assert fmt_axis(122_000) == "122k" and fmt_axis(1.22e6) == "1.2M" and fmt_axis(0.25) == "0.25"
    assert fmt_axis(-0.0) == "0" and fmt_axis(1500) == "1500" and fmt_axis(0.1 + 0.2) == "0.3"
    assert nice_ticks(0, 1, 5) == [0, 0.25, 0.5, 0.75, 1]
    assert nice_ticks(3, 1283, 5) == [250, 500, 750, 1000, 1250]
    assert nice_ticks(2, 2) == [2]


def test_text_is_cleaned_and_cut_with_an_ellipsis():
    assert clean("a\x00b\x1bc\td\r\ne\x7f\x85\ud800") == "abc\td\ne"
    assert cut("word " * 10, 12) == "word word w…" and len(cut("x" * 50, 12)) == 12
    assert cut("short", 12) == "short" and cut(None, 5) == ""
    assert cut("line\none", 20) == "line one"


# -- fixtures: run directories written as the pipeline writes them ------------------------------
def _conv(cid, user, reason="max_turns", seed="s0", sample=0, strategy=None, turns=2):
    msgs = []
    for t in range(turns):
        m = {"role": "user", "content": f"{user} turn {t}"}
        if strategy:
            m["meta"] = {"strategy_id": strategy, "strategy": "ask for an example"}
        msgs += [m, {"role": "assistant", "content": f"answer {t} to {user}"}]
    meta = {"termination_reason": reason, "seed_id": seed, "sample_index": sample, "user_turns": turns}
    return {"id": cid, "messages": msgs, "meta": meta}


def _jsonl(path: Path, recs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))


def _sim_dir(d: Path, convs, scores, model="served-model", warnings=(), summary=None) -> None:
    _jsonl(d / "conversations.jsonl", convs)
    _jsonl(d / "scores.jsonl", scores)
    _jsonl(d / "final.jsonl", convs[: len(convs) // 2])
    (d / "manifest.json").write_text(
        json.dumps(
            {
                "command": "simulate",
                "config": {"mode": d.name},
                "models": {"user": model, "assistant": model},
                "stages": {"simulate": {"warnings": list(warnings)}},
            }
        )
    )
    (d / "scores_summary.json").write_text(json.dumps({"dataset": summary or {"conversations": len(convs)}}))
    (d / "usage.json").write_text(
        json.dumps(
            {
                "stages": {
                    f"simulate.{role}": {
                        model: {
                            "calls": 10,
                            "prompt_tokens": 100,
                            "completion_tokens": 50,
                            "retries": 1,
                            "cache_hits": 2,
                            "failures": 0,
                            "latency_s": 1.5,
                        }
                    }
                    for role in ("user", "assistant")
                },
                "stage_wall_s": {"simulate": 3.0},
            }
        )
    )


def _library(run: Path, n: int = 4, text: str = "strategy") -> None:
    strategies = []
    for i in range(n):
        centroid = [0.0] * 8
        centroid[i % 8] = 1.0
        strategies.append(
            {
                "id": f"s-{i}",
                "text": f"{text} {i}",
                "size": n - i,
                "members": [f"m{i}", f"m{i}b"],
                "examples": [{"instruction": f"example source turn {i}"}],
                "centroid": centroid,
            }
        )
    (run / "induce").mkdir(parents=True, exist_ok=True)
    (run / "induce" / "library.json").write_text(
        json.dumps(
            {
                "strategies": strategies,
                "counts": {"extracted": 9},
                "embedder": "e",
                "method": "butina",
                "threshold": 0.5,
                "abstraction_model": "served-model",
            }
        )
    )


def _pipeline_run(tmp_path: Path, n: int = 30) -> Path:
    """Two simulators on the same seeds: b's mtld is a's + 1, b ends on rejections."""
    run = tmp_path / "run"
    for name, reason, bump in (("a", "max_turns", 0.0), ("b", "rejections", 1.0)):
        convs = [
            _conv(f"{name}{i:03d}", f"{name} user {i}", reason, f"seed{i}", strategy=f"s-{i % 2}") for i in range(n)
        ]
        scores = [
            {"id": c["id"], "user_turns": 2, "mtld": 10.0 + i + bump, "distinct_1": 0.5} for i, c in enumerate(convs)
        ]
        summary = {"conversations": n, "mtld": 1280.347, "distinct_1": 0.5, "strategy_entropy_bits": -0.0}
        _sim_dir(run / "simulate" / name, convs, scores, warnings=[f"{n}/{n} ended on {reason}"], summary=summary)
    _library(run)
    stages = {
        "select.a": {
            "conversations": n,
            "failed": 1,
            "kept_after_filter": 20,
            "kept_after_dedup": 15,
            "dedup_removed": 5,
            "final": "simulate/a/final.jsonl",
            "exports": {"sharegpt": "export/a.sharegpt.jsonl"},
        },
    }
    # the pipeline repeats a's stage warning (it is also in a's manifest): shown once
    warnings = ["b: kept 0 of 30", "a: simulate: 30/30 ended on max_turns"]
    (run / "pipeline.json").write_text(json.dumps({"stages": stages, "warnings": warnings}))
    return run


def test_pipeline_run_is_read_into_funnel_usage_and_warnings(tmp_path):
    run = read_run(_pipeline_run(tmp_path))
    a, b = run.sims
    assert (a.key, b.key) == ("a", "b") and len(a.conversations) == 30
    f = a.funnel
    assert (f.generated, f.kept_after_filter, f.kept_after_dedup, f.dedup_removed) == (30, 20, 15, 5)
    assert f.final == "simulate/a/final.jsonl" and f.exports == {"sharegpt": "export/a.sharegpt.jsonl"}
    assert f.reasons == {"max_turns": 30}
    # b has no select stage: the final file is counted, the filter step is unknown
    assert b.funnel.kept_after_filter is None and b.funnel.kept_after_dedup == 15
    assert b.funnel.reasons == {"rejections": 30}
    assert run.warnings == [
        "b: kept 0 of 30",
        "a: simulate: 30/30 ended on max_turns",
        "simulate/b: 30/30 ended on rejections",
    ]
    assert f.failed == 1 and b.funnel.failed is None
    assert not run.tiny
    assert len(run.usage) == 2 and run.usage[0].stages["simulate.user"]["served-model"]["calls"] == 10


def test_page_shows_definitions_directions_funnel_usage_and_warnings_first(tmp_path):
    html = render([_pipeline_run(tmp_path)])
    main = html.split("<main>", 1)[1]
    assert main.index('id="warnings"') < main.index('id="overview"')  # warnings at the top
    assert "b: kept 0 of 30" in html and "tiny-notice" not in html
    # every shown metric with its definition and direction; numbers per metric; no -0.0, no None
    assert "lexical diversity of all user turns" in html and "higher is better ↑" in html
    assert ">1,280.3<" in html and ">0.0<" in html and "-0.0" not in html and ">None<" not in html
    assert "strategy_coverage" in html  # shown ("—") although no simulator has it: a library exists
    # the funnel with its paths; usage totals overall and per role
    assert "export/a.sharegpt.jsonl" in html and "simulate/a/final.jsonl" in html and "after dedup (5 removed)" in html
    totals = re.search(r'<table class="usage-totals">.*?</table>', html).group(0)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", totals)
    assert cells[:7] == ["all roles", "40", "400", "200", "8", "4", "0"]
    assert cells[7:14] == ["assistant", "20", "200", "100", "4", "2", "0"]
    # A/B: b - a on the same seeds is exactly +1 for mtld
    ab = re.search(r"<h3>b − a</h3><table.*?</table>", html).group(0)
    row = re.search(r"<tr><td class=\"l\">mtld</td>(.*?)</tr>", ab).group(1)
    assert re.findall(r">([^<]*)<", row)[::2][:6] == ["24.50", "25.50", "1.00", "[1.00, 1.00]", "yes", "30 pairs"]
    # every strategy is on the map and in the data (not only the top 15)
    assert html.count('<circle class="strategy"') == 4


def test_every_dialogue_is_embedded_compressed(tmp_path):
    run = _pipeline_run(tmp_path, n=250)
    html = render([run])
    page = _payload(html)
    data = page.meta
    assert len(data["convs"]) == 500 and data["sims"] == ["a", "b"]
    assert [m["name"] for m in data["metrics"]] == ["user_turns", "distinct_1", "mtld"]
    first = data["convs"][0]
    assert first[1] == "a000" and data["reasons"][first[2]] == "max_turns" and first[4] == [2, 0.5, 10.0]
    assert first[5] == "uaua" and first[6] == [0, -1, 0, -1] and first[3] == [0] and first[7] == 0
    assert messages(page, 0)[:2] == [("u", "a user 0 turn 0"), ("a", "answer 0 to a user 0")]
    assert messages(page, 499)[-1] == ("a", "answer 1 to b user 249")
    assert page.text.count("\x1e") == 500 * 4 - 1
    assert data["strategies"][1] == {
        "id": "s-1",
        "text": "strategy 1",
        "size": 3,
        "members": 2,
        "examples": ["example source turn 1"],
        "used": {"a": 250, "b": 250},
    }
    blobs = re.findall(r'<script type="application/gzip-base64" id="report-(?:data|text)">([A-Za-z0-9+/=]+)</', html)
    assert len(blobs) == 2 and sum(map(len, blobs)) < 0.5 * (len(json.dumps(data)) + len(page.text))  # compressed


def _hostile_run(tmp_path: Path) -> Path:
    """Hostile markup and control characters in every text field a run can carry."""
    run = tmp_path / "run"
    bad = f"{XSS}{XSS_IMG}\x1b[31m\x00"
    conv = _conv(bad, bad, reason=bad, seed=bad, strategy="s-0")
    conv["messages"][0]["meta"]["strategy"] = bad
    _sim_dir(run / "simulate" / "x", [conv], [{"id": bad, "mtld": 1.0}], model=bad, warnings=[bad])
    _library(run, 2, text=bad)
    (run / "pipeline.json").write_text(json.dumps({"stages": {}, "warnings": [bad], "config": {"note": bad}}))
    return run


def test_hostile_text_is_escaped_and_control_characters_removed(tmp_path):
    html = render([_hostile_run(tmp_path)])
    assert "<script>document.title" not in html and "<img src=x" not in html
    assert "&lt;script&gt;document.title=&quot;PWNED&quot;" in html
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f]", html)
    # in the data the text is kept (as text) and cleaned
    assert messages(_payload(html), 0)[0] == ("u", f"{XSS}{XSS_IMG}[31m turn 0")


def test_standalone_run_with_bad_lines_and_missing_files(tmp_path):
    run = tmp_path / "sim"
    _sim_dir(run, [_conv("c1", "hello"), _conv("c2", "there")], [{"id": "c1", "mtld": 3.0}], model="dialforge-tiny")
    with (run / "conversations.jsonl").open("a") as f:
        f.write("{not json\n")
    (run / "final.jsonl").unlink()
    (run / "scores_summary.json").write_text("{oops")
    r = read_run(run)
    assert len(r.sims) == 1 and len(r.sims[0].conversations) == 2 and r.tiny
    assert any(w.startswith(f"{run / 'conversations.jsonl'}:3: 1 line(s)") for w in r.warnings)
    assert any("scores_summary.json: not valid JSON" in w for w in r.warnings)
    assert r.sims[0].funnel.final is None and r.sims[0].funnel.kept_after_dedup is None
    out = write_report([run], tmp_path / "r.html")
    html = out.read_text()
    assert 'id="tiny-notice"' in html and "conversations.jsonl:3" in html


def test_two_runs_with_the_same_simulator_names_get_distinct_labels(tmp_path):
    a = _pipeline_run(tmp_path / "one")
    b = _pipeline_run(tmp_path / "two")
    runs = read_runs([a, b])
    labels = [s.label for r in runs for s in r.sims]
    assert len(set(labels)) == 4
    assert build(runs).meta["sims"] == labels


def test_bootstrap_interval_and_unpaired_fallback(tmp_path):
    import numpy as np

    lo, hi = bootstrap_ci(np.array([1.0, 1.0, 1.0]))
    assert lo == hi == 1.0
    lo, hi = bootstrap_ci(np.arange(100.0))
    assert 40 < lo < 49.5 < hi < 59
    assert bootstrap_ci(np.array([3.0])) == (None, None)
    run = read_run(_pipeline_run(tmp_path, n=10))
    a, b = run.sims
    for c in b.conversations:
        c["meta"]["seed_id"] = "other-" + c["meta"]["seed_id"]  # no shared seeds: unpaired
    d = {x.metric: x for x in differences(a, b, ["mtld", "distinct_1", "judge_mean"])}
    assert set(d) == {"mtld", "distinct_1"} and not d["mtld"].paired
    assert math.isclose(d["mtld"].diff, 1.0) and d["mtld"].lo < 1.0 < d["mtld"].hi


@pytest.mark.slow  # importing dialforge.realism (scikit-learn) takes ~2 s
def test_realism_cards_are_shown_with_the_floor(tmp_path):
    from dialforge.realism import write_card
    from dialforge.realism.card import (
        Discriminator,
        FirstTurns,
        Mauve,
        Overall,
        RealismCard,
        RoleAdherence,
        Side,
    )

    def card(auc: float) -> RealismCard:
        return RealismCard(
            sim=Side(conversations=10, user_turns=20, groups=10),
            real=Side(conversations=12, user_turns=30, groups=12),
            seed=0,
            discriminator=Discriminator(auc=auc, ci95=(auc - 0.05, auc + 0.05), n_per_side=20, folds=5),
            mauve=Mauve(mauve=0.4, null05=0.8, n_per_side=20, clusters=2, pca_dims=2, scaling=5.0),
            distances={},
            first_turns=FirstTurns(n_per_side=10, sim_distinct2=0.5, real_distinct2=0.9, sim_vendi=3.0, real_vendi=8.0),
            role_adherence=RoleAdherence(
                sim_phrase_share=0.3,
                real_phrase_share=0.01,
                sim_classifier_share=None,
                real_classifier_share=None,
                classifier_auc=None,
                n_sim=20,
                n_real_user=30,
                n_real_assistant=30,
            ),
            overall=Overall(score=0.25, components={}, definition="d"),
            warnings=["only 20 turns"],
        )

    run = _pipeline_run(tmp_path, n=5)
    write_card(card(0.91), run / "simulate" / "a")
    write_card(card(0.52), run / "simulate" / "a", "realism_floor.json")
    (run / "simulate" / "b" / "realism_card.json").write_text("{}")  # unreadable: a warning, not a crash
    state = json.loads((run / "pipeline.json").read_text())
    state["warnings"].append("only 20 turns")  # the pipeline copies card caveats without the name
    (run / "pipeline.json").write_text(json.dumps(state))
    r = read_run(run)
    assert r.sims[0].realism is not None and r.sims[0].floor is not None and r.sims[1].realism is None
    # a card's caveats are listed apart, labelled; the health warnings are pipeline.json's own
    assert r.caveats == ["a realism: only 20 turns", "realism floor: only 20 turns"]
    assert not any("only 20 turns" in w for w in r.warnings)
    assert any("b/realism_card.json: not a realism card" in w for w in r.warnings)
    html = render([run])
    table = re.search(r'<table class="realism">.*?</table>', html).group(0)
    assert "real vs real (floor)" in table and "0.910 [0.860, 0.960]" in table and "0.520 [0.470, 0.570]" in table


# -- in the browser -------------------------------------------------------------------------------
def _load(page, then, **kw):
    from dialforge.report.browser import load

    _chromium()
    return load(page, then, **kw)


def _run_cli(args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "dialforge.cli", *args], capture_output=True, text=True, cwd=ROOT, env=env
    )


INJECTED = (
    "<script>document.title='PWNED';document.body.setAttribute('data-pwned','1')</script>"
    "<img src=x onerror=\"document.body.setAttribute('data-pwned','2')\">"
)


def _injected_run(tmp_path) -> Path:
    """A small real run (the persona simulator on a loopback server) with a hostile turn."""
    import asyncio

    from dialforge.llm import backend_config
    from dialforge.simulate import SimulateConfig, simulate_async
    from dialforge.testing import FakeOpenAIServer

    with FakeOpenAIServer(reply=lambda b: INJECTED + " " + str(len(json.dumps(b)))) as srv:
        cfg = SimulateConfig(
            mode="persona",
            personas=["a tester"],
            seeds={"questions": [str(ROOT / "data/oasst/en_100_text.jsonl")], "limit": 3},
            max_turns=2,
            user=backend_config(model="u", base_url=srv.base_url),
            assistant=backend_config(model="a", base_url=srv.base_url),
            stop={"role_flip": False, "repeat_similarity": 1.0},
        )
        asyncio.run(simulate_async(cfg, tmp_path / "run", progress=False))
    return tmp_path / "run"


@pytest.mark.slow
def test_report_in_headless_chromium(tmp_path):
    chromium = _chromium()
    run = _injected_run(tmp_path)
    r = _run_cli(["report", str(run)])
    assert r.returncode == 0, r.stderr
    page = run / "report.html"
    open_all = "document.querySelectorAll('#dialogue-table tr.row').forEach(function (t) { t.click(); }); 1"
    res = _load(
        page,
        [
            "document.body.getAttribute('data-matches')",
            open_all,
            "document.querySelectorAll('.msg').length",
            "document.querySelector('#dialogue-table').innerText.indexOf(\"<script>document.title='PWNED'\") >= 0",
            "document.title + '|' + document.body.getAttribute('data-pwned')",
        ],
    )
    assert res.ready == "yes" and res.errors == []
    matches, _, n_msgs, shown_as_text, title = res.results
    assert matches == "3" and n_msgs >= 3 * 3
    assert shown_as_text  # the markup shows as text ...
    assert title == "dialforge report|null"  # ... and neither the script nor the onerror handler ran
    # a screenshot is not blank: a blank page of the same size compresses to a fraction of it
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        f"--user-data-dir={tmp_path / 'p'}",
        "--window-size=1200,1600",
        "--virtual-time-budget=3000",
    ]
    (tmp_path / "blank.html").write_text("<!DOCTYPE html><html><body></body></html>")
    for src, shot in ((page, tmp_path / "shot.png"), (tmp_path / "blank.html", tmp_path / "blank.png")):
        s = subprocess.run([chromium, *flags, f"--screenshot={shot}", src.as_uri()], capture_output=True, timeout=120)
        assert s.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "shot.png").stat().st_size > 5 * (tmp_path / "blank.png").stat().st_size


@pytest.mark.slow
def test_hostile_text_in_every_field_stays_inert_in_chromium(tmp_path):
    page = write_report([_hostile_run(tmp_path)], tmp_path / "r.html")
    open_all = "document.querySelectorAll('#dialogue-table tr.row').forEach(function (t) { t.click(); }); 1"
    res = _load(
        page,
        [
            open_all,
            "document.querySelector('.msg.u').textContent",
            "document.querySelector('#strategy-table tbody td:nth-child(4)').textContent",
            "document.getElementById('reason').options[1].textContent",
            "document.title + '|' + document.body.getAttribute('data-pwned') + '|' + document.images.length",
        ],
    )
    assert res.ready == "yes" and res.errors == []
    _, msg, strategy, reason, pwned = res.results
    assert msg.endswith(f"{XSS}{XSS_IMG}[31m turn 0") and strategy == f"{XSS}{XSS_IMG}[31m 0"
    assert reason == f"{XSS}{XSS_IMG}[31m"
    assert pwned == "dialforge report|null|0"


@pytest.mark.slow
def test_filters_search_sort_and_strategy_click_in_chromium(tmp_path):
    run = _pipeline_run(tmp_path, n=150)
    convs = run / "simulate" / "b" / "conversations.jsonl"
    lines = convs.read_text().splitlines()
    hostile = json.loads(lines[7])
    hostile["messages"][1]["content"] = f"needle {XSS}{XSS_IMG}"
    lines[7] = json.dumps(hostile)
    convs.write_text("\n".join(lines) + "\n")
    page = write_report([run], tmp_path / "r.html")
    count = "document.body.getAttribute('data-matches')"
    first_id = "document.querySelector('#dialogue-table tr.row').getAttribute('data-id')"
    typed = "(function () { var q = document.getElementById('q'); q.value = 'user 14 '; "
    typed += "q.dispatchEvent(new Event('input')); return location.hash; })()"
    click_map = "document.querySelector('circle.strategy[data-sid=\"s-1\"]').dispatchEvent(new MouseEvent('click')); 1"
    # b's mtld is 11..160; 20 <= mtld <= 40 on a's seeds 9..29 -> b009..b029 (21), of which reason rejections
    res = _load(
        f"{page}#sim=b&reason=rejections&metric=mtld&min=20&max=40&sort=-mtld",
        [
            count,
            first_id,
            typed,
            count,
            "document.getElementById('clear').click(); 1",
            click_map,
            count,
            "document.querySelectorAll('#strategy-table tr.sel').length",
        ],
    )
    assert res.ready == "yes" and res.errors == []
    n, first, hash_after, n_typed, _, _, n_strategy, selected = res.results
    assert n == "21" and first == "b029"  # filtered, sorted by mtld descending
    assert "q=user+14+" in hash_after and n_typed == "1"  # b014 only ("user 14 " not in "user 140")
    assert n_strategy == "150" and selected == 1  # s-1: the odd conversations of a and b
    # search finds hostile text, which stays inert
    open_all = "document.querySelectorAll('#dialogue-table tr.row').forEach(function (t) { t.click(); }); 1"
    pwned = "document.title + '|' + document.body.getAttribute('data-pwned')"
    res = _load(f"{page}#q=needle", [count, open_all, "document.querySelectorAll('.msg').length", pwned])
    assert res.results == ["1", 1, 4, "dialforge report|null"] and res.errors == []


@pytest.mark.slow
def test_report_strategy_map_and_comparison(tmp_path):
    """A pipeline run on the tiny model: strategy map, several simulators compared."""
    out = tmp_path / "qs"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "c")}
    r = subprocess.run(
        [sys.executable, "-m", "dialforge.cli", "run", "examples/quickstart.yaml", "--out", str(out)]
        + ["--model", "dialforge-tiny"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    html = (out / "report.html").read_text()
    n_strategies = len(json.loads((out / "induce/library.json").read_text())["strategies"])
    assert n_strategies >= 2 and html.count('<circle class="strategy"') == n_strategies  # one point per strategy
    assert 'id="compare"' in html and 'id="tiny-notice"' in html and "termination reasons" in html
    assert "principal component 1" in html and "used in this run" in html  # axes and legend
    assert '<table class="realism">' in html and "real vs real (floor)" in html  # the pipeline's realism cards
    assert "failed (error records)" in html and "export/persona.sharegpt.jsonl" in html  # the funnel
    res = _load(
        out / "report.html",
        ["document.body.getAttribute('data-matches')", "document.querySelectorAll('#strategy-table tbody tr').length"],
    )
    assert res.ready == "yes" and res.errors == [] and res.results == ["36", n_strategies]


@pytest.mark.slow
def test_browser_leaves_no_chromium_process_or_profile(tmp_path, monkeypatch):
    """Chromium's helpers outlive the browser for a moment and write into its profile: `load`
    stops the whole process group and removes the profile (CI once failed on 'Directory not
    empty: Default' when the profile was removed while a helper still wrote to it)."""
    import tempfile

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    page = tmp_path / "p.html"
    page.write_text("<html><body data-ready='yes'>synthetic</body></html>")
    res = _load(page, ["1 + 1"])
    assert res.ready == "yes" and res.results == [2]
    assert list(temp.iterdir()) == []
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(temp) not in ps


def test_report_on_a_folder_that_is_no_run_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    r = _run_cli(["report", str(tmp_path / "empty")])
    assert r.returncode == 2
    assert r.stderr == f"error: {tmp_path / 'empty'}: not a run directory (no pipeline.json or manifest.json in it)\n"
    r = _run_cli(["report", str(tmp_path / "missing")])
    assert r.returncode == 2 and r.stderr == f"error: {tmp_path / 'missing'}: no such folder\n"
    assert not (tmp_path / "empty" / "report.html").exists()
