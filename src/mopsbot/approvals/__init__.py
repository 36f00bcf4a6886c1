"""Pending actions: proposal, authorization, decision and the single execution of an approved payload.

Imports nothing from agent/ or slack/: approvals are data. Each action kind's effects come from an ActionHandler
registered by the composition root.
"""

from mopsbot.approvals.decide import DecisionRefused, DecisionResult
from mopsbot.approvals.envelope import EnvelopeMismatch, SealedAction
from mopsbot.approvals.facade import Approvals
from mopsbot.approvals.handlers import ActionHandler, NotReady, Proposal

__all__ = [
    "ActionHandler",
    "Approvals",
    "DecisionRefused",
    "DecisionResult",
    "EnvelopeMismatch",
    "NotReady",
    "Proposal",
    "SealedAction",
]
