"""Helpers shared by the stage-kernel and Ray tests (importable: pytest puts tests/ on the path)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from dialforge.llm import backend_config
from dialforge.simulate import SimulateConfig

QUESTIONS = "oasst/prompt_lottery_en_250_text.jsonl"


def reply_by_hash(body: dict[str, Any]) -> str:
    """A deterministic server reply: a question for the simulator (`sim`), an answer otherwise,
    each naming a hash of the messages, so every turn of every conversation differs."""
    h = hashlib.sha256(json.dumps(body["messages"]).encode()).hexdigest()[:16]
    return f"Why {h}?" if body["model"] == "sim" else f"Answer {h}."


def socratic_config(data_dir: Path, srv: Any, n: int = 12, **kw: Any) -> SimulateConfig:
    """A socratic simulation of `n` real OASST prompts against a loopback server, no retries."""
    return SimulateConfig(
        mode="socratic",
        seeds={"questions": [str(data_dir / QUESTIONS)], "limit": n},
        user=backend_config(model="sim", base_url=srv.base_url, max_retries=0, backoff_base_s=0.01),
        assistant=backend_config(model="asst", base_url=srv.base_url, max_retries=0, backoff_base_s=0.01),
        max_turns=3,
        concurrency=4,
        **kw,
    )
