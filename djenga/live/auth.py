"""Who may watch a task: staff, or the holder of a signed, expiring token for that task."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import import_module
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core import signing

from ..conf import get_settings
from ..keys import validate_task_id

_SALT = "djenga.live.task-token"
_GROUP_SALT = "djenga.live.group-token"
#: Most tasks one group token may name.
MAX_GROUP_SIZE = 500


@dataclass(frozen=True)
class Viewer:
    """An authorised watcher; ``staff`` viewers also see private fields (tracebacks …)
    and may take every action; ``can_cancel``: a customer's token was minted with
    ``cancel=True`` (staff need none)."""

    staff: bool
    can_cancel: bool = False

    def may(self, action: str) -> bool:
        """Whether this viewer may take ``action`` (:func:`djenga.actions.may`)."""
        from ..actions import may

        return may(self.staff, self.can_cancel, action)


def make_token(task_id: str, user: Any = None, *, cancel: bool = False) -> str:
    """A token that lets its holder watch ``task_id`` for ``DJENGA_TOKEN_MAX_AGE`` seconds.

    With a ``user``, only that (logged-in) user may use it. With ``cancel=True``, its
    holder may also cancel the task (docs/api.md, "Cancel").
    """
    claims: dict[str, Any] = {"t": validate_task_id(task_id), "u": _user_id(user)}
    if cancel:
        claims["c"] = 1
    return signing.dumps(claims, salt=_SALT)


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
    claims = _claims(user, token, _GROUP_SALT)
    ids = None if claims is None else claims.get("g")
    if not isinstance(ids, list) or not ids or len(ids) > MAX_GROUP_SIZE:
        return None
    return Viewer(staff=is_staff(user)), ids


_WORKFLOW_SALT = "djenga.live.workflow-token"


def workflow_stages(result: Any) -> list[list[str]]:
    """The stages of a chain's or a chord's result, first to last, as lists of task ids.

    ``result`` is what ``chain(...).apply_async()`` or ``chord(header)(body)`` returned (the
    last task's result), walked back through ``.parent``: a ``GroupResult`` (a group stage,
    a chord's header) is one stage of its members, any other result a one-task stage. A
    list of stages (``[[id], [id, id], ...]``, or ids and results) is taken as it is."""
    if isinstance(result, (list, tuple)):
        return [_stage_ids(stage) for stage in result]
    stages: list[list[str]] = []
    node, seen = result, set()
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        stages.append(_stage_ids(node))
        node = getattr(node, "parent", None)
    stages.reverse()
    return stages


def _stage_ids(stage: Any) -> list[str]:
    members = getattr(stage, "results", None)
    if members is None:
        members = stage if isinstance(stage, (list, tuple)) else [stage]
    return [str(getattr(member, "id", member)) for member in members]


def make_workflow_token(result: Any, user: Any = None) -> str:
    """A token that lets its holder watch a whole chain or chord, stage by stage:
    ``result`` as :func:`workflow_stages` takes it. At most MAX_GROUP_SIZE tasks."""
    stages = [[validate_task_id(t) for t in stage] for stage in workflow_stages(result)]
    count = sum(len(stage) for stage in stages)
    if not stages or not all(stages) or count > MAX_GROUP_SIZE:
        raise ValueError(
            f"a workflow token names 1 to {MAX_GROUP_SIZE} tasks in non-empty stages, "
            f"not {count} in {len(stages)} stages"
        )
    return signing.dumps({"w": stages, "u": _user_id(user)}, salt=_WORKFLOW_SALT, compress=True)


def authorise_workflow(user: Any, token: str | None) -> tuple[Viewer, list[list[str]]] | None:
    """The workflow twin of :func:`authorise` (and :func:`authorise_group`): the viewer and
    the stages the token names, or None (forged, expired, another user's)."""
    claims = _claims(user, token, _WORKFLOW_SALT)
    stages = None if claims is None else claims.get("w")
    if not isinstance(stages, list) or not stages:
        return None
    if not all(isinstance(stage, list) and stage for stage in stages):
        return None
    if sum(len(stage) for stage in stages) > MAX_GROUP_SIZE:
        return None
    return Viewer(staff=is_staff(user)), stages


def authorise(user: Any, token: str | None, task_id: str) -> Viewer | None:
    """The one authorisation check of the WebSocket consumer and the JSON view.

    Staff may watch any task; anyone else needs a valid, unexpired token for this task
    (and, if the token names a user, to be that user). ``None`` means refused.
    """
    if is_staff(user):
        return Viewer(staff=True)  # staff may take every action (djenga.actions.may)
    claims = _claims(user, token, _SALT)
    if claims is None or claims.get("t") != task_id:
        return None
    return Viewer(staff=False, can_cancel=claims.get("c") == 1)


def _claims(user: Any, token: str | None, salt: str) -> dict[str, Any] | None:
    """The claims of a token signed with ``salt``, if it is not expired (older than
    ``DJENGA_TOKEN_MAX_AGE``) and names this user or none; else None (forged, expired,
    another user's, missing)."""
    if not token:
        return None
    try:
        claims = signing.loads(token, salt=salt, max_age=get_settings().TOKEN_MAX_AGE)
    except signing.BadSignature:  # includes SignatureExpired
        return None
    if not isinstance(claims, dict):
        return None
    if claims.get("u") is not None and _user_id(user) != claims["u"]:
        return None
    return claims


def current_user(scope: dict[str, Any]) -> Any:
    """The socket's user as the session says *now* (not as it was at connect): anonymous
    once the session was deleted or expired (logout), and None for an inactive user as
    Django's auth backends see it. Touches the database: call it from a thread."""
    from django.contrib.auth import get_user

    key = getattr(scope.get("session"), "session_key", None)
    if key is None:
        return scope.get("user")  # no session: nobody was logged in
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)
    return get_user(SimpleNamespace(session=session))  # type: ignore[arg-type]


#: Control bytes: none belongs in a header value, and autobahn splits header lines on
#: \x1c-\x1e and strips \x1c-\x1f before Channels sees them, so they are looked for in
#: the raw handshake too.
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_CONTROL_OR_TAB = re.compile(rb"[\x00-\x1f\x7f]")
_CHECKED_HEADERS = (b"host", b"origin", b"cookie")


def has_control_bytes(scope: dict[str, Any], raw_handshake: bytes | None = None) -> bool:
    """True if a handshake header carries a control byte: any (tab aside) in any header of
    the raw request, and any at all in Host, Origin and Cookie."""
    for name, value in scope.get("headers", ()):
        pattern = _CONTROL_OR_TAB if name.lower() in _CHECKED_HEADERS else _CONTROL
        if pattern.search(value):
            return True
    if raw_handshake is None:
        return False
    for line in raw_handshake.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in _CHECKED_HEADERS:
            if _CONTROL_OR_TAB.search(value.strip(b" ")):
                return True
        elif _CONTROL.search(value):
            return True
    return False
