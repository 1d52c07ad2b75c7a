"""What the run log format (version 1) allows, as constants the rest of the package shares."""

from typing import Final

STATUSES: Final = ("finished", "failed", "running", "pending", "skipped")
ERROR_KINDS: Final = ("auth", "validation", "unavailable", "logic", "cancelled", "interrupted")
# A run someone stopped on purpose: it ends failed with this kind, yet it is no failure to fix or replay.
CANCELLED_KIND: Final = "cancelled"
INTERRUPTED_KIND: Final = "interrupted"  # a replay whose process stopped (killed) while it ran: recovery.py
ENDED_STATUSES: Final = ("finished", "failed", "skipped")  # a run in one of these has ended; failure rates count them

STATUS_MEANINGS: Final = {
    "pending": "Triggered, waiting to start: no step has run yet.",
    "running": "Steps are being executed; the run's log will get a newer snapshot when it ends.",
    "finished": "Every step succeeded; the run's result holds what the destination returned.",
    "failed": "A step (or a check before any step) failed; the error names the step, the kind and the message.",
    "skipped": "The trigger fired but the workflow's skip condition held, so nothing was called; skip_reason says why.",
}
ERROR_KIND_MEANINGS: Final = {
    "auth": "The app refused the credential (HTTP 401 or 403): it expired or was revoked. Not retried.",
    "validation": "The payload lacks a field the workflow requires; found before any call is made.",
    "unavailable": "The app was down, overloaded or slow (HTTP 429, 5xx, timeout, refused connection); "
                   "retried with backoff before the run fails.",
    "logic": "Any other unexpected answer (e.g. HTTP 400, 404, 422): an edge case the workflow does not handle.",
    "cancelled": "Someone cancelled the run while it was pending or running (\"Cancelled by <who>\"). Not an "
                 "unresolved failure, and left out of bulk re-triggers unless a filter asks for this kind.",
    "interrupted": "The process running this re-trigger stopped while it ran (killed, or the machine went down); "
                   "the message says which steps may have been sent. A re-trigger of its original sends those "
                   "again with this run's idempotency keys.",
}

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
# Rejected lines kept per file (with their text); past it they are counted, not kept: one small .gz once
# decompressed into 35 million rejected lines.
REJECTS_KEPT_PER_FILE: Final = 10_000
# A .gz log may inflate to at most GZ_INFLATE_RATIO times its size (logs compress 10-50x), and always to
# GZ_INFLATE_MIN: a 100 KB file once inflated to 35 million lines (4.6 GB of memory, 72 s).
GZ_INFLATE_RATIO: Final = 200
GZ_INFLATE_MIN: Final = 64 << 20
ID_MAX_CHARS: Final = 128

# How a validation error names the field it missed ("Missing required field: contact_email"), read by the run's
# page and by the bulk re-trigger (a replay of a payload that lacks the field would fail again). RE2 and
# Python read it alike.
MISSING_FIELD_PATTERN = r"[Mm]issing required field:?\s*['\"]?([\w.\-]+)"
