"""Work that every test would repeat for nothing, done once per test process or not at all.

Each test builds its own application (``tests.conftest.build_app``) on its own database. Three
costs came with that, none of which a test observes:

- Jinja parses and compiles each template an application renders: ~0.3 s of CPU for a login and
  nine pages. ``TEMPLATE_CODE`` is a Jinja bytecode cache shared by the applications of this
  process (Jinja's own mechanism: the same key for the same template, checked against the
  source's checksum, so an edited template is compiled again).
- Werkzeug compiles two URL-builder functions for each of the ~115 routes (an AST, then
  ``compile()``): about 60 % of ``create_app``'s ~40 ms of CPU. ``install()`` makes a rule reuse
  the builder made for an equal rule (the same text, parts and default names) of an earlier
  application. A builder is a plain function of those (it reads the converters from the rule it
  is bound to). Rules whose defaults fill a variable of the path are left to Werkzeug. If
  Werkzeug changes the private method this wraps, nothing is shared and the tests run slower.
- Every commit waited for the disk (~4 ms each, on SQLite in WAL mode and on PostgreSQL): a test
  file or schema is thrown away after its test, so its durability after a power cut is worth
  nothing. SQLite test connections use ``PRAGMA synchronous=OFF`` (``install()``); PostgreSQL
  test connections ``synchronous_commit=off`` (``POSTGRES_OPTIONS``, see tests/conftest.py).
  Neither changes what a transaction sees, its locks or its isolation; only when it reaches disk.

Production compiles and commits as before: this module is only imported by the tests.
"""

from __future__ import annotations

from jinja2 import BytecodeCache
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.routing.rules import Rule

POSTGRES_OPTIONS = ("-csynchronous_commit=off",)


class _SharedTemplateCode(BytecodeCache):
    def __init__(self) -> None:
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        code = self.code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


TEMPLATE_CODE = _SharedTemplateCode()

_builders: dict[tuple, object] = {}
_installed: list[bool] = []


def install() -> None:
    """Share URL builders between equal rules, and do not wait for the disk on SQLite (once)."""
    if _installed:
        return
    _installed.append(True)
    event.listen(Engine, "connect", _sqlite_without_sync)
    original = getattr(Rule, "_compile_builder", None)
    if original is None:
        return

    def compile_builder(self, append_unknown=True):
        defaults = self.defaults or {}
        trace = getattr(self, "_trace", None)
        if trace is None or (defaults and any(is_dynamic and data in defaults for is_dynamic, data in trace)):
            return original(self, append_unknown)
        key = (type(self), self.rule, tuple(trace), tuple(defaults), append_unknown)
        builder = _builders.get(key)
        if builder is None:
            builder = _builders[key] = original(self, append_unknown)
        return builder

    Rule._compile_builder = compile_builder


def _sqlite_without_sync(dbapi_connection, connection_record) -> None:
    if not type(dbapi_connection).__module__.startswith("sqlite3"):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.close()
