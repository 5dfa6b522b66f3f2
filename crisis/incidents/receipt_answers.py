"""The provider's answer to "Har ni startat era lokala rutiner?" on the letter receipt page.

Stored as it was answered in :attr:`LetterReceipt.local_routines` (one of :data:`ANSWERS`), and
shown in words everywhere a receipt is shown (the provider's page, the incident page, the export
and its print). ``None`` on an acknowledged receipt means the question was not asked: the
receipt was acknowledged by the team on the phone (a "reached" call), or before the question
existed and without the old box ticked being meaningful (see the migration ``c4e2a7b19d03``:
old "started" rows became "yes", old "not started" rows "not_yet").
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
