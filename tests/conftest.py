"""pytest's hooks and shared fixtures for this test suite (shared helpers live in their own modules, e.g. tests/ppca.py)."""

import functools
import http.server
import socketserver
import threading

import pytest


@pytest.fixture(scope="session")
def chromium_browser():
    """One Chromium for every browser test of the session (the book's pages, the slides).

    Playwright's synchronous API allows one running instance per process, so the test modules that
    drive a browser share this one rather than each starting its own.
    """
    from playwright.sync_api import sync_playwright

    from tests.test_browser import CHROMIUM

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


def pytest_collection_modifyitems(config, items):
    """Browser tests that open the same page run one after another, so that the checks which only
    look at a page share one load of it (``_look`` in tests/test_browser.py). The order is stable:
    a page's checks keep the file's order, and tests of no particular page come first."""

    def page(item) -> str:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "page_path" not in params:
            return ""
        prefix = "student/_build/html" if params.get("edition") == "student" else "html"
        return f"{prefix}/{params['page_path']}"

    in_browser = [i for i in items if i.get_closest_marker("browser")]
    ordered = iter(sorted(in_browser, key=page))
    items[:] = [next(ordered) if i.get_closest_marker("browser") else i for i in items]


@pytest.fixture(scope="session")
def build_server():
    """Serves _build/, so that the book (html/), the student book (student/_build/html/) and the slides (slides/) all load."""
    from tests.test_browser import BUILD, _require_environment

    _require_environment()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(BUILD))
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler) as srv:
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{srv.server_address[1]}"
        srv.shutdown()
