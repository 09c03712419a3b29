"""Translations: the widget's JSON catalog, the shipped .po/.mo files, watch_task's text and
``gettext_lazy`` in ``steps=[...]`` (stored in LANGUAGE_CODE)."""

from __future__ import annotations

import gettext
import json
import re
from pathlib import Path

import pytest
from django.template import Context, Template
from django.test import override_settings
from django.utils import translation
from django.utils.functional import Promise

from djenga.celery.detail import TaskDetail
from djenga.celery.results import AsyncDetailedResult
from djenga.i18n import LOCALE_DIR, catalog_script, widget_catalog
from djenga.management.commands.watch_task import plain_line
from djenga_tests import tasks
from djenga_tests.minions import Gru, Moon

LANGUAGES = ["fr", "de", "es", "pt_BR", "ja", "ar"]
FRONTEND_SRC = Path(__file__).resolve().parents[2] / "frontend" / "src"


def po_entries(path: Path) -> dict[str, str | list[str]]:
    """msgid -> msgstr (a list for plural entries) of a .po file, its header left out."""
    entries: dict[str, str | list[str]] = {}
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        fields: dict[str, str] = {}
        current = None
        for line in block.splitlines():
            match = re.match(r'^(msgid|msgid_plural|msgstr(?:\[\d\])?) "(.*)"$', line)
            if match:
                current = match.group(1)
                fields[current] = match.group(2)
            elif line.startswith('"') and current:
                fields[current] += line[1:-1]
        unescape = lambda s: s.replace('\\"', '"').replace("\\n", "\n")  # noqa: E731
        msgid = unescape(fields.get("msgid", ""))
        if not msgid:
            continue
        if "msgid_plural" in fields:
            forms = sorted(k for k in fields if k.startswith("msgstr["))
            entries[msgid] = [unescape(fields[k]) for k in forms]
        else:
            entries[msgid] = unescape(fields.get("msgstr", ""))
    return entries


def js_msgids() -> set[str]:
    """Every string the widget and console JS pass to gettext, gettext_noop or ngettext."""
    found = set()
    for path in FRONTEND_SRC.rglob("*.js"):
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r"\b(?:gettext|gettext_noop|ngettext)\('((?:[^'\\]|\\.)*)'", text))
    return found


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_every_string_is_translated_and_the_mo_is_compiled_from_the_po(language, domain):
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    entries = po_entries(folder / f"{domain}.po")
    untranslated = [k for k, v in entries.items() if not (all(v) if isinstance(v, list) else v)]
    assert not untranslated, f"untranslated in {language}/{domain}.po: {untranslated}"
    with (folder / f"{domain}.mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)._catalog  # type: ignore[attr-defined]
    for msgid, msgstr in entries.items():
        if isinstance(msgstr, list):
            assert [compiled[(msgid, i)] for i in range(len(msgstr))] == msgstr, msgid
        else:
            assert compiled.get(msgid) == msgstr, f"{domain}.mo is older than its .po: {msgid!r}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_string_of_the_js_is_in_the_catalog(language):
    entries = po_entries(LOCALE_DIR / language / "LC_MESSAGES" / "djangojs.po")
    missing = js_msgids() - set(entries)
    assert not missing, f"run makemessages -d djangojs: {sorted(missing)}"


def test_the_french_catalog_has_the_strings_plurals_and_locale():
    catalog = widget_catalog("fr")
    assert (catalog["locale"], catalog["dir"], catalog["plural"]) == ("fr", "ltr", "(n > 1)")
    assert catalog["catalog"]["Waiting"] == "En attente"
    assert catalog["catalog"]["%(n)s task done"] == [
        "%(n)s tâche terminée",
        "%(n)s tâches terminées",
    ]


def test_arabic_is_right_to_left_with_six_plural_forms():
    catalog = widget_catalog("ar")
    assert catalog["dir"] == "rtl"
    assert len(catalog["catalog"]["%(n)s task done"]) == 6
    assert catalog["plural"].startswith("n==0 ? 0")


def test_english_needs_no_strings():
    assert widget_catalog("en-us") == {
        "locale": "en-us", "dir": "ltr", "plural": None, "catalog": {}
    }  # fmt: skip


def test_the_catalog_script_is_json_that_cannot_end_its_element():
    html = str(catalog_script("fr"))
    prefix, suffix = '<script type="application/json" data-djenga-i18n>', "</script>"
    assert html.startswith(prefix) and html.endswith(suffix)
    body = html[len(prefix) : -len(suffix)]
    assert "<" not in body and json.loads(body) == widget_catalog("fr")


def test_the_tags_render_the_catalog_once_per_page_in_the_active_language(rf):
    request = rf.get("/")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    template = Template(
        "{% load djenga %}{% djenga_i18n %}{% djenga_task_progress 'a-1' %}"
        "{% djenga_task_progress 'a-2' %}"
    )
    with translation.override("de"):
        html = template.render(Context({"request": request}))
    assert html.count("data-djenga-i18n") == 1
    assert '"locale":"de"' in html and "Fertig" in html
    assert html.count("<djenga-task-progress") == 2


def test_watch_task_speaks_the_active_language():
    snapshot = {
        "name": "gru.x", "state": "PROGRESS", "percent": 50.0, "current": 1,
        "steps": [{"key": 1, "description": "Fly", "state": "running"}, {"key": 2}],
    }  # fmt: skip
    with translation.override("fr"):
        assert "étape 1/2 Fly" in plain_line(snapshot, "t-1")
    with translation.override("ja"):
        assert "ステップ 1/2 Fly" in plain_line(snapshot, "t-1")


def test_lazy_step_descriptions_stay_lazy_until_a_run_is_built():
    declared = tasks.steal_the_moon_translated.steps
    assert all(isinstance(description, Promise) for _, description in declared)
    with translation.override("fr"):
        detail = TaskDetail("lazy-1", "gru.x", declared)
    assert [step.description for step in detail.steps][:2] == [
        "Voler jusqu'à la lune",
        "Rétrécir la lune",
    ]


@pytest.mark.backend
@pytest.mark.usefixtures("celery_worker")
def test_lazy_step_descriptions_are_stored_in_language_code_whoever_sends_the_task():
    with override_settings(LANGUAGE_CODE="fr"), translation.override("ar"):
        # The sender (a web request in Arabic, say) stores the PENDING snapshot: in French too.
        sent = tasks.steal_the_moon_translated.delay(Gru(pace=0), Moon())
        pending = AsyncDetailedResult(sent.id).details()
        sent.get(timeout=30)
    final = AsyncDetailedResult(sent.id).details()
    french = [
        "Voler jusqu'à la lune",
        "Rétrécir la lune",
        "Attraper la lune",
        "S'asseoir sur les toilettes",
    ]
    assert [s["description"] for s in pending["steps"]] == french
    assert [s["description"] for s in final["steps"]] == french
    assert final["state"] == "SUCCESS"
