"""The dashboard page: the shared page base (`grading/templates/dashboard.html`, autoescaped), with
inline SVG plots and their data tables, and a per-student table that sorts and filters on the
server (links and a GET form) and, with JavaScript, in place."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from markupsafe import Markup

from .data import AssignmentStats, Overview, StudentLine
from .plots import score_bins, score_histogram, submission_timeline, timeline_bins

#: What the outbox's row status means for the people reading the dashboard.
SYNC_TEXT = {"sent": "in the LMS", "pending": "waiting to be sent", "failed": "LMS sync failed",
             "": "not in the LMS yet"}


@dataclass
class Plots:
    assignment: AssignmentStats
    distribution: Markup
    distribution_bins: list
    timeline: Markup | None = None
    timeline_bins: list | None = None
    window: float = 0.0


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def arrange(table: list[StudentLine], sort: str, descending: bool, query: str, only_late: bool) -> list[StudentLine]:
    """The rows the page lists without JavaScript: filtered by name or id (case-insensitive) and
    lateness, sorted by name or by one assignment's score (no score sorts below every score)."""
    q = query.strip().casefold()
    rows = [r for r in table if (not q or q in r.name.casefold() or q in r.student_id.casefold())
            and (not only_late or any(c.late for c in r.cells.values()))]
    if sort == "name":
        return sorted(rows, key=lambda r: ((r.name or r.student_id).casefold(), r.student_id), reverse=descending)

    def score(r: StudentLine) -> float:
        cell = r.cells.get(sort)
        return cell.score if cell is not None and cell.score is not None else float("-inf")

    return sorted(sorted(rows, key=lambda r: r.student_id), key=score, reverse=descending)


def render_page(o: Overview, *, base: str, xsrf: str, formgrader_url: str, message: str = "",
                hub_home: str = "/hub/home", sort: str = "name", descending: bool = False, query: str = "",
                only_late: bool = False) -> str:
    """`base` is this course's dashboard URL (ending in '/'); `message` is a status line the
    service itself wrote (see handlers.flash), never text from the request."""
    from .templating import render

    names = [a.name for a in o.assignments]
    sort = sort if sort in ("name", *names) else "name"
    plots = []
    for i, a in enumerate(o.assignments):
        salt = f"{i}-{quote(a.name, safe='')}"
        p = Plots(a, Markup(score_histogram(a.scores, a.max_score, salt)),
                  [b for b in score_bins(a.scores, a.max_score)])
        if a.due is not None:
            p.window, bins = timeline_bins(a.submission_hours)
            p.timeline, p.timeline_bins = Markup(submission_timeline(a.submission_hours, salt)), \
                [b for b in bins if b.count]
        plots.append(p)

    def sort_link(key: str) -> str:
        flip = key == sort and not descending
        args = {"sort": key, **({"order": "desc"} if flip else {}), **({"q": query} if query else {}),
                **({"late": "1"} if only_late else {})}
        return "?" + urlencode(args) + "#students"

    course_page = base.replace("/dashboard/", "/course/", 1)
    rows = arrange(o.table, sort, descending, query, only_late)
    return render("dashboard.html", o=o, base=base, xsrf=xsrf, formgrader_url=formgrader_url, message=message,
                  hub_home=hub_home, staff_url=course_page + "staff", student_url=course_page, plots=plots,
                  rows=rows, sort=sort, descending=descending, query=query, only_late=only_late,
                  sort_link=sort_link, plural=plural, sync_text=SYNC_TEXT,
                  exports=[("CSV (one row per student)", "format=csv"),
                           ("CSV (one row per grade)", "format=csv&long=1"),
                           ("Canvas import", "format=canvas"), ("Excel", "format=xlsx")])
