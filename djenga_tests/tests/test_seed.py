"""Every example of the seed document (docs/seed.md), run as written against real servers.

The code between the ``# --- seed ---`` markers is copied verbatim from the seed.
"""

from __future__ import annotations

import pytest
from celery.contrib.testing.worker import start_worker

from djenga.celery.results import AsyncDetailedResult

pytestmark = pytest.mark.backend


def first_variant():
    # --- seed: "setting up your celery app", first form ---
    from celery.app.base import Celery

    class MyCeleryApp(Celery):
        def __init__(self, main=None, loader=None, backend=None,
                     amqp=None, events=None, log=None, control=None,
                     set_as_current=True, tasks=None, broker=None, include=None,
                     changes=None, config_source=None, fixups=None, task_cls=None,
                     autofinalize=True, namespace=None, strict_typing=True,
                     **kwargs):
            from djenga.celery.tasks import DetailTask
            from djenga.celery.backends import patch_aliases
            # call patch_aliases to make use of the redis detail backend
            patch_aliases()
            # optional:  set the DetailTask as the default class type for
            # all classes by specifying the `task_cls=DetailTask` below.
            super().__init__(main, loader, backend, amqp, events, log, control,
                             set_as_current, tasks, broker, include, changes,
                             config_source, fixups, task_cls=DetailTask,
                             autofinalize=autofinalize, namespace=namespace,
                             strict_typing=strict_typing, **kwargs)
    # --- end seed ---
    return MyCeleryApp


def second_variant():
    # --- seed: "setting up your celery app", second form ---
    from celery.app.base import Celery
    from djenga.celery.tasks import DetailTask

    class MyCeleryApp(Celery):
        def __init__(self, main=None, loader=None, backend=None,
                     amqp=None, events=None, log=None, control=None,
                     set_as_current=True, tasks=None, broker=None, include=None,
                     changes=None, config_source=None, fixups=None, task_cls=None,
                     autofinalize=True, namespace=None, strict_typing=True,
                     **kwargs):
            from djenga.celery.backends import patch_aliases
            # call patch_aliases to make use of the redis detail backend
            patch_aliases()
            # optional:  set the DetailTask as the default class type for
            # all classes by specifying the `task_cls=DetailTask` below.
            super().__init__(main, loader, backend, amqp, events, log, control,
                             set_as_current, tasks, broker, include, changes,
                             config_source, fixups, task_cls=task_cls,
                             autofinalize=autofinalize, namespace=namespace,
                             strict_typing=strict_typing, **kwargs)
    # --- end seed ---
    return MyCeleryApp, DetailTask


@pytest.fixture
def own_db_url(redis_server):
    """A database of its own, so the session worker does not take these apps' messages."""
    base = redis_server.url.rsplit("/", 1)[0]
    yield base + "/14"
    from djenga_tests.celery import app

    app.set_current()  # MyCeleryApp() made itself current, as Celery apps do by default


def run_with_worker(app, url, task):
    app.conf.update(broker_url=url, result_backend="redisd://" + url.split("://", 1)[1])
    app.loader.import_module("celery.contrib.testing.tasks")
    with start_worker(app, pool="solo", perform_ping_check=True, loglevel="WARNING"):
        sent = task.delay()
        assert sent.get(timeout=10) is None
        return AsyncDetailedResult(sent.id, app=app)


def test_first_form_makes_detail_task_the_default(own_db_url, capsys):
    from djenga.celery.tasks import DetailTask

    MyCeleryApp = first_variant()
    # --- seed ---
    app = MyCeleryApp()
    @app.task(base=DetailTask)
    def my_cool_task():
        print('celery rocks!')
    # --- end seed ---

    @app.task
    def no_base_given():
        pass

    assert isinstance(no_base_given, DetailTask)
    result = run_with_worker(app, own_db_url, my_cool_task)
    assert result.details()["state"] == "SUCCESS"
    assert result.details()["name"].endswith("my_cool_task")
    assert "celery rocks!" in capsys.readouterr().out


def test_second_form_keeps_celerys_default_task(own_db_url):
    MyCeleryApp, DetailTask = second_variant()
    # --- seed ---
    app = MyCeleryApp()
    @app.task(base=DetailTask)
    def my_cool_task():
        print('celery rocks!')
    # --- end seed ---

    @app.task
    def no_base_given():
        pass

    assert not isinstance(no_base_given, DetailTask)
    assert isinstance(my_cool_task, DetailTask)
    result = run_with_worker(app, own_db_url, my_cool_task)
    assert result.details()["state"] == "SUCCESS"


def test_string_base_and_declared_steps_on_the_project_app():
    """`base='djenga.celery.tasks.DetailTask'` and `steps=[...]` with the project's app."""
    from djenga.celery.tasks import DetailTask
    from djenga_tests.tasks import steal_the_moon, steal_the_moon_declared

    assert isinstance(steal_the_moon, DetailTask)
    assert steal_the_moon.name == "gru.steal_the_moon"
    assert steal_the_moon_declared.steps == [
        (1, "Fly to the moon"), (2, "Shrink the moon"), (3, "Grab the moon"), (4, "Sit on the toilet"),
    ]


def test_plain_celery_cannot_take_a_string_base():
    """Why DjengaCelery exists: plain Celery fails on the seed's string base."""
    from celery import Celery

    app = Celery(set_as_current=False)
    with pytest.raises(TypeError):
        @app.task(bind=True, base="djenga.celery.tasks.DetailTask", shared=False)
        def nope(self):
            pass
        nope.name  # noqa: B018  (the task class is built lazily)
