"""Gettext catalogs: loading them for Python and Jinja2, JSON for the browser, and the
`python -m app.i18n compile | check` command.

The catalogs live in `app/locale/<lang>/LC_MESSAGES/<domain>.po` (msgids are the English
source text, placeholders `%(name)s`). Three domains: `messages` (Python and the Jinja2
templates), `workbench` (the agent pages' scripts) and `widget` (the storefront widget's
scripts). `compile` writes `<domain>.mo` beside each `.po` and a flat JSON catalog
`{msgid: msgstr}` per domain and language to `app/static/locale/<domain>.<lang>.json`.
Both are generated (git ignores them); when a `.mo` is missing or older than its `.po`,
the app compiles that catalog in memory at first use, so a checkout, an editable install
and a wheel built without `compile` all serve the same words.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

APP_DIR = Path(__file__).resolve().parent
LOCALE_DIR = APP_DIR / "locale"
JSON_DIR = APP_DIR / "static" / "locale"
LANGS = ("zh_CN", "en")
DEFAULT_LANG = "zh_CN"
DOMAINS = ("messages", "workbench", "widget")
# Where each domain's messages come from: the babel mapping file beside the catalogs.
MAPPING = {domain: LOCALE_DIR / f"babel-{domain}.cfg" for domain in DOMAINS}
# JavaScript has no _(); its scripts call gettext / ngettext only.
JS_KEYWORDS = {"gettext": None, "ngettext": (1, 2)}


def po_path(lang: str, domain: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{domain}.po"


def read_catalog(lang: str, domain: str) -> Catalog:
    with po_path(lang, domain).open("rb") as f:
        return read_po(f, locale=lang, domain=domain)


def _mo_bytes(catalog: Catalog) -> bytes:
    buf = io.BytesIO()
    write_mo(buf, catalog)
    return buf.getvalue()


@cache
def translations(lang: str, domain: str = "messages") -> Translations:
    """The compiled catalog: the `.mo` if it is up to date, else the `.po` compiled now."""
    if lang not in LANGS:
        raise ValueError(f"Expected a language of {LANGS}, but got {lang!r}")
    po = po_path(lang, domain)
    mo = po.with_suffix(".mo")
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        data = mo.read_bytes()
    else:
        data = _mo_bytes(read_catalog(lang, domain))
    return Translations(io.BytesIO(data), domain=domain)


@cache
def json_catalog(lang: str, domain: str) -> dict[str, Any]:
    """The flat `{msgid: msgstr}` the browser scripts use; a plural message maps its
    singular msgid to the list of forms."""
    out: dict[str, Any] = {}
    for m in read_catalog(lang, domain):
        if not m.id or m.fuzzy:
            continue
        if isinstance(m.id, tuple | list):
            forms = list(m.string) if isinstance(m.string, tuple | list) else [m.string]
            if all(forms):
                out[m.id[0]] = forms
        elif m.string:
            out[str(m.id)] = m.string
    return out


@cache
def json_text(lang: str, domain: str) -> bytes:
    """The JSON catalog as served at /static/locale/<domain>.<lang>.json."""
    catalog = json_catalog.__wrapped__(lang, domain)
    return json.dumps(catalog, ensure_ascii=False, sort_keys=True).encode()


def compile_all() -> list[Path]:
    """`.po` → `.mo` beside it, and → `app/static/locale/<domain>.<lang>.json`."""
    written = []
    JSON_DIR.mkdir(parents=True, exist_ok=True)
    for lang in LANGS:
        for domain in DOMAINS:
            mo = po_path(lang, domain).with_suffix(".mo")
            mo.write_bytes(_mo_bytes(read_catalog(lang, domain)))
            out = JSON_DIR / f"{domain}.{lang}.json"
            out.write_bytes(json_text.__wrapped__(lang, domain))
            written += [mo, out]
    return written


def extracted(domain: str) -> dict[tuple[str, str | None], str | tuple[str, ...]]:
    """Every message the sources of `domain` use, extracted anew: (msgid, context) → msgid."""
    from babel.messages.frontend import parse_mapping_cfg

    with MAPPING[domain].open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords: dict[str, Any] = {
        "_": None,
        "gettext": None,
        "ngettext": (1, 2),
        "pgettext": ((1, "c"), 2),
        "N_": None,
    }
    if domain != "messages":
        keywords = dict(JS_KEYWORDS)
    found: dict[tuple[str, str | None], str | tuple[str, ...]] = {}
    for _file, _line, message, _comments, context in extract_from_dir(
        APP_DIR.parent, method_map, options_map, keywords=keywords, strip_comment_tags=True
    ):
        key = message[0] if isinstance(message, tuple | list) else message
        found[(key, context)] = tuple(message) if isinstance(message, tuple | list) else message
    return found


def problems() -> list[str]:
    """What is wrong with the catalogs: a message the sources use that a catalog misses, a
    message left untranslated (empty or fuzzy), a stale one, or a format that does not match."""
    out = []
    for domain in DOMAINS:
        wanted = extracted(domain)
        for lang in LANGS:
            catalog = read_catalog(lang, domain)
            have = {}
            for m in catalog:
                if not m.id:
                    continue
                msgid = m.id[0] if isinstance(m.id, tuple | list) else m.id
                have[(msgid, m.context)] = m
            where = f"{domain}.po ({lang})"
            for key in wanted.keys() - have.keys():
                out.append(
                    f"{where}: missing {key[0]!r}" + (f" (context {key[1]})" if key[1] else "")
                )
            for key in have.keys() - wanted.keys():
                out.append(f"{where}: no longer used {key[0]!r}")
            for key, m in have.items():
                strings = m.string if isinstance(m.string, tuple | list) else (m.string,)
                if m.fuzzy or not all(strings):
                    out.append(f"{where}: untranslated {key[0]!r}")
                for err in m.check(catalog):
                    out.append(f"{where}: {key[0]!r}: {err}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.i18n", description=__doc__)
    parser.add_argument("command", choices=("compile", "check"))
    args = parser.parse_args(argv)
    if args.command == "compile":
        for path in compile_all():
            print(path)
        return 0
    found = problems()
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
