"""Scheduled reports (SPEC §7, docs/reports.md): scope in SQL, rendering, schedule, sending."""
