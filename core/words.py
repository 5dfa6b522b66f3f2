"""Counts with their nouns: "1 försenat besök", "2 försenade besök".

One small helper, used by the message templates (the ``count_noun`` filter of
:mod:`notifications.rendering`) and the pages (the same filter, registered on the app by
:func:`core.i18n.init_app`). The caller gives both forms, so the helper knows no language: on
pages the forms come through ``_()`` like any text, in messages the template is per language.
"""

from __future__ import annotations


def count_noun(count: int, singular: str, plural: str) -> str:
    """``count`` and the noun in the form that count needs: the singular for exactly one."""
    return f"{count} {singular if count == 1 else plural}"
