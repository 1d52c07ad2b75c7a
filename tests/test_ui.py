"""Outside text placed in a Markdown label is a code span: literal, whatever it holds."""

from __future__ import annotations

import pytest

from ui import literal


@pytest.mark.parametrize("text", ["run_1", "a`b", "``x``", "[x](javascript:alert(1))", "<script>", "`", " "])
def test_literal_wraps_text_in_a_fence_longer_than_any_backtick_run_inside(text):
    out = literal(text)
    fence = out[: len(out) - len(out.lstrip("`"))]
    assert out.endswith(fence)
    assert "`" * len(fence) not in out[len(fence):-len(fence)]
    assert text.strip() in out
