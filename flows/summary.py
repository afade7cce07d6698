"""The run summary people read: in the terminal and as a Prefect artifact."""

from __future__ import annotations

from flows.pipeline import RunResult


def summary_lines(result: RunResult) -> list[str]:
    """Rows imported per element, rejects with their top reasons, what was built, where."""
    lines = [f"run {result.run_id} as of {result.as_of:%Y-%m-%dT%H:%M:%SZ}: {result.status}"]
    if result.summary is not None:
        for e in result.summary.elements:
            if e.status == "missing":
                lines.append(f"  {e.element:<18} no file: live state kept as it was")
                continue
            if e.status == "unchanged":
                lines.append(f"  {e.element:<18} same file as the last import: skipped")
                continue
            line = (
                f"  {e.element:<18} {e.rows_read:>9} read {e.rows_accepted:>9} accepted "
                f"{e.rows_rejected:>6} rejected | +{e.added} ~{e.updated} -{e.removed}"
            )
            if e.top_reasons:
                line += " | " + ", ".join(f"{code} {n}" for code, n in e.top_reasons.items())
            lines.append(line)
            lines.extend(f"    note: {note}" for note in e.notes)
        lines.extend(f"  warning: {w}" for w in result.summary.warnings)
    lines.extend(_audience_lines(result))
    lines.extend(_program_lines(result))
    lines.extend(_notification_lines(result))
    if result.reports is not None and result.reports.reports:
        lines.extend(f"  {line}" for line in result.reports.lines())
    lines.append(f"  dbt: {result.models_built} models built, {result.tests_passed} tests passed")
    if result.stage_seconds:
        timings = ", ".join(f"{k} {v:.1f}s" for k, v in result.stage_seconds.items())
        lines.append(f"  time: {timings}")
    lines.append(f"  warehouse: {result.warehouse} (rejected rows are in import_reject)")
    return lines


def render_markdown(result: RunResult) -> str:
    """The same summary as a Markdown artifact."""
    return "```\n" + "\n".join(summary_lines(result)) + "\n```\n"


def _notification_lines(result: RunResult) -> list[str]:
    """New messages by status, the guard's hold, what was sent, alerts mailed."""
    lines = []
    if result.notifications:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(result.notifications.items()))
        lines.append(
            f"  notifications: {sum(result.notifications.values())} new messages ({counts})"
        )
        if result.notifications.get("held"):
            lines.append(
                f"    held by the mass-send guard (max_per_run): review, then "
                f"`learnops notify --release-run {result.run_id}`"
            )
        if result.notifications.get("suppressed"):
            lines.append(
                "    suppressed: the go-live baseline (first run or --baseline) mails nobody"
            )
    report = result.delivery
    if report is not None and report.selected:
        where = "SMTP" if report.mode == "smtp" else ".eml files"
        unsent = report.rate_limited + report.unsent + report.template_errors
        lines.append(
            f"  mail: {report.sent} sent via {where}, {report.failed} failed, "
            f"{unsent} left pending for `learnops notify`"
        )
    lines.extend(
        f"  alert mailed to the data team: {kind} ({outcome})"
        for kind, outcome in result.alerts.items()
        if outcome == "sent"
    )
    return lines


def _audience_lines(result: RunResult) -> list[str]:
    """Audiences evaluated, members, joins and leaves; broken audiences, new ones first."""
    lines = []
    if result.rules is not None:
        line = f"  audiences: {result.rules.audiences}"
        counts = result.audience_counts
        if counts is not None:
            line += f", {counts.members} memberships (+{counts.joined} joined, -{counts.left} left)"
        lines.append(line)
        for audience_id, reason in sorted(result.rules.newly_broken.items()):
            lines.append(f"    broken (new, members kept): {audience_id}: {reason}")
        for audience_id, reason in sorted(result.rules.still_broken.items()):
            lines.append(f"    still broken (members kept): {audience_id}: {reason}")
    return lines


def _program_lines(result: RunResult) -> list[str]:
    """Programs and certifications loaded; broken ones (state kept), new ones first."""
    programs = result.programs
    if programs is None:
        return []
    lines = [f"  programs: {programs.programs}, certifications: {programs.certifications}"]
    for program_id, reason in sorted(programs.newly_broken.items()):
        lines.append(f"    broken (new, state kept): {program_id}: {reason}")
    for program_id, reason in sorted(programs.still_broken.items()):
        lines.append(f"    still broken (state kept): {program_id}: {reason}")
    return lines
