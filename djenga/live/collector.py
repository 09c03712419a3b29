"""Once per web process: what start-up loaded leaves the cyclic collector's sight.

A web process holds about a hundred thousand objects it loaded at start-up (Django,
Channels, Twisted, the project) that live as long as it does. Without ``gc.freeze()``
every full collection walks all of them while no frame goes out: 42-48 ms of CPU in a
daphne with one watcher, 0.2 ms once frozen (docs/performance.md, "GC pauses").
"""

from __future__ import annotations

import gc
import logging

from ..conf import get_settings

logger = logging.getLogger(__name__)

_frozen = False


def freeze_startup_objects() -> bool:
    """``gc.freeze()`` once per process (unless ``DJENGA_GC_FREEZE`` is False); True if
    this call froze. The relay calls it when it starts (the first watcher of the
    process), and so does :func:`djenga.asgi.lifespan` at an ASGI server's start-up."""
    global _frozen
    if _frozen or not get_settings().GC_FREEZE:
        return False
    _frozen = True
    gc.freeze()
    logger.info("djenga: %d start-up objects frozen out of the collector", gc.get_freeze_count())
    return True
