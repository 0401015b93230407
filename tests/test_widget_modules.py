"""The storefront widget's ES modules: type-checked, all reachable, loadable from a shop's origin.

widget.js is the one classic script a shop pastes; it imports app/static/widget/main.js
from next to itself, and the modules import each other by relative paths. They run in the
shop's page, so the browser fetches them cross-origin (CORS mode): the server must answer
with `Access-Control-Allow-Origin`.
"""

from __future__ import annotations

import re
import subprocess

import httpx

from tests.support.servers import ROOT, InProcessServer

WIDGET_DIR = ROOT / "app" / "static" / "widget"
MODULES = sorted(p for p in WIDGET_DIR.iterdir() if p.suffix == ".js")
# `from "./x.js"`, `import "./x.js"`, `import("./x.js")`, `import("./x.js").Type` in JSDoc.
IMPORT = re.compile(r"""(?:\bfrom\s+|\bimport\s*\(?\s*)["'](\.[^"']+)["']""")


def test_widget_modules_type_check() -> None:
    """`tsc --noEmit --allowJs --checkJs` (jsconfig.json) finds nothing in the modules."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "typecheck-widget.sh")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"tsc found errors:\n{done.stdout}\n{done.stderr}"


def test_every_module_is_checked_and_every_import_resolves() -> None:
    assert MODULES, WIDGET_DIR
    names = {m.name for m in MODULES}
    for module in MODULES:
        text = module.read_text(encoding="utf-8")
        assert text.startswith("// @ts-check\n"), module.name
        for target in IMPORT.findall(text):
            assert target.startswith("./") and target[2:] in names, (module.name, target)
    loader = (ROOT / "app" / "static" / "widget.js").read_text(encoding="utf-8")
    assert 'new URL("widget/main.js", script.src)' in loader


async def test_modules_are_served_to_other_origins(server: InProcessServer) -> None:
    async with httpx.AsyncClient(base_url=server.http) as c:
        for module in MODULES:
            r = await c.get(
                f"/static/widget/{module.name}", headers={"Origin": "http://shop.example"}
            )
            assert r.status_code == 200, module.name
            assert "javascript" in r.headers["content-type"], module.name
            assert r.headers["access-control-allow-origin"] == "*", module.name
            assert "content-security-policy" not in r.headers, module.name
            assert r.headers["x-content-type-options"] == "nosniff"
