"""Languages: Swedish first, English second.

The language is Swedish unless the visitor chose English with ``?lang=en`` (remembered in the
session) — no endpoint of its own, so the choice works on every page, public ones included.
Source strings are written in Swedish, the primary language, so a missing translation shows
Swedish rather than a half-English page; translations/en holds the English catalogue.
Catalogues live in translations/<lang>/LC_MESSAGES/messages.po; the compiled .mo files are
built from them when missing or older (at start-up), so a fresh clone needs no extra step.
"""

from __future__ import annotations

import logging
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import request, session

from config.settings import ROOT
from core.words import count_noun

log = logging.getLogger(__name__)
LANGUAGES = ("sv", "en")
DEFAULT_LANGUAGE = "sv"
TRANSLATIONS = ROOT / "translations"


def select_locale() -> str:
    chosen = request.args.get("lang")
    if chosen in LANGUAGES:
        if session.get("lang") != chosen:
            session["lang"] = chosen
        return chosen
    remembered = session.get("lang")
    return remembered if remembered in LANGUAGES else DEFAULT_LANGUAGE


def compile_catalogues(directory: Path = TRANSLATIONS) -> None:
    """Compile every messages.po whose .mo is missing or older."""
    for po_path in directory.glob("*/LC_MESSAGES/messages.po"):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        try:
            with open(po_path, "rb") as source:
                catalogue = read_po(source)
            with open(mo_path, "wb") as target:
                write_mo(target, catalogue)
        except OSError as error:  # a read-only deployment ships compiled catalogues
            log.warning("could not compile %s: %s", po_path.relative_to(directory), error)


def init_app(app, babel) -> None:
    compile_catalogues()
    babel.init_app(app, locale_selector=select_locale)
    app.add_template_filter(count_noun, "count_noun")  # "1 försenat besök", "2 försenade besök"

    @app.context_processor
    def languages():
        from flask_babel import get_locale

        current = str(get_locale() or DEFAULT_LANGUAGE)
        return {"current_language": current, "other_language": "en" if current == "sv" else "sv"}
