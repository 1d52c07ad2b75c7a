"""The dashboard's web server: Streamlit's own, serving app.py, with headers that keep other sites from framing it.

Run it with `streamlit run serve.py` (the README's command): Streamlit finds `app` and serves it through
Starlette. `streamlit run app.py` also works, without those headers.
"""

from __future__ import annotations

import contextlib
import sys

import streamlit as st
from starlette.middleware import Middleware

from fourgent import alerts
from fourgent.store import StoreBusy
from fourgent.workspace import open_workspace
from ui.auth import open_without_login
from ui.headers import SecurityHeaders

if refused := open_without_login():
    sys.exit(refused)

# Alerts are checked from the server's start, not from its first visitor's (the pages share this process's
# store; a busy store is the first page's to report).
with contextlib.suppress(StoreBusy):
    alerts.start_ticker(open_workspace())

app = st.App("app.py", middleware=[Middleware(SecurityHeaders)])
