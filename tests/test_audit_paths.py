"""No capability in the audit log: a path with a secret in it (a signed link's token, a calendar
feed's token) is stored cut to the link's kind and row id, so whoever reads or exports the log
cannot open what the link opens."""

from __future__ import annotations

import json
import re

import pytest

from accounts.models import User
from core import audit
from crisis.oncall.views import feed_token
from tests.conftest import build_app, csrf_token_from
from tests.test_audit_helpers import PERSONAL, audit_rows, build_world

LINK_PATH = re.compile(r"^/(d|v|k|roster/feed)/")

# Every URL argument that accepts more than digits, reviewed: plain values (shown in the log as
# they are) or secrets (declared with core.audit.secret_in_path and cut in the log).
PLAIN_ARGUMENTS = {
    ("checks.calls", "month"),
    ("checks.month", "month"),
    ("checks.record_call", "month"),
    ("checks.report", "month"),
    ("notifications.deliveries", "ref_type"),
    ("notifications.deliveries", "ref_id"),
    ("privacy.erase_page", "contact_id"),
    ("privacy.extract_json", "contact_id"),
    ("privacy.extract_page", "contact_id"),
    ("register.contact_history", "contact_id"),
    ("register.deactivate_contact", "contact_id"),
    ("register.deactivate_provider", "provider_id"),
    ("register.edit_contact", "contact_id"),
    ("register.edit_provider", "provider_id"),
    ("register.new_contact", "provider_id"),
    ("register.provider", "provider_id"),
    ("register.provider_history", "provider_id"),
    ("register.reactivate_contact", "contact_id"),
    ("register.reactivate_provider", "provider_id"),
    ("static", "filename"),
    ("supervision_api.delete_client", "reference"),  # the client's reference: an id, not a key
}
SECRET_ARGUMENTS = {
    ("check_public.correct", "token"),
    ("check_public.link", "token"),
    ("provider_page.page", "token"),
    ("roster.feed", "token"),
    ("visit_page.mark", "token"),
    ("visit_page.page", "token"),
}


@pytest.fixture
def url_map_app(sqlite_url, clock):
    return build_app(sqlite_url, clock)


def _digits_only(converter) -> bool:
    pattern = re.compile(converter.regex)
    return pattern.fullmatch("12") is not None and pattern.fullmatch("x") is None


def test_every_url_argument_that_can_hold_a_secret_is_reviewed(url_map_app):
    arguments = {
        (rule.endpoint, name): converter
        for rule in url_map_app.url_map.iter_rules()
        for name, converter in rule._converters.items()
    }
    free_text = {key for key, converter in arguments.items() if not _digits_only(converter)}
    declared = {
        (endpoint, name) for endpoint, names in audit.secret_path_arguments(url_map_app).items() for name in names
    }
    assert declared == SECRET_ARGUMENTS
    assert not PLAIN_ARGUMENTS & SECRET_ARGUMENTS
    unreviewed = free_text - PLAIN_ARGUMENTS - SECRET_ARGUMENTS
    assert not unreviewed, f"a secret (core.audit.secret_in_path) or a plain value (PLAIN_ARGUMENTS)? {unreviewed}"
    assert not (PLAIN_ARGUMENTS | SECRET_ARGUMENTS) - set(arguments), "reviewed arguments that no longer exist"


def test_a_feed_token_is_cut_to_whose_feed_it_is(url_map_app):
    member = User(id=3, session_version=2)
    with url_map_app.app_context():
        member_path, team_path = (f"/roster/feed/{feed_token(user)}.ics" for user in (member, None))
    for path, logged in ((member_path, "/roster/feed/u3-….ics"), (team_path, "/roster/feed/team-….ics")):
        with url_map_app.test_request_context(path):
            assert audit.logged_path() == logged


def _token(path: str) -> str:
    """The secret part of a link's path (``/d/<token>``, ``/roster/feed/<token>.ics``)."""
    return path.removesuffix(".ics").rpartition("/")[2]


def _row_id(path: str) -> str:
    return _token(path).split("-")[0]


def _use_every_link(app, world) -> None:
    """A provider opens each link, answers the check and acknowledges the letter; the feed is read."""
    client = app.test_client()
    for kind in ("letter", "visit", "check"):
        assert client.get(world.links[kind]).status_code == 200
    assert client.get(world.links["check"] + "/korrigera").status_code == 200
    assert client.get(world.links["feed"]).status_code == 200
    page = client.get(world.links["check"])
    answer = {"answer": "yes", "csrf_token": csrf_token_from(page.get_data(as_text=True))}
    assert client.post(world.links["check"], data=answer).status_code == 303  # PRG: the answer redirects to its receipt
    acknowledgement = {"name": "Cia Berg", "local_routines": "yes", "csrf_token": answer["csrf_token"]}
    assert client.post(world.links["letter"], data=acknowledgement).status_code == 303


def test_no_path_in_the_log_opens_a_page_of_a_link_and_the_audit_pages_show_only_cut_paths(
    app, clock, make_user, make_token
):
    world = build_world(app, clock, make_user, make_token)
    _use_every_link(app, world)
    rows = audit_rows(app)
    stored = [json.dumps([r.path, r.detail, r.actor_id, r.entity_id], ensure_ascii=False) for r in rows]
    for path in world.links.values():
        assert not [text for text in stored if _token(path) in text], f"the token of {path} is in the log"
    link_paths = {r.path for r in rows if r.path and LINK_PATH.match(r.path)}
    ids = {kind: _row_id(world.links[kind]) for kind in ("letter", "visit", "check")}
    assert link_paths == {
        f"/d/{ids['letter']}-…",
        f"/v/{ids['visit']}-…",
        f"/k/{ids['check']}-…",
        f"/k/{ids['check']}-…/korrigera",
    }

    stranger = app.test_client()
    for path in sorted({r.path for r in rows if r.path}):
        response = stranger.get(path)
        if LINK_PATH.match(path):
            assert response.status_code in (404, 410), path
        else:
            assert response.status_code != 200 or path == "/login", path
        body = response.get_data(as_text=True)
        assert not [value for value in PERSONAL if value in body], path

    page = world.admin.get("/audit?actor=link").get_data(as_text=True)
    export = world.admin.get("/audit.csv").get_data(as_text=True)
    for body in (page, export):
        assert f"/d/{ids['letter']}-…" in body
        assert not [path for path in world.links.values() if _token(path) in body]
