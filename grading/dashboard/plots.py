"""Server-rendered SVG plots (matplotlib, no JavaScript): grade distribution and submission timeline.

Element ids get a per-figure prefix, so several inline SVGs on one page never share an id. Every
plot is an image with a title and a description (role="img", aria-labelledby), and the numbers it
draws come from `score_bins` / `timeline_bins`, which the page also shows as a table for readers
who cannot see the picture.
"""

from __future__ import annotations

import io
import math
import re
import threading
from dataclasses import dataclass
from html import escape

_LOCK = threading.Lock()  # pyplot's state is global: one figure at a time
#: The timeline shows at least this many hours either side of the deadline, more when submissions
#: fall outside (up to MAX_WINDOW), so it is never empty while there are submissions.
WINDOW = 72.0
MAX_WINDOW = 24.0 * 60


@dataclass(frozen=True)
class Bin:
    low: float
    high: float
    count: int


def _count(values: list[float], edges: list[float]) -> list[Bin]:
    """numpy.histogram's rule: half-open bins, the last one closed."""
    out = []
    for i, (lo, hi) in enumerate(zip(edges, edges[1:], strict=False)):
        last = i == len(edges) - 2
        n = sum(1 for v in values if lo <= v < hi or (last and v == hi))
        out.append(Bin(lo, hi, n))
    return out


def score_bins(scores: list[float], max_score: float) -> list[Bin]:
    top = max_score if max_score > 0 else (max(scores) if scores else 1.0)
    top = top or 1.0
    n = min(20, max(5, int(top) or 5))
    return _count(scores, [top * i / n for i in range(n + 1)])


def timeline_window(hours: list[float]) -> float:
    furthest = max((abs(h) for h in hours), default=0.0)
    if furthest <= WINDOW:
        return WINDOW
    return float(min(MAX_WINDOW, math.ceil(furthest / 24.0) * 24.0))


def timeline_bins(hours: list[float]) -> tuple[float, list[Bin]]:
    window = timeline_window(hours)
    n = 48
    return window, _count(hours, [-window + 2 * window * i / n for i in range(n + 1)])


def _svg(draw, salt: str, label: str, description: str, size=(4.2, 2.2)) -> str:  # noqa: ANN001
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    with _LOCK, matplotlib.rc_context({"svg.hashsalt": salt, "svg.fonttype": "none", "font.size": 8}):
        fig, ax = plt.subplots(figsize=size, layout="constrained")
        try:
            draw(ax)
            buf = io.StringIO()
            fig.savefig(buf, format="svg")
        finally:
            plt.close(fig)
    text = buf.getvalue()
    return _accessible(_prefix_ids(text[text.index("<svg"):], salt), salt, label, description)


def _accessible(svg: str, salt: str, label: str, description: str) -> str:
    """role="img" with a <title> and <desc> that screen readers announce."""
    p = re.sub(r"[^A-Za-z0-9_-]", "_", salt)
    head_end = svg.index(">") + 1
    head = svg[:head_end - 1] + f' role="img" aria-labelledby="{p}-title {p}-desc">'
    return (head + f'<title id="{p}-title">{escape(label)}</title><desc id="{p}-desc">{escape(description)}</desc>'
            + svg[head_end:])


def _prefix_ids(svg: str, salt: str) -> str:
    """matplotlib names elements figure_1, patch_1, ... in every figure: make them unique per page."""
    p = re.sub(r"[^A-Za-z0-9_-]", "_", salt) + "-"
    svg = re.sub(r'\bid="', f'id="{p}', svg)
    svg = svg.replace("url(#", f"url(#{p}")
    return re.sub(r'href="#', f'href="#{p}', svg)


def _integer_counts(ax) -> None:  # noqa: ANN001
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def _bars(ax, bins: list[Bin], color: str) -> None:  # noqa: ANN001
    ax.bar([b.low for b in bins], [b.count for b in bins], width=[b.high - b.low for b in bins], align="edge",
           color=color, edgecolor="white")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def score_histogram(scores: list[float], max_score: float, salt: str, title: str = "") -> str:
    bins = score_bins(scores, max_score)

    def draw(ax):  # noqa: ANN001
        _bars(ax, bins, "#3b6ea8")
        ax.set_xlim(bins[0].low, bins[-1].high)
        ax.set_xlabel("score" + (f" (of {max_score:g})" if max_score else ""))
        ax.set_ylabel("students")
        _integer_counts(ax)
        ax.set_title(title or _plural(len(scores), "graded submission"), fontsize=8)

    busiest = max(bins, key=lambda b: b.count)
    desc = (f"Histogram of {_plural(len(scores), 'graded submission')}"
            + (f"; most scores ({busiest.count}) between {busiest.low:g} and {busiest.high:g}" if scores else "")
            + ". The table below has every bar.")
    return _svg(draw, f"scores-{salt}", "Grade distribution", desc)


def submission_timeline(hours: list[float], salt: str) -> str:
    """Submissions per time slot around the deadline (±72 h, wider when submissions fall outside)."""
    window, bins = timeline_bins(hours)
    shown = sum(b.count for b in bins)
    outside = len(hours) - shown

    def draw(ax):  # noqa: ANN001
        _bars(ax, bins, "#6a8f3b")
        ax.set_xlim(-window, window)
        ax.axvline(0, color="#b03030", linewidth=1)
        ax.text(0, 1, " deadline", color="#b03030", transform=ax.get_xaxis_transform(), va="top", fontsize=7)
        ax.set_xlabel("hours from the deadline")
        ax.set_ylabel("submissions")
        _integer_counts(ax)
        ax.set_title(_plural(len(hours), "submission") + (f" ({outside} outside ±{window:g} h)" if outside else ""),
                     fontsize=8)

    before = sum(1 for h in hours if h <= 0)
    desc = (f"{_plural(len(hours), 'submission')} from {window:g} hours before the deadline to {window:g} hours "
            f"after it: {before} before the deadline, {len(hours) - before} after it. The table below has the counts.")
    return _svg(draw, f"timeline-{salt}", "Submissions around the deadline", desc)
