"""The hub's audit sink: events are buffered in memory and appended to the ledger in batches.

`record` only takes a lock and appends to a list, so auditing costs a request almost nothing;
a background thread flushes the buffer every `flush_interval_s` (and at once past
`max_batch`), signs a tree head every `sign_interval_s` when the log grew, and `close` flushes
and signs what is left. Events keep the exact order of `record` calls within a process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cityhub.governance.events import AuditEvent
from cityhub.governance.ledger import Ledger
from cityhub.governance.signing import TreeHead

log = logging.getLogger(__name__)


class LedgerSink:
    """An `AuditSink` in front of a `Ledger` (see module docstring)."""

    def __init__(self, ledger: Ledger, key: Ed25519PrivateKey, *, flush_interval_s: float = 0.2,
                 sign_interval_s: float = 60.0, max_batch: int = 5000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ledger = ledger
        self.key = key
        self._flush_interval = flush_interval_s
        self._sign_interval = sign_interval_s
        self._max_batch = max_batch
        self._clock = clock
        self._buffer: list[AuditEvent] = []
        self._buffer_lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one batch at a time keeps the order exact
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_signed = clock()

    def record(self, event: AuditEvent) -> None:
        with self._buffer_lock:
            self._buffer.append(event)
            full = len(self._buffer) >= self._max_batch
        if full:
            self._wake.set()

    def flush(self) -> None:
        """Append everything buffered so far (an idle sink does not touch the database)."""
        with self._flush_lock:
            with self._buffer_lock:
                batch, self._buffer = self._buffer, []
            if not batch:
                return
            try:
                self.ledger.append(batch)
            except Exception:
                with self._buffer_lock:  # keep them, in front, for the next flush
                    self._buffer[:0] = batch
                raise

    def sign(self) -> TreeHead:
        """Flush, then sign the current tree head."""
        self.flush()
        self._last_signed = self._clock()
        return self.ledger.sign(self.key)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="audit-ledger", daemon=True)
        self._thread.start()

    def tick(self) -> TreeHead | None:
        """One round of the background thread: flush, and sign a head when one is due (the
        sign interval has passed and the log grew since the latest signed head)."""
        self.flush()
        if self._clock() - self._last_signed < self._sign_interval:
            return None
        latest = self.ledger.latest_head()
        if latest is not None and latest.size == self.ledger.size():
            self._last_signed = self._clock()
            return None
        head = self.sign()
        log.info("event=tree_head_signed size=%d root=%s", head.size, head.root)
        return head

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            try:
                self.tick()
            except Exception:  # the next round retries; the events stay buffered
                log.exception("event=audit_flush_failed")

    def close(self) -> None:
        """Stop the thread, flush what is left and sign the final tree head."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30.0)
        try:
            self.sign()
        except Exception:
            log.exception("event=audit_close_failed pending=%d", len(self._buffer))
