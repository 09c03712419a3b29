"""ASGI app for gc_pause.py: the quickstart's ``asgi.py`` exactly as docs/quickstart.md
gives it (read from the page), in a daphne whose cyclic collector is timed.

Every collection is timed through ``gc.callbacks``, in wall-clock time (what the watchers
wait) and in the thread's CPU time (what the collector did: on a busy machine the wall
time also holds the moments the process was not running). A thread writes the figures to
``$GC_STATS`` (JSON) every 0.2 s, for the benchmark to read. SIGUSR1 runs a full
collection now (``gc.collect()``, on daphne's main thread): what one would stall then.
"""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import threading
import time
from pathlib import Path

QUICKSTART = Path(__file__).resolve().parents[1] / "docs" / "quickstart.md"

_started: list[float] = [0.0, 0.0]
#: Per generation: how many collections.
counts = [0, 0, 0]
#: (time.time() at the end, generation, wall seconds, CPU seconds) of every collection
#: of 0.1 ms or more.
pauses: list[tuple[float, int, float, float]] = []


def _time_collections(phase: str, info: dict) -> None:
    if phase == "start":
        _started[:] = time.perf_counter(), time.thread_time()
        return
    took = time.perf_counter() - _started[0]
    cpu = time.thread_time() - _started[1]
    generation = info["generation"]
    counts[generation] += 1
    if took >= 1e-4:
        pauses.append((time.time(), generation, took, cpu))


def _write_forever(path: str) -> None:
    while True:
        data = {"counts": counts, "pauses": pauses, "frozen": gc.get_freeze_count()}
        Path(path + ".tmp").write_text(json.dumps(data))
        os.replace(path + ".tmp", path)
        time.sleep(0.2)


def quickstart_asgi_source() -> str:
    """The fenced block of docs/quickstart.md that starts ``# myproject/asgi.py``."""
    for block in re.findall(r"```python\n(.*?)```", QUICKSTART.read_text(), re.S):
        if block.startswith("# myproject/asgi.py"):
            return block
    raise LookupError("docs/quickstart.md has no myproject/asgi.py block")


gc.callbacks.append(_time_collections)
signal.signal(signal.SIGUSR1, lambda *_: gc.collect())
threading.Thread(target=_write_forever, args=(os.environ["GC_STATS"],), daemon=True).start()
# DJANGO_SETTINGS_MODULE comes from harness.daphne_env: the block's setdefault keeps it.
exec(compile(quickstart_asgi_source(), str(QUICKSTART), "exec"), globals())
