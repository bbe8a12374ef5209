"""MT-Bench (80 two-turn questions) with any backend as the answerer and any as the judge,
using FastChat's judge prompts (data) and its `[[rating]]` / `[[A]]` output formats.

Files follow FastChat's layout, so answers and judgments interoperate with FastChat tools:
answers `{question_id, model_id, choices: [{index, turns}]}`, judgments `{question_id, model,
judge, user_prompt, judgment, score, turn}` (score -1 when no rating could be parsed).
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import DialforgeError, RecordError
from ..io._records import iter_records
from ..llm.client import LLM, run_sync
from ..llm.pool import BackendPool
from ..llm.types import SamplingParams
from ..run.kernel import Job, Records, Stage, StageContext, make_executor, run_stage
from ..run.rundir import RunDir
from .config import MTBenchConfig

NEED_REF = ("math", "reasoning", "coding")
# FastChat's answer temperatures by category
TEMPERATURE = {
    "writing": 0.7,
    "roleplay": 0.7,
    "extraction": 0.0,
    "math": 0.0,
    "coding": 0.0,
    "reasoning": 0.0,
    "stem": 0.1,
    "humanities": 0.1,
}
_RATING = [
    re.compile(r"\[\[(\d+\.?\d*)\]\]"),
    re.compile(r"\[(\d+\.?\d*)\]"),
    # beyond FastChat: what small judges write instead ("[Rating: 5]", "Rating: 5/10")
    re.compile(r"\brating\s*(?:of|is|=|:)?\s*\[*\s*(\d+\.?\d*)\s*(?:/\s*10)?\s*\]*", re.I),
]


def parse_rating(judgment: str) -> float:
    """FastChat's rule: `[[x]]`, else `[x]`; then `Rating: x` in the forms small judges write
    (`[Rating: 5]`, `Rating: 5/10`); -1 when none is there or the rating is outside 1-10."""
    for pat in _RATING:
        m = pat.search(judgment)
        if m:
            try:
                value = float(m.group(1))
            except ValueError:
                continue
            if 1 <= value <= 10 or pat is not _RATING[2]:
                return value
    return -1.0


def parse_pair(judgment: str) -> str:
    if "[[A]]" in judgment:
        return "A"
    if "[[B]]" in judgment:
        return "B"
    if "[[C]]" in judgment:
        return "tie"
    return "error"


def load_jsonl(path: str | Path) -> list[dict[str, Any]]:
    out = []
    for rec, line, _ in iter_records(Path(path)):
        if isinstance(rec, Exception):
            raise rec
        if not isinstance(rec, dict):
            raise RecordError(f"expected an object, got {type(rec).__name__}", path=path, line=line)
        out.append(rec)
    return out


def _records_by_question(path: str | Path) -> Iterator[tuple[dict[str, Any], int | None]]:
    """The file's records, each an object with a question id (number or string), else one
    file:line:field error."""
    for rec, line, _ in iter_records(Path(path)):
        if isinstance(rec, Exception):
            raise rec
        if not isinstance(rec, dict):
            raise RecordError(f"expected an object, got {type(rec).__name__}", path=path, line=line)
        qid = rec.get("question_id")
        if not isinstance(qid, (int, str)) or isinstance(qid, bool):
            raise RecordError("expected a question id (number or string)", path=path, line=line, field="question_id")
        yield rec, line


def load_questions(path: str | Path) -> list[dict[str, Any]]:
    """MT-Bench questions (`{question_id, category, turns}`), each checked: a record of
    another shape is one file:line:field error before any request; no question is an error."""
    out = []
    for rec, line in _records_by_question(path):
        if not isinstance(rec.get("category"), str):
            raise RecordError("expected a string", path=path, line=line, field="category")
        turns = rec.get("turns")
        if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
            raise RecordError("expected a non-empty list of question texts", path=path, line=line, field="turns")
        out.append(rec)
    if not out:
        raise DialforgeError(f"{path}: no questions")
    return out


def load_answers(path: str | Path) -> dict[Any, list[str]]:
    """A FastChat answer file: question id -> the first choice's turns (text), with a
    file:line:field error for a record of another shape."""
    out: dict[Any, list[str]] = {}
    for rec, line in _records_by_question(path):
        qid = rec["question_id"]
        choices = rec.get("choices")
        turns = (
            choices[0].get("turns") if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
        )
        if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
            raise RecordError(
                "expected a non-empty list of answer texts", path=path, line=line, field="choices[0].turns"
            )
        out[qid] = turns
    return out


def summarise_single(judgments: list[dict[str, Any]], categories: dict[int, str]) -> dict[str, Any]:
    """Mean score overall, per turn and per category (judgments with score -1 left out)."""
    ok = [j for j in judgments if j["score"] != -1]
    by_turn: dict[int, list[float]] = defaultdict(list)
    by_cat: dict[str, list[float]] = defaultdict(list)
    for j in ok:
        by_turn[j["turn"]].append(j["score"])
        if j["question_id"] in categories:
            by_cat[categories[j["question_id"]]].append(j["score"])
    return {
        "mean": round(statistics.fmean(j["score"] for j in ok), 4) if ok else None,
        "turns": {t: round(statistics.fmean(v), 4) for t, v in sorted(by_turn.items())},
        "categories": {c: round(statistics.fmean(v), 4) for c, v in sorted(by_cat.items())},
        "judged": len(ok),
        "unparsed": len(judgments) - len(ok),
    }


class _AnswerStage(Stage):
    """The model answers each question's turns in order (FastChat's temperatures)."""

    name = "mtbench.answer"
    output = "answers.jsonl"

    def __init__(self, cfg: MTBenchConfig, questions: list[dict[str, Any]]) -> None:
        self.cfg = cfg
        self.questions = questions
        self.concurrency = cfg.concurrency
        self.model: LLM | None = None

    def plan(self) -> list[Job]:
        return [Job(f"{self.cfg.model.model}:{q['question_id']}", q) for q in self.questions]

    async def open(self, ctx: StageContext) -> None:
        self.model = ctx.llm(self.cfg.model, self.name)

    async def run_job(self, job: Job, ctx: StageContext) -> dict[str, Any]:
        assert self.model is not None
        q = job.data
        params = SamplingParams(temperature=TEMPERATURE.get(q["category"], 0.7), max_tokens=self.cfg.max_tokens)
        msgs: list[dict[str, str]] = []
        turns = []
        error = None
        for t in q["turns"]:
            msgs.append({"role": "user", "content": t})
            comp = await self.model.complete(msgs, params=params)
            text = comp.text if comp.ok else "$ERROR$"
            error = error or comp.error
            msgs.append({"role": "assistant", "content": text})
            turns.append(text)
        rec = {
            "id": job.id,
            "question_id": q["question_id"],
            "model_id": self.cfg.model.model,
            "choices": [{"index": 0, "turns": turns}],
        }
        return {**rec, "error": error} if error else rec


class _JudgeStage(Stage):
    """FastChat's judge prompts per (question, turn); single `[[rating]]` or pairwise both orders."""

    name = "mtbench.judge"
    output = "judgments.jsonl"

    def __init__(self, cfg: MTBenchConfig, questions: list[dict[str, Any]], answers: dict[Any, list[str]]) -> None:
        self.cfg = cfg
        self.questions = questions
        self.answers = answers
        self.concurrency = cfg.concurrency
        self.refs = load_answers(cfg.reference_answers) if cfg.reference_answers else {}
        self.prompts = {p["name"]: p for p in load_jsonl(cfg.judge_prompts) if isinstance(p.get("name"), str)}
        self.baseline = load_answers(cfg.baseline_answers) if cfg.baseline_answers else {}
        self.judge: LLM | None = None

    def plan(self) -> list[Job]:
        """Pairwise: only the questions the baseline answered (`run_mt_bench` counts the rest)."""
        c = self.cfg
        return [
            Job(f"{c.judge.model}:{c.mode}:{q['question_id']}:{turn}", (q, turn))
            for q in self.questions
            if c.mode == "single" or q["question_id"] in self.baseline
            for turn in (1, 2)
        ]

    async def open(self, ctx: StageContext) -> None:
        self.judge = ctx.llm(self.cfg.judge, self.name)

    async def run_job(self, job: Job, ctx: StageContext) -> dict[str, Any]:
        assert self.judge is not None
        q, turn = job.data
        qid = q["question_id"]
        rec = await _judge(
            self.judge,
            self.cfg,
            self.prompts,
            q,
            turn,
            self.answers[qid],
            self.refs.get(qid),
            self.baseline.get(qid),
        )
        texts = [rec.get("judgment", "")] + rec.get("judgments", [])
        error = next((t for t in texts if t.startswith("$ERROR$")), None)
        return {"id": job.id, **rec, **({"error": error} if error else {})}

    def health(self, records: Records, summary: dict[str, Any]) -> list[str]:
        """The kernel's checks, plus judgments with no verdict the parser could read (single:
        no `[[rating]]`, score -1; pairwise: `error`). At 10% or more they skew the score."""
        out = super().health(records, summary)
        n = len(records)
        unread = sum(1 for r in records if not r.get("error") and (r.get("score") == -1 or r.get("winner") == "error"))
        if n and unread * 10 >= n:
            verdict = "[[rating]]" if self.cfg.mode == "single" else "[[A]], [[B]] or [[C]] verdict"
            out.append(f"{self.name}: {unread}/{n} judgments have no {verdict} the parser could read (judgments.jsonl)")
        return out


async def run_mt_bench(
    cfg: MTBenchConfig,
    out: str | Path,
    *,
    force_new: bool = False,
    progress: bool | None = None,
    pool: BackendPool | None = None,
) -> dict[str, Any]:
    questions = load_questions(cfg.questions)
    if cfg.mode == "pairwise" and not cfg.baseline_answers:
        raise DialforgeError("pairwise mode needs --baseline-answers (a FastChat answer file)")
    models = {"model": cfg.model.model, "judge": cfg.judge.model}
    with RunDir(out, command="eval mt-bench", config=cfg, models=models, force_new=force_new) as run:
        executor = make_executor(cfg.executor, pool)
        res = await run_stage(_AnswerStage(cfg, questions), run, executor=executor, progress=progress)
        # a failed answer is retried by the next run; only then is it judged
        answers = {r["question_id"]: r["choices"][0]["turns"] for r in res.records if not r.get("error")}
        answered = [q for q in questions if q["question_id"] in answers]
        stage = _JudgeStage(cfg, answered, answers)
        no_baseline = [
            q["question_id"] for q in answered if cfg.mode == "pairwise" and q["question_id"] not in stage.baseline
        ]
        judged = await run_stage(stage, run, executor=executor, progress=progress)
        judgments = list(judged.records)
        cats = {q["question_id"]: q["category"] for q in questions}
        if cfg.mode == "single":
            summary = summarise_single(judgments, cats)
        else:
            summary = summarise_pairwise(judgments, cats)
        warnings = res.warnings + judged.warnings
        if no_baseline:
            summary["no_baseline"] = len(no_baseline)
            warnings.append(
                f"mtbench.judge: {len(no_baseline)} of {len(answered)} questions have no answer in "
                f"{cfg.baseline_answers}: not judged (first: {no_baseline[0]})"
            )
        summary["warnings"] = warnings
        run.stage_done("mt-bench", **summary)
        return summary


def summarise_pairwise(judgments: list[dict[str, Any]], categories: dict[int, str]) -> dict[str, Any]:
    from collections import Counter

    # a failed job's record has no verdict: it counts as an error (the next run retries it)
    res = Counter(j.get("winner", "error") for j in judgments)
    by_cat: dict[str, Counter[str]] = defaultdict(Counter)
    for j in judgments:
        by_cat[categories.get(j.get("question_id", -1), "?")][j.get("winner", "error")] += 1
    n = sum(res.values())
    return {
        "win": res["model"],
        "loss": res["baseline"],
        "tie": res["tie"],
        "error": res["error"],
        "win_rate": round(res["model"] / n, 4) if n else None,
        "categories": {c: dict(v) for c, v in sorted(by_cat.items())},
    }


def _fill(template: str, **kw: Any) -> str:
    for k, v in kw.items():
        template = template.replace("{" + k + "}", str(v))
    return template


def _second(xs: list[str]) -> str:
    return xs[1] if len(xs) > 1 else ""


async def _judge(
    judge: LLM,
    cfg: MTBenchConfig,
    prompts: dict[str, dict[str, Any]],
    q: dict[str, Any],
    turn: int,
    ans: list[str],
    ref: list[str] | None,
    base: list[str] | None,
) -> dict[str, Any]:
    need_ref = q["category"] in NEED_REF and ref is not None
    multi = "-multi-turn" if turn == 2 else ""
    fields: dict[str, Any] = {"question": q["turns"][0], "question_1": q["turns"][0], "question_2": _second(q["turns"])}
    if need_ref and ref is not None:
        fields.update(ref_answer_1=ref[0], ref_answer_2=_second(ref))
    common = {"question_id": q["question_id"], "model": cfg.model.model, "turn": turn, "judge": [cfg.judge.model, ""]}
    if cfg.mode == "single":
        name = ("single-math-v1" if need_ref else "single-v1") + multi
        fields.update(answer=ans[0], answer_1=ans[0], answer_2=_second(ans))
        user, text = await _ask_judge(judge, prompts[name], fields, cfg.judge_max_tokens)
        common["judge"][1] = name
        return {**common, "user_prompt": user, "judgment": text, "score": parse_rating(text)}
    if base is None:  # the plan leaves such questions out; never a bare AssertionError
        raise DialforgeError(f"question {q['question_id']}: no baseline answer")
    name = ("pair-math-v1" if need_ref else "pair-v2") + multi
    judgments = []
    for a, b in ((ans, base), (base, ans)):  # both orders: position bias
        pair = dict(answer_a=a[0], answer_b=b[0], answer_a_1=a[0], answer_b_1=b[0])
        pair.update(answer_a_2=_second(a), answer_b_2=_second(b))
        judgments.append((await _ask_judge(judge, prompts[name], {**fields, **pair}, cfg.judge_max_tokens))[1])
    verdicts = [parse_pair(t) for t in judgments]
    first = {"A": "model", "B": "baseline"}.get(verdicts[0], verdicts[0])
    second = {"A": "baseline", "B": "model"}.get(verdicts[1], verdicts[1])
    winner = first if first == second else ("error" if "error" in (first, second) else "tie")
    common["judge"][1] = name
    return {**common, "judgments": judgments, "verdicts": verdicts, "winner": winner}


async def _ask_judge(
    judge: LLM, prompt: dict[str, Any], fields: dict[str, Any], max_tokens: int = 2048
) -> tuple[str, str]:
    """(the user prompt, the judgment text or `$ERROR$ why`) at temperature 0."""
    user = _fill(prompt["prompt_template"], **fields)
    comp = await judge.complete(
        [{"role": "system", "content": prompt["system_prompt"]}, {"role": "user", "content": user}],
        params=SamplingParams(temperature=0.0, max_tokens=max_tokens),
    )
    return user, (comp.text if comp.ok else f"$ERROR$ {comp.error}")


def mt_bench(cfg: MTBenchConfig, out: str | Path, **kw: Any) -> dict[str, Any]:
    return run_sync(run_mt_bench(cfg, out, **kw))
