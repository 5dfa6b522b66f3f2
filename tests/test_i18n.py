"""Swedish first, English second: every text in the service has an English translation."""

import functools
import os

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from config.settings import ROOT

METHOD_MAP = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
SKIP = (".venv", "tests", "bench", "migrations")


def _walked(path: str) -> bool:
    """Babel's default (no hidden or underscored folders), and not the folders SKIP names."""
    name = os.path.basename(path)
    return not name.startswith((".", "_")) and os.path.relpath(path, ROOT).split(os.sep)[0] not in SKIP


@functools.cache
def source_messages() -> frozenset[str]:
    """The texts of the service (extracted once for this module's tests)."""
    found = set()
    for filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT),
        METHOD_MAP,
        keywords={"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None},
        directory_filter=_walked,
    ):
        if filename.split("/")[0] in SKIP:
            continue
        found.add(message if isinstance(message, str) else message[0])
    return frozenset(found)


def test_every_text_has_an_english_translation():
    with open(ROOT / "translations" / "en" / "LC_MESSAGES" / "messages.po", "rb") as handle:
        catalogue = read_po(handle)
    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in catalogue if m.id and m.string}
    missing = sorted(source_messages() - translated)
    assert not missing, f"add English translations for: {missing}"


def test_the_extraction_finds_the_services_texts():
    messages = source_messages()
    assert "Logga in" in messages and "Ansvarar just nu:" in messages


def test_every_page_sets_its_language(app, client, make_user):
    from tests.conftest import log_in

    _, username, password = make_user("admin")
    log_in(client, username, password)
    pages = 0
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.arguments:
            continue
        for lang in ("sv", "en"):
            response = client.get(rule.rule, query_string={"lang": lang})
            if response.mimetype != "text/html":
                continue
            assert f'<html lang="{lang}">' in response.get_data(as_text=True), rule.rule
            pages += 1
    # the error pages too
    assert '<html lang="en">' in client.get("/no-such-page").get_data(as_text=True)
    assert pages >= 4
