"""MkDocs hooks: derive the state table and the diagram from renderstate's transition table."""

from __future__ import annotations

from typing import Any

from renderstate import INITIAL_STATUS, TRANSITIONS, to_dot, to_mermaid


def state_table() -> str:
    """Return the transition table as a Markdown table."""
    rows = [
        "| # | edge | trigger | from | to |",
        "|---|------|---------|------|----|",
    ]
    rows += [
        f"| {n} | {t.edge.value} | `{t.trigger.value}` | {t.source.value} | {t.target.value} |"
        for n, t in enumerate(TRANSITIONS, start=1)
    ]
    return "\n".join(rows) + f"\n\nNew projects start in {INITIAL_STATUS.value}.\n"


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Replace the placeholders with content generated from the table."""
    return (
        markdown.replace("<!-- renderstate:table -->", state_table())
        .replace("<!-- renderstate:mermaid -->", f"```mermaid\n{to_mermaid()}```")
        .replace("<!-- renderstate:dot -->", f"```dot\n{to_dot()}```")
    )
