"""Browser test fixtures (live daphne server, Playwright with Debian's Chromium).

Being written; see the issue on the web UI.
"""
