"""bench.service_fanout end to end, small: gunicorn and ``flask dispatcher run`` as real processes,
the letter posted over HTTP, every contact's e-mail and SMS at the peers exactly once, and the
processes gone afterwards."""

from __future__ import annotations

import subprocess

from bench import service_fanout


def test_a_letter_posted_to_the_real_processes_reaches_every_contact_once_and_they_are_stopped(monkeypatch):
    started: list[subprocess.Popen] = []
    start = service_fanout._start

    def recording_start(command, env, logfile):
        process = start(command, env, logfile)
        started.append(process)
        return process

    monkeypatch.setattr(service_fanout, "_start", recording_start)
    args = service_fanout.build_parser().parse_args(["--contacts", "20", "--providers", "4", "--workers", "1"])

    result = service_fanout.run(args)

    assert result["complete"] and result["every_contact_once"]
    assert result["post_ms"] > 0 and result["failed"] == 0
    for channel in ("email", "sms"):
        assert result[channel]["duplicates"] == 0 and result[channel]["lost"] == 0
    assert result["sms"]["accepted"] == 20
    assert result["email"]["accepted"] == result["messages_queued"] - 20  # the contacts' and the supplier's
    assert result["dispatcher_cpu_s"] > 0  # the dispatcher process's own CPU, not this process's
    assert len(started) == 2 and all(process.poll() is not None for process in started)
