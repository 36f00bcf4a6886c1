"""The built-in tool families, registered through the same path a third-party tool would use."""

from __future__ import annotations

from mopsbot.tools.knowledge import search_knowledge
from mopsbot.tools.registry import ToolRegistry


def builtin_registry() -> ToolRegistry:
    registry = ToolRegistry()
    registry.register(search_knowledge)
    return registry
