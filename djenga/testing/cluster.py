"""A throw-away Redis/Valkey Cluster of real server processes on free loopback ports: the
test assigns the slots (CLUSTER ADDSLOTSRANGE), joins the nodes (CLUSTER MEET), moves a
slot when asked (SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE), and stops every
process by its pid."""

from __future__ import annotations

import time

import redis

from ..keys import CLUSTER_SLOTS
from .processes import Closing
from .redis_server import RedisServer, free_port


class ClusterNodeServer(RedisServer):
    """One master of a :class:`RedisCluster`: cluster mode, its bus on a free port too."""

    def __init__(self, binary: str | None = None) -> None:
        self.bus_port = free_port()
        super().__init__(binary, args=[
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-port", str(self.bus_port),
            "--cluster-node-timeout", "15000",  # a node frozen for seconds is not FAIL
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
    """``masters`` cluster nodes, each holding an equal contiguous range of slots.

    ``url`` is a node's ``redis://`` URL (for ``DJENGA_CLUSTER_URL``); ``urls`` all of them.
    """

    def __init__(self, masters: int = 3, binary: str | None = None) -> None:
        self.nodes = [ClusterNodeServer(binary) for _ in range(masters)]

    @property
    def url(self) -> str:
        return self.nodes[0].url(0)

    @property
    def urls(self) -> list[str]:
        return [node.url(0) for node in self.nodes]

    def start(self, timeout: float = 30.0) -> RedisCluster:
        """Start every node, assign the slots, join them, wait until all agree it is ok."""
        try:
            for node in self.nodes:
                node.start()
            count = len(self.nodes)
            for i, node in enumerate(self.nodes):
                low, high = i * CLUSTER_SLOTS // count, (i + 1) * CLUSTER_SLOTS // count - 1
                with node.client() as client:
                    client.execute_command("CLUSTER", "ADDSLOTSRANGE", low, high)
            first = self.nodes[0]
            with first.client() as client:
                for node in self.nodes[1:]:
                    client.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, node.bus_port)
            self.wait_until_ok(timeout)
        except BaseException:
            self.close()
            raise
        return self

    def wait_until_ok(self, timeout: float = 30.0) -> None:
        """Until every node says ``cluster_state:ok`` and knows every other node."""
        deadline = time.monotonic() + timeout
        while True:
            if all(self._settled(node) for node in self.nodes):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster on {self.urls} did not settle in {timeout} s")
            time.sleep(0.05)

    def _settled(self, node: ClusterNodeServer) -> bool:
        with node.client() as client:
            info = client.execute_command("CLUSTER", "INFO").decode()
            known = client.execute_command("CLUSTER", "NODES").decode().strip().splitlines()
        connected = [line for line in known if " connected" in line]
        return "cluster_state:ok" in info and len(connected) == len(self.nodes)

    def owner(self, slot: int) -> ClusterNodeServer:
        """The node that holds ``slot`` (according to the first node)."""
        with self.nodes[0].client() as client:
            for low, high, (_host, port, *_rest), *_replicas in client.execute_command(
                "CLUSTER", "SLOTS"
            ):
                if low <= slot <= high:
                    return next(node for node in self.nodes if node.port == port)
        raise LookupError(f"slot {slot} is not covered")

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
        for node in self.nodes:
            node.close()
