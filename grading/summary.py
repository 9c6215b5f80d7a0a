"""The text an instructor reads after a run: counts by status, slowest notebooks, failures."""

from __future__ import annotations

from grading.progress import GOOD


def summary(report, slowest: int = 5) -> str:
    lines = [f"{report.assignment}: {len(report.results)} graded, {len(report.skipped)} already "
             f"graded (skipped), in {report.seconds:.0f} s with {report.jobs} sandbox(es) "
             "at a time"]
    if report.interrupted:
        lines.append("INTERRUPTED: run the same command again to grade what is left")
    counts = report.counts()
    if counts:
        lines.append("by status: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    runs = sorted(((nb["seconds"], r.student, nb["name"]) for r in report.results
                   for nb in r.notebooks), reverse=True)[:slowest]
    if runs:
        lines.append("slowest notebooks: " + ", ".join(f"{s}/{n} {t:.1f} s" for t, s, n in runs))
    flagged = [r for r in report.results if r.status not in GOOD or r.notes]
    if flagged:
        lines.append("to look at:")
        for r in flagged:
            lines.append(f"  {r.student}: {r.status}, {r.score:g}/{r.max_score:g}")
            lines.extend(f"      {note}" for note in r.notes)
    lines.append(f"report: {report.path}")
    return "\n".join(lines)
