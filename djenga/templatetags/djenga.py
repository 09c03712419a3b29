"""``{% djenga_task_progress task_id %}``: the widget, its token and its script in one tag."""

from __future__ import annotations

from typing import Any

from django import template
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from ..live.auth import make_token

register = template.Library()


@register.simple_tag(takes_context=True)
def djenga_task_progress(context: Any, task_id: str, **attributes: Any) -> str:
    """Render ``<djenga-task-progress>`` for ``task_id`` with a token for the current user.

    Extra keyword arguments become attributes, e.g. ``label="Importing" stay=True``.
    Only render it for a task the current user may watch: the token grants that.
    """
    request = context.get("request")
    user = getattr(request, "user", None)
    extra = format_html_join(
        "",
        ' {}="{}"',
        (
            (name.replace("_", "-"), "" if value is True else value)
            for name, value in attributes.items()
            if value is not False and value is not None
        ),
    )
    return format_html(
        '<script type="module" src="{}"></script>'
        '<djenga-task-progress task-id="{}" token="{}" poll-url="{}"{}></djenga-task-progress>',
        static("djenga/djenga-task-progress.js"),
        task_id,
        make_token(task_id, user),
        reverse("djenga:task-snapshot", args=[task_id]),
        extra,
    )
