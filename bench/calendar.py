"""How fast the working-time calendar answers: ``python -m bench.calendar``.

Routing decides ``responsible_at`` for every notice and the check computes plans for every month,
so both must stay far below a millisecond. Prints one JSON line with calls per second.
"""

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from config.routine import load_routine
from worktime.calendar import check_plan, responsible_at


def measure(fn, inputs, seconds=2.0):
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for item in inputs:
            fn(item)
        calls += len(inputs)
    elapsed = time.perf_counter() - started
    return {"calls": calls, "per_second": round(calls / elapsed), "us_per_call": round(elapsed / calls * 1e6, 2)}


def main() -> None:
    policy = load_routine(Path(__file__).resolve().parent.parent / "config" / "routine.toml")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    instants = [start + timedelta(minutes=37 * i) for i in range(2000)]  # three years, all hours
    months = [(year, month) for year in (2026, 2027, 2028) for month in range(1, 13)]
    result = {
        "benchmark": "calendar",
        "responsible_at": measure(lambda at: responsible_at(at, policy), instants),
        "check_plan": measure(lambda ym: check_plan(ym[0], ym[1], policy), months),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
