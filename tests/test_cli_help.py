"""Every command's help, read at 80 columns as a newcomer reads it: it exits 0, every option
says what it does, nothing is cut or shown as a placeholder, `-h` is `--help`; and a mistyped
`--set` path is answered with the nearest real one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from dialforge.commands._spec import Group
from dialforge.commands.registry import entries

ROOT = Path(__file__).resolve().parents[1]


def _commands(group: str | None = None, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, entry in entries(group).items():
        out.append((*prefix, name))
        if isinstance(entry, Group):
            out += _commands(name, (*prefix, name))
    return out


COMMANDS = _commands()


@pytest.fixture()
def cli(cli, monkeypatch):
    """The in-process `dialforge` (conftest) at 80 columns: (exit code, stdout, stderr)."""
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr("shutil.get_terminal_size", lambda *a, **k: __import__("os").terminal_size((80, 24)))

    def run(*args: str) -> tuple[int, str, str]:
        r = cli(*args)
        return r.returncode, r.stdout, r.stderr

    return run


def test_the_commands_are_the_documented_ones():
    """The same 24 names as before the commands became objects, in the same order."""
    assert [c[0] for c in COMMANDS if len(c) == 1] == (
        "convert formats seeds stats answer induce simulate modes train score metrics filter dedup export check "
        "eval workflows selftalk agent run demo report strategies realism"
    ).split()
    assert [c for c in COMMANDS if len(c) == 2] == [
        ("eval", "mt-bench"),
        ("workflows", "show"),
        ("workflows", "import"),
        ("strategies", "show"),
        ("strategies", "assign"),
    ]


@pytest.mark.parametrize("argv", [(), *COMMANDS], ids=lambda a: " ".join(a) or "dialforge")
def test_help_at_80_columns_reads_whole(cli, argv):
    code, out, err = cli(*argv, "--help")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith(f"Usage: dialforge {' '.join(argv)}".rstrip())
    assert "{" not in lines[0] and "<" not in lines[0]  # no `{path}` placeholders in the usage line
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    assert "…" not in out  # nothing cut
    assert "<bool>" not in out and not re.search(r"<\w+(\[[^\]]*\])?>", out)  # no `<bool>`, `<list[Path]>`
    assert not re.search(r"\b[\w/]+\.py\b", out), "help names a source file"
    options = lines[lines.index("Options:") + 1 :] if "Options:" in lines else []
    options = options[: options.index("")] if "" in options else options
    # metavars as users type them: PATH, N, X, TEXT, FIELD=VALUE, none for flags
    for line in (line for line in options if line.lstrip().startswith("-")):
        names = line.strip().split("  ")[0]
        assert re.fullmatch(r"(-h, )?--[a-z0-9-]+( / --[a-z0-9-]+)?( (PATH|N|X|TEXT|FIELD=VALUE))?", names), line
    assert cli(*argv, "-h")[1] == out  # -h is --help everywhere


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_every_option_says_what_it_does(argv):
    """The option's own words, not only `[default: X]` or its choices."""
    from dialforge.commands._group import LazyGroup, build_command
    from dialforge.commands.registry import entries

    entry = entries(argv[0] if len(argv) > 1 else None)[argv[-1]]
    if isinstance(entry, Group):
        return
    cmd = build_command(entry)
    assert not isinstance(cmd, LazyGroup)
    for p in cmd.params:
        words = re.sub(r"\[(default|required)[^\]]*\]|\([^()]*\|[^()]*\)", "", p.help or "").strip()
        assert words, f"dialforge {' '.join(argv)} {p.opts[0]}: no description"


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["run", "examples/quickstart.yaml", "--set", "simulate.max_turn=4"], "did you mean simulate.max_turns?"),
        (["simulate", "--config", "examples/persona.yaml", "--set", "max_turn=4"], "did you mean max_turns?"),
        (["demo", "--set", "simulate.max_turn=4"], "did you mean simulate.max_turns?"),  # demo takes --set too
        (["train", "chat", "--set", "learning_rat=1"], "did you mean learning_rate?"),
        (  # inside a list item (a pipeline simulator, tagged by mode)
            ["run", "examples/quickstart.yaml", "--set", "simulate.simulators.0.strategy.candidat=3"],
            "did you mean simulate.simulators.0.strategy.candidates?",
        ),
        (
            ["run", "examples/quickstart.yaml", "--set", "model.params.temprature=1"],
            "did you mean model.params.temperature?",
        ),
    ],
)
def test_a_mistyped_set_path_gets_the_nearest_field(cli, tmp_path, monkeypatch, argv, said):
    monkeypatch.chdir(ROOT)
    if argv[0] in ("run", "simulate", "demo"):
        argv = [*argv, "--out", str(tmp_path / "o")]
    code, _, err = cli(*argv)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert f"unknown field ({said})" in err
    assert not (tmp_path / "o").exists()


def test_booleans_are_flags(cli):
    code, out, _ = cli("--no-debug", "formats")
    assert code == 0 and "openai" in out
    code, _, err = cli("train", "chat", "--packing=true")
    assert code == 2 and "--packing" in err


def test_help_loads_no_config_and_no_engine():
    """`dialforge --help` builds no command: no config class, no engine module is imported."""
    code = (
        "import sys; sys.argv = ['dialforge', '--help']\n"
        "from dialforge.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "bad = sorted(m for m in sys.modules if m.startswith('dialforge.') and m.split('.')[1] in "
        "('simulate', 'pipeline', 'train', 'score', 'induce', 'workflows', 'agentic', 'realism', 'run', 'answer'))\n"
        "print(bad)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip().splitlines()[-1] == "[]"


def _documented_command_lines() -> list[tuple[str, str]]:
    """(file, `dialforge ...` line) from the README, docs, examples, CI and scripts."""
    files = [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("examples/*"), *ROOT.glob(".ci/*")]
    files += [*ROOT.glob("scripts/*")]
    out = []
    for f in files:
        if f.is_file():
            text = f.read_text(errors="replace").replace("\\\n", " ")
            out += [(f.name, m.group(0)) for m in re.finditer(r"\bdialforge\s+[a-z][^\n`|;&)\"]*", text)]
    return out


def test_every_documented_flag_is_still_accepted():
    """A flag a user copies from the README, the docs, an example or a script is an option of
    that command (the options are generated now; none was renamed on the way)."""
    from dialforge.commands._group import build_command

    lines = _documented_command_lines()
    assert len(lines) > 20
    checked = 0
    for where, line in lines:
        words = line.split()[1:]
        entry = entries().get(words[0])
        if entry is None:
            continue
        if isinstance(entry, Group):
            entry = entries(words[0]).get(words[1]) if len(words) > 1 else None
            if entry is None:
                continue
        cmd = build_command(entry)
        known = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help", "-h"}
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", " ".join(words)):
            if flag != "--bogus":  # the README's example of a usage error
                assert flag in known, f"{where}: `{line.strip()}`: {flag} is no option of {cmd.name}"
                checked += 1
    assert checked > 20


@pytest.mark.parametrize(
    ("argv", "said"),
    [(["simulat"], "Did you mean 'simulate'?"), (["eval", "mt-bnch"], "Did you mean 'mt-bench'?")],
)
def test_a_mistyped_command_gets_the_nearest_name(cli, argv, said):
    """Commands are built only when run, yet every name is offered for a typo."""
    code, _, err = cli(*argv)
    assert code == 2 and said in err and err.count("\n") == 1


def _call(argv: list[str]):
    """The `Call` a config-backed command's function gets for ARGV (the function itself not run)."""
    import dataclasses

    from dialforge.commands._group import build_command

    *group, name = argv[: 2 if argv[0] == "eval" else 1]
    seen = []
    entry = dataclasses.replace(entries(group[0] if group else None)[name], run=seen.append)
    build_command(entry).main(argv[len(group) + 1 :], standalone_mode=False)
    return seen[0]


def test_flags_become_config_overrides():
    """Each flag sets its config path with the field's type; flags not given set nothing."""
    call = _call(["train", "chat", "--data", "a.jsonl", "--data", "b.jsonl", "--full", "--no-packing", "--lr", "1e-4"])
    assert call.kind == "chat"
    assert call.overrides == {"data": ["a.jsonl", "b.jsonl"], "lora": False, "packing": False, "learning_rate": 1e-4}
    assert _call(["train", "chat", "--packing", "--strategy-conditioned"]).overrides == {
        "packing": True,
        "strategy_conditioned": True,
    }
    call = _call(["simulate", "--config", "c.yaml", "--out", "o", "--limit", "3", "--no-cache", "--set", "x=1"])
    assert call.overrides == {"seeds.limit": 3}
    assert (call.config, call.out, call.sets, call.use_cache, call.force_new) == (
        Path("c.yaml"),
        Path("o"),
        ["x=1"],
        False,
        False,
    )


def test_backend_flags_are_the_same_on_every_command():
    """`--model/--base-url` for every role, a role's own flags on top, `--api-key-env` for all."""
    call = _call(
        ["simulate", "--config", "c", "--out", "o", "--model", "m", "--base-url", "http://h/v1", "--user-model", "u"]
        + ["--api-key-env", "KEY", "--executor", "ray"]
    )
    assert call.overrides == {
        "user.model": "u",
        "user.api_key_env": "KEY",
        "user.base_url": "http://h/v1",
        "user.kind": "http",
        "assistant.model": "m",
        "assistant.api_key_env": "KEY",
        "assistant.base_url": "http://h/v1",
        "assistant.kind": "http",
        "executor": {"kind": "ray", "address": None},
    }
    assert _call(["score", "f.jsonl", "--api-key-env", "KEY"]).overrides == {}  # no judge unless one is named
    assert _call(["score", "f.jsonl", "--judge-model", "j"]).overrides == {"judge.model": "j"}
    mt = _call(["eval", "mt-bench", "--out", "o", "--model", "a", "--judge", "j", "--mode", "pairwise"])
    assert mt.overrides == {"model.model": "a", "judge.model": "j", "mode": "pairwise"}
