"""The real application, plus a test handler on the default registry, for ``flask tick`` run in
subprocesses (``flask --app tests.scheduling.subprocess_app tick``). Test code only."""

from app import create_app as create_real_app
from scheduling.registry import default_registry
from tests.scheduling.helpers import record_effect

KIND = "test.subprocess_effect"

default_registry.task_handler(KIND)(record_effect)


def create_app():
    app = create_real_app()
    # The domain's planners (the monthly contact check) would plan and run tasks of their own at
    # the real date; these tests count only their own tasks.
    default_registry._planners.clear()
    return app
