# ruff: noqa: E501
"""A sweep of bad inputs across commands, counting tracebacks (the target is 0).

    python benchmarks/bad_input_sweep.py [--work /tmp/df-sweep] [--only SUBSTRING] [--show]

Every case is one command line run the way a user runs it (`dialforge.cli.main`, in a
forked child of one process that imported the CLI once, so 200+ cases take a minute, not
ten): bad data files through every file command, bad filter expressions, output paths we
must not replace, bad YAML configs and `--set` values, bad run directories for `report` and
bad checkpoints. An outcome is one of
- `error`: exit 2 and exactly one line starting `error:` on stderr (the contract);
- `ok`: exit 0 (a bad record skipped and counted under `--on-error skip`, a warning);
- `TRACEBACK`: a Python traceback on stderr, or an exit status other than 0, 2 or 3;
- `other`: anything else (exit 2 with more than one line, say), listed for a look.
The summary line and the table of non-`error`/`ok` outcomes go to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
GOOD = {"id": "g1", "messages": [{"role": "user", "content": "hi there"}, {"role": "assistant", "content": "hello"}]}
TURNS = GOOD["messages"]


def _jsonl(*recs: object) -> bytes:
    return b"".join((json.dumps(r) if not isinstance(r, bytes) else r.decode()).encode() + b"\n" for r in recs)


# -- bad data files: (name, bytes) -----------------------------------------------------------------
def data_files() -> list[tuple[str, str, bytes]]:
    """(name, file suffix, content) of conversation files a user might feed any file command."""
    deep = b'{"id": "d", "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}\n"
    return [
        ("empty file", ".jsonl", b""),
        ("whitespace only", ".jsonl", b"  \n\n \t\n"),
        ("binary", ".jsonl", bytes(range(256)) * 8),
        ("NUL bytes in a line", ".jsonl", b'{"messages": "\x00\x00"}\n'),
        ("broken JSON line", ".jsonl", _jsonl(GOOD) + b'{"id": "x", "messages": [\n'),
        ("broken JSON array", ".json", b'[{"id": "a", "messages": []}, {'),
        ("top-level number", ".json", b"42"),
        ("top-level string", ".json", b'"hello"'),
        ("record is a list", ".jsonl", _jsonl([1, 2, 3])),
        ("record is null", ".jsonl", _jsonl(None)),
        ("messages not a list", ".jsonl", _jsonl({"id": "a", "messages": "hi"})),
        ("message not an object", ".jsonl", _jsonl({"id": "a", "messages": ["hi", "yo"]})),
        ("unknown role", ".jsonl", _jsonl({"id": "a", "messages": [{"role": "wizard", "content": "x"}]})),
        ("content a number", ".jsonl", _jsonl({"id": "a", "messages": [{"role": "user", "content": 5}]})),
        ("content null", ".jsonl", _jsonl({"id": "a", "messages": [{"role": "user", "content": None}]})),
        ("role missing", ".jsonl", _jsonl({"id": "a", "messages": [{"content": "x"}]})),
        ("id an object", ".jsonl", _jsonl(GOOD, {"id": {"a": 1}, "messages": TURNS})),
        ("id a list", ".jsonl", _jsonl({"id": [1], "messages": TURNS})),
        ("id a boolean", ".jsonl", _jsonl({"id": True, "messages": TURNS})),
        ("meta not an object", ".jsonl", _jsonl({"id": "a", "messages": TURNS, "meta": [1]})),
        ("JSON nested 5000 deep", ".jsonl", deep),
        ("UTF-16 without a BOM", ".jsonl", json.dumps(GOOD).encode("utf-16-le") + b"\n\x00"),
        ("invalid UTF-8", ".jsonl", b'{"id": "a", "messages": [{"role": "user", "content": "\xff\xfe"}]}\n'),
        ("ShareGPT bad from", ".jsonl", _jsonl({"conversations": [{"from": "alien", "value": "x"}]})),
        ("ShareGPT value a number", ".jsonl", _jsonl({"conversations": [{"from": "human", "value": 3}]})),
        ("OASST tree without text", ".jsonl", _jsonl({"message_tree_id": "t", "prompt": {"role": "prompter"}})),
        ("no conversations at all", ".jsonl", _jsonl({"hello": "world"})),
        ("strategy_id a list", ".jsonl",
         _jsonl({"id": "a", "messages": [{"role": "user", "content": "x", "meta": {"strategy_id": [1]}}]})),
        ("workflow_eval depth text", ".jsonl",
         _jsonl({"id": "a", "messages": TURNS, "meta": {"workflow_eval": {"depth": "deep"}}})),
        ("a 5000-digit number", ".jsonl", b'{"id": "a", "messages": [], "meta": {"n": ' + b"9" * 5000 + b"}}\n"),
    ]  # fmt: skip


def oasst_message_files() -> list[tuple[str, str, bytes]]:
    def m(mid: str, parent: str | None, role: str = "prompter", **kw: object) -> dict[str, object]:
        return {"message_id": mid, "parent_message_id": parent, "role": role, "text": f"t {mid}", **kw}

    return [
        ("oasst-messages self-loop", ".jsonl", _jsonl(m("a", "a"))),
        ("oasst-messages cycle", ".jsonl", _jsonl(m("x", "y"), m("y", "x", "assistant"))),
        ("oasst-messages repeated id", ".jsonl", _jsonl(m("r", None), m("c", "r", "assistant"), m("r", "c"))),
        ("oasst-messages parent an object", ".jsonl", _jsonl(m("a", None), m("b", {"x": 1}, "assistant"))),  # type: ignore[arg-type]
        ("oasst-messages 2000 deep", ".jsonl",
         _jsonl(m("m0", None), *(m(f"m{i}", f"m{i - 1}", "assistant" if i % 2 else "prompter") for i in range(1, 2001)))),
    ]  # fmt: skip


# -- cases -----------------------------------------------------------------------------------------
Case = tuple[str, Callable[[Path], list[str]]]


def cases(work: Path) -> list[Case]:
    out: list[Case] = []

    def write(name: str, content: bytes | str) -> Path:
        p = work / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
        return p

    def file_cmds(data: Path, tag: str) -> list[tuple[str, list[str]]]:
        o = work / "out" / tag
        return [
            ("convert", ["convert", str(data), str(o / "c.jsonl")]),
            ("convert --on-error skip", ["convert", str(data), str(o / "cs.jsonl"), "--on-error", "skip"]),
            ("stats", ["stats", str(data)]),
            ("score", ["score", str(data), "--no-embedding"]),
            ("filter", ["filter", str(data), "--where", "user_turns >= 1", "--out", str(o / "f.jsonl")]),
            ("dedup", ["dedup", str(data), "--out", str(o / "d.jsonl")]),
            ("export sharegpt", ["export", str(data), "--to", "sharegpt", "--out", str(o / "e.json")]),
        ]

    for i, (name, suffix, content) in enumerate(data_files()):
        data = write(f"data/{i}{suffix}", content)
        for cmd_name, args in file_cmds(data, str(i)):
            out.append((f"{cmd_name}: {name}", lambda _w, a=args: a))
    for i, (name, suffix, content) in enumerate(oasst_message_files()):
        data = write(f"oasst/{i}{suffix}", content)
        o = work / "out" / f"oasst{i}"
        out.append(
            (
                f"convert: {name}",
                lambda _w, d=data, o=o: ["convert", str(d), str(o / "c.jsonl"), "--from", "oasst-messages"],
            )
        )
        out.append((f"stats: {name}", lambda _w, d=data: ["stats", str(d), "--from", "oasst-messages"]))  # fmt: skip

    good = write("good.jsonl", _jsonl(GOOD, {**GOOD, "id": "g2"}))
    # filter expressions
    for expr in [
        "user_turns >=", "user_turns >= 'a'", "(lambda: 1)()", "__import__('os')", "x.y", "x[0]",
        "[i for i in y]", "not " * 5000 + "x", "not " * 100 + "x", "'a' * 9999999999 == 'a'",
        "[[['a']*10000]*10000]*10000 == [[['a']*10000]*10000]*10000", "user_turns / 0 > 1",
        "mode > 2", "no_such_field > 1", "distinct_1 > 0.1", "b'x' == 1", "user_turns +", "", "   ",
        "user_turns >= 1 and", "{1: 2} == 1", "1 if x else 2", "f'{x}' == 1", "x := 1",
    ]:  # fmt: skip
        out.append((f"filter --where {expr[:50]!r}", lambda _w, e=expr: ["filter", str(good), "--where", e, "--out", str(work / "out/fe.jsonl")]))  # fmt: skip
    # output paths we must not replace
    fifo = work / "special/fifo.jsonl"
    link = work / "special/link.jsonl"
    folder = work / "special/folder.jsonl"
    under_file = work / "special/afile/out.jsonl"
    for name, target in [("a FIFO", fifo), ("a symlink", link), ("a folder", folder), ("under a file", under_file)]:
        for cmd, args in [
            ("convert", ["convert", str(good), str(target)]),
            ("filter", ["filter", str(good), "--where", "user_turns >= 1", "--out", str(target)]),
            ("dedup", ["dedup", str(good), "--out", str(target)]),
            ("export", ["export", str(good), "--to", "openai", "--out", str(target)]),
        ]:
            out.append((f"{cmd} --out {name}", lambda _w, a=args: a))
    out.append(("convert --to hf into a file", lambda _w: ["convert", str(good), str(good), "--to", "hf"]))
    # YAML configs for run and simulate
    q = DATA / "oasst/prompt_lottery_en_250_text.jsonl"
    sims = "simulate:\n  seeds: {questions: [" + str(q) + "], limit: 2}\n  simulators:\n"
    configs = {
        "deep YAML": "a: " + "[" * 3000 + "]" * 3000 + "\n",
        "duplicate key": "model: {model: a}\nmodel: {model: b}\n",
        "5000-digit integer": "model: {model: dialforge-tiny}\nx: " + "9" * 5000 + "\n",
        "two simulators one name": "model: {model: dialforge-tiny}\n" + sims
        + "    - {name: a, mode: socratic}\n    - {name: a, mode: socratic}\n",
        "simulator named .": "model: {model: dialforge-tiny}\n" + sims + "    - {name: '.', mode: socratic}\n",
        "simulator named ..": "model: {model: dialforge-tiny}\n" + sims + "    - {name: '..', mode: socratic}\n",
        "simulator name with a slash": "model: {model: dialforge-tiny}\n" + sims + "    - {name: a/b, mode: socratic}\n",
        "unknown mode": "model: {model: dialforge-tiny}\n" + sims + "    - {name: a, mode: telepathy}\n",
        "empty file": "",
        "a list": "- a\n- b\n",
        "tab indentation": "model:\n\tmodel: a\n",
        "unclosed bracket": "model: {model: a\n",
        "binary": bytes(range(256)).decode("latin-1"),
        "max_turns text": "model: {model: dialforge-tiny}\n" + sims.replace("simulators:", "max_turns: many\n  simulators:")
        + "    - {name: a, mode: socratic}\n",
        "unknown top-level field": "modle: {model: a}\n",
        "backend kind unknown": "model: {kind: telepathic, model: a}\n",
        "an alias bomb": "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
    }  # fmt: skip
    for name, text in configs.items():
        cfg = write(f"configs/{len(out)}.yaml", text.encode("latin-1") if name == "binary" else text.encode())
        out.append((f"run: config {name}", lambda _w, c=cfg: ["run", str(c), "--out", str(work / "out/run")]))
        out.append((f"simulate: config {name}", lambda _w, c=cfg: ["simulate", "--config", str(c), "--out", str(work / "out/sim")]))  # fmt: skip
    quick = ROOT / "examples/quickstart.yaml"
    for s in [
        "simulate.max_turns=" + "9" * 5000, "simulate.max_turns=[" * 2000, "simulate.max_turns=-1",
        "simulate.max_turns=many", "=3", "novalue", "simulate.simulators.9.name=x", "simulate.simulators.x.name=y",
        "model={model: a, model: b}", "induce.dialogues=" + "[" * 3000 + "]" * 3000,
    ]:  # fmt: skip
        out.append((f"run --set {s[:40]!r}", lambda _w, s=s: ["run", str(quick), "--out", str(work / "out/set"), "--set", s]))  # fmt: skip
    # report on bad run directories
    run = work / "runs/badlib"
    (run / "induce").mkdir(parents=True, exist_ok=True)
    (run / "pipeline.json").write_text(json.dumps({"config": {}, "stages": {}}))
    lib = {"schema_version": 1, "strategies": [{"id": "s", "size": "big", "centroid": ["x"], "examples": 3}, 7]}
    (run / "induce/library.json").write_text(json.dumps(lib))
    run2 = work / "runs/badjson"
    run2.mkdir(parents=True, exist_ok=True)
    (run2 / "pipeline.json").write_text("{oops")
    run3 = work / "runs/wrongtypes"
    (run3 / "simulate/a").mkdir(parents=True, exist_ok=True)
    (run3 / "pipeline.json").write_text(json.dumps({"config": [], "stages": 5, "warnings": "x"}))
    (run3 / "simulate/a/conversations.jsonl").write_text('{"id": 1}\n[1]\n')
    (run3 / "simulate/a/manifest.json").write_text(json.dumps({"config": 3, "models": [1]}))
    for name, d in [("library size text", run), ("pipeline.json broken", run2), ("wrong types", run3),
                    ("missing folder", work / "runs/nope"), ("a file", good)]:  # fmt: skip
        out.append((f"report: {name}", lambda _w, d=d: ["report", str(d), "--out", str(work / "out/r.html")]))
    # resume a run directory whose manifest was edited
    man = work / "runs/manifest"
    out.append(("answer: manifest resumes 'x'", lambda _w: _manifest_case(man, q)))
    # eval mt-bench inputs that fail before any request
    for name, content in [("questions broken JSON", "{\n"), ("questions a list", "[1, 2]\n"), ("questions empty", "")]:
        qf = write(f"mtq/{len(out)}.jsonl", content)
        out.append((f"eval mt-bench: {name}", lambda _w, qf=qf: ["eval", "mt-bench", "--model", "m", "--base-url", "http://127.0.0.1:9/v1", "--judge", "j", "--judge-base-url", "http://127.0.0.1:9/v1", "--questions", str(qf), "--out", str(work / "out/mt")]))  # fmt: skip
    # strategy library inputs
    for name, content in [("library empty", ""), ("library a list", "[1]"), ("library size text", json.dumps(lib))]:
        lf = write(f"libs/{len(out)}.json", content)
        out.append((f"strategies show: {name}", lambda _w, lf=lf: ["strategies", "show", str(lf)]))
    return out


def _manifest_case(man: Path, q: Path) -> list[str]:
    """A run directory with the right fingerprint whose manifest says "resumes": "x"."""
    args = ["answer", "--prompts", str(q), "--model", "dialforge-tiny", "--limit", "1", "--out", str(man)]
    if (man / "manifest.json").exists():
        m = json.loads((man / "manifest.json").read_text())
        m["resumes"] = "x"
        (man / "manifest.json").write_text(json.dumps(m))
    return args


def _prepare_specials(work: Path) -> None:
    sp = work / "special"
    sp.mkdir(parents=True, exist_ok=True)
    for p in sp.iterdir():
        if p.is_dir() and not p.is_symlink():
            for q in p.iterdir():
                q.unlink()
            p.rmdir()
        else:
            p.unlink()
    os.mkfifo(sp / "fifo.jsonl")
    (sp / "target.txt").write_text("not ours")
    (sp / "link.jsonl").symlink_to(sp / "target.txt")
    (sp / "folder.jsonl").mkdir()
    (sp / "afile").write_text("a file, not a folder")


def run_case(args: list[str], timeout: float) -> tuple[int, str]:
    """(exit status, stderr) of `dialforge ARGS` in a forked child."""
    import tempfile

    with tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # the child: the CLI as a user runs it
            try:
                os.dup2(err.fileno(), 2)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                signal.alarm(int(timeout))
                sys.argv = ["dialforge", *args]
                from dialforge.cli import _run

                code = _run()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 1
            sys.stderr.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        err.seek(0)
        text = err.read().decode(errors="replace")
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status), text
    return os.WEXITSTATUS(status), text


def classify(code: int, err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("WARNING", "warning:", "skipped"))]
    if "Traceback (most recent call last)" in err or code not in (0, 2, 3):
        return "TRACEBACK"
    if code == 2 and len(lines) == 1 and lines[0].startswith("error: "):
        return "error"
    if code in (0, 3):
        return "ok"
    return "other"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/dialforge-bad-input-sweep")
    ap.add_argument("--only", default=None, help="run the cases whose name holds this")
    ap.add_argument("--show", action="store_true", help="print every case's outcome and first line")
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    all_cases = [c for c in cases(work) if args.only is None or args.only in c[0]]
    import dialforge.cli  # noqa: F401 - imported once, before the forks

    outcomes: Counter[str] = Counter()
    odd: list[tuple[str, str, int, str]] = []
    start = time.perf_counter()
    for name, make in all_cases:
        _prepare_specials(work)
        argv = make(work)
        code, err = run_case(argv, args.timeout)
        kind = classify(code, err)
        outcomes[kind] += 1
        first = next(
            (ln for ln in err.splitlines() if ln.startswith("error:")),
            err.strip().splitlines()[-1] if err.strip() else "",
        )
        if args.show:
            print(f"{kind:9} {code:3} {name}: {first[:160]}", flush=True)
        if kind in ("TRACEBACK", "other"):
            odd.append((name, kind, code, err.strip().splitlines()[-1][:200] if err.strip() else ""))
    print(
        f"{len(all_cases)} cases in {time.perf_counter() - start:.0f} s: "
        + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
    )
    if odd:
        print("| case | outcome | exit | last stderr line |\n|---|---|---|---|")
        for name, kind, code, last in odd:
            print(f"| {name} | {kind} | {code} | {last} |")
    sys.exit(1 if outcomes["TRACEBACK"] else 0)


if __name__ == "__main__":
    main()
