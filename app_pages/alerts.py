"""Alerts: rules that watch the runs, where their messages go, and every alert fired, newest first."""

from __future__ import annotations

import os
from dataclasses import replace

import polars as pl
import streamlit as st

from fourgent import alerts, display
from fourgent.access import Action, Forbidden
from fourgent.connections import CredentialError
from fourgent.filters import RunsQuery
from fourgent.spec import ERROR_KINDS
from fourgent.store import AlertRule
from fourgent.workspace import definitions
from ui import pages
from ui.auth import actor, may, needs
from ui.text import label
from ui.workspace import workspace
from ui.zone import utc_switch

HISTORY_ROWS = 500  # the alerts view in Explore holds every episode
NEW = "new"
DELIVERY = {"delivered": "✅ delivered", "undelivered": "❌ undelivered", "pending": "⏳ sending", None: "—"}

ws = workspace()
ws.refresh()
tz = utc_switch()
store = ws.store
names = dict(store.workflows())
rules = store.alert_rules()
by_id = {r.rule_id: r for r in rules}
open_ = store.open_alert_episodes()
dests = store.alert_destinations()
apps = sorted({a for wf in definitions(ws).values() for a in wf.apps})

st.title("Alerts")
every = alerts.tick_seconds()
st.caption((f"The dashboard checks every rule every {every:g} s, whether or not anyone has a page open; "
            if every > 0 else "The dashboard does not check (FOURGENT_ALERT_TICK=0): ")
           + "`python -m fourgent alerts check` checks from cron. Each alert fires once per episode and sends "
           "“resolved” when its condition clears.")
if not os.environ.get(alerts.PUBLIC_URL_ENV):
    st.info(f"Set {alerts.PUBLIC_URL_ENV} to this dashboard's address (e.g. https://runs.example.com): until then "
            "a message's link to the runs is only its path (/?status=failed&…).", icon="🔗")

# Names people typed reach these messages only through ui.text.label: never read as Markdown.
if done := st.session_state.pop("alerts_done", None):
    st.success(done)
if problem := st.session_state.pop("alerts_error", None):
    st.error(problem)

# ---------------------------------------------------------------- firing now and the history

history = store.alert_history(HISTORY_ROWS)
firing = [e for e in history if e.firing]
st.subheader(f"Firing now · {len(firing)}")
if not firing:
    st.text("Nothing is firing.")
for e in firing:
    with st.container(border=True):
        st.text(f"🔴 {e.rule} — {e.summary}")  # a rule's name is someone's text, workflow names are the logs'
        st.text(f"Since {display.local_time(e.fired_at, tz)} · message {DELIVERY[e.fired_delivery]}"
                + (f" to {e.destination}" if e.destination else " (no destination: history only)"))
        st.page_link(pages.RUNS, label=f"Open the {e.runs:,} run{'s' if e.runs != 1 else ''} behind it", icon="📋",
                     query_params=RunsQuery.from_string(e.query).link())

st.subheader("History")
frame = pl.DataFrame({
    "Fired": [display.local_time(e.fired_at, tz) for e in history],
    "Rule": [e.rule for e in history],
    "State": ["🔴 firing" if e.firing else "🟢 resolved" for e in history],
    "What held": [e.summary for e in history],
    "Runs": [e.runs for e in history],
    "Open": [f"./?{e.query}" for e in history],
    "Message": [DELIVERY[e.fired_delivery] for e in history],
    "Resolved": [display.local_time(e.resolved_at, tz) + ("" if e.resolved_delivery is None
                                                          else f" · {DELIVERY[e.resolved_delivery]}")
                 for e in history],
    "By": [e.fired_by for e in history],
}, schema={"Fired": pl.String, "Rule": pl.String, "State": pl.String, "What held": pl.String, "Runs": pl.Int64,
           "Open": pl.String, "Message": pl.String, "Resolved": pl.String, "By": pl.String})
if history:
    st.dataframe(frame, hide_index=True, width="stretch", column_config={
        "Open": st.column_config.LinkColumn(display_text="Runs", help="The runs behind the alert, on the Runs page"),
        "Runs": st.column_config.NumberColumn(format=display.COUNT_FORMAT),
        "What held": st.column_config.TextColumn(width="medium"),
        "Resolved": st.column_config.TextColumn(help="When, and how its “resolved” message went")})
else:
    st.text("No alert has fired yet.")

# ---------------------------------------------------------------- rules

st.subheader("Rules")
if rules:
    st.dataframe({
        "Rule": [r.name for r in rules],
        "Fires when": [alerts.describe_rule(r, names) for r in rules],
        "Sends to": [r.destination or "— (history only)" for r in rules],
        "State": ["⏸️ off" if not r.enabled else "🔴 firing" if r.rule_id in open_ else "🟢 quiet" for r in rules],
        "Cooldown": [f"{r.cooldown_minutes} min" for r in rules],
    }, hide_index=True, width="stretch", column_config={"Fires when": st.column_config.TextColumn(width="large")})
else:
    st.text("No rules yet: add one below.")


def rule_form(base: AlertRule) -> AlertRule | None:
    """The fields of one kind of rule, preset from `base`; the rule as filled in once submitted."""
    kind = base.kind
    suffix = f"{base.rule_id or NEW}_{kind}"
    with st.form(f"alert_rule_{suffix}"):
        name = st.text_input("Name", value=base.name, max_chars=alerts.MAX_NAME, key=f"ar_name_{suffix}")
        flows = list(names)
        if base.workflow_id and base.workflow_id not in flows:
            flows.append(base.workflow_id)
        options: list[str | None] = list(flows) if kind in alerts.NEEDS_WORKFLOW else [None, *flows]
        workflow = st.selectbox("Workflow", options, index=options.index(base.workflow_id)
                                if base.workflow_id in options else 0,
                                format_func=lambda w: "Any workflow" if w is None else names.get(w, w),
                                key=f"ar_wf_{suffix}")
        cols = st.columns(3)
        subject, min_runs, window = base.subject, base.min_runs, base.window_minutes
        if kind == "failure_rate":
            threshold = cols[0].number_input("Failure rate above (%)", 1, 99, int(round(base.threshold * 100)),
                                             key=f"ar_t_{suffix}") / 100
            min_runs = cols[1].number_input("At least this many ended runs", 1, alerts.MAX_COUNT, base.min_runs,
                                            key=f"ar_min_{suffix}")
        elif kind == "consecutive":
            threshold = cols[0].number_input("Failures in a row", 1, alerts.MAX_COUNT, int(base.threshold),
                                             key=f"ar_t_{suffix}")
        elif kind == "error_kind":
            subject = cols[0].selectbox("Error kind", ERROR_KINDS, index=ERROR_KINDS.index(base.subject)
                                        if base.subject in ERROR_KINDS else 0, key=f"ar_s_{suffix}")
            threshold = cols[1].number_input("At least this many failures", 1, alerts.MAX_COUNT,
                                             int(base.threshold), key=f"ar_t_{suffix}")
        elif kind == "app":
            known = apps if base.subject in apps or not base.subject else [*apps, base.subject]
            subject = cols[0].selectbox("App", known, index=known.index(base.subject) if base.subject in known
                                        else 0, accept_new_options=True, key=f"ar_s_{suffix}")
            threshold = cols[1].number_input("At least this many failures", 1, alerts.MAX_COUNT,
                                             int(base.threshold), key=f"ar_t_{suffix}")
        elif kind == "stuck":
            threshold = cols[0].number_input("Running or pending longer than (minutes)", 1,
                                             alerts.MAX_WINDOW_MINUTES, int(base.threshold), key=f"ar_t_{suffix}")
        else:
            threshold = cols[0].number_input("More than this many unresolved failures", 0, alerts.MAX_COUNT,
                                             int(base.threshold), key=f"ar_t_{suffix}")
        if kind in alerts.WINDOWED:
            window = cols[2].number_input("Over the last (minutes)", 1, alerts.MAX_WINDOW_MINUTES,
                                          base.window_minutes, key=f"ar_w_{suffix}")
        cols = st.columns(3)
        targets: list[str | None] = [None, *(d.name for d in dests)]
        destination = cols[0].selectbox("Send to", targets, index=targets.index(base.destination)
                                        if base.destination in targets else 0,
                                        format_func=lambda d: "Nowhere (history only)" if d is None else d,
                                        key=f"ar_dest_{suffix}")
        cooldown = cols[1].number_input("Cooldown after a resolve (minutes)", 0, alerts.MAX_COOLDOWN_MINUTES,
                                        base.cooldown_minutes, key=f"ar_cool_{suffix}",
                                        help="A rule that resolved does not fire again before this (no flapping).")
        enabled = cols[2].toggle("On", value=base.enabled, key=f"ar_on_{suffix}")
        allowed = may(Action.ALERT_RULE_SAVE)
        if not st.form_submit_button("Save rule" if base.rule_id else "Add rule", type="primary",
                                     disabled=not allowed, help=None if allowed else needs(Action.ALERT_RULE_SAVE)):
            return None
    return replace(base, name=name, workflow_id=workflow, subject=subject, threshold=float(threshold),
                   min_runs=int(min_runs), window_minutes=int(window), cooldown_minutes=int(cooldown),
                   destination=destination, enabled=enabled)


DEFAULTS = {"failure_rate": AlertRule("", "failure_rate", 0.2, min_runs=10),
            "consecutive": AlertRule("", "consecutive", 3),
            "error_kind": AlertRule("", "error_kind", 1, subject="auth"),
            "app": AlertRule("", "app", 1), "stuck": AlertRule("", "stuck", 30),
            "unresolved": AlertRule("", "unresolved", 10)}

with st.container(border=True):
    choices: list[int | str] = [NEW, *(r.rule_id for r in rules if r.rule_id is not None)]
    top = st.columns(2)
    chosen = top[0].selectbox("Rule", choices, key="alert_edit",
                              format_func=lambda c: "A new rule" if c == NEW else by_id[int(c)].name)
    editing = by_id.get(int(chosen)) if chosen != NEW else None
    if editing is not None:
        top[1].text(f"Kind: {alerts.KINDS.get(editing.kind, editing.kind)}")
        base = editing
    else:
        kind = top[1].selectbox("Kind", list(alerts.KINDS), format_func=alerts.KINDS.__getitem__, key="alert_kind")
        base = DEFAULTS[kind]
    filled = rule_form(base)
    if filled is not None:
        try:
            alerts.save_rule(store, actor(), filled)
            st.session_state["alerts_done"] = f"Saved the rule “{label(filled.name.strip())}”."
        except (alerts.RuleRejected, Forbidden) as exc:
            st.session_state["alerts_error"] = str(exc)
        st.rerun()
    if editing is not None:
        allowed = may(Action.ALERT_RULE_DELETE)
        if st.button("Delete this rule", key=f"alert_delete_{editing.rule_id}", disabled=not allowed,
                     help=None if allowed else needs(Action.ALERT_RULE_DELETE)):
            try:
                alerts.delete_rule(store, actor(), editing)
                st.session_state["alerts_done"] = f"Deleted the rule “{label(editing.name)}”; its history stays."
                st.session_state.pop("alert_edit", None)
            except Forbidden as exc:
                st.session_state["alerts_error"] = str(exc)
            st.rerun()

# ---------------------------------------------------------------- destinations

st.subheader("Destinations")
st.caption("Where messages go, as Apprise URLs: `json://host/path` (a webhook), "
           "`mailto://user:password@smtp.host?to=you@example.com`, `slack://…`, `msteams://…`, `discord://…`. "
           "Stored encrypted, shown only masked.")
if dests:
    st.dataframe({"Name": [d.name for d in dests], "Destination": [d.masked for d in dests],
                  "Updated": [display.local_time(d.updated_at, tz) for d in dests]}, hide_index=True, width="stretch")
else:
    st.text("No destinations yet: rules without one keep their history here only.")
if not may(Action.ALERT_DESTINATION_SAVE):
    st.caption(needs(Action.ALERT_DESTINATION_SAVE))
else:
    try:
        fernet = alerts.key(ws.paths, store)
    except CredentialError as exc:  # the key file is gone while secrets are stored: say so, change nothing
        st.error(str(exc), icon="🔑")
        st.stop()
    def save_destination() -> None:
        """Store the destination, then empty the URL field: it never stays in the page's state."""
        name, url = st.session_state.get("ad_name", ""), st.session_state.get("ad_url", "")
        st.session_state["ad_url"] = ""
        try:
            alerts.save_destination(store, actor(), fernet, name, url)
            st.session_state["alerts_done"] = f"Saved the destination “{label(name.strip())}”."
            st.session_state["ad_name"] = ""
        except (alerts.DestinationRejected, Forbidden) as exc:
            st.session_state["alerts_error"] = str(exc)

    with st.form("alert_destination"):
        cols = st.columns([1, 3])
        cols[0].text_input("Name", max_chars=alerts.MAX_NAME, key="ad_name")
        cols[1].text_input("Apprise URL", type="password", key="ad_url",
                           help="It often holds a token or a password: it is never shown again.")
        st.form_submit_button("Save destination", on_click=save_destination)
    if dests:
        cols = st.columns([2, 1, 1], vertical_alignment="bottom")
        which = cols[0].selectbox("Destination", [d.name for d in dests], key="ad_which")
        if cols[1].button("Send a test message", key="ad_test"):
            with st.spinner("Sending…"):
                accepted = alerts.try_destination(store, actor(), fernet, which)
            st.session_state["alerts_done" if accepted else "alerts_error"] = (
                f"{label(which)} accepted the test message." if accepted
                else f"{label(which)} did not accept the test message (no answer, or an error).")
            st.rerun()
        if cols[2].button("Delete", key="ad_delete"):
            alerts.delete_destination(store, actor(), which)
            st.session_state["alerts_done"] = f"Deleted {label(which)}; rules that sent there now keep history only."
            st.rerun()
        st.text(f"Rules sending to {which}: "  # names people typed: text
                + (", ".join(r.name for r in rules if r.destination == which) or "none"))
