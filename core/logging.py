"""Application logs: plain text or JSON lines (LOG_FORMAT=json), without personal data.

The rule the code follows: log ids, kinds, counts and routes; never names, numbers, addresses,
message bodies or request paths with link tokens (log ``request.url_rule``, not ``request.path``).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the ``extra=`` fields of the record."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}
        if extras:
            text += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return text


def configure_logging(settings) -> None:
    """Install one handler on the root logger (idempotent: create_app may run many times)."""
    root = logging.getLogger()
    formatter = JsonFormatter() if settings.log_format == "json" else TextFormatter()
    handler = next((h for h in root.handlers if getattr(h, "_krisrutin", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._krisrutin = True
        root.addHandler(handler)
    handler.setFormatter(formatter)
    root.setLevel(settings.log_level)
    # APScheduler and the web server log at INFO on every run; keep them for warnings.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # The twilio SDK logs nine INFO lines for every request it makes ("-- BEGIN Twilio API
    # Request --", the URL with the account SID, each header, the response's status and headers):
    # 27,000 lines for a letter to 3,000 contacts, beside our own "message sent" line each, and
    # 5-8 % of the dispatcher's CPU in a fan-out (py-spy, bench.service_fanout). Its warnings stay.
    logging.getLogger("twilio").setLevel(logging.WARNING)
