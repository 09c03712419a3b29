"""Who may watch a task: staff, or the holder of a signed, expiring token for that task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core import signing

from ..conf import get_settings
from ..keys import validate_task_id

_SALT = "djenga.live.task-token"


@dataclass(frozen=True)
class Viewer:
    """An authorised watcher; ``staff`` viewers also see private fields (tracebacks …)."""

    staff: bool


def make_token(task_id: str, user: Any = None) -> str:
    """A token that lets its holder watch ``task_id`` for ``DJENGA_TOKEN_MAX_AGE`` seconds.

    With a ``user``, only that (logged-in) user may use it.
    """
    user_id = getattr(user, "pk", None) if user is not None and user.is_authenticated else None
    return signing.dumps(
        {"t": validate_task_id(task_id), "u": None if user_id is None else str(user_id)},
        salt=_SALT,
        compress=False,
    )


def authorise(user: Any, token: str | None, task_id: str) -> Viewer | None:
    """The one authorisation check of the WebSocket consumer and the JSON view.

    Staff may watch any task; anyone else needs a valid, unexpired token for this task
    (and, if the token names a user, to be that user). ``None`` means refused.
    """
    if user is not None and getattr(user, "is_active", False) and getattr(user, "is_staff", False):
        return Viewer(staff=True)
    if not token:
        return None
    try:
        claims = signing.loads(token, salt=_SALT, max_age=get_settings().TOKEN_MAX_AGE)
    except signing.BadSignature:  # includes SignatureExpired
        return None
    if not isinstance(claims, dict) or claims.get("t") != task_id:
        return None
    if claims.get("u") is not None:
        user_id = getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
        if user_id is None or str(user_id) != claims["u"]:
            return None
    return Viewer(staff=False)
