"""Scoring, judged evaluation, filtering, dedup and export."""

from .export import EXPORT_FORMATS, export, llamafactory_entry
from .judge import QuestionQuality, judge_question_quality
from .metrics import distinct_n, embedding_diversity, entropy_bits, is_follow_up, mtld, self_bleu
from .mtbench import MTBenchConfig, mt_bench, parse_rating, summarise_single
from .scoring import ScoreConfig, conversation_scores, score
from .select import Expression, dedup, filter_conversations

__all__ = [
    "EXPORT_FORMATS",
    "Expression",
    "MTBenchConfig",
    "QuestionQuality",
    "ScoreConfig",
    "conversation_scores",
    "dedup",
    "distinct_n",
    "embedding_diversity",
    "entropy_bits",
    "export",
    "filter_conversations",
    "is_follow_up",
    "judge_question_quality",
    "llamafactory_entry",
    "mt_bench",
    "mtld",
    "parse_rating",
    "score",
    "self_bleu",
    "summarise_single",
]
