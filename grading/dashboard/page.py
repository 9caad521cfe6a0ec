"""The dashboard page: plain server-rendered HTML with inline SVG plots, every value escaped."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from .data import Overview
from .plots import score_histogram, submission_timeline

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;max-width:80rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th:first-child,td:first-child{text-align:left}.plots{display:flex;flex-wrap:wrap;gap:1rem}
.card{border:1px solid #ddd;border-radius:6px;padding:.5rem;margin:.5rem 0}.warn{color:#a33}
.note{background:#eef4ff;padding:.5rem;border-radius:4px}form{display:inline}button,.button{margin:.1rem}
"""


def _e(v: object) -> str:
    return escape("" if v is None else str(v), quote=True)


def _when(d) -> str:  # noqa: ANN001
    return d.strftime("%Y-%m-%d %H:%M UTC") if d else "—"


def _post(action: str, label: str, xsrf: str, extra: dict[str, str] | None = None) -> str:
    fields = "".join(f'<input type="hidden" name="{_e(k)}" value="{_e(v)}">' for k, v in (extra or {}).items())
    return (f'<form method="post" action="{_e(action)}"><input type="hidden" name="_xsrf" value="{_e(xsrf)}">'
            f'{fields}<button type="submit">{_e(label)}</button></form>')


def render_page(o: Overview, *, base: str, xsrf: str, formgrader_url: str, message: str = "") -> str:
    """`base` is this course's dashboard URL (ending in '/')."""
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(o.title)} — grades</title>"
             f"<style>{CSS}</style></head><body>",
             f"<h1>{_e(o.title)} <small>({_e(o.course_id)})</small></h1>",
             f"<p>{o.students} students in the gradebook.</p>"]
    if message:
        parts.append(f"<p class='note' role='status'>{_e(message)}</p>")
    for p in o.problems:
        parts.append(f"<p class='warn'>{_e(p)}</p>")
    parts.append(
        "<section class='card'><h2>Manual grading</h2>"
        f"<p><a class='button' href='{_e(formgrader_url)}' target='_blank' rel='noopener'>Open the formgrader</a> "
        "(opens in a new tab: JupyterHub 4.1 and later forbid showing it inside another page, nbgrader issue #1870).</p>"
        "</section>")
    course_page = base.replace("/dashboard/", "/course/", 1)
    parts.append("<section class='card'><h2>Course pages</h2><p>"
                 f"<a class='button' href='{_e(course_page + 'staff')}'>Staff page</a> (release, collect, "
                 "autograde and LMS sync state) · "
                 f"<a class='button' href='{_e(course_page)}'>The students' course page</a> (each student sees "
                 "their own due dates, status and released scores)</p></section>")
    parts.append("<section class='card'><h2>Export</h2><p>")
    for label, query in (("CSV (one row per student)", "format=csv"), ("CSV (one row per grade)", "format=csv&long=1"),
                         ("Canvas import", "format=canvas"), ("Excel", "format=xlsx")):
        parts.append(f"<a class='button' href='{_e(base + 'export?' + query)}' download>{_e(label)}</a> ")
    parts.append("</p></section>")

    parts.append("<section class='card'><h2>Assignments</h2><table id='assignments'><thead><tr><th>Assignment</th>"
                 "<th>Due</th><th>Released</th><th>Submitted</th><th>Graded</th><th>Needs manual grading</th>"
                 "<th>Late</th></tr></thead><tbody>")
    for a in o.assignments:
        parts.append(f"<tr data-assignment='{_e(a.name)}'><td>{_e(a.title)} <small>({_e(a.name)})</small></td>"
                     f"<td>{_when(a.due)}</td><td class='released'>{'yes' if a.released else 'no'}</td>"
                     f"<td class='submitted'>{a.submitted}</td><td class='graded'>{a.graded}</td>"
                     f"<td class='manual'>{a.needs_manual}</td><td class='late'>{a.late}</td></tr>")
    parts.append("</tbody></table></section>")

    for i, a in enumerate(o.assignments):
        parts.append(f"<section class='card plots-for' data-assignment='{_e(a.name)}'><h3>{_e(a.title)}</h3>"
                     "<div class='plots'>")
        salt = f"{i}-{quote(a.name, safe='')}"
        parts.append(f"<figure class='distribution'>{score_histogram(a.scores, a.max_score, salt)}"
                     "<figcaption>Grade distribution</figcaption></figure>")
        if a.due is not None:
            parts.append(f"<figure class='timeline'>{submission_timeline(a.submission_hours, salt)}"
                         "<figcaption>Submissions around the deadline</figcaption></figure>")
        parts.append("</div></section>")

    parts.append("<section class='card'><h2>Grading queue</h2>")
    parts.append("<p>" + (", ".join(f"{_e(k)}: {v}" for k, v in sorted(o.queue.items())) or "no jobs") + "</p>")
    if o.dead_jobs:
        parts.append("<table id='dead-jobs'><thead><tr><th>Student</th><th>Assignment</th><th>Attempts</th>"
                     "<th>Error</th><th></th></tr></thead><tbody>")
        for j in o.dead_jobs:
            parts.append(f"<tr><td>{_e(j['student'])}</td><td>{_e(j['assignment'])}</td><td>{_e(j['attempts'])}</td>"
                         f"<td>{_e((j.get('last_error') or '')[-300:])}</td>"
                         f"<td>{_post(base + 'jobs/retry', 'Retry', xsrf, {'id': str(j['id'])})}</td></tr>")
        parts.append("</tbody></table>")
    parts.append("</section>")

    parts.append("<section class='card' id='sync'><h2>Grades in the LMS</h2>")
    parts.append("<p>" + (", ".join(f"{_e(k)}: {v}" for k, v in sorted(o.sync.items())) or "nothing sent yet")
                 + "</p>")
    parts.append(_post(base + "sync/now", "Send changed grades to the LMS now", xsrf))
    parts.append(_post(base + "roster/sync", "Update the roster from the LMS", xsrf))
    if o.sync_failed:
        parts.append(_post(base + "sync/retry", "Retry all failed", xsrf))
        parts.append("<table id='sync-failed'><thead><tr><th>Student</th><th>Assignment</th><th>Score</th>"
                     "<th>Error</th><th></th></tr></thead><tbody>")
        for r in o.sync_failed:
            parts.append(f"<tr><td>{_e(r['student'])}</td><td>{_e(r['assignment'])}</td>"
                         f"<td>{_e(r['score_given'])} / {_e(r['score_maximum'])}</td><td>{_e(r['last_error'])}</td>"
                         f"<td>{_post(base + 'sync/retry', 'Retry', xsrf, {'id': str(r['id'])})}</td></tr>")
        parts.append("</tbody></table>")
    parts.append("</section></body></html>")
    return "".join(parts)
