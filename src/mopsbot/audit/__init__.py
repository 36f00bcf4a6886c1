"""The append-only audit log: every step of a turn, a proposal, a decision and an execution."""

from mopsbot.audit.recorder import events_for, record

__all__ = ["events_for", "record"]
