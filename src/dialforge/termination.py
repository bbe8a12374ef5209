"""Why a conversation ended: one vocabulary for every self-play mode (simulate, self-talk)
and for the run's health checks (a leaf: `simulate/` writes these reasons, `run/health.py`
reads them, neither imports the other).

A `StrEnum`, so records, JSON and filter expressions keep the plain strings
(`termination_reason == "max_turns"`).
"""

from __future__ import annotations

from enum import StrEnum


class Termination(StrEnum):
    MAX_TURNS = "max_turns"  # the turn budget is spent
    END_SIGNAL = "end_signal"  # the user simulator wrote the end token
    GOODBYE = "goodbye"  # a goodbye phrase
    REPETITION = "repetition"  # a user turn repeats an earlier one
    ROLE_FLIP = "role_flip"  # a role spoke as the other one
    COPIED = "copied"  # a user turn copied the answer it replies to
    LEAK = "leak"  # the speaker's instructions leaked into its turn
    DEGENERATE = "degenerate"  # a turn too short to be a message (one character, a digit)
    EMPTY_TURN = "empty_turn"
    CONTEXT_BUDGET = "context_budget"  # the dialogue outgrew the context budget
    REJECTIONS = "rejections"  # IDEAS quality control rejected too many instructions in a row
    ENDED = "ended"  # self-talk: the agent reached an ending of its workflow
    END_CHECK = "end_check"  # self-talk: the LLM end check judged the exchange an ending
    ERROR = "error"  # a request failed (or the conversation raised)


# Reasons that are a natural close of the dialogue (the closing turn belongs to it), as
# opposed to a failure of the turn that triggered them.
CLOSING = frozenset({Termination.GOODBYE, Termination.END_CHECK})

# Reasons a bad turn of a prompted speaker is drawn again (up to `StopConfig.resample`
# times) before the conversation ends on it: a weak model often gets it right the next time.
RESAMPLE = frozenset(
    {
        Termination.ROLE_FLIP,
        Termination.COPIED,
        Termination.LEAK,
        Termination.DEGENERATE,
        Termination.EMPTY_TURN,
        Termination.REPETITION,
    }
)

# Reasons that mean a conversation did not end the way it should: the health checks warn when
# most conversations of a run end on one of them (run/health.py).
FAILURE = frozenset(
    {
        Termination.ERROR,
        Termination.REJECTIONS,
        Termination.ROLE_FLIP,
        Termination.REPETITION,
        Termination.EMPTY_TURN,
        Termination.CONTEXT_BUDGET,
        Termination.COPIED,
        Termination.LEAK,
        Termination.DEGENERATE,
    }
)
