"""The register's list (kontaktregistret): search, the status and problem filters, Swedish order
and pages, read from the database for the list page.

Search is done in Python over the register's rows rather than in SQL: SQLite's ``lower()``
leaves å, ä and ö alone, and a municipality's register (hundreds of providers, thousands of
contacts) is read in milliseconds. The list pages by provider, each with the contacts that
match; providers sort in Swedish order (å, ä, ö after z).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select

from contacts import register
from contacts.models import ContactPerson, Provider

PAGE_SIZE = 25


def swedish_key(text: str) -> str:
    """Sort key in Swedish alphabetical order (å, ä, ö after z), ignoring case."""
    return " ".join(text.split()).casefold().translate({ord("å"): "{", ord("ä"): "|", ord("ö"): "}"})


@dataclass
class ProviderEntry:
    provider: Provider
    contacts: list[ContactPerson]
    without_active_contact: bool
    contact_count: int


@dataclass
class Listing:
    entries: list[ProviderEntry]
    total: int  # providers matching
    page: int
    pages: int
    flagged_providers: int  # active providers without an active contact (whole register)
    contacts_with_problems: int  # active contacts with problems (whole register)


def _digits(text: str | None) -> str:
    return re.sub(r"\D", "", text or "")


def listing(db_session, *, query: str = "", status: str = "active", problems_only: bool = False, page: int = 1):
    """The providers (and their contacts) matching a search, a status and the problem filter."""
    needle = " ".join(query.split()).casefold()
    digits = ""
    if re.fullmatch(r"[\d\s+()-]+", query) and len(_digits(query)) >= 4:
        # A phone number, or a part of one: compared digit by digit, 070… read as +4670….
        digits = _digits(query)
        digits = "46" + digits[1:] if digits.startswith("0") and not digits.startswith("00") else digits.lstrip("0")

    def text_match(*values) -> bool:
        return bool(needle) and any(needle in " ".join((value or "").split()).casefold() for value in values)

    providers = db_session.execute(
        select(Provider.id, Provider.name, Provider.organisation_number, Provider.is_active)
    ).all()
    contacts_by_provider = defaultdict(list)
    for row in db_session.execute(
        select(
            ContactPerson.id,
            ContactPerson.provider_id,
            ContactPerson.name,
            ContactPerson.role_title,
            ContactPerson.mobile,
            ContactPerson.email,
            ContactPerson.is_active,
            ContactPerson.mobile_failing_since,
            ContactPerson.email_failing_since,
        )
    ):
        contacts_by_provider[row.provider_id].append(row)

    chosen: list[tuple[object, list, bool, int]] = []
    flagged_total = problems_total = 0
    for provider in providers:
        everyone = contacts_by_provider.get(provider.id, [])
        flagged = provider.is_active and not any(contact.is_active for contact in everyone)
        flagged_total += flagged
        problems_total += sum(
            1 for c in everyone if provider.is_active and c.is_active and register.contact_problems(c)
        )
        if status == "active":
            if not provider.is_active:
                continue
            shown = [c for c in everyone if c.is_active]
        elif status == "inactive":
            shown = everyone if not provider.is_active else [c for c in everyone if not c.is_active]
        else:
            shown = list(everyone)
        if needle:
            provider_hit = text_match(provider.name, provider.organisation_number) or (
                digits and digits in _digits(provider.organisation_number)
            )
            if not provider_hit:
                shown = [
                    c
                    for c in shown
                    if text_match(c.name, c.email, c.role_title, c.mobile) or (digits and digits in _digits(c.mobile))
                ]
                if not shown:
                    continue
        if problems_only:
            shown = [c for c in shown if c.is_active and register.contact_problems(c)]
            if not shown and not flagged:
                continue
        if status == "inactive" and provider.is_active and not shown:
            continue
        chosen.append((provider, shown, flagged, len(everyone)))

    chosen.sort(key=lambda item: swedish_key(item[0].name))
    pages = max(1, -(-len(chosen) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    window = chosen[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    provider_objects = {
        p.id: p for p in db_session.scalars(select(Provider).where(Provider.id.in_([item[0].id for item in window])))
    }
    contact_ids = [c.id for item in window for c in item[1]]
    contact_objects = {
        c.id: c for c in db_session.scalars(select(ContactPerson).where(ContactPerson.id.in_(contact_ids)))
    }
    entries = [
        ProviderEntry(
            provider_objects[provider.id],
            sorted((contact_objects[c.id] for c in shown), key=lambda c: (swedish_key(c.name), c.id)),
            flagged,
            count,
        )
        for provider, shown, flagged, count in window
    ]
    return Listing(entries, len(chosen), page, pages, flagged_total, problems_total)
