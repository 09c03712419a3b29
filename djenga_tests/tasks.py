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


# -- nested sub-steps (docs/api.md, "Nested steps"): declared children, `with self.step()`
# blocks, and a sub-step the task only knows of when it runs.
@app.task(bind=True, base=DetailTask, name="demo.nested_export",
          steps=[(1, "Export the orders", [(1.1, "Query the database"),
                                           (1.2, "Write the CSV file")]),
                 (2, "Mail the link")])
def nested_export(self, rows=3, pace=0.0, fail_at=None, gate_name=None, timeout=60.0):
    """Exports ``rows`` rows in nested steps, ``pace`` seconds per move; raises inside step
    ``fail_at`` if given; waits in 1.2 for the gate ``gate_name`` if given (tests)."""
    def move(key):
        time.sleep(pace)
        if key == fail_at:
            raise RuntimeError(f"step {key} broke")

    with self.step(1):
        with self.step(1.1):
            move(1.1)
        with self.step(1.2):
            for row in range(1, rows + 1):
                self.update_step(1.2, f"row {row} of {rows}", done=row, total=rows)
                move(1.2)
            if gate_name and not gate(gate_name).wait(timeout):
                raise TimeoutError(f"nobody opened the gate {gate_name!r}")
            with self.step("zip", "Compress the file"):  # not declared: a child of 1.2
                move("zip")
    with self.step(2):
        move(2)
    return rows


# `with self.step()` for flat steps: a clean exit ends the step done, an exception fails it
# and goes on (caught here with catch=True: the task runs on, the step stays failed).
@app.task(bind=True, base=DetailTask, name="demo.flat_blocks")
def flat_blocks(self, fail=False, catch=False):
    with self.step(1, "Count the minions"):
        self.update_step(1, "counting")
    try:
        with self.step(2, "Feed the minions"):
            if fail or catch:
                raise ValueError("out of bananas")
    except ValueError:
        if not catch:
            raise
    with self.step(3, "Send them home"):
        pass
    return "ok"


# -- cancel (docs/api.md, "Cancel") --------------------------------------------------------

#: Task ids whose body began running (the worker runs in the test process).
BODIES_RUN: set[str] = set()


@app.task(bind=True, base=DetailTask, name="gru.export_rows",
          steps=[(1, "Query the rows"), (2, "Write the file"), (3, "Upload it")])
def export_rows(self, rows=200, seconds=20.0):
    """A long export a customer may cancel: each row is one ``update_step``, which is where
    a cancel request is seen (the task then ends REVOKED; nothing after it runs)."""
    BODIES_RUN.add(self.request.id)
    self.start_step(1)
    self.update_step(1, "selecting", done=0, total=rows)
    self.end_step()
    self.start_step(2)
    for row in range(rows):
        time.sleep(seconds / rows)
        self.update_step(2, f"row {row + 1} of {rows}", done=row + 1, total=rows)
    self.end_step()
    self.start_step(3)
    self.end_step()
    return f"export-{rows}.csv"


@app.task(bind=True, base=DetailTask, name="gru.never_helps", steps=[(1, "Brood")])
def never_helps(self, seconds=60.0):
    """Starts its step, then works for a long time without calling a helper again:
    only Celery's revoke(terminate=True) stops it (on a prefork pool)."""
    BODIES_RUN.add(self.request.id)
    self.start_step(1)
    time.sleep(seconds)
    self.end_step()


@app.task(bind=True, base=DetailTask, name="gru.checks_itself", steps=[(1, "Think")])
def checks_itself(self, name, timeout=60.0):
    """Waits at a gate, then asks ``self.cancel_requested`` itself (no helper between)."""
    self.start_step(1)
    if not gate(name).wait(timeout):
        raise TimeoutError(f"nobody opened the gate {name!r}")
    if self.cancel_requested:
        return "saw it"
    return "did not see it"


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
