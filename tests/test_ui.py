"""Outside text placed in a Markdown label is a code span: literal, whatever it holds."""

from __future__ import annotations

import pytest

from ui.text import label, literal


@pytest.mark.parametrize("text", ["run_1", "a`b", "``x``", "[x](javascript:alert(1))", "<script>", "`", " "])
def test_literal_wraps_text_in_a_fence_longer_than_any_backtick_run_inside(text):
    out = literal(text)
    fence = out[: len(out) - len(out.lstrip("`"))]
    assert out.endswith(fence)
    assert "`" * len(fence) not in out[len(fence):-len(fence)]
    assert text.strip() in out


@pytest.mark.parametrize("name", ["QuickBooks", "HubSpot Closed Won", "Müller & Söhne", "Google Sheets Row",
                                  "Xero – EU", "株式会社サンプル"])
def test_a_plain_name_stays_plain_text(name):
    assert label(name) == name


@pytest.mark.parametrize("name", ["**Bold**", "[x](javascript:alert(1))", "<b>App</b>", "_em_", ":red[App]",
                                  "$x$", "# Heading", "1. List", "- item", "a`b", "App\nNext", "#tag", "~~x~~"])
def test_a_name_with_markdown_in_it_becomes_a_code_span(name):
    assert label(name) == literal(name)
