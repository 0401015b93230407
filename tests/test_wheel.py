"""The built wheel runs on its own: installed into a fresh venv outside the checkout.

Builds the wheel from a copy of the package sources (what `pip install .` would build),
installs it with constraints.txt into a new venv, and starts `homing serve --demo` from
that venv with its working directory in a temporary folder. The pages, their templates,
the static files (the widget and the vendored htmx), the migrations and the API docs must
all come from the installed package: nothing may be read from the checkout.

Marked `wheel`: slow (a venv and every dependency installed afresh) and the same on every
backend, so it runs once, in the SQLite pass (tests/conftest.py deselects it under
`--db postgres`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.support.servers import ROOT, free_port

pytestmark = pytest.mark.wheel

# The files a running Homing reads from its package, besides the Python modules.
PACKAGE_DATA = (
    "app/static/widget.js",
    "app/static/widget/main.js",
    "app/static/app.css",
    "app/static/vendor/htmx.min.js",
    "app/templates/base.html",
    "app/templates/workbench.html",
    "app/templates/console/_queues.html",
    "app/migrations/script.py.mako",
    "app/migrations/versions/0001_initial_schema.py",
)


def run(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(
        args, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
            f"{done.stderr[-3000:]}"
        )
    return done.stdout


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that would find the checkout's code."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP")
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the checkout with the wheel installed; returns the venv."""
    htmx = ROOT / "app" / "static" / "vendor" / "htmx.min.js"
    if not htmx.exists():  # the wheel ships the vendored htmx (HOMING_HTMX_LOCAL=true)
        run(["bash", str(ROOT / "scripts" / "vendor.sh")], cwd=ROOT, env=clean_env())
    work = tmp_path_factory.mktemp("wheel")
    # A copy of what a source distribution holds, so setuptools' build/ folder in the
    # checkout (stale files from earlier builds) never leaks into the wheel.
    src = work / "src"
    src.mkdir()
    shutil.copytree(
        ROOT / "app", src / "app", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    dist = work / "dist"
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)],
        cwd=work,
        env=clean_env(),
    )
    (wheel,) = dist.glob("homing-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    missing = [name for name in PACKAGE_DATA if name not in names]
    assert not missing, f"the wheel lacks {missing}"

    venv = work / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=work, env=clean_env())
    run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "-c",
            str(ROOT / "constraints.txt"),
            str(wheel),
        ],
        cwd=work,
        env=clean_env(),
    )
    return venv


def test_the_wheel_serves_pages_widget_and_docs_from_a_fresh_venv(
    installed: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    env = clean_env(
        DATABASE_URL=f"sqlite:///{run_dir / 'homing.db'}",
        HOMING_HTMX_LOCAL="true",
    )
    env.pop("REDIS_URL", None)

    # The code that runs is the installed copy, not the checkout's.
    where = run(
        [
            str(installed / "bin" / "python"),
            "-c",
            "import app, app.pages.views as v; print(app.__file__); print(v.STATIC_DIR)",
        ],
        cwd=run_dir,
        env=env,
    )
    for line in where.split():
        assert Path(line).is_relative_to(installed), where

    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(installed / "bin" / "homing"),
                "serve",
                "--demo",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=run_dir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as c:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, f"homing serve exited:\n{log.read_text()[-3000:]}"
                try:
                    if c.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"no /healthz:\n{log.read_text()[-3000:]}"
                time.sleep(0.2)

            # An anonymous visitor is sent to the login page, rendered from the templates.
            page = c.get("/workbench", follow_redirects=True)
            assert page.status_code == 200, page.text
            assert page.url.path == "/login"
            assert 'name="password"' in page.text
            # Asset URLs carry the file's modification time: 0 would mean it was not found.
            stamps = re.findall(r"/static/app\.css\?v=(\d+)", page.text)
            assert stamps and int(stamps[0]) > 0, page.text
            assert "/static/vendor/htmx.min.js" in page.text

            # Signed in (the demo shop), the workbench itself.
            login = c.post("/login", data={"shop": "demo", "username": "alice", "password": "demo"})
            assert login.status_code == 303, login.text
            page = c.get("/workbench")
            assert page.status_code == 200, page.text
            assert "/static/workbench.js?v=" in page.text

            widget = c.get("/static/widget.js")
            assert widget.status_code == 200
            assert "javascript" in widget.headers["content-type"]
            assert widget.content == (ROOT / "app" / "static" / "widget.js").read_bytes()

            htmx = c.get("/static/vendor/htmx.min.js")
            assert htmx.status_code == 200 and "javascript" in htmx.headers["content-type"]

            docs = c.get("/docs")
            assert docs.status_code == 200
            assert "swagger" in docs.text.lower()
            assert c.get("/openapi.json").json()["paths"]
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
