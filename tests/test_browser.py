"""Real-browser tests: Debian's Chromium, driven by Playwright, against the app served on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from fourgent.config import Paths
from fourgent.store.duckdb import DuckDBStore
from helpers import CHROMIUM, ROOT, SAMPLES, record_sample_lineage

ARTIFACTS = ROOT / "artifacts"

pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(cwd: Path, entry: str = "serve.py", env: dict[str, str] | None = None,
          args: tuple[str, ...] = (), port: int | None = None) -> tuple[subprocess.Popen, str]:
    """A fresh server of `entry` (the README's serve.py) on a free 127.0.0.1 port (or `port`), once it answers its
    health check."""
    port = port or _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", entry, "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", *args],
        cwd=cwd, env=dict(os.environ, **(env or {})), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("the app did not start")
            time.sleep(0.3)


def sample_data(folder: Path) -> Path:
    data = folder / "data"
    (data / "logs").mkdir(parents=True)
    for f in SAMPLES.glob("*.jsonl"):
        shutil.copy(f, data / "logs" / f.name)
    ledger = DuckDBStore(Paths(data).db_path)  # as if this dashboard had run the samples' re-triggers
    record_sample_lineage(ledger)
    ledger.close()
    return data


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = sample_data(tmp_path_factory.mktemp("browser"))
    proc, url = serve(ROOT, env={"FOURGENT_DATA_DIR": str(data), "FOURGENT_DEMO_RUNS": "0"})
    yield {"url": url, "data": data}
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, timezone_id="Europe/Berlin")
    pg = context.new_page()
    yield pg
    context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def wait_ready(page, text: str) -> None:
    page.wait_for_selector('[data-testid="stApp"]', timeout=30_000)
    page.get_by_text(text, exact=False).first.wait_for(timeout=30_000)


def metric_value(page, label: str) -> str:
    metric = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return metric.locator('[data-testid="stMetricValue"]').inner_text()


def test_filter_to_failed_open_a_run_comment_and_see_it_after_reload(server, page):
    page.goto(server["url"])
    wait_ready(page, "Matching runs")
    assert metric_value(page, "Matching runs") == "356"
    assert "Single-user mode (no login)" in page.locator('[data-testid="stSidebar"]').inner_text()
    shot(page, "runs-page")

    page.get_by_role("button", name="🔴 Failed · 28").click()
    page.wait_for_url("**status=failed**", timeout=15_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stMetricValue]')].some(e => e.innerText === '28')",
        timeout=15_000)
    shot(page, "runs-failed")

    # Select the first row: the table is a canvas, so click where its row-selection box is drawn.
    box = page.locator('[data-testid="stDataFrame"]').last.bounding_box()
    page.mouse.click(box["x"] + 16, box["y"] + 35 + 17)
    page.get_by_text("Selected: run_", exact=False).wait_for(timeout=15_000)
    assert "status=failed" in page.url  # selecting kept the filter
    assert page.get_by_role("button", name="💬 Comment").count() == 1
    shot(page, "runs-selected")

    page.goto(server["url"] + "/run?id=run_01000000170")
    wait_ready(page, "Run details")
    page.get_by_text("Failed at step", exact=False).first.wait_for()
    page.get_by_text("Signed as local user (single-user).").wait_for()  # the actor, not a typed name
    page.get_by_label("Add a note for whoever looks at this run next").fill("Reconnected Slack <b>now</b>")
    page.get_by_role("button", name="Add comment").click()
    page.get_by_text("Reconnected Slack <b>now</b>", exact=True).wait_for(timeout=15_000)

    page.reload()
    wait_ready(page, "Run details")
    page.get_by_text("Reconnected Slack <b>now</b>", exact=True).wait_for(timeout=15_000)
    assert page.locator("b", has_text="now").count() == 0  # shown as text, not as markup
    shot(page, "run-detail")


def open_skipped_pipedrive_runs(server, page) -> str:
    """Open a filtered view by its link; returns its "Matching runs" once the filter shows."""
    page.goto(server["url"] + "/?status=skipped&workflow=pipedrive-deal-sheets-row")
    wait_ready(page, "Matching runs")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stMetricValue]')].some(e => e.innerText !== '356')",
        timeout=15_000)
    return metric_value(page, "Matching runs")


def test_a_copied_link_reproduces_the_view(server, page):
    value = int(open_skipped_pipedrive_runs(server, page).replace(",", ""))
    assert 0 < value < 30


def test_the_back_button_returns_to_the_runs_page_with_its_filters(server, page):
    filtered = open_skipped_pipedrive_runs(server, page)
    page.get_by_role("link", name="Workflows").click()
    page.wait_for_url("**/workflows", timeout=15_000)
    wait_ready(page, "Runs in the last 24 hours")
    page.go_back()
    wait_ready(page, "Matching runs")
    page.wait_for_timeout(2000)  # the page's own URL update, had it dropped the filters, would be done
    assert "status=skipped" in page.url and "workflow=pipedrive-deal-sheets-row" in page.url
    assert metric_value(page, "Matching runs") == filtered


def test_a_line_appended_to_the_logs_shows_within_seconds(server, page):
    page.goto(server["url"])
    wait_ready(page, "Matching runs")
    before = int(metric_value(page, "Matching runs").replace(",", ""))
    line = (SAMPLES / "runs-small.jsonl").read_text().splitlines()[0]
    with open(server["data"] / "logs" / "live.jsonl", "w") as f:
        f.write(line.replace("run_01000000000", "run_live_0001") + "\n")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stMetricValue]')]"
        f".some(e => e.innerText === '{before + 1}')",
        timeout=12_000)


def test_a_bar_of_the_overview_chart_opens_the_runs_page_with_the_same_count(server, page):
    page.goto(server["url"] + "/overview?from=2026-08-01&to=2026-10-31")
    wait_ready(page, "Runs over time")
    assert int(metric_value(page, "Runs").replace(",", "")) >= 352  # originals; the live test may have added one
    chart = page.locator(".js-plotly-plot").first
    chart.locator(".barlayer .point").first.wait_for(timeout=15_000)
    shot(page, "overview")
    # The chart's own data says what the clicked bar counts: the still-failing trace's busiest week.
    trace, point, expected = page.evaluate("""() => {
        const data = document.querySelector('.js-plotly-plot').data;
        const t = data.findIndex(d => d.name === 'Failed — still failing');
        const ys = data[t].y;
        const p = ys.indexOf(Math.max(...ys));
        return [t, p, ys[p]];
    }""")
    assert expected > 0
    chart.locator(".barlayer .trace").nth(trace).locator(".point").nth(point).click(force=True)
    page.wait_for_function(  # the Runs page is the default page, at "/"
        "() => !location.pathname.includes('overview') && location.search.includes('status=failed')"
        " && location.search.includes('unresolved=1') && location.search.includes('originals=1')",
        timeout=15_000)
    wait_ready(page, "Matching runs")
    page.wait_for_function(
        f"() => [...document.querySelectorAll('[data-testid=stMetricValue]')].some(e => e.innerText === '{expected}')",
        timeout=15_000)
    shot(page, "overview-click-runs")
    # The browser's Back button returns to the Overview of the same range, and stays there.
    page.go_back()
    page.wait_for_function("() => location.search.includes('from=2026-08-01')", timeout=15_000)
    wait_ready(page, "Runs over time")
    page.wait_for_timeout(2000)  # the old click is not replayed
    assert "/overview" in page.url and "to=2026-10-31" in page.url
    assert int(metric_value(page, "Runs").replace(",", "")) >= 352
    # Back to the Overview from the navigation: it stays there (the old click is not replayed).
    page.get_by_role("link", name="Overview").click()
    wait_ready(page, "Still failing")  # the default 7 days hold no sample runs: headline figures only
    page.wait_for_timeout(2000)
    assert "/overview" in page.url


def test_bulk_re_trigger_shows_progress_and_a_summary_then_the_runs_are_resolved_or_not(server, page):
    # Last in this file: it adds runs to the shared server's store.
    page.goto(server["url"] + "/?unresolved=1&workflow=stripe-payment-xero-invoice")
    wait_ready(page, "Matching runs")
    bulk = page.get_by_role("button", name="unresolved failed run", exact=False)
    bulk.wait_for(timeout=15_000)
    count = int(bulk.inner_text().split()[3].replace(",", ""))
    assert count > 0
    bulk.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Recorded as re-triggered by local user (single-user).").wait_for()
    shot(page, "bulk-confirm")
    confirm = dialog.locator("button", has_text="Re-trigger ").first
    take = int(confirm.inner_text().split()[1].replace(",", ""))  # what a replay can fix now (the split above)
    assert 0 < take <= count
    confirm.click()
    page.get_by_text(f"Re-triggered {take:,} of {take:,}", exact=False).wait_for(timeout=60_000)
    shot(page, "bulk-done")
    page.get_by_role("button", name="Dismiss").click()
    # Every one was replayed: the ones that finished are resolved and drop out of "unresolved".
    page.wait_for_function(
        f"() => [...document.querySelectorAll('[data-testid=stMetricValue]')].some(e => +e.innerText < {count})",
        timeout=15_000)


@pytest.mark.parametrize("path, title, shows", [
    ("/run?id=run_01000000000", "Run details", "run_01000000000"),
    ("/overview?range=30d", "Overview", "compared with the 30 days before"),
])
def test_a_deep_link_is_the_first_request_of_a_fresh_server_and_opens_its_page(tmp_path, browser, path, title, shows):
    data = sample_data(tmp_path)
    proc, url = serve(ROOT, env={"FOURGENT_DATA_DIR": str(data), "FOURGENT_DEMO_RUNS": "0"})
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        pg = context.new_page()
        pg.goto(url + path)
        try:
            wait_ready(pg, shows)
        finally:
            shot(pg, "first-deep-link-" + title.lower().replace(" ", "-"))
        pg.get_by_role("heading", name=title).first.wait_for(timeout=30_000)
        pg.wait_for_timeout(1500)  # a late "page not found" would arrive by now
        assert pg.get_by_text("Page not found").count() == 0
        nav = [t.split("\n")[-1] for t in pg.locator('[data-testid="stSidebarNav"] a').all_inner_texts()]
        assert nav == ["Workflow Runs", "Overview", "Workflows", "Connections", "Explore (SQL)", "Alerts",
                       "How it works", "Audit"]  # the single user is the admin
        assert pg.url == url + path
    finally:
        context.close()
        proc.terminate()
        proc.wait(timeout=20)


def test_a_pages_folder_breaks_first_deep_links(tmp_path, browser):
    """Why the page files live in app_pages/: beside an st.navigation entry, a folder named pages/ makes
    Streamlit 1.67 run the legacy multipage app for the first session, so a first deep link to a page whose
    file name is not its URL path shows "Page not found"."""
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "home.py").write_text('import streamlit as st\nst.title("Home")\n')
    (tmp_path / "pages" / "run_detail.py").write_text(
        'import streamlit as st\nst.title("Detail " + st.query_params.get("id", ""))\n')
    (tmp_path / "app.py").write_text(
        "import streamlit as st\n"
        "st.navigation([st.Page('pages/home.py', url_path='home', default=True),\n"
        "               st.Page('pages/run_detail.py', url_path='run', visibility='hidden')]).run()\n")
    proc, url = serve(tmp_path, entry="app.py")
    context = browser.new_context()
    try:
        pg = context.new_page()
        pg.goto(url + "/run?id=abc")
        wait_ready(pg, "Detail abc")
        pg.get_by_text("Page not found").first.wait_for(timeout=15_000)
    finally:
        context.close()
        proc.terminate()
        proc.wait(timeout=20)


def _framed(browser, tmp_path: Path, target: str) -> bool:
    """Whether a page of another origin (another port) shows `target` inside an iframe."""
    import functools
    import http.server
    import threading

    (tmp_path / "evil.html").write_text(f'<h1>Win a prize</h1><iframe src="{target}" width="900" height="600">'
                                        '</iframe>')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    context = browser.new_context()
    try:
        pg = context.new_page()
        pg.goto(f"http://127.0.0.1:{evil.server_address[1]}/evil.html")
        frame = pg.frame_locator("iframe")
        try:
            frame.locator('[data-testid="stApp"]').wait_for(timeout=15_000)
            return True
        except sync_api.TimeoutError:
            return False
    finally:
        context.close()
        evil.shutdown()
        evil.server_close()


def test_another_site_cannot_frame_the_dashboard(server, browser, tmp_path):
    target = server["url"] + "/explore?sql=SELECT%201"
    with urllib.request.urlopen(target, timeout=10) as r:
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert not _framed(browser, tmp_path, target)


def test_without_serve_py_the_dashboard_can_be_framed(tmp_path, browser):
    """The other side of the test above: Streamlit's own server sets no such header, so app.py served
    directly (not the README's command) can be framed."""
    data = sample_data(tmp_path)
    proc, url = serve(ROOT, entry="app.py", env={"FOURGENT_DATA_DIR": str(data), "FOURGENT_DEMO_RUNS": "0"})
    try:
        assert _framed(browser, tmp_path, url + "/explore")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.parametrize("width", [1280, 1920])
def test_filter_and_count_labels_are_whole_at_common_widths(server, browser, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        pg = context.new_page()
        pg.goto(server["url"] + "/?status=failed")
        wait_ready(pg, "Matching runs")
        pg.get_by_role("button", name="Clear filters").wait_for()
        labels = ["Clear filters", *(f"{s} ·" for s in ("Finished", "Failed", "Running", "Pending", "Skipped"))]
        for text in labels:
            button = pg.locator("button", has_text=text).first
            # A cut label overflows its box (the "…" of text-overflow): the text is wider than the button shows.
            cut = button.evaluate("b => [...b.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1)")
            assert not cut, f"{text!r} is cut at {width} px"
        chip = pg.locator('[data-testid="stMultiSelectTagsContainer"] [data-tag]').first  # "🔴 Failed ×"
        assert not chip.evaluate("t => [...t.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1)"), \
            f"the status chip is cut at {width} px"
        grid = pg.locator('[data-testid="stDataFrame"] .dvn-scroller').first
        assert grid.evaluate("g => g.scrollWidth <= g.clientWidth + 1"), f"the table scrolls sideways at {width} px"
        assert grid.evaluate("g => g.scrollHeight <= g.clientHeight + 1"), "the table scrolls inside, not the page"
        shot(pg, f"runs-{width}")
    finally:
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_theme_follows_the_browsers_preference(server, browser, scheme):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    try:
        pg = context.new_page()
        pg.goto(server["url"])
        wait_ready(pg, "Matching runs")
        rgb = pg.evaluate("() => getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor")
        r, g, b = (int(v) for v in rgb[rgb.index("(") + 1:rgb.index(")")].split(",")[:3])
        luminance = (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255
        assert (luminance < 0.3) if scheme == "dark" else (luminance > 0.8), (scheme, rgb)
        shot(pg, f"runs-1280-{scheme}")
    finally:
        context.close()


def _number(text: str) -> float:
    return float(text.replace(",", "").rstrip("%"))


def _overview_figures(pg, url: str) -> dict[str, float]:
    pg.goto(url + "/overview?range=24h")
    wait_ready(pg, "Still failing")
    pg.locator(".js-plotly-plot .barlayer .point").first.wait_for(timeout=30_000)
    return {label: _number(metric_value(pg, label))
            for label in ("Runs", "First-attempt failure rate", "Still failing", "Re-triggers")}


def _bulk_dialog(pg, url: str):
    pg.goto(url + "/?unresolved=1")
    wait_ready(pg, "Matching runs")
    bulk = pg.get_by_role("button", name="unresolved failed run", exact=False)
    bulk.wait_for(timeout=30_000)
    offered = int(bulk.inner_text().split()[3].replace(",", ""))
    bulk.click()
    dialog = pg.get_by_role("dialog")
    confirm = dialog.locator("button", has_text="Re-trigger ").first
    confirm.wait_for(timeout=30_000)
    return offered, dialog, confirm, int(confirm.inner_text().split()[1].replace(",", ""))


def test_the_operators_day_at_1280_px_reconnect_bulk_fix_and_an_overview_that_does_not_mislead(tmp_path, browser):
    """The main job on the demo, as a new user does it at 1280×900: the failures point at QuickBooks' expired
    token; the bulk dialog holds back what would fail again; a wrong token does not save as Connected; after
    the right one and a bulk re-trigger, the Overview shows fewer still failing and no spike of runs."""
    from fourgent.workspace import demo_token

    data = tmp_path / "data"
    proc, url = serve(ROOT, env={"FOURGENT_DATA_DIR": str(data), "FOURGENT_DEMO_RUNS": "3000"})
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Paris")
    try:
        pg = context.new_page()
        pg.goto(url)
        wait_ready(pg, "Matching runs")
        before = _overview_figures(pg, url)
        pg.get_by_text("Bars are hours in Europe/Paris", exact=False).first.wait_for()  # the browser's zone
        shot(pg, "walk-1-overview-before")

        # The Runs page says why the failures fail, and its table needs no sideways scroll at 1280 px.
        pg.goto(url)
        wait_ready(pg, "Matching runs")
        pg.get_by_text("failed at QuickBooks's credential", exact=False).first.wait_for(timeout=30_000)
        grid = pg.locator('[data-testid="stDataFrame"] .dvn-scroller').first
        grid.wait_for(timeout=30_000)
        assert grid.evaluate("g => g.scrollWidth <= g.clientWidth + 1"), "the runs table scrolls sideways at 1280 px"
        shot(pg, "walk-2-runs")

        # Before the reconnect the bulk holds back what would only fail again, and says why.
        offered, dialog, _confirm, take = _bulk_dialog(pg, url)
        dialog.get_by_text("wait for QuickBooks to be reconnected", exact=False).wait_for()
        dialog.get_by_text("need an edited payload", exact=False).wait_for()
        assert 0 < take < offered
        shot(pg, "walk-3-bulk-split")
        pg.keyboard.press("Escape")

        # A wrong token is refused when saved, and does not read as Connected.
        pg.goto(url + "/connections")
        wait_ready(pg, "Credentials are stored encrypted")
        quickbooks = pg.locator('[data-testid="stExpander"]').filter(has_text="QuickBooks").first
        quickbooks.locator("summary").click()

        def save_token(token: str) -> None:
            quickbooks.locator('input[type="password"]').fill(token)
            quickbooks.get_by_role("button", name="Reconnect / update credential").click()

        save_token("not-the-token")
        pg.get_by_text("refused it when tested", exact=False).first.wait_for(timeout=30_000)
        # The expander's icon is the table's Credential state: red (Expired), not green.
        pg.locator('[data-testid="stExpander"] summary').filter(has_text="🔴 QuickBooks").first.wait_for(timeout=30_000)
        assert pg.locator('[data-testid="stExpander"] summary').filter(has_text="🟢 QuickBooks").count() == 0
        shot(pg, "walk-4-wrong-token")
        pg.goto(url + "/connections")
        wait_ready(pg, "Credentials are stored encrypted")
        quickbooks = pg.locator('[data-testid="stExpander"]').filter(has_text="QuickBooks").first
        quickbooks.locator("summary").click()
        save_token(demo_token("QuickBooks"))
        pg.get_by_text("Saved and tested: connected", exact=False).first.wait_for(timeout=30_000)

        # Reconnected: the QuickBooks failures are offered now; only the validation failures stay out.
        offered, dialog, confirm, take = _bulk_dialog(pg, url)
        assert dialog.get_by_text("wait for QuickBooks", exact=False).count() == 0
        dialog.get_by_text("need an edited payload", exact=False).wait_for()
        confirm.click()
        pg.get_by_text(f"Re-triggered {take:,} of {take:,}", exact=False).wait_for(timeout=120_000)
        shot(pg, "walk-5-bulk-done")
        pg.get_by_role("button", name="Dismiss").click()

        after = _overview_figures(pg, url)
        shot(pg, "walk-6-overview-after")
        assert after["Still failing"] < before["Still failing"]
        assert abs(after["Runs"] - before["Runs"]) <= 2  # replays are not new runs (a run may leave the 24 h)
        assert abs(after["First-attempt failure rate"] - before["First-attempt failure rate"]) < 1.0
        assert after["Re-triggers"] >= before["Re-triggers"] + take - 2
    finally:
        context.close()
        proc.terminate()
        proc.wait(timeout=20)


def test_one_zone_on_every_page_and_a_click_through_reads_the_same_window(server, page):
    page.goto(server["url"] + "/overview?from=2026-08-01&to=2026-10-31")
    wait_ready(page, "Runs over time")
    page.get_by_text("Runs started 2026-08-01 00:00 – 2026-11-01 00:00 (Europe/Berlin)", exact=False).first.wait_for()
    page.get_by_text("Bars are weeks in Europe/Berlin", exact=False).first.wait_for()
    page.get_by_role("link", name="Open them").click()
    wait_ready(page, "Matching runs")
    # The Runs page reads the window the Overview said, in the same zone.
    page.get_by_text("Exactly 2026-08-01 00:00 – 2026-11-01 00:00 (Europe/Berlin)", exact=False).first.wait_for()
    page.locator('[data-testid="stSidebar"]').get_by_text("Times in UTC").click()
    page.wait_for_function("() => location.search.includes('tz=utc')", timeout=15_000)
    page.get_by_text("Exactly 2026-07-31 22:00 – 2026-10-31 23:00 (UTC)", exact=False).first.wait_for()
    # One switch: the other pages tell time in UTC too.
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Overview").click()
    wait_ready(page, "Still failing")
    page.get_by_text("Bars are ", exact=False).first.wait_for()
    assert "in UTC" in page.get_by_text("Bars are ", exact=False).first.inner_text()
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Explore (SQL)").click()
    wait_ready(page, "Explore")
    assert page.locator('[data-testid="stSidebar"] input[type="checkbox"]').first.is_checked()


def idle(page) -> None:
    """Wait until the app's script run has ended: no running indicator and no element left stale by a rerun."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=stStatusWidgetRunningIcon], "
        "[data-testid=stStatusWidgetRunningManIcon], [data-stale=true]')", timeout=30_000)


def _choose(page, scope, label: str, option: str) -> None:
    """Pick an option of a Streamlit selectbox by its label. A rerun that ends while the list is open
    re-renders the box and closes the list (CI saw it once, right after a form was saved): open it again."""
    for attempt in range(3):
        idle(page)
        scope.locator('[data-testid="stSelectbox"]').filter(has_text=label).first.click()
        wanted = page.get_by_role("option", name=option).first
        try:
            wanted.wait_for(timeout=5_000)
            wanted.click()
            return
        except sync_api.TimeoutError:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")


def test_an_alert_rule_made_on_the_alerts_page_fires_to_a_webhook_whose_link_opens_exactly_those_runs(
        tmp_path, browser):
    import json
    from datetime import UTC, datetime, timedelta

    from receivers import Webhook

    from helpers import run_line

    hook = Webhook()
    data = sample_data(tmp_path)  # the sample runs are months old: a 1 h window holds none of them
    port = _free_port()
    proc, url = serve(ROOT, port=port, env={"FOURGENT_DATA_DIR": str(data), "FOURGENT_DEMO_RUNS": "0",
                                            "FOURGENT_ALERT_TICK": "1",
                                            "FOURGENT_PUBLIC_URL": f"http://127.0.0.1:{port}"})
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, timezone_id="Europe/Berlin")
    try:
        pg = context.new_page()
        pg.goto(url + "/alerts")
        wait_ready(pg, "Nothing is firing.")
        destination = pg.locator('[data-testid="stForm"]').filter(has_text="Save destination")
        destination.get_by_role("textbox", name="Name").fill("ops")
        destination.get_by_role("textbox", name="Apprise URL").fill(hook.url("/hook/tok-0a1b2c3d4e5f"))
        destination.get_by_role("button", name="Save destination").click()
        pg.get_by_text("Saved the destination “ops”.").wait_for(timeout=15_000)
        assert pg.get_by_text("tok-0a1b2c3d4e5f").count() == 0  # shown masked only

        _choose(pg, pg, "Kind", "Any failure of an error kind")
        rule = pg.locator('[data-testid="stForm"]').filter(has_text="Add rule")
        rule.get_by_label("Error kind").wait_for(timeout=15_000)
        rule.get_by_role("textbox", name="Name").fill("QuickBooks auth failures")
        _choose(pg, rule, "Send to", "ops")
        rule.get_by_role("button", name="Add rule").click()
        pg.get_by_text("Saved the rule “QuickBooks auth failures”.").wait_for(timeout=15_000)
        shot(pg, "alerts-rule-added")

        # Three runs fail with auth; one fails otherwise and one finishes: the alert is about the three.
        now = datetime.now(UTC)
        lines = []
        for i, (status, kind) in enumerate([("failed", "auth"), ("failed", "auth"), ("failed", "auth"),
                                            ("failed", "unavailable"), ("finished", None)]):
            started = now - timedelta(minutes=10 - i)
            extra = {"error": {"message": "401 Unauthorized", "kind": kind}} if kind else {}
            lines.append(json.dumps(run_line(f"run_alert_{i}", status=status, started_at=started.isoformat(),
                                             finished_at=(started + timedelta(seconds=3)).isoformat(), **extra)))
        (data / "logs" / "alerts.jsonl").write_text("\n".join(lines) + "\n")
        body = hook.wait(1, timeout=60)[0]
        assert body["title"] == "Alert: QuickBooks auth failures"
        assert hook.paths == ["/hook/tok-0a1b2c3d4e5f"]
        link = next(w for w in body["message"].split() if w.startswith(f"http://127.0.0.1:{port}/?"))

        pg.goto(link)  # the message's link, as a reader clicks it
        wait_ready(pg, "Matching runs")
        pg.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=stMetricValue]')].some(e => e.innerText === '3')",
            timeout=15_000)
        pg.get_by_text("Failed runs where kind = auth", exact=False).first.wait_for()
        shot(pg, "alerts-link-runs")

        pg.goto(url + "/alerts")
        wait_ready(pg, "Firing now · 1")
        pg.get_by_text("🔴 QuickBooks auth failures — 3 runs failed with error kind auth in the last 1 h").wait_for()
        history = pg.locator('[data-testid="stDataFrame"]').first
        history.wait_for()
        shot(pg, "alerts-page")
        pg.get_by_role("link", name="Open the 3 runs behind it").click()
        wait_ready(pg, "Matching runs")
        pg.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=stMetricValue]')].some(e => e.innerText === '3')",
            timeout=15_000)
        assert len(hook.bodies) == 1  # ticks went on; the episode was sent once
    finally:
        context.close()
        proc.terminate()
        proc.wait(timeout=20)
        hook.close()


def test_a_dashboard_started_with_a_retention_policy_prunes_old_runs_and_says_so(tmp_path, browser):
    import json
    from datetime import UTC, datetime, timedelta

    from helpers import run_line

    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True)
    now = datetime.now(UTC)
    with open(data / "logs" / "engine.jsonl", "w", encoding="utf-8") as f:
        for i in range(60):  # 40 runs of 100 days ago and more, 20 of the last days
            when = (now - timedelta(days=100 + i if i < 40 else i - 40, hours=1)).isoformat()
            f.write(json.dumps(run_line(f"run_{i:03d}", started_at=when, finished_at=when, steps=[])) + "\n")
    pg = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    proc, url = serve(ROOT, env={"FOURGENT_DATA_DIR": str(data), "FOURGENT_DEMO_RUNS": "0"})
    try:
        pg.goto(url)
        wait_ready(pg, "Matching runs")
        assert metric_value(pg, "Matching runs") == "60"  # no policy: every run kept
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    proc, url = serve(ROOT, env={"FOURGENT_DATA_DIR": str(data), "FOURGENT_DEMO_RUNS": "0",
                                 "FOURGENT_RETENTION_DAYS": "90"})
    try:
        pg.goto(url)
        wait_ready(pg, "Matching runs")
        deadline = time.monotonic() + 30  # the first refresh starts the daily prune beside the page
        while metric_value(pg, "Matching runs") != "20" and time.monotonic() < deadline:
            time.sleep(1)
            pg.reload()
            wait_ready(pg, "Matching runs")
        assert metric_value(pg, "Matching runs") == "20"  # the dashboard applied the policy itself
        pg.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=15_000)
        shot(pg, "retention-runs-after")
        pg.goto(url + "/how-it-works")
        wait_ready(pg, "Retention")
        pg.get_by_text("Runs started more than 90 days ago are pruned (FOURGENT_RETENTION_DAYS)",
                       exact=False).first.scroll_into_view_if_needed()
        pg.get_by_text("it last pruned at", exact=False).first.wait_for(timeout=15_000)
        shot(pg, "retention-how-it-works")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        pg.context.close()
