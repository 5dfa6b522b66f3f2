"""The roles of the service (see ../shared/DOMAIN.md, "Who uses it")."""

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    TEAM = "team"  # välfärdsteknikteamet
    ON_CALL = "on_call"  # tjänsteman i beredskap (TIB)
    PROVIDER = "provider"  # kontaktperson hos ytterst ansvarig utförare
    ALARM_OPERATOR = "alarm_operator"  # larmoperatör
    SUPPLIER = "supplier"  # leverantör (Telia, Careium): posts notices with an API token

    @property
    def is_staff(self) -> bool:
        """Staff log in with a password; provider contacts mostly use signed links."""
        return self in (Role.ADMIN, Role.TEAM, Role.ON_CALL)


STAFF = (Role.ADMIN, Role.TEAM, Role.ON_CALL)
ALL_ROLES = tuple(Role)
