"""Every route, every method, every role, odd values in every input: never a 5xx, never a change.

The sweep walks the whole URL map. For each rule and each method it allows, as every role (the
staff roles and the provider and alarm operator logged in, the supplier with its API token, and
anonymous), it sends odd values (``ODD``: a superscript and an Arabic-Indic digit, 20-digit and
negative ids, empty, 10 kB, NUL, a lone surrogate, a right-to-left override):

- into each path argument in turn, the others naming existing rows (tests/support/sweep_world.py);
- into the query, form and JSON fields the view reads (tests/support/sweep_inputs.py, a table
  kept by hand from the views and their templates; a route without an entry fails
  ``test_every_route_has_an_entry``, an API input the OpenAPI description documents but the
  table lacks fails ``test_the_api_inputs_are_those_of_the_openapi_description``): all fields of
  a request at once, and each field alone (by one of the roles the route admits, another for each
  value), with the path naming existing rows. Twilio's webhooks get requests signed as Twilio
  signs them, the imports a CSV file and the e-mail intake an e-mail made of the odd value.

A field's kind says which values are odd for it (sweep_inputs.odd_for). A role the route refuses
gets one request; a role it admits gets them all. Every answer must be below 500, and every table
must be as before, but for the rows that record an attempt rather than make a change
(sweep_world.ATTEMPT_TABLES: audit_log, link_failures, login_failures; and
api_tokens.last_used_at). Unsafe routes without inputs (log out, acknowledge, renew, revoke, ...)
are only called with odd path arguments. Each route and value is a test of its own, and a test
that changed rows leaves a freshly made world to the next. The whole sweep runs on SQLite; on
PostgreSQL the values where the two differ: ids beyond 32 bits, and NUL, which PostgreSQL can
neither store nor compare.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone
from types import SimpleNamespace
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from accounts.access import access_rule_for
from core.clock import FixedClock
from core.extensions import db
from tests.conftest import POSTGRES_URL, _with_search_path, build_app, create_schema, require_postgres_or_skip
from tests.support.sweep_inputs import HINT, INPUTS, NUMBERS, odd_for
from tests.support.sweep_world import BASE_URL, ROLES, SETTINGS, TWILIO_TOKEN, build_world

ODD = {
    "superscript": "²",
    "arabic_indic": "٣",
    "twenty_digits": "99999999999999999999",
    "negative": "-1",
    "empty": "",
    "ten_kb": "9" * 10_240,
    "nul": "1\x00",
    "surrogate": "\ud800",
    "rtl_override": "\u202e1",
}
POSTGRES_VALUES = ("twenty_digits", "nul")
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
NUMERIC = ("twenty_digits", "negative")  # also sent as JSON numbers to number fields
LINK_ARGUMENTS = {"check_public": "k", "provider_page": "d", "visit_page": "v"}


def _encoded(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


# --- the worlds ------------------------------------------------------------------------------------


def _world(database_url: str):
    clock = FixedClock(datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc))
    app = build_app(database_url, clock, **SETTINGS)
    create_schema(app)
    return app, build_world(app, clock)


class Sweep:
    """The world of one database, made again when a request has changed it (so that every test
    starts from the same rows, whichever ran before it)."""

    def __init__(self, make_url):
        self._make_url = make_url
        self.app, self.world = _world(make_url())

    def renew(self):
        _dispose(self.app)
        self.app, self.world = _world(self._make_url())


@pytest.fixture(scope="module")
def sqlite_sweep(tmp_path_factory):
    sweep = Sweep(lambda: f"sqlite:///{tmp_path_factory.mktemp('sweep') / 'sweep.sqlite3'}")
    yield sweep
    _dispose(sweep.app)


@pytest.fixture(scope="module")
def postgres_sweep():
    require_postgres_or_skip()
    admin = sa.create_engine(POSTGRES_URL, poolclass=sa.pool.NullPool)
    schemas = []

    def make_url():
        schemas.append(f"t_sweep_{uuid.uuid4().hex[:12]}")
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schemas[-1]}"'))
        return _with_search_path(POSTGRES_URL, schemas[-1])

    try:
        sweep = Sweep(make_url)
        yield sweep
        _dispose(sweep.app)
    finally:
        with admin.begin() as connection:
            for schema in schemas:
                connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _dispose(app):
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# --- the requests ----------------------------------------------------------------------------------


def _rules(app, endpoint):
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint == endpoint]


def _path(world, rule, odd_argument=None, value=None) -> str:
    values = {}
    for argument in rule.arguments:
        if argument == odd_argument:
            values[argument] = _encoded(value)
        elif argument == "token":
            prefix = LINK_ARGUMENTS.get(rule.endpoint.split(".")[0], "feed")
            values[argument] = world.links[prefix]
        else:
            values[argument] = quote(str(world.path_values[argument]), safe="")
    path = rule.rule
    for argument, text in values.items():
        path = re.sub(rf"<(?:\w+(?:\([^)]*\))?:)?{argument}>", lambda _match, text=text: text, path)
    return path


def _set(body: dict, name: str, value):
    """``letter.subject`` and ``clients[].reference`` into nested JSON."""
    head, _, rest = name.partition(".")
    if head.endswith("[]"):
        items = body.setdefault(head[:-2], [{}])
        _set(items[0], rest, value)
    elif rest:
        _set(body.setdefault(head, {}), rest, value)
    else:
        body[head] = value


def _requests(world, rule, method, value_name):
    """(label, path, query, form, json, raw) for one route, method and odd value."""
    value = ODD[value_name]
    for argument in rule.arguments:
        yield f"path {argument}", _path(world, rule, argument, value), {}, {}, None, None
    entry = INPUTS[rule.endpoint]
    fields = {name: kind for name, kind in entry.fields.items() if name.startswith("q:") or method in UNSAFE}
    if not fields:
        if method == "GET" and not rule.arguments:
            yield "query", _path(world, rule), {"sweep": value}, {}, None, None
        return
    subsets = [fields] + ([{name: kind} for name, kind in fields.items()] if len(fields) > 1 else [])
    seen = set()
    for steer in entry.steer:
        for subset in subsets:
            chosen = [n for n, k in subset.items() if n not in steer and odd_for(k, value_name, n.startswith("j:"))]
            hints = [n for n, k in subset.items() if n not in steer and k == HINT]
            if method in UNSAFE and not chosen:
                continue  # a request that no odd value makes wrong may rightly change something
            if not chosen and not hints:
                continue
            query, form, body = {}, {}, None
            for name in [*steer, *chosen, *hints]:
                where, _, key = name.partition(":")
                given = steer.get(name, value)
                if given is None:
                    continue
                if name in steer and "{" in given:
                    given = given.format(**world.path_values)
                if where == "q":
                    query[key] = given
                elif where == "f":
                    form[key] = given
                else:
                    body = {} if body is None else body
                    as_number = name not in steer and entry.fields[name] in NUMBERS and value_name in NUMERIC
                    _set(body, key, int(value) if as_number else given)
            key = json.dumps([query, form, body], sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            raw = None
            if entry.raw is not None:
                raw, body = entry.raw(value), None
            elif entry.upload is not None and "f:file" in chosen:
                raw = ("upload", entry.upload(value))
                form.pop("file")
            label = ("fields " if subset is fields else "one field ") + ",".join(sorted(chosen + hints))
            yield label, _path(world, rule), query, form, body, raw


def _send(world, role, method, path, query, form, body, raw):
    client = world.clients[role]
    headers = {}
    environ = {"REMOTE_ADDR": world.next_address()}
    if role == "supplier":
        headers["Authorization"] = f"Bearer {world.supplier_token}"
    elif method in UNSAFE:
        headers["X-CSRFToken"] = world.csrf[role]
        form = {"csrf_token": world.csrf[role], **form}
    query_string = "&".join(f"{_encoded(k)}={_encoded(v)}" for k, v in query.items())
    if raw is not None and raw[0] == "upload":
        content_type, data = _multipart(form, raw[1])
    elif raw is not None:
        content_type, data = raw
    elif body is not None:
        content_type, data = "application/json", json.dumps(body)
    elif form and method in UNSAFE:
        content_type = "application/x-www-form-urlencoded"
        data = "&".join(f"{_encoded(k)}={_encoded(v)}" for k, v in form.items())
    else:
        content_type, data = None, None
    if path.startswith("/webhooks/twilio/"):
        headers["X-Twilio-Signature"] = _twilio_signature(path, query_string, form)
    kwargs = {"method": method, "query_string": query_string, "headers": headers, "environ_base": environ}
    if data is not None:
        kwargs.update(data=data, content_type=content_type)
    try:
        return client.open(path, **kwargs)
    except Exception as error:  # the test client re-raises what production answers with 500
        return SimpleNamespace(status_code=500, error=repr(error)[:200])


def _multipart(form: dict, file: bytes) -> tuple[str, bytes]:
    boundary = "sweep-boundary-7f3a"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value.encode("utf-8", "surrogatepass")
        + b"\r\n"
        for name, value in form.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="sweep.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n".encode()
        + file
        + b"\r\n"
    )
    return f"multipart/form-data; boundary={boundary}", b"".join(parts) + f"--{boundary}--\r\n".encode()


def _twilio_signature(path, query_string, form) -> str:
    from tests.support.twilio_server import signature

    url = BASE_URL + path + (f"?{query_string}" if query_string else "")
    decoded = {k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in form.items()}
    return signature(TWILIO_TOKEN, url, decoded)


def _sweep(sweep, endpoint, value_name):
    world = sweep.world
    app = world.app
    before = world.fingerprint()
    failures = []
    sent = 0
    access = access_rule_for(app, endpoint)
    admitted = [role for role in ROLES if access.public or role in {r.value for r in access.roles}]
    # Each field alone is tried by one of the admitted roles, another for each value.
    alone = admitted[list(ODD).index(value_name) % len(admitted)] if admitted else None
    for rule in _rules(app, endpoint):
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            requests = list(_requests(world, rule, method, value_name))
            for role in ROLES:
                if role not in admitted:
                    chosen = requests[:1]  # refused before any input is read
                else:
                    chosen = [r for r in requests if role == alone or not r[0].startswith("one field")]
                for label, path, query, form, body, raw in chosen:
                    response = _send(world, role, method, path, query, form, body, raw)
                    sent += 1
                    if response.status_code >= 500:
                        failures.append(
                            (role, method, rule.rule, label, getattr(response, "error", response.status_code))
                        )
    changed = sorted(name for name, digest in world.fingerprint().items() if before.get(name) != digest)
    if changed:
        sweep.renew()
    assert not failures, f"{len(failures)} of {sent} requests answered 5xx: {failures[:10]}"
    assert not changed or INPUTS[endpoint].stored, f"odd values changed rows of {changed}"


# --- the tests -----------------------------------------------------------------------------------


def _cases(values):
    return [pytest.param(e, v, id=f"{e}-{v}") for e in sorted(INPUTS) for v in values]


@pytest.mark.parametrize(("endpoint", "value_name"), _cases(ODD))
def test_odd_values_on_sqlite(sqlite_sweep, endpoint, value_name):
    _sweep(sqlite_sweep, endpoint, value_name)


@pytest.mark.parametrize(("endpoint", "value_name"), _cases(POSTGRES_VALUES))
def test_odd_values_on_postgres(postgres_sweep, endpoint, value_name):
    _sweep(postgres_sweep, endpoint, value_name)


def test_every_route_has_an_entry(sqlite_sweep):
    endpoints = {rule.endpoint for rule in sqlite_sweep.app.url_map.iter_rules()}
    assert endpoints == set(INPUTS)


def test_the_world_opens_every_page_a_path_names(sqlite_sweep):
    """The valid paths reach the views (else the field sweep would test 404 pages only)."""
    world = sqlite_sweep.world
    for rule in world.app.url_map.iter_rules():
        if "GET" not in rule.methods or not rule.arguments or rule.endpoint == "static":
            continue
        role = "provider" if rule.endpoint.startswith("visit_page") else "admin"
        response = _send(world, role, "GET", _path(world, rule), {}, {}, None, None)
        assert response.status_code < 500 and response.status_code not in (403, 404), (rule.rule, response.status_code)


def test_the_api_inputs_are_those_of_the_openapi_description(sqlite_sweep):
    """Every query parameter and top-level JSON field the description documents is swept."""
    app = sqlite_sweep.app
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    endpoints = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower()): rule.endpoint
        for rule in app.url_map.iter_rules()
        for method in rule.methods
    }
    checked = 0
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            documented = {f"q:{p['name']}" for p in operation.get("parameters", []) if p.get("in") == "query"}
            schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            while "$ref" in schema:
                schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
            documented |= {f"j:{name}" for name in schema.get("properties", {})}
            swept = {re.sub(r"[.\[].*", "", name) for name in INPUTS[endpoints[template, method]].fields}
            assert documented <= swept, (method, template, sorted(documented - swept))
            checked += bool(documented)
    assert checked >= 10
