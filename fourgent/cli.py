"""The `python -m fourgent` command line: ingest, demo, sql, retrigger, prune, migrate, alerts, bench.

argparse (standard library) is enough for four subcommands with --help on
each; it keeps the CLI free of a dependency the dashboard does not need.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from . import __version__, results
from .access import Action, cli_actor
from .audit import perform
from .config import Paths
from .config import paths as resolve_paths
from .filters import RunsQuery
from .logfiles import IngestReport, NotALogFile, discover
from .replay import PayloadRejected, diff_text, parse_payload
from .spec import GZ_INFLATE_RATIO, REJECTS_KEPT_PER_FILE, STATUSES
from .store import (
    QueryError,
    QueryFailed,
    QueryRefused,
    QueryStopped,
    StoreBusy,
    StoreWriteFailed,
    open_store,
    snapshot_sql,
)
from .workspace import LogsNotWritable, hand_over, open_workspace, recover_interrupted, retention_policy

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def whole_number(least: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `least`, refused in words otherwise (`demo --runs -5`)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{value} is below {least}")
        return value
    return parse


def no_store(p: Paths, what: str) -> bool:
    """Say so (and return True) when the data folder holds neither a store nor logs: a command that reads them
    must not make an empty store, as a mistyped --data-dir would."""
    if p.has_store() or p.logs_dir.is_dir():
        return False
    print(f"error: there is no store at {p.store_shown} ({what}); check --data-dir or $FOURGENT_DATA_DIR, or start "
          "with `python -m fourgent demo` or `ingest`", file=sys.stderr)
    return True


def _print_report(report: IngestReport) -> None:
    print(f"Read {report.files} file{'s' if report.files != 1 else ''} with new lines: "
          f"{report.lines:,} lines = {report.snapshots:,} snapshots stored + {report.rejected:,} rejected "
          f"({report.bytes / 1e6:,.1f} MB in {report.seconds:.2f} s)")
    print(f"Runs: {report.added:,} added, {report.updated:,} updated; "
          f"{report.superseded:,} snapshot{'s' if report.superseded != 1 else ''} superseded by a later one")
    for moved in report.followed:
        print(f"Followed through rotation, read on to its end: {moved}")
    for path in report.reread:
        print(f"Read as a new file from its start (the name holds another file now): {path}")
    for path in report.copies:
        print(f"Not read: {path} holds the same lines as a file already read (a rotated copy)")
    for path in report.cut:
        print(f"Read only in part: {path} decompresses to over {GZ_INFLATE_RATIO}x its size (the rest is not read)")
    for said in report.unreadable:
        print(f"Not read (tried again next time): {said}")
    for path in report.links_left_out:
        print(f"Not read: {path} is a link to outside the folder it is in")
    if report.rejects_not_kept:
        print(f"{report.rejects_not_kept:,} rejected lines were counted but not kept: a file keeps its first "
              f"{REJECTS_KEPT_PER_FILE:,}")
    if report.rejected:
        shown = report.first_rejects
        print(f"Rejected lines (first {len(shown)} of {report.rejected:,}; all are in the view rejected_lines):")
        for r in shown:
            print(f"  {r['file']}:{r['line']}: {r['reason']}")


def cmd_ingest(args: argparse.Namespace) -> int:
    p = resolve_paths(args.data_dir)
    sources = [Path(s) for s in args.paths] or [p.ensure().logs_dir]
    try:
        discover(sources)  # unusable arguments fail before anything is opened
    except NotALogFile as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        ws = open_workspace(args.data_dir)
    except StoreBusy as exc:
        placed = hand_over(p, sources) if args.paths else []
        summary = {"deferred": True, "holder_pid": exc.pid, "copied": [str(x) for x in placed]}
        if args.json:
            print(json.dumps(summary))
        elif placed:
            print(f"The dashboard (process {exc.pid}) holds the store, so {len(placed)} file(s) were copied into "
                  f"{p.logs_dir}; it reads them within a few seconds.")
        else:
            print(f"The dashboard (process {exc.pid}) holds the store and reads {p.logs_dir} itself; "
                  "new lines there appear within a few seconds.")
        return EXIT_OK
    try:
        report = ws.ingest_logs(sources)
    except OSError as exc:
        print(f"error: could not read the logs: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        _print_report(report)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from . import demo

    p = resolve_paths(args.data_dir).ensure()
    try:
        ws = open_workspace(args.data_dir)
    except StoreBusy as exc:
        print(f"The dashboard (process {exc.pid}) holds the store: stop it, or use its own demo (an empty "
              "data folder loads one on start).")
        return EXIT_USAGE
    def load() -> IngestReport:
        written = demo.write_demo(p.logs_dir, args.runs, seed=args.seed, days=args.days)
        print(f"Wrote {args.runs:,} demo runs to {len(written.files)} file(s) in {p.logs_dir}")
        return ws.load_logs(written)

    try:
        _print_report(perform(ws.store, cli_actor(), Action.DEMO_LOADED, str(p.logs_dir), load,
                              outcome=lambda report: {"runs": report.added}))
    except demo.DemoExists as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def cmd_sql(args: argparse.Namespace) -> int:
    p = resolve_paths(args.data_dir)
    if not p.has_store():
        print(f"error: there is no store at {p.store_shown} yet (run `python -m fourgent demo` or `ingest`)",
              file=sys.stderr)
        return EXIT_FAILED
    # The query runs in a worker over the store's read-only snapshot, so the store itself is opened only to
    # write a missing snapshot (a store from before snapshots); while the dashboard holds it, it keeps it current.
    with contextlib.suppress(StoreBusy):
        open_store(p.store_url)
    try:
        result = snapshot_sql(p.store_url, args.query, max_rows=args.max_rows, time_limit=args.timeout)
    except StoreBusy as exc:  # chDB, held by the dashboard's process
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except QueryRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (QueryStopped, QueryFailed, QueryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    render = {"table": results.as_table, "csv": results.as_csv, "json": results.as_json}[args.format]
    try:
        text = render(result)
    except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:  # a value this format cannot hold
        print(f"error: the result cannot be written as {args.format} ({type(exc).__name__}); cast the unusual "
              "columns to VARCHAR.", file=sys.stderr)
        return EXIT_FAILED
    sys.stdout.write(text.rstrip("\n") + "\n")
    if result.capped:
        print(f"(showing the first {result.frame.height:,} of {result.total:,} rows; --max-rows shows more)",
              file=sys.stderr)
    return EXIT_OK


def retrigger_query(args: argparse.Namespace) -> RunsQuery:
    """The runs `retrigger` takes with no RUN_ID: --query (any field of the Runs page's URL), narrowed by
    --status, --workflow and --unresolved; failed runs when no status is named."""
    query = RunsQuery.from_string(args.query or "")
    statuses = tuple(s for s in STATUSES if s in set(args.status or ())) or query.statuses or ("failed",)
    return replace(query, statuses=statuses, workflows=(*query.workflows, *(args.workflow or ())),
                   unresolved=query.unresolved or args.unresolved, page=1)


def cmd_retrigger(args: argparse.Namespace) -> int:
    from .workspace import retrigger

    payload = None
    if args.payload is not None:
        if args.from_failed_step:
            print("--payload replays the whole run: it cannot reuse steps that ran with the old payload "
                  "(--from-failed-step).", file=sys.stderr)
            return EXIT_USAGE
        if len(args.run_ids) != 1:
            print("--payload replays one run: give exactly one RUN_ID.", file=sys.stderr)
            return EXIT_USAGE
        try:
            text = sys.stdin.read() if args.payload == "-" else Path(args.payload).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"Cannot read the payload from {args.payload}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if no_store(resolve_paths(args.data_dir), "nothing to re-trigger"):
        return EXIT_FAILED
    ws = open_workspace(args.data_dir)
    ws.ingest_logs()  # the latest snapshots decide what is failed and unresolved
    for run_id in recover_interrupted(ws).interrupted:
        print(f"Marked interrupted (its process stopped while it ran): {run_id}", file=sys.stderr)
    if args.payload is not None:
        from .workspace import definitions

        original = ws.store.originals(args.run_ids).get(args.run_ids[0])
        if original is None:
            print(f"There is no run {args.run_ids[0]} in the store.", file=sys.stderr)
            return EXIT_FAILED
        try:
            payload = parse_payload(text, definitions(ws).get(original[0]))
        except PayloadRejected as exc:
            print(f"Not re-triggered: {exc}", file=sys.stderr)
            return EXIT_FAILED
        changes = diff_text(original[2], payload)
        if not changes:
            print("Not re-triggered: the payload is the same as the original's (re-trigger without --payload).",
                  file=sys.stderr)
            return EXIT_FAILED
        print(changes, file=sys.stderr)
    chosen = ""
    if args.run_ids:
        ids = list(dict.fromkeys(args.run_ids))
    else:
        query = retrigger_query(args)
        ids = ws.store.select_ids(query.filter(datetime.now(UTC), ZoneInfo("UTC")), limit=args.limit)
        chosen = f" — {query.describe(dict(ws.store.workflows()))}"
    if not ids:
        print(json.dumps({"requested": 0, "outcomes": {}, "refused": {}, "new_runs": {}, "seconds": 0})
              if args.json else "Nothing to re-trigger: no run matches.")
        return EXIT_OK
    # On stderr: with --json, stdout is one JSON document.
    print(f"Re-triggering {len(ids):,} run{'s' if len(ids) != 1 else ''}{chosen}, with their original payloads "
          "(the payload from when each run first fired, not the source record's current state) …",
          file=sys.stderr, flush=True)
    bulk = None if args.run_ids else retrigger_query(args).to_string()
    result = retrigger(ws, cli_actor(args.as_name), ids, bulk_filter=bulk, concurrency=args.concurrency,
                       payload=payload, from_step=args.from_failed_step)
    summary = {"requested": result.requested, "outcomes": dict(result.outcomes), "refused": result.refused,
               "new_runs": result.new_runs, "seconds": round(result.seconds, 2)}
    if args.json:
        print(json.dumps(summary))
    else:
        outcomes = ", ".join(f"{n:,} {status}" for status, n in sorted(result.outcomes.items())) or "none"
        print(f"Done in {result.seconds:.1f} s: {outcomes}.")
        for old, new in list(result.new_runs.items())[:20]:
            print(f"  {old} → {new}")
        for run_id, why in result.refused.items():
            print(f"  not re-triggered: {run_id}: {why}")
    return EXIT_OK


def cmd_alerts_check(args: argparse.Namespace) -> int:
    """Check the alert rules for cron: exit 1 while any alert fires, 0 otherwise. While the dashboard holds the
    store it checks and sends itself: this then reports what it recorded, and sends nothing (never twice)."""
    from . import alerts

    p = resolve_paths(args.data_dir)
    if not p.has_store():
        print(f"error: there is no store at {p.store_shown} yet (run `python -m fourgent demo` or `ingest`)",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        ws = open_workspace(args.data_dir)
    except StoreBusy as exc:
        if p.store:  # chDB held by another process: no snapshot to read beside it
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        try:
            held = alerts.firing_in_snapshot(p.db_path)
        except QueryError as err:
            print(f"error: the dashboard (process {exc.pid}) holds the store and its alerts cannot be read: {err}",
                  file=sys.stderr)
            return EXIT_USAGE
        if args.json:
            print(json.dumps({"checked_by": "dashboard", "holder_pid": exc.pid, "sent": 0,
                              "firing": [{"rule": f.rule, "summary": f.summary, "runs": f.runs,
                                          "link": alerts.runs_link(f.query), "fired_at": f.fired_at.isoformat(),
                                          "checked_at": f.checked_at.isoformat()} for f in held]}))
        else:
            print(f"The dashboard (process {exc.pid}) holds the store: it checks the rules and sends the alerts "
                  "itself, so nothing is sent from here. As it last recorded them:")
            for f in held:
                print(f"  FIRING {f.rule}: {f.summary} (checked {f.checked_at:%Y-%m-%d %H:%M:%S} UTC) "
                      f"{alerts.runs_link(f.query)}")
            if not held:
                print("  nothing is firing")
        return EXIT_FAILED if held else EXIT_OK
    ws.ingest_logs()  # the latest snapshots decide what holds
    found = alerts.check(ws.store, by="cli")
    try:
        fernet = alerts.key(ws.paths, ws.store)
    except ValueError as exc:  # the key cannot be loaded: each message is recorded undelivered, saying so
        print(f"error: {exc}", file=sys.stderr)
        fernet = None
    sent = alerts.deliver_all(ws.store, fernet)
    if args.json:
        print(json.dumps({"checked_by": "cli", "fired": len(found.fired), "resolved": len(found.resolved),
                          "sent": sum(sent), "undelivered": len(sent) - sum(sent),
                          "firing": [{"rule": e.rule, "summary": e.summary, "runs": e.runs,
                                      "link": alerts.runs_link(e.query), "fired_at": e.fired_at.isoformat()}
                                     for e in found.firing]}))
    else:
        for e in found.firing:
            print(f"{'FIRED ' if e in found.fired else 'FIRING'} {e.rule}: {e.summary} {alerts.runs_link(e.query)}")
        for e in found.resolved:
            print(f"RESOLVED {e.rule}: {e.summary}")
        if not found.firing and not found.resolved:
            print("Nothing is firing.")
        if sent:
            print(f"Messages: {sum(sent)} delivered, {len(sent) - sum(sent)} undelivered (see the alerts view).")
    return EXIT_FAILED if found.firing else EXIT_OK
def cmd_migrate(args: argparse.Namespace) -> int:
    from .config import shown
    from .migrate import CopyIncomplete, MigrateFailed, migrate
    from .store.clickhouse import parse_url

    try:
        parse_url(args.to)
    except ValueError as exc:
        print(f"error: --to {shown(args.to)}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    p = resolve_paths(args.data_dir)
    if not p.db_path.exists():  # a mistyped --data-dir makes nothing
        print(f"error: there is no store at {p.db_path}: nothing to migrate", file=sys.stderr)
        return EXIT_FAILED
    try:
        ws = open_workspace(args.data_dir)
    except StoreBusy as exc:
        print(f"error: the dashboard (process {exc.pid}) holds the store; stop it, then migrate", file=sys.stderr)
        return EXIT_FAILED
    try:
        report = migrate(ws.store, cli_actor(args.as_name), args.to)
    except (CopyIncomplete, MigrateFailed) as exc:
        print(f"error: {shown(args.to)}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps({"target": report.target, "rows": report.copied, "seconds": round(report.seconds, 2)}))
        return EXIT_OK
    rows = ", ".join(f"{n:,} {table}" for table, n in report.copied.items())
    print(f"Copied into {report.target} in {report.seconds:.1f} s: {rows} (the same counts as the embedded store).")
    return EXIT_OK


def cmd_prune(args: argparse.Namespace) -> int:
    from . import retention, workflows
    from .workspace import prune

    p = resolve_paths(args.data_dir)
    if not p.has_store():  # before anything is made: a mistyped --data-dir makes nothing
        print(f"error: there is no store at {p.store_shown} yet: nothing to prune", file=sys.stderr)
        return EXIT_FAILED
    try:
        in_force = retention_policy(p.ensure())
        policy = (replace(in_force, days=retention.parse_days(args.older_than, "--older-than")) if args.older_than
                  else in_force)
    except (retention.PolicyError, workflows.DefinitionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not policy.in_force:
        print(f"error: nothing to prune by: give --older-than (e.g. 90d), or set {retention.ENV} or a workflow's "
              f"{retention.DEFINITION_FIELD}.", file=sys.stderr)
        return EXIT_USAGE
    archive = Path(args.archive).expanduser().resolve() if args.archive else None
    if archive is not None and archive.exists() and not archive.is_dir():
        print(f"error: --archive {archive} is not a folder", file=sys.stderr)
        return EXIT_USAGE
    try:
        ws = open_workspace(args.data_dir)
    except StoreBusy as exc:
        print(f"error: the dashboard (process {exc.pid}) holds the store, so it cannot be pruned from here. It "
              f"applies the retention policy in force itself, once a day: {in_force.describe()} To prune now, or "
              "by another age, stop it and run this again.", file=sys.stderr)
        return EXIT_FAILED
    report = prune(ws, cli_actor(args.as_name), policy, archive=archive, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(report.to_dict()))
        return EXIT_OK
    default, per_workflow = policy.cutoffs(datetime.now(UTC))
    when = (f"started before {default:%Y-%m-%d %H:%M} UTC" if default else "kept for good")
    own = "".join(f"; {wf}: before {at:%Y-%m-%d %H:%M} UTC" for wf, at in sorted(per_workflow.items()))
    removed = (f"{report.runs:,} runs ({when}{own}), {report.rejected_lines:,} rejected lines, "
               f"{report.comments:,} comments and {report.ledger_rows:,} other ledger rows of those runs")
    if report.dry_run:
        print(f"Would prune {removed}. Nothing changed (dry run).")
        return EXIT_OK
    print(f"Pruned {removed} in {report.seconds:.1f} s.")
    if report.archive:
        print(f"Archived first, as Parquet, in {report.archive}")
    shrunk = " (rewritten to shrink it)" if report.compacted else ""
    print(f"The store file: {report.bytes_before / 1e6:,.1f} MB → {report.bytes_after / 1e6:,.1f} MB{shrunk}.")
    if report.not_compacted:
        print(f"It could not be rewritten smaller: {report.not_compacted}; its free space is reused by the next "
              "ingests.")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

    if args.store == "clickhouse":
        if not args.workdir:
            print("error: --store clickhouse times a copy of the store an earlier full run left in --workdir DIR",
                  file=sys.stderr)
            return EXIT_USAGE
        from .store.clickhouse.bench import scaled, side_by_side

        if args.scale is not None:
            if args.scale < 2:
                print("error: --scale grows the runs N times: N is 2 or more", file=sys.stderr)
                return EXIT_USAGE
            scaled(Path(args.workdir), args.scale, repeat=args.repeat)
        else:
            side_by_side(Path(args.workdir), repeat=args.repeat, ingest=not args.queries_only)
        return EXIT_OK
    if args.scale is not None:
        print("error: --scale is for --store clickhouse", file=sys.stderr)
        return EXIT_USAGE
    if args.alerts:
        bench.alerts_bench(runs=args.runs, repeat=args.repeat)
        return EXIT_OK
    if args.retrigger:
        bench.retrigger_bench(runs=args.runs if args.runs != 1_000_000 else 1000)
        return EXIT_OK
    if args.actions:
        if not args.workdir:
            print("--actions needs --workdir (an earlier full run's)", file=sys.stderr)
            return EXIT_USAGE
        bench.actions_bench(args.runs, Path(args.workdir))
        return EXIT_OK
    if args.refresh:
        bench.refresh_bench(files=args.files)
        return EXIT_OK
    if args.prune:
        if not args.workdir:
            print("error: --prune builds its store once in --workdir DIR (and copies it for each run)",
                  file=sys.stderr)
            return EXIT_USAGE
        bench.prune_bench(args.runs, Path(args.workdir))
        return EXIT_OK
    if args.explore:
        if not args.workdir:
            print("error: --explore times the store an earlier run left in --workdir DIR", file=sys.stderr)
            return EXIT_USAGE
        bench.explore_bench(Path(args.workdir))
        return EXIT_OK
    bench.main(runs=args.runs, workdir=Path(args.workdir) if args.workdir else None, repeat=args.repeat,
               queries_only=args.queries_only)
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m fourgent", description="Fourgent Runs: the execution log of "
                                  "your integration workflows, in DuckDB.")
    top.add_argument("--version", action="version", version=f"fourgent {__version__}")
    top.add_argument("--data-dir", help="the data folder (default: $FOURGENT_DATA_DIR, else ./data)")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", help="read run logs into the store",
                       description="Read the new complete lines of run logs (.jsonl, .jsonl.gz) into the store. "
                       "Files already read are read on from where they stopped. While the dashboard holds the "
                       "store, the files are copied into its logs/ folder for it to read.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="log files or folders (default: the data folder's logs/)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("demo", help="write realistic demo logs and ingest them",
                       description="Write demo run logs into logs/ (six integrations, every status and error "
                       "kind, snapshots, re-triggers, awkward references) and ingest them.")
    p.add_argument("--runs", type=whole_number(1), default=20_000, help="how many runs (default 20000)")
    p.add_argument("--seed", type=int, default=7, help="random seed; the same seed writes the same runs")
    p.add_argument("--days", type=float, default=30.0, help="spread the runs over this many days up to now")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("sql", help="run one read-only query",
                       description="Run one read-only SQL query against the views runs, steps, rejected_lines "
                       "and comments (see docs/schema.md).")
    p.add_argument("query", help='e.g. "SELECT status, count(*) FROM runs GROUP BY ALL"')
    p.add_argument("--timeout", type=float, default=results.TIME_LIMIT_S,
                   help=f"stop the query after this many seconds (default {results.TIME_LIMIT_S:g})")
    p.add_argument("--max-rows", type=int, default=results.MAX_ROWS,
                   help=f"print at most this many rows; the rest are counted (default {results.MAX_ROWS:,})")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="table (default), csv, or json (a list of row objects)")
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("retrigger", help="replay runs with their original payloads",
                       description="Re-trigger runs: each becomes a new run that replays the original trigger "
                       "payload (from when it first fired), with retrigger_of set. Give run IDs, or a filter "
                       "(default: failed runs). Waits for the outcomes and prints them.")
    p.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="runs to re-trigger")
    p.add_argument("--status", action="append", choices=("failed", "finished", "skipped"),
                   help="with no RUN_ID: runs of this status (default failed; repeatable)")
    p.add_argument("--workflow", action="append", help="with no RUN_ID: only this workflow ID (repeatable)")
    p.add_argument("--unresolved", action="store_true",
                   help="with no RUN_ID: only failed original runs whose latest re-trigger did not finish")
    p.add_argument("--query", metavar="QUERY",
                   help="with no RUN_ID: runs matching a Runs page URL query, e.g. 'status=failed&kind=auth&range=7d' "
                   "(every parameter of the page's URL; custom days in UTC)")
    p.add_argument("--limit", type=whole_number(1), default=10_000, help="at most this many runs (default 10000)")
    p.add_argument("--as", dest="as_name", metavar="NAME",
                   help="recorded as who re-triggered, marked (cli) (default: your OS user)")
    p.add_argument("--concurrency", type=whole_number(1), default=8, help="runs at a time (default 8)")
    p.add_argument("--payload", metavar="FILE",
                   help="replay the one RUN_ID with this edited payload (a JSON object; - reads stdin): checked "
                   "against the workflow's required fields, its diff printed and recorded (an edited replay)")
    p.add_argument("--from-failed-step", action="store_true",
                   help="re-run each run from its failed step, reusing the earlier steps' recorded outputs "
                   "(their apps are not called again); runs whose outputs were not recorded are refused")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=cmd_retrigger)

    alerts = sub.add_parser("alerts", help="check the failure alert rules (for cron)",
                            description="Failure alerts: rules and destinations are edited on the Alerts page.")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    p = alerts_sub.add_parser("check", help="check every rule once, send what fired or resolved",
                              description="Check every alert rule once: open an episode where a condition started "
                              "holding, close it where it stopped, and send their messages (retried, then recorded "
                              "undelivered). Exit status 1 while any alert is firing, else 0. While the dashboard "
                              "holds the store it checks and sends itself; this then only reports what it found.")
    p.add_argument("--json", action="store_true", help="print the outcome as one JSON object")
    p.set_defaults(func=cmd_alerts_check)
    p = sub.add_parser("migrate", help="copy the embedded store into ClickHouse and check the counts",
                       description="Copy the runs (their latest snapshots), rejected lines, comments, handled "
                       "marks and re-trigger records of the embedded store into an empty ClickHouse database, "
                       "then compare the row counts table by table. Connections, pauses, claims, the audit and "
                       "alert state are not copied yet (issue 16).")
    p.add_argument("--to", required=True, metavar="URL",
                   help="clickhouse://user:password@host:8123/database, clickhouses://… (TLS), or "
                   "chdb:///path/to/folder (the engine in this process)")
    p.add_argument("--as", dest="as_name", metavar="NAME",
                   help="recorded in the audit as who migrated, marked (cli) (default: your OS user)")
    p.add_argument("--json", action="store_true", help="print the outcome as one JSON object")
    p.set_defaults(func=cmd_migrate)
    p = sub.add_parser("prune", help="remove old runs, optionally archiving them; the store file shrinks",
                       description="Remove the runs started before the cutoff (--older-than, else "
                       "FOURGENT_RETENTION_DAYS; a workflow whose definition sets retention_days keeps its own), "
                       "with their steps, comments, re-trigger records and handled marks, and the rejected lines "
                       "older than every cutoff. The rollups and the SQL snapshot follow; the store file is "
                       "rewritten to shrink when enough of it is freed. Reading the logs again does not bring "
                       "pruned runs back.")
    p.add_argument("--older-than", metavar="AGE", help="e.g. 90d (days): runs started longer ago than this")
    p.add_argument("--archive", metavar="DIR",
                   help="first write the pruned rows as Parquet into a new folder under DIR")
    p.add_argument("--dry-run", action="store_true", help="count what would be pruned; change nothing")
    p.add_argument("--as", dest="as_name", metavar="NAME",
                   help="recorded in the audit as who pruned, marked (cli) (default: your OS user)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser("bench", help="measure ingest and Runs-page queries against bare DuckDB",
                       description="Generate N demo runs, ingest them, and print ingest throughput, store size "
                       "and the median of each Runs page query beside the same query on a bare DuckDB table.")
    p.add_argument("--runs", type=whole_number(1), default=1_000_000, help="how many runs (default 1000000)")
    p.add_argument("--repeat", type=whole_number(1), default=7, help="timed repetitions per query (median reported)")
    p.add_argument("--workdir", help="keep the generated files here (default: a temporary folder)")
    p.add_argument("--store", choices=("duckdb", "clickhouse"), default="duckdb",
                   help="clickhouse: ingest --workdir's logs into ClickHouse (chDB, in this process), then copy "
                   "its store there and time the pages' reads on both, side by side")
    p.add_argument("--scale", type=int, metavar="N",
                   help="with --store clickhouse, instead: its reads on N times the store's runs, grown in the "
                   "engine from a copy (no log read), beside the side-by-side run's figures")
    p.add_argument("--queries-only", action="store_true",
                   help="time the queries again on the stores an earlier run left in --workdir")
    p.add_argument("--explore", action="store_true",
                   help="instead: ad-hoc SQL through its worker over the snapshot, on the store in --workdir")
    p.add_argument("--retrigger", action="store_true",
                   help="instead: bulk re-trigger of failed runs against the demo apps (--runs defaults to 1000)")
    p.add_argument("--actions", action="store_true",
                   help="instead: on --workdir's store, the unresolved counts, and marking 10,000 failures handled "
                   "and undoing it")
    p.add_argument("--alerts", action="store_true",
                   help="instead: the alert check (each kind of rule, and all six at once) over --runs demo runs")
    p.add_argument("--refresh", action="store_true",
                   help="instead: a refresh with nothing new over --files one-line log files")
    p.add_argument("--files", type=whole_number(1), default=20_000,
                   help="how many files --refresh makes (default 20000)")
    p.add_argument("--prune", action="store_true",
                   help="instead: prune a store of --runs runs in --workdir to its newest 10%% (file size before "
                   "and after, seconds), then the logs read again and the next day's prune")
    p.set_defaults(func=cmd_bench)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except (StoreBusy, StoreWriteFailed, LogsNotWritable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # a disk that is full, a folder that is read-only: in words, not a traceback
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}. Nothing already stored was changed.", file=sys.stderr)
        return EXIT_FAILED
