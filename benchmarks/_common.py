"""Shared helpers for benchmarks: a fake server in its own process, CPU/time measurement."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server_process(delay_s: float, unique: bool = False) -> Iterator[str]:
    """The loopback OpenAI-compatible server in a separate process (its CPU is not ours)."""
    port = free_port()
    p = subprocess.Popen(
        [sys.executable, "-m", "dialforge.testing", "--port", str(port), "--delay", str(delay_s)]
        + (["--unique"] if unique else []),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stdout is not None
        p.stdout.readline()
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        p.terminate()
        p.wait(10)


class Meter:
    """Wall time and this process's CPU time over a block."""

    def __enter__(self) -> Meter:
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.cpu = time.process_time() - self.c0


def thin_openai_client(url: str, concurrency: int):  # type: ignore[no-untyped-def]
    """The plain openai SDK client, its connection pool sized to the concurrency."""
    import httpx2 as httpx
    import openai

    return openai.AsyncOpenAI(
        base_url=url,
        api_key="bench",
        max_retries=3,
        http_client=openai.DefaultAsyncHttpxClient(
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        ),
    )
