"""vcrpy settings shared by the replay evals and the cassette tests: secrets filtered, bodies matched by shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SECRET_HEADERS = ("authorization", "openai-organization", "openai-project", "cookie", "set-cookie", "api-key")


def request_shape(body: bytes | str | None) -> dict[str, Any]:
    """What must match between a request and its recording: model, tools, roles, user text, tool-call names.

    Tool *results* are left out: they come from the knowledge index, which changes when documents change.
    """
    data = json.loads(body or "{}")
    messages = data.get("messages", [])
    return {
        "model": data.get("model"),
        "tools": sorted(t["function"]["name"] for t in data.get("tools", [])),
        "tool_choice": data.get("tool_choice"),
        "roles": [m["role"] for m in messages],
        "user": [m["content"] for m in messages if m["role"] == "user"],
        "calls": [c["function"]["name"] for m in messages for c in m.get("tool_calls") or []],
    }


def _body_shape(r1: Any, r2: Any) -> None:
    assert request_shape(r1.body) == request_shape(r2.body)


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    response["headers"] = {
        k: v
        for k, v in response["headers"].items()
        if k.lower() not in SECRET_HEADERS and not k.lower().startswith("x-")
    }
    return response


def recorder(folder: Path, record: bool) -> Any:
    """A vcr.VCR that replays only (record=False) or records everything (record=True). Needs vcrpy (dev extra)."""
    try:
        import vcr
    except ImportError as err:  # pragma: no cover - vcrpy is a dev dependency
        raise RuntimeError("replaying cassettes needs vcrpy: pip install 'mopsbot[dev]'") from err
    rec = vcr.VCR(
        cassette_library_dir=str(folder),
        record_mode="all" if record else "none",
        match_on=["method", "path", "body_shape"],
        filter_headers=[*SECRET_HEADERS, "user-agent"],
        before_record_request=_scrub_request,
        before_record_response=_scrub_response,
        decode_compressed_response=True,
    )
    rec.register_matcher("body_shape", _body_shape)
    return rec


def _scrub_request(request: Any) -> Any:
    for key in list(request.headers):
        if key.lower().startswith("x-stainless"):
            del request.headers[key]
    return request
