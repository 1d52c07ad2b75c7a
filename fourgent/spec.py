"""What the run log format (version 1) allows, as constants the rest of the package shares."""

from typing import Final

STATUSES: Final = ("finished", "failed", "running", "pending", "skipped")
ERROR_KINDS: Final = ("auth", "validation", "unavailable", "logic")

# Top-level fields the spec names; anything else on a line is kept as `extra`.
KNOWN_FIELDS: Final = (
    "id", "reference", "workflow", "status", "started_at", "finished_at", "updated_at",
    "trigger_payload", "steps", "error", "result", "skip_reason", "retrigger_of", "attempt",
)

# A line longer than this is rejected unread; the limit keeps one runaway line
# from holding a whole batch in memory.
MAX_LINE_BYTES: Final = 1 << 20
# How much of a rejected line's text is kept in `rejected_lines.raw`.
RAW_KEEP_CHARS: Final = 4096
ID_MAX_CHARS: Final = 128
