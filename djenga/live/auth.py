"""Who may watch a task: staff, or the holder of a signed, expiring token for that task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core import signing

from ..conf import get_settings
from ..keys import validate_task_id

_SALT = "djenga.live.task-token"
_GROUP_SALT = "djenga.live.group-token"
#: Most tasks one group token may name.
MAX_GROUP_SIZE = 500


@dataclass(frozen=True)
class Viewer:
    """An authorised watcher; ``staff`` viewers also see private fields (tracebacks …)."""

    staff: bool


def make_token(task_id: str, user: Any = None) -> str:
    """A token that lets its holder watch ``task_id`` for ``DJENGA_TOKEN_MAX_AGE`` seconds.

    With a ``user``, only that (logged-in) user may use it.
    """
    return signing.dumps({"t": validate_task_id(task_id), "u": _user_id(user)}, salt=_SALT)


def _user_id(user: Any) -> str | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    user_id = getattr(user, "pk", None)
    return None if user_id is None else str(user_id)


def is_staff(user: Any) -> bool:
    """The one staff rule (console, private fields): an active staff user."""
    return bool(getattr(user, "is_active", False) and getattr(user, "is_staff", False))


def make_group_token(task_ids: list[str], user: Any = None) -> str:
    """A token that lets its holder watch these tasks together (a Celery group)."""
    ids = [validate_task_id(task_id) for task_id in task_ids]
    if not 0 < len(ids) <= MAX_GROUP_SIZE:
        raise ValueError(f"a group token names 1 to {MAX_GROUP_SIZE} tasks, not {len(ids)}")
    return signing.dumps({"g": ids, "u": _user_id(user)}, salt=_GROUP_SALT, compress=True)


def authorise_group(user: Any, token: str | None) -> tuple[Viewer, list[str]] | None:
    """The group twin of :func:`authorise`: the viewer and the tasks the token names."""
    if not token:
        return None
    try:
        claims = signing.loads(token, salt=_GROUP_SALT, max_age=get_settings().TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    ids = claims.get("g") if isinstance(claims, dict) else None
    if not isinstance(ids, list) or not ids or len(ids) > MAX_GROUP_SIZE:
        return None
    if claims.get("u") is not None and _user_id(user) != claims["u"]:
        return None
    return Viewer(staff=is_staff(user)), ids


def authorise(user: Any, token: str | None, task_id: str) -> Viewer | None:
    """The one authorisation check of the WebSocket consumer and the JSON view.

    Staff may watch any task; anyone else needs a valid, unexpired token for this task
    (and, if the token names a user, to be that user). ``None`` means refused.
    """
    if is_staff(user):
        return Viewer(staff=True)
    if not token:
        return None
    try:
        claims = signing.loads(token, salt=_SALT, max_age=get_settings().TOKEN_MAX_AGE)
    except signing.BadSignature:  # includes SignatureExpired
        return None
    if not isinstance(claims, dict) or claims.get("t") != task_id:
        return None
    if claims.get("u") is not None and _user_id(user) != claims["u"]:
        return None
    return Viewer(staff=False)
