"""Pending actions: proposal, authorization, decision and the single execution of an approved payload.

Imports nothing from agent/ or slack/: approvals are data.
"""
