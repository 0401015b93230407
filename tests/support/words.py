"""What a reader sees for an English msgid, from the same catalogs the app serves."""

from __future__ import annotations

from app import i18n


def words(lang: str, msgid: str, context: str | None = None) -> str:
    """The translation of `msgid` in `lang` (`zh_CN` or `en`), looked up in the pages'
    catalog first, then the workbench's and the widget's."""
    if context is not None:
        return i18n.translations(lang).pgettext(context, msgid)
    for domain in i18n.DOMAINS:
        found = i18n.json_catalog(lang, domain).get(msgid)
        if isinstance(found, str):
            return found
    raise KeyError(f"Expected {msgid!r} in a catalog of {lang}, but no catalog has it")


def zh(msgid: str, context: str | None = None) -> str:
    return words("zh_CN", msgid, context)


def en(msgid: str, context: str | None = None) -> str:
    return words("en", msgid, context)
