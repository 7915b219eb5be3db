"""The server's live state: the models (swapped atomically), the event store and how one
feeds the other.

A reload request reaches every worker process through a marker file in the data dir that
each worker's poller watches.

Every change (event, consent, erasure) is first committed to the store's journal, then
applied to the live engines. Other worker processes pick it up by polling the journal, so
the next request reflects it whichever worker answers. One lock serialises applying changes
and swapping models, so a reload never loses an event that arrived while it was loading.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from recsys.errors import BundleError, ConfigError, RecsysError
from recsys.events import AddResult, Change, Consent, Erasure, Event, EventStore
from recsys.exposures import ExposureLog, ExposureWriter
from recsys.heap import settle_heap
from serving import preload as preloaded
from serving.ab import CHALLENGER, CHAMPION, Models
from serving.loader import Served, load_served
from serving.metrics import Metrics
from serving.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadStatus:
    """The outcome of the last model load (``state``: loading, ok or failed)."""

    state: str
    error: str | None = None
    at: float = 0.0


class Runtime:
    """Owns the live ``Models``, the ``EventStore`` and the journal poller."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings, self.metrics = settings, metrics
        self.models: Models | None = None
        self.store: EventStore | None = None
        self.exposures: ExposureWriter | None = None  # what answers showed (experiments)
        self.problems: dict[str, str] = {}
        self.reload_status = ReloadStatus("loading")
        self._lock = threading.RLock()  # applying changes and swapping models
        self._reloading = threading.Lock()  # one load at a time
        self._queued = threading.Semaphore(1)  # at most one load waits behind it
        self._cursor = 0  # journal seq applied to the live models
        self._own: set[int] = set()  # seqs this process applied already, above the cursor
        self._erased: set[str] = set()  # subjects (keyed hashes) of erased customers
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._marker_lock = threading.Lock()  # token check vs. token write (see _poll)
        self._reload_token = self._read_marker()  # reload requests already honoured

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Open the store, load the models, then follow the journal. Failures leave the
        server up but unready, with one line saying what is wrong."""
        try:
            key = self.settings.privacy_key
            self.store = EventStore(self.settings.events_database(),
                                    key=key.get_secret_value() if key else None)
            self._erased = self.store.erased_subjects()
        except ConfigError as exc:
            self._problem("events", f"{exc}; set RECSYS_EVENTS_URL or RECSYS_DATA_DIR to a "
                                    "writable place")
        if self.store is not None and self.settings.log_exposures:
            self.exposures = ExposureWriter(ExposureLog(self.store.engine))
        self._reload_now()
        self._poller = threading.Thread(target=self._poll, name="recsys-journal", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        """Stop polling and close the store."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
        if self.exposures is not None:
            self.exposures.close()
        if self.store is not None:
            self.store.close()

    @property
    def ready(self) -> bool:
        """A model serves and events can be stored (a missing challenger is only reported)."""
        return self.models is not None and self.store is not None

    def _problem(self, what: str, message: str) -> None:
        self.problems[what] = message
        log.error("not ready: %s: %s", what, message)

    # -- models -----------------------------------------------------------------------------
    def reload(self, broadcast: bool = False) -> bool:
        """Load the current champion (and challenger) in the background and swap them in.
        A request arriving while a load runs queues one more load after it, so the newest
        target always gets loaded; False when such a load is already queued. The old models
        serve until the swap and stay on failure. ``broadcast`` also asks the other worker
        processes sharing the data dir to reload."""
        if broadcast:
            self._request_reload()
        if not self._queued.acquire(blocking=False):
            return False
        threading.Thread(target=self._reload_now, args=(True,), name="recsys-reload",
                         daemon=True).start()
        return True

    def reload_and_wait(self, broadcast: bool = False) -> ReloadStatus:
        """Load and swap now (after any load already running) and return this load's outcome."""
        if broadcast:
            self._request_reload()
        return self._reload_now()

    def _reload_now(self, queued: bool = False) -> ReloadStatus:
        with self._reloading:
            if queued:
                self._queued.release()  # later requests queue behind this load
            self.reload_status = ReloadStatus("loading", at=time.time())
            try:
                models = preloaded.take(self.settings) if self.models is None else None
                fresh = models is None
                self._swap(models or self._load())
                if fresh:
                    settle_heap()
                else:  # a full collection would write to (so copy) every shared page
                    gc.freeze()
            except RecsysError as exc:
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self.reload_status = ReloadStatus("failed", message, time.time())
                self.metrics.reloads.labels("failed").inc()
                self.metrics.reload_failed.set(1)
                if self.models is None:
                    self._problem("model", message)
                else:
                    log.error("reload failed, the previous model keeps serving: %s", message)
                return self.reload_status
            self.reload_status = ReloadStatus("ok", at=time.time())
            self.problems.pop("model", None)
            self.metrics.reloads.labels("ok").inc()
            self.metrics.reload_failed.set(0)
            return self.reload_status

    def _load(self) -> Models:
        """Both models, or a ``BundleError``. Only at start-up may a broken challenger be
        left out (champion-only traffic, reported on /ready) rather than serve nothing."""
        s = self.settings
        champion = load_served(s, CHAMPION, s.bundle_path or s.model_uri)
        challenger = None
        source = s.challenger_source()
        if source is not None:
            try:
                challenger = load_served(s, CHALLENGER, source)
            except BundleError as exc:
                if self.models is not None:
                    raise BundleError(f"challenger: {exc}") from exc
                self._problem("challenger", f"{exc}; all traffic goes to the champion")
        if challenger is not None:
            self.problems.pop("challenger", None)
        return Models(champion, challenger, s.challenger_share, s.ab_salt)

    def _swap(self, models: Models) -> None:
        """Bring ``models`` up to date with the journal and make them live, atomically."""
        store = self.store
        mark = store.last_seq() if store else 0
        if store:  # the bulk of the replay runs without blocking live traffic
            for served in models.all():
                self._apply(store.replay(served.events_until, until=mark), [served])
        with self._lock:
            if store:
                for served in models.all():
                    self._apply(store.changes(mark, received_after=served.events_until),
                                [served])
                self._cursor = store.last_seq()
                self._own.clear()
            self.models = models
        self.metrics.set_models({
            m.variant: (m.version, m.index.kind if m.index else None,
                        m.index.recall if m.index else None) for m in models.all()})

    @property
    def _marker(self) -> Path:
        return self.settings.data_dir / "reload.request"

    def _request_reload(self) -> None:
        """Write a new token to the marker file that every worker's poller watches."""
        token = uuid.uuid4().hex
        with self._marker_lock:  # our own poller must not take this token for another's
            self._reload_token = token
            try:
                self._marker.parent.mkdir(parents=True, exist_ok=True)
                tmp = self._marker.with_suffix(f".{token}")
                tmp.write_text(token)
                tmp.replace(self._marker)
            except OSError as exc:
                log.warning("cannot ask other workers to reload (%s); only this one reloads",
                            exc)

    def _asked_to_reload(self) -> bool:
        """Whether another worker wrote a new reload token since the last look. Read and
        compared under the lock: a poller that read the old file while this worker wrote
        its own token would otherwise reload once more (and once more again)."""
        with self._marker_lock:
            token = self._read_marker()
            if token == self._reload_token:
                return False
            self._reload_token = token
            return True

    def _read_marker(self) -> str | None:
        try:
            return self._marker.read_text().strip()
        except OSError:
            return None

    # -- changes ----------------------------------------------------------------------------
    def add_events(self, events: Sequence[Event]) -> tuple[AddResult, int]:
        """Store ``events`` durably, then fold the new ones into the live models; returns
        the store's result and how many events changed a customer's history."""
        store = self._require_store()
        with self._lock:
            result = store.add(events)
            self._own.update(e.seq for e in result.stored if e.seq is not None)
            folded = self._apply(result.stored, self._live())
        return result, folded

    def erase(self, customer_id: str) -> int:
        """Forget the customer everywhere; returns how many stored records were deleted."""
        store = self._require_store()
        with self._lock:
            deleted, seq = store.erase(customer_id)
            self._own.add(seq)
            self._apply([Erasure(store.subject(customer_id), seq)], self._live())
        if self.exposures is not None:
            self.exposures.forget([customer_id])
        return deleted

    def set_consent(self, customer_id: str, personalization: bool) -> None:
        """Record and apply the customer's consent to personalization."""
        store = self._require_store()
        with self._lock:
            seq = store.set_consent(customer_id, personalization)
            self._own.add(seq)
            self._apply([Consent(customer_id, personalization, seq)], self._live())

    def _live(self) -> list[Served]:
        return self.models.all() if self.models else []

    def _require_store(self) -> EventStore:
        if self.store is None:
            raise ConfigError(f"the event store is unavailable: {self.problems.get('events')}")
        return self.store

    def _apply(self, changes: Iterable[Change], targets: list[Served]) -> int:
        """Apply journal records in order to every target (``Engine.apply_changes``); returns
        how many events changed a history."""
        changes = list(changes)
        erasures = {c.subject for c in changes if isinstance(c, Erasure)}
        subject = self.store.subject if self.store else None
        folded = 0
        for served in targets:  # a copy when it will grow: each engine meets them in order
            erased = set(self._erased) if erasures else self._erased
            folded = max(folded, served.engine.apply_changes(changes, erased, subject))
        self._erased |= erasures
        return folded

    def _poll(self) -> None:
        """Apply what other processes wrote to the journal."""
        while not self._stop.wait(self.settings.events_poll_seconds):
            if self._asked_to_reload():  # another worker got POST /admin/reload
                self.reload()
            if self.store is None or self.models is None:
                continue
            try:
                with self._lock:
                    news: list[Change] = []
                    for change in self.store.changes(self._cursor):
                        self._cursor = change.seq or self._cursor
                        if change.seq in self._own:
                            self._own.discard(change.seq)
                        else:
                            news.append(change)
                    self._apply(news, self._live())
            except Exception as exc:  # keep polling through transient database errors
                log.warning("journal poll failed: %s: %s", type(exc).__name__, exc)


__all__ = ["Runtime", "ReloadStatus"]
