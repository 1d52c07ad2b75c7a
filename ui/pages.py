"""The page files, named once: pages link to each other by file (st.page_link, st.switch_page).

The folder is app_pages/, not pages/: Streamlit 1.67 treats a folder named pages/ beside the entry script as
a legacy multipage app for the whole server process until someone opens `/`, so a first deep link such as
/run?id=… showed "Page not found" (tests/test_browser.py::test_a_pages_folder_breaks_first_deep_links).
"""

from __future__ import annotations

RUNS = "app_pages/runs.py"
RUN = "app_pages/run_detail.py"
OVERVIEW = "app_pages/overview.py"
WORKFLOWS = "app_pages/workflows.py"
CONNECTIONS = "app_pages/connections.py"
EXPLORE = "app_pages/explore.py"
HOW_IT_WORKS = "app_pages/how_it_works.py"
AUDIT = "app_pages/audit.py"
ALERTS = "app_pages/alerts.py"
