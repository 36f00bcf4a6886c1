"""Tools are typed functions: name, description and JSON schema come from the function itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from mopsbot.tools.base import ToolContext, ToolResult
from mopsbot.tools.builtin import builtin_registry
from mopsbot.tools.registry import ToolDefinitionError, ToolRegistry, tool

from .conftest import pause_campaign

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_schema_comes_from_docstring_and_args_model() -> None:
    schema = builtin_registry().get("search_knowledge").schema()  # type: ignore[union-attr]
    fn = schema["function"]
    assert fn["name"] == "search_knowledge"
    assert fn["description"].startswith("Use for")
    params = fn["parameters"]
    assert params["required"] == ["query"]
    assert params["properties"]["k"] == {
        "default": 5,
        "description": "How many passages to return.",
        "maximum": 10,
        "minimum": 1,
        "type": "integer",
    }
    assert "title" not in str(params)  # pydantic titles are stripped: tokens the model does not need


def test_write_tools_are_marked_and_name_their_action_kind() -> None:
    assert pause_campaign.kind == "write" and pause_campaign.action_kind == "change_request"
    assert builtin_registry().get("search_knowledge").kind == "read"  # type: ignore[union-attr]


class Args(BaseModel):
    x: int


def test_bad_definitions_fail_at_registration() -> None:
    with pytest.raises(ToolDefinitionError, match="docstring"):

        @tool()
        def no_doc(ctx: ToolContext, args: Args) -> ToolResult:
            return ToolResult("x")

    with pytest.raises(ToolDefinitionError, match="pydantic model"):

        @tool()
        def bad_args(ctx: ToolContext, args: int) -> ToolResult:
            """Use never."""
            return ToolResult("x")

    with pytest.raises(ToolDefinitionError, match="action_kind"):

        @tool("write")
        def write_without_kind(ctx: ToolContext, args: Args) -> ToolResult:
            """Use never."""
            return ToolResult("x")

    registry = ToolRegistry()
    registry.register(pause_campaign)
    with pytest.raises(ToolDefinitionError, match="already registered"):
        registry.register(pause_campaign)


def test_every_builtin_tool_is_documented() -> None:
    for t in builtin_registry():
        assert t.description and t.exemplars, t.name
        assert f"`{t.name}`" in README, f"{t.name} is missing from the README tool reference"
