"""The JS unit tests (frontend/tests/js/*.test.js) of the widget's pure modules, run in the real
headless Chromium: frontend/ is served as plain files, as the wheel's static files are."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

FRONTEND = Path(__file__).resolve().parents[1]
JS_TESTS = sorted((FRONTEND / "tests" / "js").glob("*.test.js"))

RUN = """async (path) => {
  const harness = await import('/tests/js/harness.js');
  await import(path);
  return harness.run();
}"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def frontend_url() -> Iterator[str]:
    """frontend/ over HTTP on a free port (module scripts need http, not file://)."""
    handler = functools.partial(_QuietHandler, directory=str(FRONTEND))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("path", JS_TESTS, ids=[p.name for p in JS_TESTS])
def test_js_unit_tests_pass(page, frontend_url, path):
    page.goto(frontend_url + "/tests/js/harness.js")
    results = page.evaluate(RUN, "/" + path.relative_to(FRONTEND).as_posix())
    assert results, f"{path.name} registered no tests"
    failures = [f"{r['name']}\n{r['error']}" for r in results if r["error"]]
    print(f"{path.name}: {len(results) - len(failures)} of {len(results)} JS tests passed")
    assert not failures, "\n\n".join(failures)
