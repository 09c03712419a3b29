"""Seed, "setting up your celery app", first form: DetailTask is every task's default base."""
# ruff: noqa

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

from djenga.celery.tasks import DetailTask

app = MyCeleryApp()
@app.task(base=DetailTask)
def my_cool_task():
    print('celery rocks!')

# -- not from the seed ----------------------------------------------------------------------
from djenga_tests.seed import configure

configure(app)


@app.task
def no_base_given():
    """Takes the app's default base: DetailTask in this form."""
