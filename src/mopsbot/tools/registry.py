"""The tool registry: typed functions become tools; their docstrings and type hints become what the LLM sees.

A tool is `fn(ctx: ToolContext, args: SomeArgsModel) -> ToolResult | WriteProposal`. The name is the function
name, the description is the docstring's first line (when to use it), the JSON schema is the args model's.
Read tools run at once. Write tools only *propose*: they return a WriteProposal, and the agent turns it into a
pending action that waits for an approver; a write tool never executes anything itself.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from mopsbot.tools.base import ToolContext, ToolResult, WriteProposal

ToolKind = Literal["read", "write"]


class ToolDefinitionError(TypeError):
    """A function cannot be a tool (missing docstring, wrong signature); raised at registration."""


@dataclass(frozen=True)
class Tool:
    name: str
    fn: Callable[[ToolContext, Any], ToolResult | WriteProposal]
    args_model: type[BaseModel]
    kind: ToolKind
    description: str
    doc: str
    exemplars: tuple[str, ...] = ()
    action_kind: str | None = None  # write tools: the kind of pending action they propose

    def schema(self) -> dict[str, Any]:
        """The OpenAI `tools` entry for this tool."""
        params = _without_titles(self.args_model.model_json_schema())
        return {"type": "function", "function": {"name": self.name, "description": self.doc, "parameters": params}}

    def parse(self, arguments: dict[str, Any] | str | None) -> BaseModel:
        """Validated arguments. Raises ValidationError (or ValueError for JSON that does not parse)."""
        if isinstance(arguments, str):
            return self.args_model.model_validate_json(arguments or "{}")
        return self.args_model.model_validate(arguments or {})


def tool(
    kind: ToolKind = "read", *, exemplars: Iterable[str] = (), action_kind: str | None = None
) -> Callable[[Callable[..., Any]], Tool]:
    """Decorator turning a typed function into a Tool (see the module docstring)."""

    def wrap(fn: Callable[..., Any]) -> Tool:
        doc = inspect.getdoc(fn) or ""
        if not doc.strip():
            raise ToolDefinitionError(f"tool {fn.__name__} needs a docstring whose first line says when to use it")
        hints = typing.get_type_hints(fn)
        params = [p for p in inspect.signature(fn).parameters if p != "return"]
        if len(params) != 2:
            raise ToolDefinitionError(f"tool {fn.__name__} must take (ctx, args)")
        model = hints.get(params[1])
        if not (inspect.isclass(model) and issubclass(model, BaseModel)):
            raise ToolDefinitionError(f"tool {fn.__name__}: the args parameter must be a pydantic model")
        if kind == "write" and not action_kind:
            raise ToolDefinitionError(f"write tool {fn.__name__} must name the action_kind it proposes")
        return Tool(fn.__name__, fn, model, kind, doc.splitlines()[0], doc, tuple(exemplars), action_kind)

    return wrap


@dataclass
class ToolRegistry:
    """Tools by name. Built-in families register through the same `register` a third party would use."""

    _tools: dict[str, Tool] = field(default_factory=dict)

    def register(self, *tools: Tool) -> None:
        for t in tools:
            if t.name in self._tools:
                raise ToolDefinitionError(f"a tool named {t.name} is already registered")
            self._tools[t.name] = t

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __iter__(self):
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return list(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in self._tools.values()]


def _without_titles(schema: Any) -> Any:
    """The JSON schema without pydantic's auto-generated "title" keys (tokens the model does not need)."""
    if isinstance(schema, dict):
        return {k: _without_titles(v) for k, v in schema.items() if not (k == "title" and isinstance(v, str))}
    if isinstance(schema, list):
        return [_without_titles(v) for v in schema]
    return schema


def describe_validation_error(err: ValidationError | ValueError) -> str:
    """A short message a model (or a person) can act on: which argument, what is wrong."""
    if isinstance(err, ValidationError):
        parts = []
        for e in err.errors():
            where = ".".join(str(x) for x in e["loc"]) or "arguments"
            parts.append(f"{where}: {e['msg']}")
        return "; ".join(parts)
    return str(err)
