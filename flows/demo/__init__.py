"""Demo and scale data: a deterministic organisation written as Totara HR Import feeds (SPEC §9)."""

from flows.demo.generator import GenerationReport, InjectedBadRow, generate_feeds

__all__ = ["GenerationReport", "InjectedBadRow", "generate_feeds"]
