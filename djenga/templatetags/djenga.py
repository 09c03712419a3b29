"""``{% djenga_task_progress task_id %}``: the widget, its token and its script in one tag.
``{% djenga_workflow_progress result %}``: the same for a whole chain or chord.
``{% djenga_i18n %}``: the widget's strings in the active language (the first tag has it too)."""

from __future__ import annotations

from typing import Any

from django import template
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from ..i18n import catalog_script
from ..live.auth import make_token, make_workflow_token

register = template.Library()

#: Marks a page (its request, else its render) that already carries the catalog.
_RENDERED = "_djenga_i18n_rendered"


def _catalog_once(context: Any) -> SafeString:
    """The catalog script the first time this page asks for it, then nothing."""
    request = context.get("request")
    if request is not None:
        if getattr(request, _RENDERED, False):
            return mark_safe("")
        setattr(request, _RENDERED, True)
    else:
        if context.render_context.get(_RENDERED):
            return mark_safe("")
        context.render_context[_RENDERED] = True
    return catalog_script()


def _attributes(attributes: dict[str, Any]) -> SafeString:
    """Keyword arguments as HTML attributes: ``stay_open=True`` is ``stay-open=""``; False
    and None leave the attribute out; values are escaped."""
    return format_html_join(
        "",
        ' {}="{}"',
        (
            (name.replace("_", "-"), "" if value is True else value)
            for name, value in attributes.items()
            if value is not False and value is not None
        ),
    )


@register.simple_tag(takes_context=True)
def djenga_i18n(context: Any) -> SafeString:
    """The widget's and the console's strings in the active language, once per page.

    Put it in a page that shows ``<djenga-task-progress>`` without the tag below (React,
    htmx, by hand); ``{% djenga_task_progress %}`` renders it by itself.
    """
    return _catalog_once(context)


@register.simple_tag(takes_context=True)
def djenga_task_progress(context: Any, task_id: str, **attributes: Any) -> str:
    """Render ``<djenga-task-progress>`` for ``task_id`` with a token for the current user.

    Extra keyword arguments become attributes, e.g. ``label="Importing" stay=True``.
    Only render it for a task the current user may watch: the token grants that.
    ``cancel=True`` mints a token that also grants cancelling the task, and the widget
    shows a Cancel button (docs/widget.md, "Cancel").
    """
    request = context.get("request")
    user = getattr(request, "user", None)
    cancel = attributes.pop("cancel", False) is True
    if cancel:
        attributes = {
            "cancel": True,
            "cancel_url": reverse("djenga:task-action", args=[task_id, "cancel"]),
            **attributes,
        }
    extra = _attributes(attributes)
    return format_html(
        '{}<script type="module" src="{}"></script>'
        '<djenga-task-progress task-id="{}" token="{}" poll-url="{}"{}></djenga-task-progress>',
        _catalog_once(context),
        static("djenga/djenga-task-progress.js"),
        task_id,
        make_token(task_id, user, cancel=cancel),
        reverse("djenga:task-snapshot", args=[task_id]),
        extra,
    )


@register.simple_tag(takes_context=True)
def djenga_workflow_progress(context: Any, workflow: Any, **attributes: Any) -> str:
    """Render ``<djenga-task-progress workflow-token=…>``: one bar for a whole chain or
    chord, stage by stage. ``workflow`` is the result ``chain(...).apply_async()`` or
    ``chord(header)(body)`` returned, or its stages as lists of task ids (what
    :func:`djenga.live.auth.workflow_stages` gives, e.g. kept in the session).

    Extra keyword arguments become attributes, as for ``djenga_task_progress``.
    """
    request = context.get("request")
    user = getattr(request, "user", None)
    extra = _attributes(attributes)
    return format_html(
        '{}<script type="module" src="{}"></script>'
        '<djenga-task-progress workflow-token="{}" poll-url="{}"{}></djenga-task-progress>',
        _catalog_once(context),
        static("djenga/djenga-task-progress.js"),
        make_workflow_token(workflow, user),
        reverse("djenga:workflow-snapshot"),
        extra,
    )
