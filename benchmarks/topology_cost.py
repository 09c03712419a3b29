"""Cost of one update_step on each Redis topology, as a ratio against PING on the same node
in the same run: standalone (redisd://) and behind Sentinel (sentineld://: a master, a
replica and three sentinels), all real server processes on loopback.

    .venv/bin/python benchmarks/topology_cost.py
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable

from django.conf import settings
from harness import load_line, print_table
from update_cost import OPS, ROUNDS, timed

from djenga.celery.app import DjengaCelery
from djenga.celery.tasks import DetailTask
from djenga.testing import RedisServer
from djenga.testing.sentinel import SentinelSetup


def cases(name: str, backend_url: str, options: dict[str, str]) -> dict[str, Callable]:
    """PING on the backend's own client (the master's connection) and one update_step."""
    app = DjengaCelery(name, broker="memory://", backend=backend_url, set_as_current=False)
    app.conf.result_backend_transport_options = options

    @app.task(bind=True, base=DetailTask, name=f"{name}.detail", min_update_interval=0)
    def detail_task(self):  # never run: only its request and backend are used
        pass

    detail_task.push_request(id=f"{name}-1", retries=0)
    detail_task.start_step(1, "Fly to the moon")
    client = app.backend.client
    return {
        "PING": lambda i: client.ping(),
        "update_step": lambda i: detail_task.update_step(1, f"flying {i}"),
    }


def main() -> None:
    settings.configure()
    standalone = RedisServer().start()
    sentinel = SentinelSetup().start()
    try:
        print(f"server: {standalone.binary}; load {os.getloadavg()[0]:.2f}")
        topologies = {
            "standalone (redisd://)": cases("standalone", standalone.url(15, "redisd"), {}),
            "Sentinel (sentineld://)": cases(
                "sentinel", sentinel.url(15, "sentineld"), sentinel.transport_options
            ),
        }
        for ops in topologies.values():
            for op in ops.values():
                timed(op, 300)  # warm up: connections, script load, master discovery
        rounds = {(t, c): [] for t, ops in topologies.items() for c in ops}
        for _ in range(ROUNDS):  # interleaved, so drift hits every case alike
            for topology, ops in topologies.items():
                for case, op in ops.items():
                    rounds[(topology, case)].append(timed(op))
        median = {key: statistics.median(values) for key, values in rounds.items()}
        print(f"\n{ROUNDS} rounds x {OPS:,} ops, median round per case\n")
        print_table(
            f"{'topology':26} {'PING µs':>8} {'update_step µs':>15} {'x PING':>7}",
            (
                f"{t:26} {median[(t, 'PING')] * 1e6:8.1f} {median[(t, 'update_step')] * 1e6:15.1f} "
                f"{median[(t, 'update_step')] / median[(t, 'PING')]:7.2f}"
                for t in topologies
            ),
        )
        print(load_line())
    finally:
        sentinel.close()
        standalone.close()


if __name__ == "__main__":
    main()
