"""No watcher left behind: joins at the same moment, malformed ids, expired tasks, logout
while watching, a slow reader, control bytes in the handshake (issue 8).

Like the twelve scenarios, each runs real processes (Redis, a Celery worker, daphne) and
raw websocket clients, and is bounded in time. Figures are printed (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from djenga.celery.app import DjengaCelery
from djenga.celery.detail import TaskDetail
from djenga.live.auth import make_token
from djenga.live.hub import relay_client_name
from djenga.live.transport import HIGH_WATER
from djenga_tests.tests.fixtures import ROOT

from .stack import ORIGIN, rss_kib, snapshots, watch

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(240)]


def task_url(stack, task_id: str, **params) -> str:
    return stack.ws_url(f"/ws/djenga/tasks/{task_id}/", token=make_token(task_id), **params)


def relay_pubsub_connections(stack, pid: int) -> int:
    """Pub/sub connections the web process ``pid`` holds open on the stack's Redis."""
    client = redis.Redis.from_url(stack.url)
    try:
        return sum(
            1 for c in client.client_list(_type="pubsub") if c["name"] == relay_client_name(pid)
        )
    finally:
        client.close()


def daphne_log(stack) -> str:
    return Path(stack.env["DJENGA_DATA_DIR"], "daphne.log").read_text(errors="replace")


# -- 1. watchers that join at the same moment ---------------------------------------------


async def test_watchers_joining_at_once_on_a_fresh_process_all_get_every_update(stack):
    """Many clients join many tasks at the same moment on a daphne that just started:
    one pub/sub connection, and every client ends at its task's exact final state."""
    backend = stack.app.backend
    rounds, tasks, per_task = 4, 12, 3
    for round_ in range(rounds):
        stack.web.stop()  # a fresh process: its hub has no pub/sub connection yet
        stack.web.start()
        ids = [f"join-{round_}-{n}" for n in range(tasks)]
        urls = [task_url(stack, t, stay=1) for t in ids for _ in range(per_task)]
        sockets = await asyncio.gather(*(connect(url, origin=ORIGIN) for url in urls))
        for s in sockets:
            assert json.loads(await s.recv())["state"] == "PENDING"
        connections = relay_pubsub_connections(stack, stack.web.pid)
        details = {t: TaskDetail(t, "join", [(1, "One"), (2, "Two")]) for t in ids}

        def run_all(details=details) -> tuple[dict[str, int], float]:
            for step in (1, 2):
                for detail in details.values():
                    detail.start_step(step)
                    backend.publish_detail(detail)
                    detail.update_step(step, f"step {step}")
                    backend.publish_detail(detail)
                    detail.end_step()
                    backend.publish_detail(detail)
            finals = {}
            for task_id, detail in details.items():
                detail.finish("SUCCESS")
                finals[task_id] = backend.publish_detail(detail)
            return finals, time.monotonic()

        finals, published_at = await asyncio.to_thread(run_all)

        async def last_frame(s) -> dict:
            while True:
                frame = json.loads(await asyncio.wait_for(s.recv(), 20))
                if frame["state"] == "SUCCESS":
                    return frame

        last = await asyncio.gather(*(last_frame(s) for s in sockets))
        took = time.monotonic() - published_at
        for s in sockets:
            await s.close()
        for index, frame in enumerate(last):
            assert frame["seq"] == finals[ids[index // per_task]], (frame["task_id"], frame["seq"])
        print(
            f"round {round_ + 1}: {len(sockets)} clients on {tasks} tasks, "
            f"{connections} pub/sub connection(s), every final state {took * 1000:.0f} ms "
            "after the last publish"
        )
        assert connections == 1, f"daphne opened {connections} pub/sub connections"


# -- 2. malformed task ids ------------------------------------------------------------------

BAD_PATHS = [
    "/ws/djenga/tasks/%20/", "/ws/djenga/tasks/a%20b/", "/ws/djenga/tasks/-lead/",
    "/ws/djenga/tasks/" + "x" * 201 + "/", "/ws/djenga/tasks/a/b/", "/ws/djenga/tasks/%00/",
    "/ws/djenga/tasks/%1F/", "/ws/djenga/tasks/%C3%A9/", "/ws/djenga/tasks/../",
    "/ws/djenga/tasks/%3Cscript%3E/", "/ws/djenga/tasks//", "/ws/djenga/tasks/abc",
    "/ws/djenga/nothing/",
]  # fmt: skip


async def test_every_malformed_task_id_gets_4400_not_a_server_error(stack):
    async def close_code(path: str) -> tuple[int | None, float]:
        started = time.monotonic()
        url = f"ws://127.0.0.1:{stack.web.port}{path}"
        async with connect(url, origin=ORIGIN, open_timeout=10) as s:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(s.recv(), 10)
        return s.close_code, time.monotonic() - started

    good_code, good_time = await close_code(f"/ws/djenga/tasks/fine-id/?token={make_token('x')}")
    assert good_code == 4403  # a well-formed id, another task's token
    times = []
    for path in BAD_PATHS:
        code, took = await close_code(path)
        times.append(took)
        assert code == 4400, (path, code)
    log = daphne_log(stack)
    assert "No route found" not in log and "Traceback" not in log
    print(
        f"{len(BAD_PATHS)} malformed paths closed 4400 in {max(times) * 1000:.1f} ms at most "
        f"(a well-formed one: {good_time * 1000:.1f} ms)"
    )


# -- 3. a task whose record expired ---------------------------------------------------------


async def test_an_expired_task_says_expired_not_waiting(stack):
    app = DjengaCelery(
        "expiry", broker=stack.url, backend="redisd://" + stack.url.split("://", 1)[1],
        set_as_current=False,
    )  # fmt: skip
    app.conf.result_expires = 2
    detail = TaskDetail("soon-gone", "expiry", [(1, "Only")])
    detail.start_step(1)
    app.backend.publish_detail(detail)
    detail.end_step()
    detail.finish("SUCCESS")
    app.backend.publish_detail(detail)
    started = time.monotonic()
    gone = await asyncio.to_thread(
        stack.wait_for, "soon-gone", lambda d: d["state"] != "SUCCESS", 15
    )
    print(f"record expired after {time.monotonic() - started:.1f} s (result_expires 2 s)")
    assert gone["state"] == "EXPIRED" and gone["steps"] == []
    seen = await watch(task_url(stack, "soon-gone"), timeout=10)
    assert [f["state"] for f in snapshots(seen["messages"])] == ["EXPIRED"]
    assert seen["code"] == 1000  # final: the widget stops waiting
    token = make_token("soon-gone")
    polled = json.loads(
        urllib.request.urlopen(f"{stack.web.url}/djenga/tasks/soon-gone/?token={token}").read()
    )
    assert polled["state"] == "EXPIRED"
    # A task never sent (or still queued) is PENDING, and its socket stays open.
    async with connect(task_url(stack, "never-sent"), origin=ORIGIN) as s:
        assert json.loads(await s.recv())["state"] == "PENDING"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(s.recv(), 1.5)
    assert stack.details("never-sent")["state"] == "PENDING"


# -- 4. logging out, losing staff, an expiring token ----------------------------------------


class Browser:
    """A logged-in session against the stack's daphne, through the admin's forms."""

    def __init__(self, base: str) -> None:
        self.base, self.jar = base, http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name)

    def post(self, path: str, **fields: str) -> None:
        fields["csrfmiddlewaretoken"] = self.cookie("csrftoken")
        data = urllib.parse.urlencode(fields).encode()
        self.opener.open(urllib.request.Request(self.base + path, data=data)).read()

    def log_in(self, username: str = "admin", password: str = "admin") -> Browser:
        self.opener.open(self.base + "/admin/login/").read()
        self.post("/admin/login/?next=/admin/", username=username, password=password)
        assert self.cookie("sessionid")
        return self

    @property
    def headers(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{c.name}={c.value}" for c in self.jar)}


async def frames_until_closed(s) -> tuple[int, float]:
    """Read until the server closes; how many frames came, and when it closed."""
    count = 0
    try:
        while True:
            await asyncio.wait_for(s.recv(), 30)
            count += 1
    except ConnectionClosed:
        return count, time.monotonic()


def manage(stack, code: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=stack.env, check=True
    )


RESET_ADMIN = (
    "from django.contrib.auth.models import User; "
    "User.objects.filter(username='admin').update(is_staff=True, is_active=True)"
)


@pytest.mark.stack_settings(DJENGA_REAUTHORISE_INTERVAL="1", DJENGA_TOKEN_MAX_AGE="4")
async def test_a_viewer_who_loses_the_right_to_watch_is_closed_4403(stack):
    task_id = stack.send("gru.wait_in_step", 25)
    url = stack.ws_url(f"/ws/djenga/tasks/{task_id}/", stay=1)
    bound = 1.0 + 5  # the re-check interval, and room for a busy machine
    # Logged out while watching as staff.
    browser = Browser(stack.web.url).log_in()
    async with connect(url, origin=ORIGIN, additional_headers=browser.headers) as s:
        first = json.loads(await s.recv())
        assert first["private"].get("args") is not None  # the staff view
        await asyncio.to_thread(browser.post, "/admin/logout/")
        logged_out = time.monotonic()
        frames, closed = await frames_until_closed(s)
    assert s.close_code == 4403
    print(f"logout: closed 4403 {closed - logged_out:.2f} s later, after {frames} more frames")
    assert closed - logged_out < bound
    # Staff taken away, then the user made inactive, while watching.
    for change in ("is_staff = False", "is_active = False"):
        await asyncio.to_thread(manage, stack, RESET_ADMIN)
        browser = Browser(stack.web.url).log_in()
        async with connect(url, origin=ORIGIN, additional_headers=browser.headers) as s:
            await s.recv()
            await asyncio.to_thread(
                manage, stack, "from django.contrib.auth.models import User; "
                f"u = User.objects.get(username='admin'); u.{change}; u.save()",
            )  # fmt: skip
            changed = time.monotonic()
            frames, closed = await frames_until_closed(s)
        assert s.close_code == 4403, change
        print(f"{change}: closed 4403 {closed - changed:.2f} s later")
        assert closed - changed < bound
    await asyncio.to_thread(manage, stack, RESET_ADMIN)
    # A customer's token expires (DJENGA_TOKEN_MAX_AGE 4 s) while the socket is open.
    token_made = time.monotonic()
    async with connect(task_url(stack, task_id, stay=1), origin=ORIGIN) as s:
        frames, closed = await frames_until_closed(s)
    assert s.close_code == 4403
    print(f"token expiry: closed 4403 {closed - token_made:.2f} s after the token was made")
    assert 4 - 0.5 <= closed - token_made < 4 + bound  # not before it expired
    # A resume from a socket whose session is gone is refused at once.
    browser = Browser(stack.web.url).log_in()
    async with connect(url, origin=ORIGIN, additional_headers=browser.headers) as s:
        snapshot = json.loads(await s.recv())
        await asyncio.to_thread(browser.post, "/admin/logout/")
        await s.send(json.dumps({"type": "resume", "seq": snapshot["seq"]}))
        await frames_until_closed(s)
    assert s.close_code == 4403
    await asyncio.to_thread(stack.wait_for, task_id, lambda d: d["state"] == "SUCCESS", 40)


# -- 5. a slow reader ----------------------------------------------------------------------


async def test_a_slow_reader_skips_to_the_newest_and_gets_the_exact_final_state(stack):
    """A client reading one frame a second through a 20,000-update burst: the server holds
    a bounded queue for it, and it ends at the exact final snapshot, closed with 1000."""
    warm = stack.send("gru.burst", 500)
    await watch(task_url(stack, warm))
    before = rss_kib(stack.web.pid)
    task_id = stack.send("gru.burst", 20_000)
    stack.wait_for(task_id, lambda d: d["state"] != "PENDING")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel holds little
    sock.connect(("127.0.0.1", stack.web.port))
    frames: list[dict] = []
    peak_rss = before
    async with connect(task_url(stack, task_id), sock=sock, origin=ORIGIN, max_queue=1) as s:
        while True:  # one frame a second while the burst lasts
            frames.append(json.loads(await s.recv()))
            peak_rss = max(peak_rss, rss_kib(stack.web.pid))
            if stack.details(task_id)["state"] == "SUCCESS":
                break
            await asyncio.sleep(1.0)
        slow_reads = len(frames)
        try:
            async for text in s:  # then as fast as it can
                frames.append(json.loads(text))
        except ConnectionClosed:
            pass
    code = s.close_code
    final = stack.details(task_id)
    grown = peak_rss - before
    skipped = re.findall(r"skipped (\d+) frames \(peak queue (\d+) bytes\)", daphne_log(stack))
    print(
        f"slow reader: {slow_reads} slow reads, {len(frames)} frames in all for "
        f"{final['seq']} updates; daphne RSS +{grown} KiB at most; close {code}; "
        f"server log: {skipped[-1] if skipped else 'nothing skipped'}"
    )
    assert frames[-1]["state"] == "SUCCESS" and frames[-1]["seq"] == final["seq"]
    assert code == 1000
    # What it was sent is what the kernel's socket buffers took, plus the newest frames.
    assert len(frames) < final["seq"] // 2, "the slow client was sent most updates"
    # Twisted's buffer stays bounded. (On a busy machine the relay may coalesce enough by
    # itself that the kernel's buffers take everything: then nothing was held back.)
    assert not skipped or int(skipped[-1][1]) <= HIGH_WATER + 16 * 1024
    assert grown < 5 * 1024, f"daphne grew {grown} KiB for one slow client"


# -- 6. control bytes in the handshake -------------------------------------------------------


def raw_handshake(port: int, path: str, headers: dict[bytes, bytes]) -> bytes:
    """Send a websocket handshake byte for byte; the answer's status line and first frame."""
    lines = [f"GET {path} HTTP/1.1".encode()] + [k + b": " + v for k, v in headers.items()]
    request = b"\r\n".join(lines) + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        answer = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(4096)
            except TimeoutError:
                break
            if not chunk:
                break
            answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101") or len(body) >= 4:
                break
    return answer


def ws_close_code(answer: bytes) -> int | None:
    """The code of the close frame after a 101 answer (None if there is none)."""
    head, _, body = answer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101") or len(body) < 4 or body[0] != 0x88:
        return None
    return int.from_bytes(body[2:4], "big")


async def test_control_bytes_in_host_origin_or_cookie_are_refused(stack):
    task_id = "control-bytes"
    path = f"/ws/djenga/tasks/{task_id}/?token={make_token(task_id)}"
    good = {
        b"Host": b"127.0.0.1", b"Origin": ORIGIN.encode(), b"Cookie": b"a=b",
        b"Upgrade": b"websocket", b"Connection": b"Upgrade",
        b"Sec-WebSocket-Key": b"dGhlIHNhbXBsZSBub25jZQ==", b"Sec-WebSocket-Version": b"13",
    }  # fmt: skip
    answer = raw_handshake(stack.web.port, path, good)
    assert answer.startswith(b"HTTP/1.1 101") and b'"state":"PENDING"' in answer
    outcomes = {}
    for name in (b"Host", b"Origin", b"Cookie"):
        for byte in (b"\x01", b"\x1f", b"\x7f", b"\x1e"):
            for where in ("end", "middle"):
                headers = dict(good)
                value = headers[name]
                headers[name] = value + byte if where == "end" else value[:3] + byte + value[3:]
                answer = raw_handshake(stack.web.port, path, headers)
                status = answer.split(b"\r\n", 1)[0].decode()
                code = ws_close_code(answer)
                outcomes[(name, byte, where)] = code or status
                refused = code == 4400 or status.startswith(("HTTP/1.1 400", "HTTP/1.1 403"))
                assert refused, (name, byte, where, status, code)
                assert b'"state"' not in answer, (name, byte, where)  # nothing was served
    counts: dict[str, int] = {}
    for outcome in outcomes.values():
        counts[str(outcome)] = counts.get(str(outcome), 0) + 1
    print(f"{len(outcomes)} handshakes with control bytes: {counts}")
    with pytest.raises(InvalidStatus):  # a foreign origin is still refused before accept
        async with connect(stack.ws_url(path), origin="http://evil.example"):
            pass
