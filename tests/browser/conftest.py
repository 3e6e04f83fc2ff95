"""Real headless Chromium (Debian's package) driven by Playwright; never a downloaded browser."""

import os
from pathlib import Path

import pytest
from django.db import connections

CHROMIUM = Path("/usr/bin/chromium")
# Flags for a closed network and for running as root: without the background-networking
# ones Chromium keeps trying to reach Google's hosts and logs the refusals.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
]


@pytest.fixture(scope="session")
def chromium_path():
    if not CHROMIUM.exists():
        if os.environ.get("LEPTON_REQUIRE_BROWSER"):
            pytest.fail("LEPTON_REQUIRE_BROWSER is set but /usr/bin/chromium is missing (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    return str(CHROMIUM)


@pytest.fixture
def browser_context(chromium_path, tmp_path):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # are still synchronous, so tell Django that this is deliberate.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path / "chromium-profile"),
            executable_path=chromium_path,
            headless=True,
            args=CHROMIUM_ARGS,
        )
        try:
            yield context
        finally:
            context.close()
            # ORM calls made while Playwright's loop runs get their own connection (Django
            # keys connections by async context); close it, or PostgreSQL cannot drop the
            # test database at the end of the session.
            connections.close_all()
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


# Runs before any page script (through the DevTools protocol, so the policy does not apply to it).
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (e) {
  window.__reportCspViolation(e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " from "
    + e.sourceFile + ":" + e.lineNumber + ":" + e.columnNumber + " " + (e.sample || ""));
});
"""


class PageProblems:
    """Console errors, uncaught exceptions, failed requests, 4xx/5xx responses and
    Content-Security-Policy violations (with the file and line that caused them) of a page."""

    def __init__(self, page):
        self.items: list[str] = []
        page.expose_function("__reportCspViolation", lambda text: self.items.append(f"csp: {text}"))
        page.add_init_script(REPORT_CSP_VIOLATIONS)
        page.on("console", lambda msg: msg.type == "error" and self.items.append(f"console: {msg.text}"))
        page.on("pageerror", lambda exc: self.items.append(f"exception: {exc}"))
        page.on("requestfailed", lambda req: self.items.append(f"request failed: {req.url} {req.failure}"))
        page.on("response", lambda res: res.status >= 400 and self.items.append(f"HTTP {res.status}: {res.url}"))


@pytest.fixture
def page(browser_context):
    page = browser_context.pages[0] if browser_context.pages else browser_context.new_page()
    page.set_default_timeout(15_000)
    page.problems = PageProblems(page)
    return page


@pytest.fixture
def inline_tasks(monkeypatch, settings, world):
    """Work runs inside the request that queued it (django-q2's sync mode), on a CPU node.

    Every piece of work is a job the scheduler places, so a node must be online; the job's
    heartbeat thread is off because the job runs in the request's own thread.
    """
    from django_q.conf import Conf

    from tests.factories import online_node

    monkeypatch.setattr(Conf, "SYNC", True)
    settings.LEPTON_HEARTBEAT_THREAD = False
    return online_node("cpu-1", slots=4)
