"""Numbers and text as the page shows them: one rule per metric (from the registry), "—" where
a value does not apply, no control characters, an ellipsis wherever text is cut."""

from __future__ import annotations

import math
import re
from typing import Any

from ..score.registry import Metric

DASH = "—"
ELLIPSIS = "…"
# C0 controls except tab and newline, DEL, C1 controls, lone surrogates and non-characters
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_CONTROL_BUT_RS = re.compile("[\x00-\x08\x0b-\x1d\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def clean(text: Any, keep_separator: bool = False) -> str:
    """Text without control characters (a tiny model emits them; raw in HTML they break pages);
    `keep_separator` leaves the record separator (\x1e) that joins the page's message texts."""
    if text is None:
        return ""
    s = str(text).replace("\r\n", "\n").replace("\r", "\n")
    return (_CONTROL_BUT_RS if keep_separator else _CONTROL).sub("", s)


def cut(text: Any, limit: int) -> str:
    """`clean` text on one line, cut to `limit` characters with an ellipsis when cut."""
    s = " ".join(clean(text).split())
    if len(s) <= limit:
        return s
    return s[: max(limit - 1, 0)].rstrip() + ELLIPSIS


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        v = float(value)
        return v if math.isfinite(v) else None
    return None


def decimals(metric: Metric | None) -> int:
    """Decimals a metric is shown with: integers none, shares and [-1, 1] scores three, the
    rest (MTLD, Vendi, judge scores, means of counts) one."""
    if metric is None:
        return 3
    if metric.kind in ("int", "bool"):
        return 0
    rng = metric.range
    if rng is not None and rng[0] is not None and rng[1] is not None and rng[1] - rng[0] <= 2:
        return 3
    return 1


def fmt_number(value: Any, digits: int = 3) -> str:
    """A number with `digits` decimals and thousands separators; "—" for None, NaN, text;
    never "-0"."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    v = _number(value)
    if v is None:
        return DASH
    if digits == 0 or isinstance(value, int):
        return f"{round(v) or 0:,}"
    r = round(v, digits) or 0.0  # `or` drops the sign of -0.0
    return f"{r:,.{digits}f}"


def fmt_metric(value: Any, metric: Metric | None) -> str:
    """A metric value as its registry entry says (ints, shares, unbounded scores)."""
    if metric is not None and metric.kind == "bool" and isinstance(value, bool):
        return "yes" if value else "no"
    if metric is not None and metric.kind in ("str", "list"):
        return DASH if value in (None, "", [], {}) else cut(value, 80)
    return fmt_number(value, decimals(metric))


def fmt_int(value: Any) -> str:
    return fmt_number(value, 0)


def fmt_share(part: int | None, whole: int | None) -> str:
    """`part` as a percentage of `whole` ("—" when there is no whole)."""
    if part is None or not whole:
        return DASH
    return f"{100 * part / whole:.0f}%"


def fmt_seconds(value: Any) -> str:
    v = _number(value)
    if v is None:
        return DASH
    if v < 60:
        return f"{v:.1f} s"
    m, s = divmod(round(v), 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def fmt_axis(value: float) -> str:
    """A short axis tick label: 0.25, 12, 1.5k, 2M (never scientific notation that gets cut)."""
    a = abs(value)
    if a >= 1e6:
        s = f"{value / 1e6:.1f}".rstrip("0").rstrip(".") + "M"
    elif a >= 1e4:
        s = f"{value / 1e3:.1f}".rstrip("0").rstrip(".") + "k"
    elif a >= 100 or a == 0:
        s = f"{value:.0f}"
    else:
        s = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5, 5 x 10^k steps)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10)), key=lambda st: abs(math.log(st / raw)))
    first = math.floor(lo / step) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9:
        if t >= lo - step * 1e-9:
            ticks.append(round(t, 12))
        t += step
    return ticks or [lo]
