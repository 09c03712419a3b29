"""The widget's strings in the active language: a JSON catalog the page carries, so the
widget needs neither a build step nor a request of its own (docs/widget.md, Translations)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils import translation
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation.trans_real import DjangoTranslation
from django.views.i18n import JavaScriptCatalog

#: djenga's own translations; the project's LOCALE_PATHS override them.
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

# As json_script: no "</script>" or "<!--" can end the element early.
_SCRIPT_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


def widget_catalog(language: str | None = None) -> dict[str, Any]:
    """What ``{% djenga_i18n %}`` renders: ``locale`` (for ``Intl``), ``dir`` ("ltr" or
    "rtl"), the gettext ``plural`` expression and the ``catalog`` of the widget's and the
    console's strings (djenga's ``djangojs`` domain), for ``language`` or the active one."""
    return _catalog(language or translation.get_language() or settings.LANGUAGE_CODE)


@lru_cache(maxsize=64)
def _catalog(language: str) -> dict[str, Any]:
    view = JavaScriptCatalog()
    view.translation = DjangoTranslation(
        language, domain="djangojs", localedirs=[str(LOCALE_DIR), *map(str, settings.LOCALE_PATHS)]
    )
    # Only what differs from the English msgid is worth its bytes.
    catalog = {key: value for key, value in view.get_catalog().items() if value != key}
    bidi = language.split("-")[0].lower() in settings.LANGUAGES_BIDI
    return {
        "locale": language,
        "dir": "rtl" if bidi else "ltr",
        "plural": view.get_plural() if catalog else None,
        "catalog": catalog,
    }


def catalog_script(language: str | None = None) -> SafeString:
    """The catalog as ``<script type="application/json" data-djenga-i18n>``, which every
    ``<djenga-task-progress>`` and ``<djenga-task-console>`` on the page reads."""
    data = json.dumps(widget_catalog(language), ensure_ascii=False, separators=(",", ":"))
    return format_html(
        '<script type="application/json" data-djenga-i18n>{}</script>',
        mark_safe(data.translate(_SCRIPT_ESCAPES)),  # escaped just above
    )


@receiver(setting_changed)
def _clear_cache(*, setting: str, **kwargs: Any) -> None:
    if setting in {"LOCALE_PATHS", "LANGUAGES_BIDI", "LANGUAGE_CODE"}:
        _catalog.cache_clear()
