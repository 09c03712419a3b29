"""The built sdist and wheel hold djenga, all of it and nothing else; a project on it works."""

from __future__ import annotations

import importlib.util
import os
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import djenga
from conftest import REPO, quickstart_blocks


def source_files() -> set[str]:
    """Every file of the checkout's djenga/, following the static symlink to frontend/src."""
    found = set()
    for folder, dirs, files in os.walk(REPO / "djenga", followlinks=True):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if not name.endswith((".pyc", ".pyo")):
                found.add((Path(folder) / name).relative_to(REPO).as_posix())
    return found


def test_the_wheel_holds_every_file_of_djenga_and_nothing_else(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
        assert archive.read(top_level).decode().split() == ["djenga"]
    package = {n for n in names if ".dist-info/" not in n}
    expected = source_files()
    assert not expected - package, f"missing from the wheel: {sorted(expected - package)}"
    assert not package - expected, f"not djenga's, in the wheel: {sorted(package - expected)}"
    # The ones that went missing before (sub-folder templates, the symlinked JS, Lua).
    for name in ("djenga/templates/djenga/admin/index.html",
                 "djenga/templates/djenga/console/task_list.html",
                 "djenga/static/djenga/djenga-task-progress.js",
                 "djenga/static/djenga/progress/element.js",
                 "djenga/locale/fr/LC_MESSAGES/djangojs.mo",
                 "djenga/locale/ar/LC_MESSAGES/django.mo",
                 "djenga/celery/publish.lua", "djenga/py.typed"):  # fmt: skip
        assert name in package
    print(f"wheel: {len(package)} files of djenga/, {len(names) - len(package)} of metadata")


def test_the_sdist_holds_the_same_files_with_the_static_symlink_resolved(sdist):
    with tarfile.open(sdist) as archive:
        members = {m.name.split("/", 1)[1]: m for m in archive.getmembers() if "/" in m.name}
    package = {name for name, m in members.items() if name.startswith("djenga/") and m.isfile()}
    assert package == source_files(), sorted(package ^ source_files())
    top = {name.split("/", 1)[0] for name in members}
    assert top <= {"djenga", "djenga.egg-info", "PKG-INFO", "README.md", "pyproject.toml",
                   "setup.cfg", "MANIFEST.in"}, top  # fmt: skip


def test_djenga_is_imported_from_the_installed_wheel_not_a_checkout():
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert Path(djenga.__file__).resolve().is_relative_to(site_packages), djenga.__file__
    assert importlib.util.find_spec("djenga_tests") is None
    installed = Path(djenga.__file__).parent
    assert (installed / "templates" / "djenga" / "admin" / "index.html").is_file()
    assert (installed / "static" / "djenga" / "djenga-task-progress.js").is_file()


def test_a_project_on_the_wheel_serves_admin_console_and_widget_with_debug_off(reader, page):
    """The quickstart's project with its production step: collectstatic, WhiteNoise, DEBUG off."""
    for block in quickstart_blocks():
        if block.kind != "terminal":
            reader.apply(block)
    reader.run("DJANGO_SUPERUSER_PASSWORD=staff-pw python manage.py createsuperuser "
               "--noinput --username staff --email staff@example.com")  # fmt: skip
    for block in quickstart_blocks():
        if block.kind == "terminal" and "worker" not in block.body:
            reader.apply(block)  # Redis and daphne; no task runs here
    base = reader.base_url

    js = page.request.get(f"{base}/static/djenga/djenga-task-progress.js")
    assert js.status == 200, reader.logs()
    assert "javascript" in js.headers["content-type"]
    assert "customElements.define" in js.text()
    assert page.request.get(f"{base}/static/admin/css/base.css").status == 200

    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "staff-pw")
    page.click("input[type=submit]")
    admin = page.goto(f"{base}/admin/")
    assert admin.status == 200, reader.logs()
    console_link = page.locator("a[href='/djenga/console/']")
    assert console_link.count() >= 1, page.content()
    console = page.goto(f"{base}/djenga/console/")
    assert console.status == 200, reader.logs()
    assert page.evaluate("() => !!customElements.get('djenga-task-console')"), reader.logs()
    moon = page.goto(f"{base}/moon/")
    assert moon.status == 200, reader.logs()
    assert "Traceback" not in reader.logs(), reader.logs()
    # WhiteNoise under ASGI: Django warns if it must buffer a sync file iterator.
    assert "StreamingHttpResponse must consume" not in reader.logs(), reader.logs()
