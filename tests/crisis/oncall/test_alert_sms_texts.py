"""Every staff alert SMS tells how to acknowledge it by reply, and stays within two segments with
long names, long links and the alert's code."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from notifications.rendering import render

TITLE = "GSM-nätet nere i Västerort och delar av Norra distriktet efter stormen Ylva i natt"  # > 60
LINK = "https://krisrutin.lindesbergs-kommun.example.se/incidents/123456"
PROVIDER = "Hemtjänst Norra distriktet, nattpatrullen och larmgruppen i Västerort"  # > 40
INCIDENT = SimpleNamespace(title=TITLE, planned=False)
KINDS = {
    "crisis.alert": {"incident": INCIDENT, "link": LINK, "escalation": True, "step": 1, "service": "Trygghetslarm"},
    "crisis.handover": {"incident": INCIDENT, "link": LINK, "to_party": "on_call", "realert": True},
    "crisis.followup.update_due": {"incident": INCIDENT, "link": LINK, "since": "2026-11-28 02:10"},
    "crisis.followup.expected_end": {
        "incident": INCIDENT,
        "link": LINK,
        "expected_end": "2026-11-28 06:00",
        "asked": False,
    },
    "crisis.followup.call_list": {
        "incident": INCIDENT,
        "link": LINK,
        "providers": 12,
        "letter_number": 3,
        "calls_link": LINK + "/calls",
    },
    "crisis.supplier_update": {
        "incident": INCIDENT,
        "link": LINK,
        "supplier": "Telia Company AB, driftcentralen för företagskunder",
        "resolved": True,
        "expected_end": "2026-11-28 06:00",
        "comment": "",
    },
    "crisis.visit.escalation": {
        "provider": PROVIDER,
        "count": 14,
        "first_due": "2026-11-28 03:30",
        "alerted": "2026-11-28 02:40",
        "calls_link": LINK + "/visits/calls",
        "dashboard_link": LINK + "/visits",
        "name": "Bo",
    },
    "crisis.visit.overdue": {
        "provider": PROVIDER,
        "count": 9,
        "visits": [{"reference": f"K{n}", "due": f"0{n}:30"} for n in range(1, 10)],
        "calls_link": LINK + "/visits/calls",
        "dashboard_link": LINK + "/visits",
        "name": "Bo",
    },
    "oncall.reminder": {"what": f'driftstörning "{TITLE}"', "link": LINK},
}
INSTRUCTIONS = {
    ("sv", False): "Svara 1 för att kvittera.",
    ("sv", True): "Svara 1 123456 för att kvittera.",
    ("en", False): "Reply 1 to acknowledge.",
    ("en", True): "Reply 1 123456 to acknowledge.",
}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("language", ["sv", "en"])
@pytest.mark.parametrize("several", [False, True])
def test_every_staff_alert_sms_ends_with_the_instruction_within_two_segments(kind, language, several):
    context = {**KINDS[kind], "ack_code": 123456, "ack_several": several}
    message = render(kind, language, context, sender="Lindesbergs kommun")
    assert message.sms.endswith(" " + INSTRUCTIONS[(language, several)])
    length = message.sms_length
    assert (length.encoding, length.segments <= 2) == ("GSM-7", True), (message.sms, length)
