"""Open a report in headless Chromium over the DevTools protocol (aiohttp's websocket client):
how long until the page's script says it is ready, what it logged as errors, and the DOM after
scripted interaction. The report's tests, `benchmarks/report_scale.py` and the docs
screenshot use it; viewing a report needs none of this."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
]


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@dataclass
class PageLoad:
    ready: str | None  # the body's data-ready attribute: "yes", "error" or None (timed out)
    ready_ms: float | None  # performance.now() when ready: navigation start to ready
    wall_s: float  # navigate command to ready, as the driver saw it
    errors: list[str] = field(default_factory=list)  # console errors, uncaught exceptions
    results: list[Any] = field(default_factory=list)  # values of the `then` expressions


class _Cdp:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.errors: list[str] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            data = msg.json()
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
            else:
                self._event(data.get("method"), data.get("params") or {})

    def _event(self, method: str | None, p: dict[str, Any]) -> None:
        if method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails") or {}
            self.errors.append(f"uncaught: {(d.get('exception') or {}).get('description') or d.get('text')}")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.errors.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
        elif method == "Log.entryAdded" and (p.get("entry") or {}).get("level") == "error":
            self.errors.append(f"log: {p['entry'].get('text')}")

    async def send(self, method: str, **params: Any) -> Any:
        i = next(self.ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[i] = fut
        await self.ws.send_json({"id": i, "method": method, "params": params})
        data = await asyncio.wait_for(fut, 120)
        if "error" in data:
            raise RuntimeError(f"{method}: {data['error']}")
        return data.get("result") or {}

    async def evaluate(self, expression: str) -> Any:
        r = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression[:80]}: {r['exceptionDetails'].get('text')}")
        return (r.get("result") or {}).get("value")


async def _shoot(cdp: _Cdp, shots: list[tuple[Path, tuple[int, int, int, int]]]) -> None:
    import base64

    for path, (x, y, w, h) in shots:
        r = await cdp.send(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": x, "y": y, "width": w, "height": h, "scale": 1},
        )
        Path(path).write_bytes(base64.b64decode(r["data"]))


async def _drive(port: int, url: str, then: list[str], timeout: float,
                 shots: list[tuple[Path, tuple[int, int, int, int]]], width: int) -> PageLoad:  # fmt: skip
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/json/list") as r:
            targets = await r.json()
        page = next(t for t in targets if t.get("type") == "page")
        async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            cdp = _Cdp(ws)
            for domain in ("Runtime", "Log", "Page"):
                await cdp.send(f"{domain}.enable")
            await cdp.send("Emulation.setDeviceMetricsOverride", width=width, height=1000, deviceScaleFactor=1,
                           mobile=False)  # fmt: skip
            t0 = time.perf_counter()
            await cdp.send("Page.navigate", url=url)
            ready = None
            while time.perf_counter() - t0 < timeout:
                ready = await cdp.evaluate("document.body && document.body.getAttribute('data-ready')")
                if ready in ("yes", "error"):
                    break
                await asyncio.sleep(0.01)
            wall = time.perf_counter() - t0
            ms = await cdp.evaluate("document.body && document.body.getAttribute('data-ready-ms')")
            results = [await cdp.evaluate(e) for e in then]
            await _shoot(cdp, shots)
            await asyncio.sleep(0.05)  # let late console events arrive
            cdp.reader.cancel()
            return PageLoad(ready, float(ms) if ms else None, wall, cdp.errors, results)


def load(page: str | Path, then: list[str] | None = None, *, timeout: float = 60.0, chromium: str | None = None,
         shots: list[tuple[Path, tuple[int, int, int, int]]] | None = None, width: int = 1400) -> PageLoad:  # fmt: skip
    """Open `page` (a file path or URL, a `#hash` allowed) in a fresh headless Chromium `width`
    pixels wide, wait until the report is ready, evaluate each `then` expression in order, then
    save each screenshot `(path, (x, y, width, height))` of the page."""
    exe = chromium or find_chromium()
    if exe is None:
        raise FileNotFoundError("chromium is not installed")
    url = str(page) if "://" in str(page) else Path(page).resolve().as_uri()
    if "#" in str(page) and "://" not in str(page):
        path, frag = str(page).split("#", 1)
        url = Path(path).resolve().as_uri() + "#" + frag
    profile = tempfile.mkdtemp(prefix="dialforge-chromium-")
    proc: subprocess.Popen[str] | None = None
    try:
        proc = subprocess.Popen(
            [exe, *FLAGS, "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: the helpers it forks are stopped with it
        )
        port = _port(proc, timeout)
        return asyncio.run(_drive(port, url, then or [], timeout, shots or [], width))
    finally:
        if proc is not None:
            _stop(proc)
        _remove_profile(profile)


def _stop(proc: subprocess.Popen[str]) -> None:
    """Stop Chromium and every process it started (renderer, utility, crashpad): the browser
    exiting first leaves helpers that still write into the profile for a moment."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # helpers left in the group once the browser is gone
    if proc.returncode is None:
        proc.wait()
    end = time.monotonic() + 5.0  # until every helper has died (init reaps them later)
    while time.monotonic() < end and _group_alive(proc.pid):
        time.sleep(0.02)


def _group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs (zombies aside). Linux reads /proc;
    elsewhere the group is taken as gone."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return False
    for pid in entries:
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _remove_profile(profile: str) -> None:
    """Remove the throwaway profile. A helper killed a moment ago can still have a file open in
    it, so a directory that is not yet empty is tried again; what is left after that is left in
    the temp folder rather than failing a page load that already succeeded."""
    for _ in range(50):
        try:
            shutil.rmtree(profile)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)
    shutil.rmtree(profile, ignore_errors=True)


def _port(proc: subprocess.Popen[str], timeout: float) -> int:
    assert proc.stderr is not None
    end = time.monotonic() + timeout
    lines = []
    while time.monotonic() < end:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
        if m:
            return int(m.group(1))
    raise RuntimeError("chromium did not start: " + "".join(lines)[-1000:])
