"""The text boundary: every text that enters the service passes here before any rule sees it.

What it does to a text (:func:`clean`):

- **NFC.** The same word is the same string: "å" typed as one character or as "a" plus a
  combining ring is stored one way, so searches, uniqueness ("Omsorg AB" once) and comparisons
  hold.
- **Refuses** (:class:`TextRefused`, naming the field, in Swedish) a text holding a character
  that cannot be stored or that hides what the text says: a lone surrogate (``"\\ud800"`` is
  legal JSON but no character; the databases refuse it and a page rendering it fails), NUL
  (PostgreSQL refuses it, mail headers break on it), the other C0 and C1 control characters
  (escape, backspace, vertical tab, U+0085, ...), and the bidirectional embedding, override and
  isolate characters U+202A–U+202E and U+2066–U+2069, which make a text read differently from
  what it holds (a provider named with U+202E shows reversed; "Trojan Source").
- **Lines.** Tab and line breaks are whitespace, never refused. Where a field allows lines
  (``lines=True``: a letter's text, a comment) they are kept, ``\\r\\n``, ``\\r`` and U+2028/U+2029
  becoming ``\\n``; in a one-line field (a name, a subject) every run of whitespace becomes one
  space, ends trimmed, so a tab or a line break is never stored there. Folding, not refusing:
  they come from pasted or wrapped text whose meaning is plain, and the register always read
  names that way.
- **Limits.** ``max_length`` per field, counted after normalising.

U+200E and U+200F (the left-to-right and right-to-left *marks*) and U+061C (the Arabic letter
mark) are allowed: unlike the embeddings and overrides they reorder nothing, they only give
neutral characters next to them a direction, and a name or a letter mixing Arabic or Hebrew
script with Swedish may need them to show right.

:func:`scrub` is the same rule for text that cannot be refused because nobody could be told (a
supplier's forwarded e-mail, an inbound SMS): the characters are removed (a lone surrogate
becomes U+FFFD) instead. :func:`load_json` is the one JSON reader of request bodies: it refuses
a key given twice in one object and cleans every string (keys too) with the field's path
(``letter.body``, ``clients[0].area``). :func:`unsendable` is the outbox's check (notifications
refuses to queue a message whose text holds such a character).
"""

from __future__ import annotations

import json
import re
import unicodedata

from flask import has_request_context
from flask_babel import gettext

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
WHITESPACE_CONTROLS = frozenset("\t\n\r")
# Everything refused, surrogates aside: C0 and C1 controls but tab, LF and CR; DEL; the bidi controls.
_REFUSED_RANGES = ((0x00, 0x08), (0x0B, 0x0C), (0x0E, 0x1F), (0x7F, 0x9F), (0x202A, 0x202E), (0x2066, 0x2069))
_FORBIDDEN = re.compile("[\ud800-\udfff" + "".join(f"{chr(low)}-{chr(high)}" for low, high in _REFUSED_RANGES) + "]")
# The same rule as a JSON Schema ``pattern`` (ECMA-262) for the API's description; a JSON string
# holds no lone surrogate once decoded, so the pattern needs no surrogate range.
TEXT_PATTERN = "^[^" + "".join(f"\\u{low:04x}-\\u{high:04x}" for low, high in _REFUSED_RANGES) + "]*$"
_LINE_BREAKS = re.compile("\r\n|[\r\u2028\u2029]")


def _(message: str, **values) -> str:
    """``message`` in the request's language; Swedish outside a request (the CLI's imports)."""
    if has_request_context():
        return gettext(message, **values)
    return message % values if values else message


class TextRefused(ValueError):
    """A text was refused: ``field`` (its name or path, may be empty), ``message`` (Swedish,
    without the field's name) and the offending character, if one was."""

    def __init__(self, field: str, message: str, char: str | None = None):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        self.char = char


class DuplicateKey(ValueError):
    """A JSON object named the same key twice."""

    def __init__(self, key: str):
        super().__init__(f'the key "{key}" appears more than once in one object')
        self.key = key


def _code(char: str) -> str:
    return f"U+{ord(char):04X}"


def describe(char: str) -> str:
    """The refused character in Swedish words, with its code point: "NUL-tecknet (U+0000)"."""
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        return _("ett ofullständigt tecken (%(code)s, ett ensamt surrogat)", code=_code(char))
    if code == 0:
        return _("NUL-tecknet (%(code)s)", code=_code(char))
    if char in BIDI_CONTROLS:
        return _("ett osynligt tecken som ändrar textens riktning (%(code)s)", code=_code(char))
    return _("ett osynligt styrtecken (%(code)s)", code=_code(char))


def first_forbidden(text: str) -> str | None:
    """The first character of ``text`` the boundary refuses, or None."""
    match = _FORBIDDEN.search(text)
    return match.group(0) if match else None


def refusal(text: str) -> str | None:
    """Why ``text`` cannot be taken (Swedish), or None when it can."""
    char = first_forbidden(text)
    if char is None:
        return None
    return _(
        "Texten kan inte tas emot: den innehåller %(what)s. Skriv den utan tecknet "
        "(inklistrad text kan bära med sig osynliga tecken).",
        what=describe(char),
    )


def one_line(text: str) -> str:
    """Every run of whitespace (tabs and line breaks too) as one space, ends trimmed."""
    return " ".join(text.split())


def clean(text: str, *, field: str = "", lines: bool = True, max_length: int | None = None) -> str:
    """``text`` as the service stores it (see the module docstring), or :class:`TextRefused`."""
    char = first_forbidden(text)
    if char is not None:
        raise TextRefused(field, refusal(text), char)
    text = unicodedata.normalize("NFC", text)
    text = _LINE_BREAKS.sub("\n", text) if lines else one_line(text)
    if max_length is not None and len(text) > max_length:
        raise TextRefused(field, _("Texten får vara högst %(max)s tecken.", max=f"{max_length:,}".replace(",", " ")))
    return text


def scrub(text: str, *, lines: bool = True) -> str:
    """``text`` without the refused characters (a lone surrogate becomes U+FFFD), normalised as
    :func:`clean` does: for text nobody can be asked to correct."""

    def replace(match: re.Match) -> str:
        return "\ufffd" if 0xD800 <= ord(match.group(0)) <= 0xDFFF else ""

    text = unicodedata.normalize("NFC", _FORBIDDEN.sub(replace, text))
    return _LINE_BREAKS.sub("\n", text) if lines else one_line(text)


def unsendable(text: str | None, *, lines: bool = True) -> str | None:
    """The code point of the first character that must not be sent in ``text`` ("U+0000"), or
    None: what :func:`clean` refuses, and in a one-line text (a subject) tabs and line breaks."""
    if not text:
        return None
    char = first_forbidden(text) or (None if lines else next((c for c in text if c in WHITESPACE_CONTROLS), None))
    return _code(char) if char is not None else None


# --- JSON ----------------------------------------------------------------------------------------


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(scrub(key, lines=False))
        result[key] = value
    return result


def _clean_tree(value, path: str):
    if isinstance(value, str):
        return clean(value, field=path)
    if isinstance(value, list):
        return [_clean_tree(item, f"{path}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, dict):
        cleaned: dict = {}
        for key, item in value.items():
            shown = scrub(key, lines=False)
            name = clean(key, field=f"{path}.{shown}" if path else shown)
            if name in cleaned:  # two keys that differ only before NFC
                raise DuplicateKey(name)
            cleaned[name] = _clean_tree(item, f"{path}.{name}" if path else name)
        return cleaned
    return value


def load_json(text: str, **options):
    """The JSON document ``text`` with every string cleaned (:func:`clean`, lines allowed: a
    field's own rule folds a one-line field). Raises :class:`json.JSONDecodeError` (and what the
    ``options``' hooks raise), :class:`DuplicateKey`, or :class:`TextRefused` whose ``field`` is
    the string's path."""
    return _clean_tree(json.loads(text, object_pairs_hook=_unique_keys, **options), "")
