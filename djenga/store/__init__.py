"""The task store: the one owner of every Redis command on djenga's keys.

:class:`TaskStore` and :class:`AsyncTaskStore` are twins over a sync or an asyncio
client: publish (the one Lua call), reads of one or many snapshots with the LOST and
absent rules, events since a seq, the recovery read, the recent index, lease renewal,
the guarded LOST write and step durations. :mod:`djenga.store.calls` holds the rules,
free of I/O. Pub/sub subscriptions stay with their users (the hub, ``follow``).
"""

from __future__ import annotations

from .calls import (
    DURATION_SAMPLES,
    DURATION_TTL,
    LEASED_STATES,
    PUBLISH_LUA,
    REFUSED,
    Since,
    absent_snapshot,
    lease_ms,
    lost_call,
    publish_call,
)
from .twins import AsyncTaskStore, TaskStore

__all__ = [
    "DURATION_SAMPLES",
    "DURATION_TTL",
    "LEASED_STATES",
    "PUBLISH_LUA",
    "REFUSED",
    "AsyncTaskStore",
    "Since",
    "TaskStore",
    "absent_snapshot",
    "lease_ms",
    "lost_call",
    "publish_call",
]
