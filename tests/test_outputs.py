"""Writers replace only our own regular files: a symlink, a FIFO, a folder where a file goes
(or a file where a folder goes) at an output path is refused in one line, exit 2, and left as
it was; temporary files a killed writer left are removed by the next write of that path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from dialforge.errors import DialforgeError
from dialforge.io.reader import atomic_open, atomic_write_bytes, check_output, remove_stale_temps

CONV = {"id": "a", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def _data(tmp_path: Path) -> Path:
    p = tmp_path / "in.jsonl"
    p.write_bytes(orjson.dumps(CONV) + b"\n" + orjson.dumps({**CONV, "id": "b"}) + b"\n")
    return p


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "dialforge.cli", *args], capture_output=True, text=True, env=env)


def _commands(data: Path, out: Path) -> dict[str, list[str]]:
    return {
        "convert": ["convert", str(data), str(out)],
        "filter": ["filter", str(data), "--where", "turns >= 1", "--out", str(out)],
        "export": ["export", str(data), "--to", "openai", "--out", str(out)],
        "dedup": ["dedup", str(data), "--out", str(out)],
    }


@pytest.mark.parametrize("command", ["convert", "filter", "export", "dedup"])
def test_a_fifo_at_the_output_is_refused_and_kept(tmp_path, command):
    out = tmp_path / "out.jsonl"
    os.mkfifo(out)
    r = _cli(*_commands(_data(tmp_path), out)[command])
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == f"error: {out}: is a FIFO, not a regular file; refusing to replace it"
    assert os.path.exists(out) and not out.is_file()  # still the FIFO
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("command", ["convert", "filter", "export", "dedup"])
def test_a_symlink_at_the_output_is_refused_and_its_target_untouched(tmp_path, command):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    out = tmp_path / "out.jsonl"
    out.symlink_to(target)
    r = _cli(*_commands(_data(tmp_path), out)[command])
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (
        f"error: {out}: is a symbolic link; refusing to replace it (give the real path or a new one)"
    )
    assert out.is_symlink() and target.read_text() == "keep me"


@pytest.mark.parametrize("command", ["convert", "filter", "export", "dedup"])
def test_a_folder_where_a_file_goes_is_refused(tmp_path, command):
    out = tmp_path / "out.jsonl"
    out.mkdir()
    (out / "inside").write_text("x")
    r = _cli(*_commands(_data(tmp_path), out)[command])
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == f"error: {out}: is a folder; this output is a file (give a file path)"
    assert (out / "inside").read_text() == "x"


def test_dedup_refuses_a_special_report_path_before_reading(tmp_path):
    out = tmp_path / "out.jsonl"
    report = tmp_path / "out.removed.jsonl"
    os.mkfifo(report)
    r = _cli("dedup", str(_data(tmp_path)), "--out", str(out))
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: {report}: is a FIFO, not a regular file; refusing to replace it"
    assert not out.exists()


def test_a_file_where_a_folder_goes_is_refused(tmp_path):
    out = tmp_path / "ds"
    out.write_text("mine")
    r = _cli("convert", str(_data(tmp_path)), str(out), "--to", "hf")
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: {out}: is a file; this output is a folder (give a new path)"
    assert out.read_text() == "mine"


def test_our_own_regular_file_is_replaced(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")
    r = _cli("convert", str(_data(tmp_path)), str(out))
    assert r.returncode == 0, r.stderr
    assert [orjson.loads(x)["id"] for x in out.read_bytes().splitlines()] == ["a", "b"]


def test_check_output_passes_absent_paths_and_folders_for_folders(tmp_path):
    assert check_output(tmp_path / "new.jsonl") == tmp_path / "new.jsonl"
    assert check_output(tmp_path, folder=True) == tmp_path
    with pytest.raises(DialforgeError, match="is a character device"):
        check_output("/dev/null")


def test_a_killed_writers_temp_file_is_removed_by_the_next_write(tmp_path):
    out = tmp_path / "out.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # exited: its pid is free (reuse within the test is unlikely)
    import socket

    host = socket.gethostname().replace(".", "_")
    stale = tmp_path / f".out.json.{host}-{dead_pid}.abc123.tmp"
    stale.write_text("half")
    live = tmp_path / f".out.json.{host}-{os.getpid()}.zzz999.tmp"  # a writer still running
    live.write_text("in progress")
    other_host = tmp_path / f".out.json.elsewhere-{dead_pid}.qqq111.tmp"  # maybe alive there
    other_host.write_text("theirs")
    unrelated = tmp_path / ".other.json.x.tmp"
    unrelated.write_text("not ours")
    atomic_write_bytes(out, b"{}")
    assert out.read_bytes() == b"{}"
    assert not stale.exists()
    assert live.exists() and other_host.exists() and unrelated.exists()
    assert remove_stale_temps(out) == []


def test_a_failed_write_leaves_no_temp_file_and_the_old_content(tmp_path):
    out = tmp_path / "out.json"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_open(out) as f:
        f.write(b"new")
        raise RuntimeError("boom")
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_a_record_store_removes_the_temp_file_a_killed_rewrite_left(tmp_path):
    from dialforge.run.store import RecordStore

    path = tmp_path / "conversations.jsonl"
    path.write_bytes(b'{"id": "a"}\n')
    (tmp_path / "conversations.jsonl.tmp").write_bytes(b'{"id": "a"}\n{"id"')
    store = RecordStore(path)
    store.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conversations.jsonl"]
    assert store.ids == {"a"}
