"""The append-only audit log: every step of a turn, a proposal, a decision and an execution."""

from mopsbot.audit.recorder import events_for, record, redact, redact_text

__all__ = ["events_for", "record", "redact", "redact_text"]
