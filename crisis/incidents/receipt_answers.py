"""The provider's answer to "Har ni startat era lokala rutiner?" on the letter receipt page.

Stored as it was answered in :attr:`LetterReceipt.local_routines` (one of :data:`ANSWERS`), and
shown in words everywhere a receipt is shown (the provider's page, the incident page and its
timeline, the export and its print). ``None`` on an acknowledged receipt means the question was
not asked: the team acknowledged it on the phone (a "reached" call). Receipts from before the
question (a pre-ticked box) were migrated by ``c4e2a7b19d03``: ticked became "yes", unticked
"not_yet" — nobody should read an unticked box as "not needed".
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

YES = "yes"
NOT_YET = "not_yet"
NOT_NEEDED = "not_needed"
ANSWERS = (YES, NOT_YET, NOT_NEEDED)  # in the order the page offers them

QUESTION = _l("Har ni startat era lokala rutiner?")
LABELS = {YES: _l("Ja"), NOT_YET: _l("Nej, inte än"), NOT_NEEDED: _l("Behövs inte")}
NOT_ASKED = _l("Inte tillfrågad (kvitterat per telefon)")


def answer_label(value: str | None) -> str:
    """The answer in words, in the page's language; a receipt without an answer was not asked."""
    return str(LABELS[value]) if value in LABELS else str(NOT_ASKED)


def init_app(app) -> None:
    app.add_template_global(answer_label, "local_routines_label")
    app.add_template_global(QUESTION, "local_routines_question")
