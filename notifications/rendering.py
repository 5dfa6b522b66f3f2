"""Rendering a message kind to its e-mail subject, plain and HTML bodies, SMS text and call text.

Each kind has up to five templates in ``notifications/templates/messages/<language>/``:
``<kind>.subject.txt``, ``<kind>.txt`` (plain e-mail), ``<kind>.html`` (HTML e-mail),
``<kind>.sms.txt`` and ``<kind>.call.txt`` (what a phone call says: plain text, no links, read
aloud in Swedish; it is made one paragraph, since a speech engine reads line breaks as nothing).
A kind may be e-mail only or SMS only, but an e-mail needs a subject and a plain body; HTML is
optional. A language without the kind falls back to Swedish.

Every SMS names its sender: :func:`render` starts the text with the organisation's name
(``ORGANISATION_NAME``, ``settings.organisation_name``) and a colon, here and only here, so no
template says who sends (a template's own "Krisrutin: " at the start gives way to the name rather
than follow it). The team's pages preview a message by calling :func:`render` too, so a preview
is what is queued, sender and segments included.

:func:`render_many` renders one kind for many recipients whose contexts differ only in a few
personal strings (a letter's greeting, provider and link): the templates run once, with
placeholders that each recipient's values replace, and the result is what :func:`render` gives
each of them (see its docstring for what the templates may then do with a personal value).

The environment is our own, not Flask's, so dispatchers and CLI commands render without a
request. Undefined variables are errors (a blank where a name should be is worse than a failed
render), and only .html templates are autoescaped.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import jinja2
from flask import current_app, has_app_context
from markupsafe import escape

from core.words import count_noun
from notifications.segments import SmsLength, count_segments

log = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates" / "messages"
DEFAULT_LANGUAGE = "sv"
_KIND = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")
_LANGUAGE = re.compile(r"[a-z]{2}")


class RenderError(Exception):
    """An unknown kind, or a template that cannot be rendered with the context given."""


@dataclass(frozen=True)
class RenderedMessage:
    subject: str | None  # None when the kind has no e-mail
    text: str | None
    html: str | None
    sms: str | None  # None when the kind has no SMS
    language: str  # the language actually rendered (after falling back)
    call: str | None = None  # what a phone call says; None when the kind has no call text

    @property
    def sms_length(self) -> SmsLength | None:
        return count_segments(self.sms) if self.sms is not None else None


class SmsPreview(NamedTuple):
    text: str
    length: SmsLength


def _http_url(value: Any) -> str:
    """A link for an href: only http(s), so a context value cannot become javascript:."""
    url = str(value)
    if urlsplit(url).scheme not in ("http", "https"):
        raise RenderError(f"not an http(s) link: {url[:40]!r}")
    return url


def _paragraphs(value: Any) -> list[list[str]]:
    """Text split into paragraphs (at blank lines), each a list of its lines."""
    blocks = re.split(r"\n\s*\n", str(value).strip())
    return [[line.strip() for line in block.splitlines()] for block in blocks if block.strip()]


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )
    env.filters["http_url"] = _http_url
    env.filters["paragraphs"] = _paragraphs
    env.filters["count_noun"] = count_noun
    return env


def normalize_sms(text: str) -> str:
    """SMS text as sent: lines stripped, runs of spaces made one, at most one blank line in a row."""
    lines = [" ".join(line.split()) for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


SERVICE_LABEL = "Krisrutin: "  # what templates said before the sender was named centrally


def sms_sender() -> str | None:
    """The organisation every SMS names as its sender: the running app's ``organisation_name``."""
    if not has_app_context():
        return None
    settings = current_app.extensions.get("krisrutin.settings")
    if settings is None:
        return None
    return settings.organisation_name.strip() or None


def signed_sms(text: str, sender: str | None) -> str:
    """``text`` starting with "<sender>: " (once: a text that already starts so is left as it is)."""
    if not sender:
        return text
    text = text.removeprefix(SERVICE_LABEL)
    return text if text.startswith(f"{sender}: ") else f"{sender}: {text}"


def sms_preview(text: str) -> SmsPreview:
    """The SMS as it will be sent, and its length in segments (for pages that show the cost)."""
    normalized = normalize_sms(text)
    return SmsPreview(normalized, count_segments(normalized))


def _exists(language: str, name: str) -> bool:
    return (TEMPLATE_DIR / language / name).is_file()


@cache  # the template files are fixed while the process runs (the environment does not reload either)
def _parts(language: str, kind: str) -> dict[str, str]:
    names = {
        "subject": f"{kind}.subject.txt",
        "text": f"{kind}.txt",
        "html": f"{kind}.html",
        "sms": f"{kind}.sms.txt",
        "call": f"{kind}.call.txt",
    }
    return {part: f"{language}/{name}" for part, name in names.items() if _exists(language, name)}


def _render_parts(kind: str, language: str, context: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The language rendered (after falling back) and each template's output, before any tidying."""
    if not _KIND.fullmatch(kind):
        raise RenderError(f"not a message kind: {kind!r}")
    language = language if _LANGUAGE.fullmatch(language or "") else DEFAULT_LANGUAGE
    parts = _parts(language, kind)
    if not parts and language != DEFAULT_LANGUAGE:
        language = DEFAULT_LANGUAGE
        parts = _parts(language, kind)
    if not parts:
        raise RenderError(f"unknown message kind: {kind!r}")
    if ("subject" in parts) != ("text" in parts) or ("html" in parts and "text" not in parts):
        raise RenderError(f"message kind {kind!r} ({language}): an e-mail needs both a subject and a plain body")

    env = environment()
    rendered: dict[str, str] = {}
    for part, name in parts.items():
        try:
            rendered[part] = env.get_template(name).render(context)
        except jinja2.UndefinedError as error:
            raise RenderError(f"{name}: {error.message}") from error
        except jinja2.TemplateError as error:
            raise RenderError(f"{name}: {error}") from error
    return language, rendered


def _finish(rendered: dict[str, str], language: str, sender: str | None) -> RenderedMessage:
    subject = rendered.get("subject")
    return RenderedMessage(
        # One line: a line break in a header would end it.
        subject=" ".join(subject.split()) if subject is not None else None,
        text=rendered["text"].strip() + "\n" if "text" in rendered else None,
        html=rendered.get("html"),
        sms=signed_sms(normalize_sms(rendered["sms"]), sender) if "sms" in rendered else None,
        language=language,
        call=" ".join(rendered["call"].split()) if "call" in rendered else None,
    )


def render(kind: str, language: str, context: dict[str, Any], *, sender: str | None = None) -> RenderedMessage:
    """Render every template of ``kind`` in ``language`` (or Swedish when it has none) with
    ``context``; the SMS names ``sender`` (by default the running app's organisation)."""
    language, rendered = _render_parts(kind, language, context)
    return _finish(rendered, language, sender or sms_sender())


def render_many(
    kind: str,
    language: str,
    shared: dict[str, Any],
    personal: Sequence[Mapping[str, Any]],
    *,
    links: Collection[str] = (),
    sender: str | None = None,
) -> list[RenderedMessage]:
    """``render(kind, language, {**shared, **p})`` for each ``p`` in ``personal``, in order, with
    the templates run once rather than once per recipient (a letter to 3,000 contacts).

    How: the templates are rendered once with a placeholder for each personal value (the keys
    of ``personal``); each recipient's message is that output with the placeholders replaced by
    its values (HTML-escaped in the HTML part, as autoescaping would), then tidied as
    :func:`render` tidies (the subject made one line, the SMS normalised and signed). So the
    subject, bodies and SMS are exactly what :func:`render` gives, provided the templates only
    print a personal value or test it for truth; they may not compute with it (``name|upper``,
    ``name == ...``, its length). Checked, not assumed, where it can be cheaply: the first
    recipient is also rendered in full, and if the two differ every recipient is rendered in
    full (logged as a warning). A recipient whose personal value is not a non-empty string (a
    placeholder is always true) is rendered in full. ``links`` names the personal values the
    templates show as links: each must be an http(s) link, as the ``http_url`` filter demands.
    """
    sender = sender or sms_sender()
    if len(personal) < 2:
        return [render(kind, language, {**shared, **values}, sender=sender) for values in personal]
    keys = sorted(set().union(*personal))
    if not keys:  # nothing personal: one message for all
        return [render(kind, language, shared, sender=sender)] * len(personal)
    token = secrets.token_hex(8)
    slots = {key: f"https://slot{index}x{token}.invalid" for index, key in enumerate(keys)}
    language_used, raw = _render_parts(kind, language, {**shared, **slots})
    key_of = {slot: key for key, slot in slots.items()}
    splitter = re.compile("(" + "|".join(re.escape(slot) for slot in slots.values()) + ")")
    # Each part as [text, slot, text, slot, ..., text]: the slots at the odd places.
    pieces = {part: splitter.split(text) for part, text in raw.items()}

    def filled(values: Mapping[str, Any]) -> RenderedMessage:
        escaped = {key: str(escape(value)) for key, value in values.items()}
        rendered = {}
        for part, split in pieces.items():
            chosen = escaped if part == "html" else values
            rendered[part] = "".join(piece if at % 2 == 0 else chosen[key_of[piece]] for at, piece in enumerate(split))
        return _finish(rendered, language_used, sender)

    def fillable(values: Mapping[str, Any]) -> bool:
        return len(values) == len(keys) and all(isinstance(value, str) and value for value in values.values())

    messages: list[RenderedMessage] = []
    checked = False
    for values in personal:
        for key in links:
            if key in values:
                _http_url(values[key])
        if not fillable(values):
            messages.append(render(kind, language, {**shared, **values}, sender=sender))
            continue
        message = filled(values)
        if not checked:
            checked = True
            if message != render(kind, language, {**shared, **values}, sender=sender):
                log.warning(
                    "message templates compute with a personal value: rendered once per recipient",
                    extra={"kind": kind, "language": language_used, "recipients": len(personal)},
                )
                return [render(kind, language, {**shared, **values}, sender=sender) for values in personal]
        messages.append(message)
    return messages
