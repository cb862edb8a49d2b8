"""How `choices` reach an HTTP server in each constrained-choice form, and how replies return.

One place for the request shapes, so the probe (`coopbench.llm.probe`) tests exactly what a
run later sends:

- `grammar`: llama.cpp's GBNF string (`extra_body={"grammar": ...}`).
- `guided_choice`: vLLM's list of strings (`extra_body={"guided_choice": [...]}`).
- `json_schema`: `response_format` with a strict JSON schema. The schema's root is an object
  (`{"choice": <one of the enum>}`), not a bare string: OpenAI's structured outputs accept
  only an object at the root, and every other server takes the object as well. The reply is
  that JSON, decoded back to the plain choice by `decode_choice`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from coopbench.llm.grammar import choice_grammar

SCHEMA_NAME = "choice"
_SCHEMA_OVERHEAD_TOKENS = 12  # `{"choice": ""}` and the quoting around a choice


def choice_fields(form: str, choices: Sequence[str]) -> dict[str, Any]:
    """Keyword arguments for `chat.completions.create` that hold the reply to `choices`."""
    distinct = list(dict.fromkeys(choices))
    if form == "grammar":
        return {"extra_body": {"grammar": choice_grammar(distinct)}}
    if form == "guided_choice":
        return {"extra_body": {"guided_choice": distinct}}
    if form == "json_schema":
        schema = {"type": "object",
                  "properties": {"choice": {"type": "string", "enum": distinct}},
                  "required": ["choice"], "additionalProperties": False}
        return {"response_format": {"type": "json_schema", "json_schema": {
            "name": SCHEMA_NAME, "schema": schema, "strict": True}}}
    raise ValueError(f"unknown constrained-choice form {form!r}")


def max_tokens(form: str, choices: Sequence[str], requested: int) -> int:
    """Room for the longest choice (about 2 characters a token), wrapped as the form wraps it."""
    room = max(len(c) for c in choices) // 2 + 4
    if form == "json_schema":
        room += _SCHEMA_OVERHEAD_TOKENS
    return max(requested, room)


def decode_choice(form: str, text: str) -> str:
    """The plain choice from a reply in `form`; text that is not the expected JSON is kept
    as it came (the planner then treats it as any unparsable reply)."""
    if form != "json_schema":
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, dict) and isinstance(value.get("choice"), str):
        return value["choice"]
    if isinstance(value, str):  # a server that took a bare-string schema
        return value
    return text
