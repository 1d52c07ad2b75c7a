"""How it works: runs, statuses, retries, re-trigger and the SQL surface, for whoever is investigating a failure.

The figures on this page are read from the code and the workflow definitions it describes
(the executor's retry policy, the re-trigger's limits, the views' columns), so it cannot drift from them.
"""

from __future__ import annotations

from dataclasses import fields

import streamlit as st

from fourgent import alerts, display, executor, replay, retention, retrigger
from fourgent.retrigger import CAVEAT
from fourgent.spec import CANCELLED_KIND, ERROR_KIND_MEANINGS, MAX_LINE_BYTES, STATUS_MEANINGS
from fourgent.workflows import DefinitionError, RetryPolicy
from fourgent.workspace import definitions, retention_policy
from ui import pages
from ui.workspace import workspace

ws = workspace()
defs = definitions(ws)
default = RetryPolicy()
RETRY_WORDS = {
    "attempts": "attempts per step, the first try included",
    "backoff_initial_s": "first backoff ceiling, seconds",
    "backoff_max_s": "largest backoff ceiling, seconds",
    "retry_after_cap_s": "longest Retry-After honoured, seconds",
    "timeout_s": "one HTTP call, seconds",
    "deadline_s": "the whole run, seconds",
}

st.title("How it works")
st.caption("For whoever is looking at a failed run and wondering what happened and what to do.")

st.header("A run")
st.markdown(
    "Every time an integration fires, the engine writes a **run**: one JSON line per state change "
    "(pending → running → how it ended) into a run log. Fourgent reads those lines and keeps each run's "
    "latest snapshot: the one with the latest `updated_at`, or the later line when there is none. A run names "
    "its workflow (source → destination), the **trigger payload** it fired with, its steps (each an API call "
    "to an app, with input, output, attempts and timings), and how it ended."
)

st.subheader("Statuses")
st.dataframe({"Status": [display.status_label(s) for s in STATUS_MEANINGS],
              "What it means": list(STATUS_MEANINGS.values())}, hide_index=True, width="stretch")

st.subheader("Why a run fails: the error kinds")
st.dataframe({"Kind": list(ERROR_KIND_MEANINGS), "What happened": list(ERROR_KIND_MEANINGS.values())},
             hide_index=True, width="stretch")
st.markdown("The run's detail page names the step that failed, its error, and the next thing to do for its kind.")

st.header("How the engine retries")
auth = " and ".join(str(s) for s in sorted(executor.AUTH_STATUSES))
st.markdown(
    f"A step that gets HTTP {auth} fails at once with kind `auth`. A step that gets 429, a 5xx, a timeout or a "
    "refused connection is retried: after each try it waits a random time between zero and an exponential "
    "ceiling (*full jitter*: the ceiling doubles each time up to its largest value), or as long as the app's "
    "`Retry-After` asks (seconds or an HTTP date), cut to a cap. It stops after the step's attempts, or when "
    "the run's deadline passes; every attempt is counted on the step. A retried POST, PUT or PATCH carries the "
    "same `Idempotency-Key`, so the app can tell a retry from a second request."
)
st.caption("The defaults, used where a workflow's definition does not set its own:")
st.dataframe({"Setting": [f.name for f in fields(RetryPolicy)],
              "Default": [f"{getattr(default, f.name):g}" for f in fields(RetryPolicy)],
              "Meaning": [RETRY_WORDS.get(f.name, "") for f in fields(RetryPolicy)]},
             hide_index=True, width="stretch")
if defs:
    st.caption("Each workflow's policy, from its definition:")
    st.dataframe(
        {"Workflow": [f"{wf.source} → {wf.destination}" for wf in defs.values()],
         **{f.name: [getattr(wf.retry, f.name) for wf in defs.values()] for f in fields(RetryPolicy)}},
        hide_index=True, width="stretch")

st.header("Re-trigger")
st.text(CAVEAT)
st.markdown(
    "A re-trigger is a **new run** with a new ID and `retrigger_of` set to the original; the original shows "
    "*re-triggered as …*, the new one *re-triggered from …*, with who re-triggered it and when. A failed run "
    "whose latest re-trigger finished counts as **resolved**; the Runs page's *Unresolved failures only* shows "
    "the rest. Only re-triggers this dashboard started count: it records each one (who asked, when) before the "
    "run starts, and a log line that merely says `retrigger_of` is shown as a claim and resolves nothing. "
    "One click makes one re-trigger: a run already being re-triggered (a double click, a second tab) "
    "is refused, and so is a run re-triggered since you opened the confirmation. A paused workflow is not "
    "re-triggered."
)
st.markdown(
    f"In bulk, the Runs page replays up to {retrigger.BULK_CAP:,} unresolved failures matching its filters, "
    f"{retrigger.BULK_CONCURRENCY} at a time, with a progress bar and Cancel (runs already started finish). "
    "From a terminal: `python -m fourgent retrigger RUN_ID…`, or `--status failed --unresolved` for a filtered set."
)
st.page_link(pages.CONNECTIONS, label="Fix a credential in Connections", icon="🔌")

st.header("Other ways to act on a run")
st.markdown(
    "- **Re-trigger with changes**: the original payload in an editor; invalid JSON or an empty field the "
    f"workflow requires is refused before anything is sent (payloads up to {replay.MAX_PAYLOAD_BYTES // 1024} KB), "
    "and the confirmation shows the diff. The new run is an *edited replay*: the view `retriggers` keeps who "
    "edited it and what changed (`mode = 'edited'`, `payload_diff`), and like any re-trigger it resolves the "
    "original when it finishes. CLI: `python -m fourgent retrigger RUN_ID --payload FILE` (or `-` for stdin).\n"
    "- **Re-run from the failed step**: the steps before the failed one are not called again; the new run "
    "takes their recorded outputs (shown as *reused from* the original) and executes the failed step onwards. "
    "It is refused when an earlier step's output was not recorded, when the run failed before any step, or "
    "when the workflow's steps changed since. In bulk, each run uses its own failed step "
    "(`retrigger --from-failed-step`).\n"
    "- **Cancel**: a running or pending run this dashboard executes stops before its next step or attempt, "
    "and at once during a backoff or Retry-After wait (a call already in flight is not cut). It ends "
    f"**Failed** with error kind `{CANCELLED_KIND}` and *Cancelled by <who>*: the five statuses stay as they "
    "are. Cancelling a replay leaves its original as it was (still failing, if it was). A run that arrives "
    "cancelled from an outside engine is not an unresolved failure, and bulk re-triggers leave it out unless the "
    f"filter asks for `kind={CANCELLED_KIND}`. A run an outside engine writes can only be stopped by that "
    "engine.\n"
    "- **Mark handled**: a failure that needs no replay (a duplicate, a test record, fixed by hand) keeps its "
    "Failed status but leaves the unresolved failures, the Overview's *still failing* and the bulk count, with "
    "who, when and why (the view `handled`); *Undo handled* brings it back.\n\n"
    "Each is an operator's action, checked against the role and recorded in the audit."
)
st.header("Alerts")
st.markdown(
    "A rule on the Alerts page watches the runs; when its condition starts holding, an **alert** fires: one "
    "message to the rule's destination, and another, “Resolved”, when the condition stops holding. Between the "
    "two is one episode: the rule does not fire again, and after a resolve it waits its cooldown before a new "
    "episode can start. Each message says what held, with its figures, and links to the Runs page filtered to "
    f"exactly the runs it counted (under `{alerts.PUBLIC_URL_ENV}`); it never holds a payload or a secret."
)
st.dataframe({"Rule": list(alerts.KINDS.values()),
              "Fires when": ["failed ÷ ended runs of the workflow in the window is above the threshold, with at least "
                             "the minimum of ended runs", "the workflow's last N ended runs all failed",
                             "at least N runs failed with that error kind in the window",
                             "at least N runs failed at a step calling that app in the window",
                             "a run has been running or pending longer than T",
                             "more unresolved failed runs than N (as the Runs page counts them)"]},
             hide_index=True, width="stretch")
tick = alerts.tick_seconds()
st.markdown(
    (f"The dashboard checks every rule every {tick:g} s, on a thread of its own, whether or not anyone has a page "
     "open; " if tick > 0 else "This dashboard does not check by itself (`FOURGENT_ALERT_TICK=0`); ")
    + "`python -m fourgent alerts check` checks from cron (exit status 1 while an alert fires). While the dashboard "
    "runs, that command only reports what the dashboard found: one of them sends, so nothing is sent twice. "
    f"Messages go out through Apprise (webhooks, email, Slack, Teams, Discord, …), {alerts.CONNECT_TIMEOUT_S:g} s "
    f"to connect and {alerts.READ_TIMEOUT_S:g} s to answer per attempt, {alerts.ATTEMPTS} attempts with backoff; "
    "one still not accepted is recorded as undelivered (the SQL view `alerts` and the Alerts page show it)."
)
st.page_link(pages.ALERTS, label="Open the Alerts page", icon="🔔")

st.header("Where the logs are, and how they are read")
st.markdown(
    "Run logs are `.jsonl` files (or `.jsonl.gz`), one run snapshot per line, in this folder; the dashboard reads "
    "what is new every few seconds, from where it left off in each file. Re-triggered runs are written there too "
    f"(`retriggers-YYYY-MM-DD.jsonl`). A line that cannot be read (not JSON, a field missing, over "
    f"{MAX_LINE_BYTES // (1 << 20)} MiB, …) is kept aside with its reason, file and line number: the Runs page "
    "lists them and the SQL view `rejected_lines` holds them. Rotate the files as logrotate does (renamed, "
    "date-suffixed, copied and truncated, compressed now or later): each file is followed by its identity and "
    "content, not its name, and read to its end wherever it went, so no line is lost or read twice. A file or "
    "folder that cannot be read is skipped and named on the Runs page; when the store cannot write (a full disk) "
    "the pages say so, show what is stored, and read the new lines in once it can."
)
st.code(str(ws.paths.logs_dir), language=None)
st.caption("FOURGENT_DATA_DIR moves the whole data folder (logs, the DuckDB store, workflow definitions, the key).")

st.header("Retention")
try:
    policy: retention.Policy | None = retention_policy(ws.paths)
except (retention.PolicyError, DefinitionError) as exc:
    policy = None
    st.warning("The retention setting cannot be used, so nothing is pruned until it is fixed:")
    st.text(str(exc))
if policy is not None:
    st.text(policy.describe({wf.id: f"{wf.source} → {wf.destination}" for wf in defs.values()}))
last = ws.store.last_pruned()
if policy is not None and policy.in_force:
    st.caption("The running dashboard applies it itself once a day"
               + (f"; it last pruned at {last:%Y-%m-%d %H:%M} UTC." if last else "; it has not pruned yet."))
st.markdown(
    "A pruned run goes with its steps, comments, re-trigger records and handled marks; rejected lines go once "
    "they are older than every workflow's cutoff. The Overview's figures and the SQL views are recomputed from "
    "what is left, and the store file shrinks (it is rewritten when a prune frees a fifth of it or more). "
    "Reading the logs again does not bring a pruned run back: each file is read on from where it stopped. The "
    "audit keeps every prune. From a terminal, with the dashboard stopped: `python -m fourgent prune --older-than 90d "
    "--archive DIR` (the pruned rows as Parquet in DIR first; `--dry-run` counts them)."
)

st.header("The SQL surface")
st.markdown(
    "Everything on these pages can be asked again in SQL, over these read-only views (types and meanings in "
    "`docs/schema.md`). From a terminal: `python -m fourgent sql \"SELECT status, count(*) FROM runs GROUP BY ALL\"`."
)
st.page_link(pages.EXPLORE, label="Ask your own question on the Explore page", icon="🔎")
for view in ws.store.surface:
    columns = ws.store.describe(view)
    with st.expander(f"{view} ({len(columns)} columns)"):
        st.dataframe({"Column": [c[0] for c in columns], "Type": [c[1] for c in columns]}, hide_index=True,
                     width="stretch")
