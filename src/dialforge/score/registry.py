"""The metric registry: every score is declared once (name, description, direction, range,
type), and `score`, `filter`, the report and the CLI read it from here.

Adding a metric is one `register(...)` call next to the code that computes it; the filter
then accepts its name, the report shows it with its direction, and `dialforge metrics`
lists it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["higher", "lower", "n/a"]
Level = Literal["conversation", "dataset"]
Kind = Literal["number", "int", "bool", "str", "list"]


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    direction: Direction = "n/a"
    range: tuple[float | None, float | None] | None = None
    level: Level = "conversation"
    kind: Kind = "number"
    report: bool = False  # shown in the report's dataset table

    @property
    def arrow(self) -> str:
        return {"higher": "↑", "lower": "↓"}.get(self.direction, "")


_ALL: list[Metric] = []


def register(metric: Metric) -> Metric:
    """Declare a metric; a name is registered once per level."""
    if get(metric.name, metric.level) is not None:
        raise ValueError(f"metric {metric.name!r} ({metric.level}) is registered twice")
    _ALL.append(metric)
    return metric


def metrics(level: Level | None = None) -> list[Metric]:
    """Registered metrics in registration order, optionally of one level."""
    return [m for m in _ALL if level is None or m.level == level]


def get(name: str, level: Level = "conversation") -> Metric | None:
    return next((m for m in _ALL if m.name == name and m.level == level), None)


def conversation_fields() -> set[str]:
    """Names a filter expression may use for any scored conversation."""
    return {m.name for m in metrics("conversation")}


def report_metrics() -> list[Metric]:
    return [m for m in metrics("dataset") if m.report]


def _c(name: str, description: str, direction: Direction = "n/a", rng: tuple[float | None, float | None] | None = None,
       kind: Kind = "number") -> None:  # fmt: skip
    register(Metric(name, description, direction, rng, "conversation", kind))


def _d(name: str, description: str, direction: Direction = "n/a", rng: tuple[float | None, float | None] | None = None,
       kind: Kind = "number", report: bool = True) -> None:  # fmt: skip
    register(Metric(name, description, direction, rng, "dataset", kind, report))


_UNIT = (0.0, 1.0)
_POS = (0.0, None)
_JUDGE = (1.0, 10.0)

# -- per conversation (scores.jsonl; every name here can be used in `filter --where`) --------
_c("id", "conversation id", kind="str")
_c("user_turns", "number of simulated user messages (seed turns, real people's words, aside)", "n/a", _POS, "int")
_c("seed_user_turns", "user messages taken from the seed (real people's words)", "n/a", _POS, "int")
_c("messages", "number of messages (all roles)", "n/a", _POS, "int")
_c("user_chars", "characters in user messages", "n/a", _POS, "int")
_c("assistant_chars", "characters in assistant messages", "n/a", _POS, "int")
_c("user_tokens", "words (\\w+) in user messages", "n/a", _POS, "int")
_c("assistant_tokens", "words (\\w+) in assistant messages", "n/a", _POS, "int")
_c("new_assistant_turns", "non-empty assistant messages made by the run (seed exchanges aside)", "n/a", _POS, "int")
_c("distinct_1", "unique / all unigrams of the user turns", "higher", _UNIT)
_c("distinct_2", "unique / all bigrams of the user turns", "higher", _UNIT)
_c("mtld", "lexical diversity of the user turns (MTLD, McCarthy & Jarvis 2010)", "higher", _POS)
_c("follow_ups", "user turns that depend on the previous answer", "higher", _POS, "int")
_c("follow_up_rate", "follow-ups / user turns after an answer (None with no such turn)", "higher", _UNIT)
_c("strategies", "strategy id of each user turn (strategy mode)", kind="list")
_c("termination_reason", "why the conversation ended", kind="str")
_c("mode", "simulator mode", kind="str")
_c("simulator_model", "user simulator model id", kind="str")
_c("assistant_model", "assistant model id", kind="str")
_c("seed_id", "seed the conversation started from", kind="str")
_c("workflow_depth", "workflow nodes reached (self-talk subgoal tracker)", "higher", _POS, "int")
_c("workflow_relative_depth", "workflow depth / the workflow's longest path", "higher", _UNIT)
_c("workflow_success", "the workflow reached an ending", "higher", None, "bool")
for _k, _desc in (
    ("complexity", "judge: the user's turns are informative and go deeper"),
    ("relevancy", "judge: each user turn connects to the conversation so far"),
    ("logicality", "judge: what the user infers from the context is sound"),
    ("diversity", "judge: the user varies how the topic develops"),
    ("mean", "judge: mean of the four question-quality criteria"),
):
    _c(f"judge_{_k}", _desc, "higher", _JUDGE)
_c("judge_error", "why the judge gave no scores", kind="str")
_c("judge_raw", "raw judge output", kind="list")

# -- per dataset (scores_summary.json; `report` marks the rows of the report's table) ---------
_d("conversations", "conversations scored", "n/a", _POS, "int")
_d("user_turns_mean", "mean user turns per conversation", "higher", _POS)
_d("user_chars_mean", "mean characters per user turn", "n/a", _POS, report=False)
_d("assistant_chars_mean", "mean assistant characters per conversation", "n/a", _POS, report=False)
_d("distinct_1", "unique / all unigrams over all user turns", "higher", _UNIT)
_d("distinct_2", "unique / all bigrams over all user turns", "higher", _UNIT)
_d("mtld", "lexical diversity of all user turns", "higher", _POS)
_d("self_bleu", "mean BLEU-4 of sampled user turns against the others", "lower", _UNIT)
_d("embedding_mean_cosine", "mean pairwise cosine of sampled user turns", "lower", (-1.0, 1.0))
_d("embedding_vendi", "Vendi score: effective number of distinct user turns", "higher", (1.0, None))
_d("follow_up_rate", "follow-ups / user turns after an answer", "higher", _UNIT)
_d("termination_reasons", "conversations per termination reason", kind="list", report=False)
_d("strategies_used", "distinct strategies used", "higher", _POS, "int")
_d("strategy_entropy_bits", "entropy of strategy use", "higher", _POS)
_d("strategy_coverage", "strategies used / library size", "higher", _UNIT)
_d("workflow_depth", "mean workflow depth", "higher", _POS)
_d("workflow_relative_depth", "mean relative workflow depth", "higher", _UNIT, report=False)
_d("workflow_success", "share of conversations that reached a workflow ending", "higher", _UNIT)
_d("judge", "mean judge scores per criterion", "higher", _JUDGE, kind="list", report=False)

# Conversation meta fields a filter may name besides the scores (one list, read by
# `dialforge filter` and by the pipeline's check of its `filter:`).
SIMULATED_META = frozenset(
    {
        "mode",
        "termination_reason",
        "seed_id",
        "sample_index",
        "simulator_model",
        "assistant_model",
        "persona",
        "error",
    }
)
"""Meta every simulated conversation carries: what a pipeline's filter may name."""
META_FIELDS = SIMULATED_META | {"source", "source_id", "workflow", "intent", "wall_s", "lang"}
"""Meta the readers and workflows write besides: what a filter of any file may name."""


def filter_names(simulated_only: bool = False) -> set[str]:
    """Names a filter expression may use: every conversation score, and the meta fields (those
    of a simulated conversation only, for the pipeline's filter of what it simulated)."""
    return conversation_fields() | (SIMULATED_META if simulated_only else META_FIELDS)
