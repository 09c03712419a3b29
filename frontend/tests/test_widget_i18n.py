"""The live widget in French and in Arabic (right to left), against real daphne, worker and
Redis: its own text from the page's catalog, the task's steps as the task stored them."""

from __future__ import annotations

import pytest
from django.test import override_settings
from test_widget import mount, wait_final

from djenga_tests import tasks
from djenga_tests.minions import Gru, Moon
from djenga_tests.tests.fixtures import Daphne

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("celery_worker")]

PROGRESS = "() => document.querySelector('djenga-task-progress').dataset.state === 'PROGRESS'"
FRENCH_STEPS = ["Voler jusqu'à la lune", "Rétrécir la lune", "Attraper la lune"]
ARABIC_STEPS = ["الطيران إلى القمر", "تصغير القمر", "الإمساك بالقمر", "الجلوس على المرحاض"]


@pytest.fixture
def web_in(redis_server, web_data_dir):
    """A daphne whose LANGUAGE_CODE is the given one (started on first use)."""
    started = []

    def start(language: str) -> Daphne:
        server = Daphne(redis_server.url, web_data_dir)
        server.env["DJANGO_LANGUAGE_CODE"] = language
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


def part(page, name: str):
    return page.locator(f"djenga-task-progress [part~={name}]")


def test_the_live_widget_speaks_french(page, web_in, artifacts):
    web = web_in("fr")
    with override_settings(LANGUAGE_CODE="fr"):
        sent = tasks.steal_the_moon_translated.delay(Gru(pace=0.8), Moon())
        mount(page, web.url, sent.id)
        page.wait_for_function(PROGRESS)
        # While it runs: the widget's words in French, the task's steps as it stored them.
        assert part(page, "state").inner_text() == "En cours"
        valuetext = page.get_by_role("progressbar").get_attribute("aria-valuetext")
        assert valuetext.startswith("Étape ") and " sur 4" in valuetext
        texts = " ".join(part(page, "step-description").all_inner_texts())
        assert all(step in texts for step in FRENCH_STEPS)
        snapshot = wait_final(page)
    assert snapshot["state"] == "SUCCESS"
    assert part(page, "state").inner_text() == "Terminé"
    assert part(page, "percent").inner_text() == "100\xa0%"  # Intl: a no-break space
    assert page.locator("html").get_attribute("lang") == "fr"
    page.wait_for_timeout(600)  # let the bar finish its transition
    page.locator("djenga-task-progress").screenshot(path=str(artifacts / "widget-fr.png"))


def box(locator) -> dict:
    return locator.bounding_box()


def overlaps(a: dict, b: dict) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])  # fmt: skip


def test_the_live_widget_in_arabic_is_right_to_left(page, web_in, artifacts):
    web = web_in("ar")
    with override_settings(LANGUAGE_CODE="ar"):
        sent = tasks.steal_the_moon_translated.delay(Gru(pace=0.8), Moon())
        mount(page, web.url, sent.id)
        page.wait_for_function(PROGRESS)
        assert part(page, "state").inner_text() == "قيد التنفيذ"
        assert page.get_by_role("progressbar").get_attribute("aria-valuetext").startswith("الخطوة")
        # The bar fills from the right: its fill's right edge is the bar's.
        page.wait_for_function(
            "() => document.querySelector('djenga-task-progress').snapshot.percent > 0"
        )
        bar, fill = box(part(page, "bar")), box(part(page, "bar-fill"))
        assert abs((bar["x"] + bar["width"]) - (fill["x"] + fill["width"])) < 1
        snapshot = wait_final(page)
    assert snapshot["state"] == "SUCCESS"
    widget = page.locator("djenga-task-progress")
    direction = widget.evaluate(
        "(el) => getComputedStyle(el.shadowRoot.querySelector('.djenga-root')).direction"
    )
    assert direction == "rtl"
    assert page.locator("html").get_attribute("dir") == "rtl"  # the page's own, from Django
    assert [t.strip() for t in part(page, "step-description").all_inner_texts()] == ARABIC_STEPS
    # The step list mirrors: each marker is right of its description, its time left of it.
    for row in part(page, "step").all():
        marker, description = (
            box(row.locator("[part=step-marker]")),
            box(row.locator("[part=step-description]")),
        )
        elapsed = box(row.locator("[part=step-elapsed]"))
        assert marker["x"] >= description["x"] + description["width"] - 1
        assert elapsed["x"] + elapsed["width"] <= description["x"] + 1
    # Nothing in the header, nor the bar and its percent, overlaps.
    shown = [box(part(page, name)) for name in ("label", "elapsed", "state")]
    assert not any(overlaps(a, b) for i, a in enumerate(shown) for b in shown[i + 1 :])
    assert not overlaps(box(part(page, "bar")), box(part(page, "percent")))
    assert box(part(page, "percent"))["x"] < box(part(page, "bar"))["x"]  # the number on the left
    page.wait_for_timeout(600)  # let the bar finish its transition
    widget.screenshot(path=str(artifacts / "widget-ar-rtl.png"))
