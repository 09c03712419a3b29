"""The JSON polling endpoint and the template tag."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.template import Context, Template
from django.test import RequestFactory

from djenga.live.auth import make_token
from djenga.wire import WIRE_VERSION
from djenga_tests import tasks
from djenga_tests.minions import Gru, Moon

pytestmark = [pytest.mark.backend, pytest.mark.usefixtures("celery_worker")]


def finished(task):
    sent = task.delay() if task is not tasks.steal_the_moon else task.delay(Gru(), Moon())
    sent.get(timeout=10, propagate=False)
    return sent.id


def wait_final(client, url):
    import time

    for _ in range(200):
        data = client.get(url).json()
        if data["state"] in ("SUCCESS", "FAILURE"):
            return data
        time.sleep(0.02)
    raise AssertionError("not final")


def test_snapshot_with_a_token(client):
    task_id = finished(tasks.steal_the_moon)
    data = wait_final(client, f"/djenga/tasks/{task_id}/?token={make_token(task_id)}")
    assert data["v"] == WIRE_VERSION and data["state"] == "SUCCESS" and len(data["steps"]) == 4


def test_no_token_is_403(client):
    response = client.get("/djenga/tasks/whatever/")
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_staff_see_the_traceback_customers_do_not(client):
    task_id = finished(tasks.fail_at_step.s(1))
    customer = wait_final(client, f"/djenga/tasks/{task_id}/?token={make_token(task_id)}")
    assert customer["error"] is None and customer["private"] == {}
    client.force_login(User.objects.create_user("agent", is_staff=True))
    staff = client.get(f"/djenga/tasks/{task_id}/").json()
    assert "ValueError: the moon is too heavy" in staff["private"]["traceback"]


def test_template_tag_renders_element_token_and_script():
    request = RequestFactory().get("/")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    html = Template(
        "{% load djenga %}{% djenga_task_progress task_id label=label stay=True %}"
    ).render(Context({"task_id": "abc-1", "request": request, "label": "Moon <3"}))
    assert '<script type="module" src="/static/djenga/djenga-task-progress.js"></script>' in html
    assert 'task-id="abc-1"' in html and 'poll-url="/djenga/tasks/abc-1/"' in html
    assert 'label="Moon &lt;3"' in html and 'stay=""' in html
    token = html.split('token="')[1].split('"')[0]
    from djenga.live.auth import authorise

    assert authorise(AnonymousUser(), token, "abc-1") is not None
