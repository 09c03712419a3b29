"""Example tasks: the seed's gru.steal_the_moon, in both of its forms, and a few more for tests."""

import threading
import time

from django.utils.translation import gettext_lazy

from djenga.celery.tasks import DetailTask
from djenga_tests.celery import app
from djenga_tests.minions import Gru, Moon

# Defaults let the seed's `steal_the_moon.delay()` run as written; the body is verbatim.
THE_GRU = Gru()
THE_MOON = Moon()


@app.task(bind=True, name='gru.steal_the_moon',
          base='djenga.celery.tasks.DetailTask')
def steal_the_moon(self, gru=THE_GRU, moon=THE_MOON):
    self.start_step(1, 'Fly to the moon')
    print('First, we fly to the moon')
    self.update_step(1, 'flying to the moon')
    gru.fly_to_the_moon()
    self.end_step()

    self.start_step(2, 'Shrink the moon')
    print('I shrink the moon')
    moon.shrink()
    self.end_step()

    self.start_step(3, 'Grab the moon')
    print('I grab the moon')
    gru.grab(moon)
    self.end_step()

    self.start_step(4, 'Sit on the toilet')
    print('I sit on the toilet, wait, what?')
    gru.sit_on_the_toilet()
    self.end_step()


# The seed's second form, steps declared up front; registered under its own name.
@app.task(bind=True, name='gru.steal_the_moon_declared',
          base='djenga.celery.tasks.DetailTask',
          steps=[(1, 'Fly to the moon'), (2, 'Shrink the moon'),
                 (3, 'Grab the moon'), (4, 'Sit on the toilet')])
def steal_the_moon_declared(self, gru=THE_GRU, moon=THE_MOON):
    self.start_step(1)
    print('First, we fly to the moon')
    self.update_step(1, 'flying to the moon')
    gru.fly_to_the_moon()
    self.end_step()

    self.start_step(2)
    print('I shrink the moon')
    moon.shrink()
    self.end_step()

    self.start_step(3)
    print('I grab the moon')
    gru.grab(moon)
    self.end_step()

    self.start_step(4)
    print('I sit on the toilet, wait, what?')
    gru.sit_on_the_toilet()
    self.end_step()


STEPS = [(1, "Fly to the moon"), (2, "Shrink the moon"), (3, "Grab the moon")]


@app.task(bind=True, base=DetailTask, name="gru.fail_at_step", steps=STEPS)
def fail_at_step(self, key, message="the moon is too heavy"):
    """Runs the steps before ``key``, then fails inside step ``key``."""
    for step, _description in STEPS:
        self.start_step(step)
        if step == key:
            raise ValueError(message)
        self.end_step()


class SlowAfterSendingRetry(DetailTask):
    """Once it has sent its retry, waits until the next attempt has succeeded before it
    returns: the race a busy worker's thread pool runs into now and then, made certain."""

    def apply_async(self, *args, **kwargs):
        sent = super().apply_async(*args, **kwargs)
        if kwargs.get("task_id") == self.request.id:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if (self.backend.get_detail(sent.id) or {}).get("state") == "SUCCESS":
                    break
                time.sleep(0.01)
        return sent


@app.task(bind=True, base=SlowAfterSendingRetry, name="gru.retry_once", steps=STEPS[:2],
          max_retries=2, default_retry_delay=0)
def retry_once(self):
    """Fails in step 2 on the first attempt and retries; succeeds on the second."""
    self.start_step(1)
    self.end_step()
    self.start_step(2)
    if self.request.retries == 0:
        raise self.retry(exc=ConnectionError("the moon moved"), countdown=0)
    self.end_step()
    return "got it"


@app.task(bind=True, base=DetailTask, name="gru.wait_in_step", steps=STEPS[:2])
def wait_in_step(self, seconds):
    """Starts step 1 and waits there; lets tests act while a step is running."""
    self.start_step(1)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        self.update_step(1, f"{deadline - time.monotonic():.1f} s left")
        time.sleep(0.05)
    self.end_step()
    self.start_step(2)
    self.end_step()




@app.task(bind=True, base=DetailTask, name="gru.public_failure", steps=STEPS[:1],
          public_fields=("error",))
def public_failure(self):
    """Fails with a message the task chose to show customers."""
    self.start_step(1)
    raise RuntimeError("The moon is out of stock, please try tomorrow.")


@app.task(bind=True, base=DetailTask, name="gru.misuse")
def misuse(self):
    """Ends a step that never started: a programming error djenga reports clearly."""
    self.end_step()


@app.task(bind=True, base=DetailTask, name="gru.say")
def say(self, description, message, hold=0.0):
    """One step whose description and message are whatever the caller sends (untrusted)."""
    self.start_step(1, description)
    self.update_step(1, message)
    time.sleep(hold)
    self.end_step()


@app.task(bind=True, base=DetailTask, name="gru.chatty", steps=[(1, "Count the minions")],
          min_update_interval=0.05)
def chatty(self, n):
    """Calls update_step n times in a tight loop; published at most every 50 ms."""
    self.start_step(1)
    for i in range(n):
        self.update_step(1, f"minion {i + 1}", done=i + 1, total=n)
    self.end_step()
    return n


@app.task(bind=True, base=DetailTask, name="gru.burst")
def burst(self, n):
    """n update_step calls, each published (no coalescing): a flood of updates."""
    self.start_step(1, "Flood")
    for i in range(n):
        self.update_step(1, f"update {i + 1}", done=i + 1, total=n)
    self.end_step()
    return n


@app.task(bind=True, base=DetailTask, name="gru.redeliverable", steps=STEPS,
          acks_late=True, reject_on_worker_lost=True)
def redeliverable(self, seconds_per_step):
    """Acknowledged only when done: if its worker dies, the broker delivers it again."""
    for step, _description in STEPS:
        self.start_step(step)
        time.sleep(seconds_per_step)
        self.end_step()
    return "done"


@app.task(name="gru.plain")
def plain(x):
    """A plain Celery task on the same app: results must work exactly as with redis://."""
    return x * 2


# The seed's steps, translated (djenga_tests/locale/): stored in LANGUAGE_CODE (docs/widget.md).
@app.task(bind=True, base=DetailTask, name="gru.steal_the_moon_translated",
          steps=[(1, gettext_lazy("Fly to the moon")), (2, gettext_lazy("Shrink the moon")),
                 (3, gettext_lazy("Grab the moon")), (4, gettext_lazy("Sit on the toilet"))])
def steal_the_moon_translated(self, gru=THE_GRU, moon=THE_MOON):
    for key, move in enumerate((gru.fly_to_the_moon, moon.shrink, lambda: gru.grab(moon),
                                gru.sit_on_the_toilet), start=1):  # fmt: skip
        self.start_step(key)
        move()
        self.end_step()


#: Gates the browser tests open: the worker runs in the test process, so a gated task waits
#: in its first step until the test sets its gate, and the test sees it running however slow
#: the machine is.
GATES: dict[str, threading.Event] = {}


def gate(name):
    """The gate called ``name`` (made on first use, by the test or by the task)."""
    return GATES.setdefault(name, threading.Event())


@app.task(bind=True, base=DetailTask, name="gru.gated",
          steps=[(1, "Wait at the gate"), (2, "Fly to the moon")])
def gated(self, name, timeout=60.0):
    self.start_step(1)
    if not gate(name).wait(timeout):
        raise TimeoutError(f"nobody opened the gate {name!r}")
    self.end_step()
    self.start_step(2)
    self.end_step()


@app.task(bind=True, base=DetailTask, name="gru.retry_later",
          steps=[(1, "Call the moon base"), (2, "Book the rocket")], max_retries=3)
def retry_later(self, countdown=3.0, failures=1):
    """Fails in step 2 ``failures`` times, each time retrying in ``countdown`` seconds: the
    widget counts the seconds down, then shows the next attempt."""
    self.start_step(1)
    self.end_step()
    self.start_step(2)
    if self.request.retries < failures:
        raise self.retry(exc=ConnectionError("the moon base is busy"), countdown=countdown)
    self.end_step()
    return "booked"


@app.task(bind=True, base=DetailTask, name="gru.stage",
          steps=[(1, "Collect the bananas"), (2, "Pack the bananas")])
def stage(self, seconds=0.2, fail=False):
    """One stage of a chain or a chord (use ``.si()``): two steps of ``seconds`` each."""
    self.start_step(1)
    time.sleep(seconds)
    self.end_step()
    self.start_step(2)
    if fail:
        raise ValueError("the bananas went bad")
    time.sleep(seconds)
    self.end_step()
    return seconds
