# The names `answer/__init__.py` exports, each loaded on first use (dialforge/_lazy.py).
from .config import AnswerConfig
from .run import AnswerStage, answer, answer_async

__all__ = ["AnswerConfig", "AnswerStage", "answer", "answer_async"]
