"""Outside text (from logs and people) in Markdown labels: always read as text, never as links, images or HTML."""

from __future__ import annotations

import re

import streamlit as st


def literal(text: str) -> str:
    """`text` as a Markdown code span: shown character for character, never as links, images or HTML."""
    text = text.replace("\n", " ")
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


_INERT = frozenset(" .,'&/→–-")  # characters with no Markdown meaning inside a line


def label(text: str) -> str:
    """A name (an app, a workflow) for a Markdown label: as it is when it holds only letters, digits and
    inert punctuation, so it reads as plain text; otherwise a code span (`literal`)."""
    plain = (text[:1].isalnum() and all(ch.isalnum() or ch in _INERT for ch in text)
             and not re.match(r"\d+[.)]", text))
    return text if plain else literal(text)


def refused(message: str) -> None:
    """An action refused, its reason as plain text (it can hold a signed-in name or a typed reason)."""
    st.error("Not done:", icon="⚠️")
    st.text(message)
