"""The schema is managed by migrations: they build the same schema as the models, both ways."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from contacts.models import Provider
from core.extensions import db
from tests.conftest import _admin_engine, _empty_for_reuse, build_app, create_schema


def test_migrations_create_exactly_the_models_schema(database_url, clock):
    app = build_app(database_url, clock)
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
        db.engine.dispose()
    assert differences == [], "models and migrations differ: run flask db migrate and review the result"


def test_migrations_downgrade_to_nothing_and_up_again(database_url, clock):
    app = build_app(database_url, clock)
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        with db.engine.connect() as connection:
            tables = set(db.inspect(connection).get_table_names()) - {"alembic_version"}
        assert tables == set()
        upgrade()
        db.engine.dispose()


def test_the_copied_test_schema_is_the_migrated_one(app):
    """Tests get a copy of the migrated schema (tests/conftest.py create_schema): it must be the
    models' schema and at the newest revision, as if the migrations had run in it."""
    from alembic.script import ScriptDirectory
    from flask import current_app

    with app.app_context():
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
            current = context.get_current_revision()
        config = current_app.extensions["migrate"].migrate.get_config()
        head = ScriptDirectory.from_config(config).get_current_head()
    assert differences == []
    assert current == head


def test_a_pooled_postgresql_schema_is_handed_on_as_a_fresh_one(postgres_url, clock):
    """A PostgreSQL test schema is emptied after its test and handed to the next one
    (tests/conftest.py ``_empty_for_reuse``): no rows left, and each sequence the test used starts
    again where a fresh schema's does, so that the next test's first ids are those of a fresh one."""

    def add_provider(app, name: str) -> int:
        with app.app_context():
            provider = Provider(name=name, kind="private", created_at=clock.now())
            db.session.add(provider)
            db.session.commit()
            return provider.id

    used = build_app(postgres_url, clock)
    create_schema(used)
    fresh_id = add_provider(used, "Omsorgen AB")
    add_provider(used, "Hemtjänsten Norr")
    with used.app_context():
        schema = db.session.execute(sa.text("SELECT current_schema()")).scalar()
        db.session.remove()
        db.engine.dispose()

    assert _empty_for_reuse(_admin_engine(), schema)

    again = build_app(postgres_url, clock)
    with again.app_context():
        assert db.session.execute(sa.text("SELECT count(*) FROM providers")).scalar() == 0
    assert add_provider(again, "Omsorgen AB") == fresh_id
    with again.app_context():
        db.session.remove()
        db.engine.dispose()
