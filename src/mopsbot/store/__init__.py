"""The bot state store: conversations, pending actions, change requests, drafts, audit, feedback, event ids."""

from mopsbot.store.db import Store, StoreUnavailable, upgrade

__all__ = ["Store", "StoreUnavailable", "upgrade"]
