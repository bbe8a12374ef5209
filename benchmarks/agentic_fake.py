"""Agentic self-talk mechanics on the fake server (docs/benchmarks.md, issue 26): the scripted
customer against a scripted agent that is right, books the wrong row while saying the right
words, or sends bad arguments / an unknown tool first. Per STAR task: success, pass^1, pass^3,
partial credit, call validity, tool errors, simulator-error rate, calls and tokens per success,
failures by side, wall time. Run: python benchmarks/agentic_fake.py [OUT_DIR]"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from dialforge.agentic import AgentToolsConfig, agentic
from dialforge.agentic.fake import agentic_reply
from dialforge.testing import FakeOpenAIServer

COLS = (
    "success",
    "pass^1",
    "pass^3",
    "partial_credit",
    "tool_calls",
    "calls_parsed",
    "calls_schema_valid",
    "tool_errors",
    "simulator_error_rate",
    "failures",
    "calls_per_success",
    "tokens_per_success",
)


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    print("| agent | task | conversations | " + " | ".join(COLS) + " | wall s |")
    print("|" + "---|" * (len(COLS) + 4))
    runs = [
        ("right", None, None),
        ("wrong_row", "wrong_row", None),
        ("every_third_wrong", "every_third_wrong", None),
        ("bad_args", "bad_args", None),
        ("unknown_tool", "unknown_tool", None),
        ("user leaks goal", None, "leak"),
        ("user contradicts goal", None, "contradict"),
    ]
    for label, mistake, user_mistake in runs:
        reply = agentic_reply(mistake, user_mistake=user_mistake)  # type: ignore[arg-type]
        with FakeOpenAIServer(reply=reply) as srv:
            b = {"kind": "http", "base_url": srv.base_url, "model": "fake"}
            cfg = AgentToolsConfig(user=b, agent=b, goals_per_task=3, samples=3)
            t0 = time.perf_counter()
            summary = agentic(cfg, root / label.replace(" ", "_"), force_new=True, progress=False)
            wall = time.perf_counter() - t0
        for task, row in summary["tasks"].items():
            cells = " | ".join("-" if row[c] is None else str(row[c]) for c in COLS)
            shown = f"{wall:.1f}" if task == "all" else ""
            print(f"| {label} | {task} | {row['conversations']} | {cells} | {shown} |")


if __name__ == "__main__":
    main()
