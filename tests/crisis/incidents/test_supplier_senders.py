"""Suppliers' sender addresses: typed one a line on /suppliers (exact addresses and @domain),
checked with clear Swedish errors, and matched exact first, then domain, then the supplier's
e-mail domain."""

from __future__ import annotations

import pytest

from core.extensions import db
from crisis.incidents.email_ingest import supplier_for
from crisis.incidents.models import Supplier
from tests.conftest import csrf_token_from, log_in


@pytest.fixture
def app(make_app):
    return make_app()


def test_exact_sender_addresses_win_over_domains_and_the_suppliers_email_domain(app, clock):
    with app.app_context():
        wide = Supplier(name="Brett", email="info@telia.se", is_active=True, created_at=clock.now())
        domain = Supplier(name="Domän", sender_addresses="@drift.telia.se", is_active=True, created_at=clock.now())
        exact = Supplier(name="Exakt", sender_addresses="noc@drift.telia.se", is_active=True, created_at=clock.now())
        db.session.add_all([wide, domain, exact])
        db.session.commit()
        assert supplier_for(db.session, ["NOC@drift.telia.se"]).name == "Exakt"
        assert supplier_for(db.session, ["larm@drift.telia.se"]).name == "Domän"
        assert supplier_for(db.session, ["kundtjanst@telia.se"]).name == "Brett"
        assert supplier_for(db.session, ["someone@example.org"]) is None


def test_sender_addresses_are_edited_one_a_line_and_bad_lines_named(app, client, make_user):
    _, username, password = make_user("team")
    log_in(client, username, password)
    token = csrf_token_from(client.get("/suppliers/new").get_data(as_text=True))
    bad = client.post(
        "/suppliers/new",
        data={"name": "Careium", "sender_addresses": "drift@careium.se\ninte en adress", "csrf_token": token},
    )
    assert bad.status_code == 400
    assert "Rad 2: inte en adress är ingen e-postadress" in bad.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Supplier).count() == 0  # nothing half-saved
    good = client.post(
        "/suppliers/new",
        data={
            "name": "Careium",
            "sender_addresses": " Drift@Careium.se \n\n@CAREIUM.se\ndrift@careium.se",
            "csrf_token": token,
        },
    )
    assert good.status_code == 302
    with app.app_context():
        supplier = db.session.query(Supplier).one()
        assert supplier.sender_address_list == ["drift@careium.se", "@careium.se"]
    edit = client.get(f"/suppliers/{supplier.id}/edit").get_data(as_text=True)
    assert "drift@careium.se\n@careium.se</textarea>" in edit
