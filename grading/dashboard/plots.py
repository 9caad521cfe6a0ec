"""Server-rendered SVG plots (matplotlib, no JavaScript): grade distribution and submission timeline.

Element ids get a per-figure prefix, so several inline SVGs on one page never share an id.
"""

from __future__ import annotations

import io
import re
import threading

_LOCK = threading.Lock()  # pyplot's state is global: one figure at a time


def _svg(draw, salt: str, size=(4.2, 2.2)) -> str:  # noqa: ANN001
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
    return _prefix_ids(text[text.index("<svg"):], salt)


def _prefix_ids(svg: str, salt: str) -> str:
    """matplotlib names elements figure_1, patch_1, ... in every figure: make them unique per page."""
    p = re.sub(r"[^A-Za-z0-9_-]", "_", salt) + "-"
    svg = re.sub(r'\bid="', f'id="{p}', svg)
    svg = svg.replace("url(#", f"url(#{p}")
    return re.sub(r'href="#', f'href="#{p}', svg)


def score_histogram(scores: list[float], max_score: float, salt: str, title: str = "") -> str:
    def draw(ax):  # noqa: ANN001
        top = max_score if max_score > 0 else (max(scores) if scores else 1.0)
        bins = min(20, max(5, int(top) or 5))
        ax.hist(scores, bins=bins, range=(0, top), color="#3b6ea8", edgecolor="white")
        ax.set_xlabel("score" + (f" (of {max_score:g})" if max_score else ""))
        ax.set_ylabel("students")
        ax.set_title(title or f"{len(scores)} graded", fontsize=8)

    return _svg(draw, f"scores-{salt}")


def submission_timeline(hours: list[float], salt: str, window: float = 72.0) -> str:
    """Submissions per hour from `window` hours before the deadline to `window` after it."""
    def draw(ax):  # noqa: ANN001
        shown = [h for h in hours if -window <= h <= window]
        ax.hist(shown, bins=int(2 * window / 3), range=(-window, window), color="#6a8f3b", edgecolor="white")
        ax.axvline(0, color="#b03030", linewidth=1)
        ax.text(0, 1, " deadline", color="#b03030", transform=ax.get_xaxis_transform(), va="top", fontsize=7)
        ax.set_xlabel("hours from the deadline")
        ax.set_ylabel("submissions")
        outside = len(hours) - len(shown)
        ax.set_title(f"{len(hours)} submissions" + (f" ({outside} outside ±{window:g} h)" if outside else ""),
                     fontsize=8)

    return _svg(draw, f"timeline-{salt}")
