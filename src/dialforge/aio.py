"""asyncio helpers shared by the backends and the stage kernel."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def gather_or_cancel(aws: Iterable[Awaitable[T]]) -> list[T]:
    """`asyncio.gather` that, when one awaitable raises (or the caller is cancelled), cancels
    the others and waits for them before re-raising: nothing keeps running against a backend
    that is about to close, and no task is left pending."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
