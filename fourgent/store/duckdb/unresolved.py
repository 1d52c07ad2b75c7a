"""The bulk re-trigger's count: how many unresolved failed runs match the Runs page's filter."""

from __future__ import annotations

from datetime import UTC, datetime, time

from ...filters import FIRST_DAY, LAST_DAY, RunFilter
from ...overview import Window
from . import rollup
from .database import Cursor
from .runs import count

# Any time: the days a Runs filter can name.
EPOCH = datetime.combine(FIRST_DAY, time.min, tzinfo=UTC)
FAR = datetime.combine(LAST_DAY, time.max, tzinfo=UTC)


def unresolved_count(cur: Cursor, f: RunFilter) -> int:
    """How many unresolved failed runs match the Runs page's filter (what its bulk re-trigger takes).

    From the rollups when every field the filter sets is one they hold (RunFilter.ROLLUP_FIELDS) and they
    are current: 5 ms at 10M runs against 185 ms counting the runs. Any other field means counting the runs.
    """
    selection = f.bulk_selection()
    if selection is None:
        return 0
    if not selection.rollup_answerable or not rollup.is_current(cur):
        return count(cur, selection)
    return rollup.unresolved_sum(cur, Window(f.start or EPOCH, f.end or FAR, f.workflows), f.kinds, f.apps)
