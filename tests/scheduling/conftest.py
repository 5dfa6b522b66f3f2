"""Fixtures for the scheduling tests: a private registry and the effects table."""

from __future__ import annotations

import pytest

from core.extensions import db
from scheduling.registry import Registry, default_registry
from tests.scheduling.helpers import create_effects_table


@pytest.fixture
def registry():
    """A registry of this test's own: nothing leaks into the application's default registry."""
    return Registry()


@pytest.fixture
def global_registry():
    """The default registry (used by the CLI and the scheduler process), restored afterwards."""
    with default_registry.scoped() as scoped:
        # The domain's own planners (the monthly contact check) would add tasks of their own at
        # every tick; these tests count only what they register themselves.
        scoped._planners.clear()
        yield scoped


@pytest.fixture
def effects_table(app):
    with app.app_context():
        create_effects_table()
        db.session.remove()
