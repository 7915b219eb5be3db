"""The console's audit log: who did what and when, one JSON object per line.

Customer lookups are recorded with the event store's keyed hash of the customer id (the
``subject`` erasure records use), not the id: the log can answer "who looked at customer X"
(hash X with the same key) without becoming a list of customer ids that outlives an erasure.
Each line is one ``write`` of a few hundred bytes to a file opened for appending, so lines from
several worker processes do not interleave.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from serving.console.auth import Session

FILE = "console-audit.jsonl"


class AuditLog:
    """Appends records to ``<data dir>/console-audit.jsonl``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, session: Session, action: str, **details: object) -> dict[str, object]:
        """Record ``action`` by ``session``'s operator; returns the record written."""
        record = {"at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                  "who": session.name, "role": session.role, "key_id": session.key_id,
                  "action": action, **details}
        line = (json.dumps(record, default=str, ensure_ascii=False) + "\n").encode()
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        return record

    def read(self, limit: int = 50) -> list[dict[str, object]]:
        """The newest ``limit`` records, newest first."""
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in reversed(lines[-limit:]) if line.strip()]


__all__ = ["AuditLog", "FILE"]
