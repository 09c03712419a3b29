"""The reliability suite: each scenario runs against a Stack of real processes, bounded in time."""

from __future__ import annotations

import pytest

from .stack import Stack


@pytest.fixture
def stack(tmp_path, request):
    """A fresh Stack per scenario; ``@pytest.mark.stack_settings(...)`` passes env settings."""
    marker = request.node.get_closest_marker("stack_settings")
    built = Stack(str(tmp_path), **(marker.kwargs if marker else {}))
    yield built
    built.close()
