"""Disruptions (driftstörningar): notices, routing, letters, handover, physical visits.

Modules: ``models`` (tables), ``timeline`` (the incident's steps); ``intake`` (a notice from the
form, the API or a forwarded e-mail becomes an incident), ``routing`` and ``roster`` (who handles
it, alerts, escalation, the on-call rotation), ``handover`` (office hours begin or end),
``letters`` and ``followups`` (information letters, updates, acknowledgements, reminders),
``views``/``export``/``report`` (the incident page, its timeline and the follow-up figures).
"""

import importlib
import importlib.util
import sys
from pathlib import Path

# Blueprint modules and modules that register scheduled jobs, in registration order.
_MODULES = (
    "intake",
    "notice_views",
    "notice_api",
    "email_ingest",
    "supplier_views",
    "roster",
    "roster_views",
    "routing",
    "handover",
    "letters",
    "letter_views",
    "provider_page",
    "followups",
    "views",
    "export",
    "report",
    "supervision",
    "supervision_api",
    "supervision_csv",
    "visits",
    "visit_page",
    "visit_views",
    "visit_report",
    "links",
)


def init_app(app) -> None:
    """Register this package's blueprints, CLI commands, scheduled jobs and API descriptions."""
    from core.openapi import register_api_area
    from crisis import models, visit_models  # noqa: F401  (tables known to migrations)
    from crisis.incidents import openapi as incidents_openapi

    register_api_area(app, incidents_openapi.api_area())
    register_api_area(app, _visits_openapi().api_area())

    for name in _MODULES:
        if importlib.util.find_spec(f"crisis.{name}") is None:
            continue  # not written yet: the package is built in parts
        module = importlib.import_module(f"crisis.{name}")
        blueprint = getattr(module, "bp", None)
        if blueprint is not None:
            app.register_blueprint(blueprint)
        init = getattr(module, "init_app", None)
        if init is not None:
            init(app)


def _visits_openapi():
    """``crisis/visits/openapi.py``, loaded from its path while the module ``crisis/visits.py`` shadows
    the ``crisis/visits/`` folder; once that module has moved into the folder's package, this is
    ``from crisis.visits import openapi``."""
    name = "crisis.visits.openapi"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "visits" / "openapi.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]
