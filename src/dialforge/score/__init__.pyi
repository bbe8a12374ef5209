# The names `score/__init__.py` exports, each loaded on first use (dialforge/_lazy.py).
from .config import MTBenchConfig, ScoreConfig
from .dedup import dedup, dedup_file
from .export import EXPORT_FORMATS, export, export_file, llamafactory_entry
from .expression import Expression, ExpressionError
from .judge import QuestionQuality, judge_question_quality
from .metrics import distinct_n, embedding_diversity, entropy_bits, is_follow_up, mtld, self_bleu
from .mtbench import mt_bench, parse_rating, summarise_single
from .registry import Metric, register
from .scoring import conversation_scores, score
from .select import filter_conversations, filter_file, validate_filter

__all__ = [
    "EXPORT_FORMATS",
    "Expression",
    "ExpressionError",
    "Metric",
    "MTBenchConfig",
    "QuestionQuality",
    "ScoreConfig",
    "conversation_scores",
    "dedup",
    "dedup_file",
    "distinct_n",
    "embedding_diversity",
    "entropy_bits",
    "export",
    "export_file",
    "filter_conversations",
    "filter_file",
    "is_follow_up",
    "judge_question_quality",
    "llamafactory_entry",
    "mt_bench",
    "mtld",
    "parse_rating",
    "register",
    "score",
    "self_bleu",
    "summarise_single",
    "validate_filter",
]
