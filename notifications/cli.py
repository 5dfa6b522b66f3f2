"""``flask dispatcher ...``: the processes that send what is queued."""


def init_app(app) -> None:
    """Register the commands."""
