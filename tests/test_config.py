"""The served app's configuration: what it must say for the pages to be safe."""

from __future__ import annotations

import tomllib

from helpers import ROOT


def test_the_tables_own_csv_download_is_off_where_the_pages_offer_a_neutralised_one():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["disableDataExport"] is True
    assert config["client"]["showErrorDetails"] == "none"  # no traceback reaches a page
