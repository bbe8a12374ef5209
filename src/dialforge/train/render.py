"""Role-aware rendering: `input_ids` + `labels` with the loss on the roles you name, and the
inference prompt for the same dialogue, with identical token ids.

The chat template is rendered once, with a sentinel in place of every message's content, to
find where each content sits in the text. The text is cut into chunks at the start of every
message of a trained role (the points where a model starts writing), and each chunk is
tokenised once; labels are placed by the tokens' character offsets. The inference prompt
before message k is the same template text up to that point, cut and tokenised the same
way, so its ids are exactly a prefix of the training ids (`prompt_ids`); generation then
continues where training put the labels.

A chunk after the first is tokenised behind a special-token anchor whose id is dropped:
this is how the tokenizer treats text in the middle of a sequence (a SentencePiece-style
Metaspace tokenizer prepends `▁` only at the start), so the ids decode back to the
rendered text. Never re-tokenise string prefixes (engineering notes: "Masks").

A trained message's labels cover its content plus the template's end-of-turn token: the
special token right after the content (e.g. `<|im_end|>`, `<|eot_id|>`, `</s>`), and only
that one (in Llama 3 the next header's special tokens follow it directly); with
`train_open_token` (PlatoLM) also the special token right before it (`<s>`). Headers,
system prompts and other roles are -100.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import DialforgeError

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
        train_open_token: bool = False,
    ) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise DialforgeError("the renderer needs a fast (Rust) tokenizer: it places labels by character offsets")
        self.tok = tokenizer
        self.template = template
        self.train_roles = set(train_roles)
        self.last_turn_only = last_turn_only
        self.max_length = max_length
        self.train_open_token = train_open_token
        self.special_ids = set(tokenizer.all_special_ids)
        self._anchor = self._find_anchor()

    def _find_anchor(self) -> tuple[str, int] | None:
        for t in (self.tok.eos_token, self.tok.bos_token, self.tok.pad_token):
            if t:
                ids = self.tok(t, add_special_tokens=False)["input_ids"]
                if len(ids) == 1:
                    return t, ids[0]
        return None

    # -- text ------------------------------------------------------------------------------
    def layout(self, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
        """The rendered text and each message's content span (start, end) in it."""
        marked = [{"role": m["role"], "content": _SENTINEL.format(i)} for i, m in enumerate(messages)]
        text = self.tok.apply_chat_template(marked, chat_template=self.template, tokenize=False)
        parts: list[str] = []
        spans: list[tuple[int, int]] = []
        pos = out_len = 0
        for i, m in enumerate(messages):
            s = _SENTINEL.format(i)
            at = text.find(s, pos)
            if at < 0 or text.find(s, at + len(s)) >= 0:
                raise ValueError(f"the chat template does not render message {i} exactly once")
            parts.append(text[pos:at])
            out_len += at - pos
            parts.append(m["content"])
            spans.append((out_len, out_len + len(m["content"])))
            out_len += len(m["content"])
            pos = at + len(s)
        parts.append(text[pos:])
        return "".join(parts), spans

    # -- tokens ----------------------------------------------------------------------------
    def _tokenize(self, text: str, mid: bool) -> tuple[list[int], list[tuple[int, int]]]:
        if not text:
            return [], []
        if mid and self._anchor is not None:
            anchor, aid = self._anchor
            enc = self.tok(anchor + text, add_special_tokens=False, return_offsets_mapping=True)
            if enc["input_ids"] and enc["input_ids"][0] == aid:
                n = len(anchor)
                return list(enc["input_ids"][1:]), [(a - n, b - n) for a, b in enc["offset_mapping"][1:]]
        enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=True)
        return list(enc["input_ids"]), [(a, b) for a, b in enc["offset_mapping"]]

    def _chunked(self, text: str, cuts: list[int]) -> tuple[list[int], list[tuple[int, int]]]:
        ids: list[int] = []
        offs: list[tuple[int, int]] = []
        bounds = [0, *sorted(c for c in set(cuts) if 0 < c < len(text)), len(text)]
        for k in range(len(bounds) - 1):
            a, b = bounds[k], bounds[k + 1]
            piece_ids, piece_offs = self._tokenize(text[a:b], mid=k > 0)
            ids.extend(piece_ids)
            offs.extend((a + x, a + y) for x, y in piece_offs)
        return ids, offs

    def encode(self, messages: list[dict[str, str]]) -> Example:
        text, spans = self.layout(messages)
        cuts = [spans[i][0] for i, m in enumerate(messages) if m["role"] in self.train_roles]
        ids, offs = self._chunked(text, cuts)
        trained = [i for i, m in enumerate(messages) if m["role"] in self.train_roles]
        if self.last_turn_only:
            trained = trained[-1:]
        labels = [IGNORE] * len(ids)
        for i in trained:
            self._label(ids, offs, labels, *spans[i])
        return Example(ids, labels)

    def _label(self, ids: list[int], offs: list[tuple[int, int]], labels: list[int], s: int, e: int) -> None:
        """Train the tokens of the content span [s, e), the special token right after it (the
        end of turn) and, with `train_open_token`, the special token right before it."""
        inside = [k for k, (a, b) in enumerate(offs) if a < e and b > s]
        for k in inside:
            labels[k] = ids[k]
        after = next((k for k, (a, _) in enumerate(offs) if a >= e and k not in inside), None)
        if after is not None and ids[after] in self.special_ids:
            labels[after] = ids[after]
        if self.train_open_token:
            before = [k for k, (_, b) in enumerate(offs) if b <= s]
            if before and ids[before[-1]] in self.special_ids:
                labels[before[-1]] = ids[before[-1]]

    def prompt_ids(self, messages: list[dict[str, str]], role: str = "assistant") -> list[int]:
        """The ids a model sees before it writes the next `role` message: the prefix of the
        training ids of any dialogue that continues `messages` with such a message."""
        if role not in self.train_roles:
            raise ValueError(f"role {role!r} is not a trained role ({sorted(self.train_roles)})")
        text, spans = self.layout([*messages, {"role": role, "content": ""}])
        cut = spans[-1][0]
        cuts = [spans[i][0] for i, m in enumerate(messages) if m["role"] in self.train_roles]
        return self._chunked(text[:cut], cuts)[0]

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
