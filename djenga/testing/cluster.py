"""A throw-away Redis/Valkey Cluster of real server processes on free loopback ports: the
test assigns the slots (CLUSTER ADDSLOTSRANGE), joins the nodes (CLUSTER MEET), gives
each master its replicas when asked (CLUSTER REPLICATE), moves a slot (SETSLOT
IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE) or kills a master and waits for its replica
to take over, and stops every process by its pid."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import redis

from ..keys import CLUSTER_SLOTS
from .processes import Closing
from .redis_server import RedisServer, free_port

T = TypeVar("T")


class ClusterNodeServer(RedisServer):
    """One node of a :class:`RedisCluster`: cluster mode, its bus on a free port too.

    ``node_timeout_ms``: how long a node may not answer before the others mark it FAIL
    (and its replica, if any, takes over). 15 s by default, so a node frozen for seconds
    is not FAIL."""

    def __init__(self, binary: str | None = None, node_timeout_ms: int = 15000) -> None:
        self.bus_port = free_port()
        super().__init__(binary, args=[
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-port", str(self.bus_port),
            "--cluster-node-timeout", str(node_timeout_ms),
            # Let the test's cluster answer while a slot is uncovered for a moment.
            "--cluster-require-full-coverage", "no",
        ])  # fmt: skip

    def client(self) -> redis.Redis:
        """A plain (non-cluster) client of this node alone."""
        return redis.Redis(host="127.0.0.1", port=self.port)

    def node_id(self) -> str:
        with self.client() as client:
            return str(client.execute_command("CLUSTER", "MYID").decode())


class RedisCluster(Closing):
    """``masters`` cluster nodes, each holding an equal contiguous range of slots, and
    ``replicas`` replicas of each (``replicas_of``).

    ``url`` is a node's ``redis://`` URL (for ``DJENGA_CLUSTER_URL``); ``urls`` the
    masters'. ``nodes`` are the masters: after :meth:`kill_and_fail_over`, the replica
    that took over stands where the killed master stood.
    """

    def __init__(
        self,
        masters: int = 3,
        binary: str | None = None,
        *,
        replicas: int = 0,
        node_timeout_ms: int = 15000,
    ) -> None:
        self.nodes = [ClusterNodeServer(binary, node_timeout_ms) for _ in range(masters)]
        #: master -> its replicas (the ones still alive and following it)
        self.replicas_of: dict[ClusterNodeServer, list[ClusterNodeServer]] = {
            node: [ClusterNodeServer(binary, node_timeout_ms) for _ in range(replicas)]
            for node in self.nodes
        }
        self._killed: list[ClusterNodeServer] = []

    @property
    def url(self) -> str:
        return self.nodes[0].url(0)

    @property
    def urls(self) -> list[str]:
        return [node.url(0) for node in self.nodes]

    @property
    def everyone(self) -> list[ClusterNodeServer]:
        """Every live node: the masters and their replicas."""
        return self.nodes + [r for master in self.nodes for r in self.replicas_of[master]]

    def start(self, timeout: float = 30.0) -> RedisCluster:
        """Start every node, assign the slots, join them, wait until all agree it is ok."""
        try:
            for node in self.everyone:
                node.start()
            count = len(self.nodes)
            for i, node in enumerate(self.nodes):
                low, high = i * CLUSTER_SLOTS // count, (i + 1) * CLUSTER_SLOTS // count - 1
                with node.client() as client:
                    client.execute_command("CLUSTER", "ADDSLOTSRANGE", low, high)
            first = self.nodes[0]
            with first.client() as client:
                for node in self.everyone[1:]:
                    client.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, node.bus_port)
            self._wait(lambda: all(self._knows_everyone(node) for node in self.everyone), timeout)
            for master, replicas in self.replicas_of.items():
                master_id = master.node_id()
                for replica in replicas:
                    with replica.client() as client:
                        client.execute_command("CLUSTER", "REPLICATE", master_id)
            self.wait_until_ok(timeout)
        except BaseException:
            self.close()
            raise
        return self

    def wait_until_ok(self, timeout: float = 30.0) -> None:
        """Until every node says ``cluster_state:ok`` and knows every other node, and every
        replica is in sync with its master."""
        self._wait(lambda: all(self._settled(node) for node in self.everyone), timeout)

    def _wait(self, condition: Callable[[], T | None], timeout: float) -> T:
        """Until ``condition()`` is truthy; returns what it returned."""
        deadline = time.monotonic() + timeout
        while not (value := condition()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster on {self.urls} did not settle in {timeout} s")
            time.sleep(0.05)
        return value

    def _knows_everyone(self, node: ClusterNodeServer) -> bool:
        with node.client() as client:
            known = client.execute_command("CLUSTER", "NODES").decode().strip().splitlines()
        live = {f"127.0.0.1:{n.port}@" for n in self.everyone}
        connected = [line for line in known if " connected" in line and "fail" not in line]
        return len(connected) >= len(self.everyone) and all(
            any(address in line for line in connected) for address in live
        )

    def _settled(self, node: ClusterNodeServer) -> bool:
        with node.client() as client:
            info = client.execute_command("CLUSTER", "INFO").decode()
            replication = client.info("replication")
        in_sync = replication.get("role") == "master" or (
            replication.get("master_link_status") == "up"
        )
        return "cluster_state:ok" in info and in_sync and self._knows_everyone(node)

    def kill_and_fail_over(
        self,
        master: ClusterNodeServer,
        timeout: float = 30.0,
        *,
        resume: Sequence[ClusterNodeServer] = (),
        then: Callable[[], object] | None = None,
    ) -> ClusterNodeServer:
        """SIGKILL ``master``, then wait until one of its replicas is a master holding its
        slots and every live node says so; returns that replica.

        ``resume``: replicas the caller stopped with SIGSTOP; they get SIGCONT right after
        the kill, so they come back behind their master (the writes it took meanwhile are
        lost) and take over with what they have. ``then`` is called right after the kill
        and the resumes, before the wait (to read what a replica holds, say)."""
        replicas = self.replicas_of.pop(master)
        if not replicas:
            raise ValueError(f"the master on port {master.port} has no replica to take over")
        slot = next(low for low, high, (_h, port, *_), *_ in self._slots() if port == master.port)
        master.kill()
        self._killed.append(master)
        for replica in resume:
            replica.process.send_signal(signal.SIGCONT)
        if then is not None:
            then()

        def promoted() -> ClusterNodeServer | None:
            for replica in replicas:
                with replica.client() as client:
                    if client.info("replication").get("role") != "master":
                        continue
                if self._owner_port(slot, replica) == replica.port:
                    return replica
            return None

        winner = self._wait(promoted, timeout)
        self.nodes[self.nodes.index(master)] = winner
        self.replicas_of[winner] = [r for r in replicas if r is not winner]
        self._wait(
            lambda: all(self._owner_port(slot, node) == winner.port for node in self.everyone),
            timeout,
        )
        return winner

    def _slots(self, node: ClusterNodeServer | None = None) -> list:
        with (node or self.nodes[0]).client() as client:
            return client.execute_command("CLUSTER", "SLOTS")

    def _owner_port(self, slot: int, node: ClusterNodeServer) -> int | None:
        for low, high, (_host, port, *_rest), *_replicas in self._slots(node):
            if low <= slot <= high:
                return int(port)
        return None

    def owner(self, slot: int) -> ClusterNodeServer:
        """The node that holds ``slot`` (according to the first node)."""
        port = self._owner_port(slot, self.nodes[0])
        if port is None:
            raise LookupError(f"slot {slot} is not covered")
        return next(node for node in self.nodes if node.port == port)

    def migrate_slot(self, slot: int, target: ClusterNodeServer) -> int:
        """Move ``slot`` and its keys to ``target`` as ``redis-cli --cluster reshard``
        does; the number of keys moved."""
        source = self.owner(slot)
        if source is target:
            return 0
        source_id, target_id = source.node_id(), target.node_id()
        moved = 0
        with source.client() as src, target.client() as dst:
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
                src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
                moved += len(keys)
            # The target first, so the slot always has an owner that says so.
            dst.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        for node in self.nodes:
            if node is not source and node is not target:
                with node.client() as other:
                    other.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        return moved

    def close(self) -> None:
        for node in self.everyone + self._killed:
            node.close()
