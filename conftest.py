"""Fixtures shared by the Python tests (djenga_tests/tests) and the widget's browser tests."""

pytest_plugins = ["djenga_tests.tests.fixtures"]
