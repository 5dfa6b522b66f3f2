"""E-mail and SMS through a durable outbox: never lost, never sent twice, urgent first.

Other domains call :func:`notifications.service.send` inside their own transaction; dispatcher
processes (``flask --app app dispatcher run``) claim and send what is queued.
"""

import logging

log = logging.getLogger(__name__)


def init_app(app) -> None:
    """Register this package's blueprints, CLI commands, readiness report and retention rules, and
    say which channels are live.

    The channel setup is built once here (which also stops start-up on a malformed TWILIO_FROM)
    and kept in ``app.extensions["krisrutin.channels"]`` for the dispatcher and the pages.
    """
    from core.health import register_readiness_report
    from notifications import cli, health, models, retention, views, webhooks  # noqa: F401  (models: tables known to migrations)
    from notifications.channels import build_channels, log_live_channels

    setup = build_channels(app.extensions["krisrutin.settings"])
    app.extensions["krisrutin.channels"] = setup
    log_live_channels(setup, log)

    app.register_blueprint(views.bp)
    app.register_blueprint(webhooks.bp)
    # The banner on staff pages when a channel keeps failing (templates/base.html).
    app.context_processor(health.channel_warning_context)
    register_readiness_report(app, health.readiness_report)  # the channels on /readyz
    retention.init_app(app)  # gallring of messages and SMS replies
    cli.init_app(app)
