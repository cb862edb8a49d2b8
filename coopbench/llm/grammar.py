"""GBNF grammars that constrain a model's reply to exactly one of a list of strings."""

from __future__ import annotations


def _literal(text: str) -> str:
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def choice_grammar(choices: list[str] | tuple[str, ...]) -> str:
    """`root ::= "a" | "b" | …` over the distinct, non-empty choices, in the given order."""
    distinct = list(dict.fromkeys(c for c in choices if c))
    if not distinct:
        raise ValueError("a choice grammar needs at least one non-empty choice")
    return "root ::= " + " | ".join(_literal(c) for c in distinct) + "\n"
