"""Fixtures shared by the Python tests (djenga_tests/tests) and the widget's browser tests."""

pytest_plugins = ["djenga_tests.tests.fixtures"]


def pytest_collection_modifyitems(items):
    """Browser tests run last, in their collected order. Playwright's sync API keeps an
    event loop running in the main thread while its session-scoped browser is open, and
    pytest-asyncio's session loop cannot run under it: an async test after the first
    browser test fails with "Cannot run the event loop while another loop is running"."""
    items.sort(key=lambda item: "browser" in getattr(item, "fixturenames", ()))
