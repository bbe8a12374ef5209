"""Role-aware rendering: `input_ids` + `labels` with the loss on the roles you name.

Masks are built on token ids, segment by segment, never by re-tokenising string prefixes:
the chat template is rendered once with a sentinel in place of every message's content,
which splits the text into literal template pieces (headers, separators, end tokens) and
message contents. Each piece is tokenised on its own and the ids are concatenated, so every
token belongs to exactly one piece and its label is known. This is also how inference sees
the text: the prompt ends at a header and the model writes the content tokens.

A trained message's labels cover its content plus the template's end-of-turn token: the
special token that opens the literal piece right after the content (e.g. `<|im_end|>`,
`<|eot_id|>`, `</s>`), and only that one (in Llama 3 the next header's special tokens follow
it directly). Headers, system prompts and other roles are -100.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

IGNORE = -100
_SENTINEL = "\u27e6dialforge:{}\u27e7"


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]

    @property
    def n_trained(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


@dataclass
class RenderStats:
    examples: int = 0
    skipped_no_trainable: int = 0
    skipped_too_long: int = 0
    truncated: int = 0
    trained_tokens: int = 0
    reasons: list[str] = field(default_factory=list)


class RoleRenderer:
    def __init__(
        self,
        tokenizer: Any,
        template: str,
        train_roles: Iterable[str] = ("assistant",),
        last_turn_only: bool = False,
        max_length: int | None = None,
    ) -> None:
        self.tok = tokenizer
        self.template = template
        self.train_roles = set(train_roles)
        self.last_turn_only = last_turn_only
        self.max_length = max_length
        self.special_ids = set(tokenizer.all_special_ids)
        self._piece_cache: dict[str, list[int]] = {}

    def _ids(self, text: str, cache: bool = False) -> list[int]:
        if cache and text in self._piece_cache:
            return self._piece_cache[text]
        ids = list(self.tok(text, add_special_tokens=False)["input_ids"]) if text else []
        if cache:
            self._piece_cache[text] = ids
        return ids

    def pieces(self, messages: list[dict[str, str]]) -> list[tuple[str, int | None]]:
        """The rendered template as (text, message index or None for literal template text)."""
        marked = [{"role": m["role"], "content": _SENTINEL.format(i)} for i, m in enumerate(messages)]
        text = self.tok.apply_chat_template(marked, chat_template=self.template, tokenize=False)
        out: list[tuple[str, int | None]] = []
        pos = 0
        for i in range(len(messages)):
            s = _SENTINEL.format(i)
            at = text.find(s, pos)
            if at < 0 or text.find(s, at + len(s)) >= 0:
                raise ValueError(f"the chat template does not render message {i} exactly once")
            out.append((text[pos:at], None))
            out.append((messages[i]["content"], i))
            pos = at + len(s)
        out.append((text[pos:], None))
        return out

    def encode(self, messages: list[dict[str, str]]) -> Example:
        trained = [i for i, m in enumerate(messages) if m["role"] in self.train_roles]
        if self.last_turn_only:
            trained = trained[-1:]
        trained_set = set(trained)
        ids: list[int] = []
        labels: list[int] = []
        train_end = False
        for text, idx in self.pieces(messages):
            if idx is None:
                piece = self._ids(text, cache=True)
                n_end = 1 if train_end and piece and piece[0] in self.special_ids else 0
                ids.extend(piece)
                labels.extend(piece[:n_end] + [IGNORE] * (len(piece) - n_end))
                train_end = False
            else:
                piece = self._ids(text)
                ids.extend(piece)
                on = idx in trained_set
                labels.extend(piece if on else [IGNORE] * len(piece))
                train_end = on
        return Example(ids, labels)

    def render(self, messages: list[dict[str, str]], stats: RenderStats | None = None) -> Example | None:
        """Encode, dropping whole turns from the start (never the system prompt) until the
        example fits `max_length`. None when nothing is trainable or it cannot fit."""
        stats = stats if stats is not None else RenderStats()
        msgs = list(messages)
        ex = self.encode(msgs)
        truncated = False
        while self.max_length is not None and len(ex.input_ids) > self.max_length:
            body_start = 1 if msgs and msgs[0]["role"] == "system" else 0
            body = msgs[body_start:]
            if len(body) <= 2:
                stats.skipped_too_long += 1
                return None
            first_role = body[0]["role"]
            cut = 1
            while cut < len(body) and body[cut]["role"] != first_role:
                cut += 1
            msgs = msgs[:body_start] + body[cut:]
            truncated = True
            ex = self.encode(msgs)
        if ex.n_trained == 0:
            stats.skipped_no_trainable += 1
            return None
        stats.examples += 1
        stats.truncated += truncated
        stats.trained_tokens += ex.n_trained
        return ex


def swap_for_simulator(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """A simulator learns the user's turns as its own replies: swap user and assistant."""
    swap = {"user": "assistant", "assistant": "user"}
    return [{"role": swap.get(m["role"], m["role"]), "content": m["content"]} for m in messages]
