"""The register's demo data: three fictional providers and their contact persons (see core/demo.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from contacts import register

DEMO_PROVIDERS = (
    (
        "Hemtjänst Exempelstad Norr (demo)",
        "212000-0001",
        "municipal",
        (
            ("Karin Exempelsson", "Enhetschef", "+46701740605", "karin.norr@example.se"),
            ("Omar Demosson", "Samordnare natt", "+46701740606", "omar.norr@example.se"),
        ),
    ),
    (
        "Omsorgsbolaget Fiktiv AB (demo)",
        "559999-0206",
        "private",
        (("Lena Påhittad", "Verksamhetschef", "+46701740607", "lena@omsorgsbolaget.example.se"),),
    ),
    (
        "Trygg Vardag Demo AB (demo)",
        "559999-0305",
        "private",
        (("Åsa Övningsdotter", "Kvalitetsansvarig", "+46701740608", "asa@tryggvardag.example.se"),),
    ),
)


def load(db_session: Session, now: datetime) -> None:
    """The demo providers and their contacts that do not exist yet.

    They go through the register's rules as the source ``demo``, so they have a history like any
    other record."""
    actor = register.Actor("demo")
    for name, org, kind, contacts in DEMO_PROVIDERS:
        if register.find_provider_by_name(db_session, name) is not None:
            continue
        provider = register.create_provider(
            db_session, {"name": name, "organisation_number": org, "kind": kind}, actor=actor, now=now
        ).record
        for person, title, mobile, email in contacts:
            register.create_contact(
                db_session,
                provider,
                {
                    "name": person,
                    "role_title": title,
                    "mobile": mobile,
                    "email": email,
                    "services": ["camera_supervision", "alarms"],
                },
                actor=actor,
                now=now,
            )
