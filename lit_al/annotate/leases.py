"""Who is looking at which item: an item is leased to one client until it is answered, released or expires.

Two annotators labeling the same batch at once must never be shown the same text; a
reload (the same client id) gets its own item back. Leases live in the server's
memory only: they decide who *sees* what, never what is labeled (that is ``state.json``).

A lease also records the annotator name the client gave. A tab that crashed cannot
release its item, so another tab of the same annotator may *reclaim* it (an explicit
request, never done on its own): a person can take back what they held, not what
someone else holds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable


@dataclass(frozen=True)
class Lease:
    """``client`` (annotator ``annotator``) holds ``item`` until ``expires`` (in the clock's seconds)."""

    item: str
    client: str
    expires: float
    annotator: str | None = None


class Leases:
    """Leases of pending items to clients; thread-safe (the server answers requests in a thread pool).

    Args:
        seconds: how long a lease lasts without an answer (a closed tab gives its item back then).
        clock: monotonic seconds (tests pass a fake clock).
    """

    def __init__(self, seconds: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = float(seconds)
        self._clock = clock
        self._by_item: dict[str, Lease] = {}
        self._lock = threading.Lock()

    def _live(self, now: float) -> dict[str, Lease]:
        self._by_item = {item: lease for item, lease in self._by_item.items() if lease.expires > now}
        return self._by_item

    def _give(self, live: dict[str, Lease], item: str, client: str, annotator: str | None, now: float) -> None:
        for other in [i for i, lease in live.items() if lease.client == client and i != item]:
            del live[other]  # one item per client: whatever it held before goes back
        live[item] = Lease(item, client, now + self.seconds, annotator)

    def acquire(self, client: str, open_items: Iterable[str], annotator: str | None = None,
                reclaim: bool = False) -> str | None:
        """The item ``client`` should see: the one it holds, else the first open item nobody holds (now leased).

        ``open_items``: the unanswered items of the batch, best first. ``reclaim``: when every
        open item is held, take one held by another client under the same (non-empty) ``annotator``
        name. None: every open item is held by another client.
        """
        with self._lock:
            now = self._clock()
            live = self._live(now)
            candidates = list(open_items)
            mine = next((item for item in candidates if item in live and live[item].client == client), None)
            if mine is None:
                mine = next((item for item in candidates if item not in live), None)
            if mine is None and reclaim and annotator:
                mine = next((item for item in candidates if live[item].annotator == annotator), None)
            if mine is not None:
                self._give(live, mine, client, annotator, now)
            return mine

    def held(self, client: str, open_items: Iterable[str]) -> str | None:
        """The open item ``client`` holds now, if any (nothing is leased: reading changes nothing)."""
        with self._lock:
            live = self._live(self._clock())
            return next((item for item in open_items if item in live and live[item].client == client), None)

    def reclaimable(self, client: str, open_items: Iterable[str], annotator: str | None) -> int:
        """How many open items other clients hold under ``annotator``'s name (what ``reclaim`` could take)."""
        if not annotator:
            return 0
        with self._lock:
            live = self._live(self._clock())
            return sum(1 for item in open_items
                       if item in live and live[item].client != client and live[item].annotator == annotator)

    def take(self, client: str, item: str, annotator: str | None = None) -> None:
        """Lease ``item`` to ``client`` whoever held it (an undone answer comes back to the one who undid it)."""
        with self._lock:
            now = self._clock()
            self._give(self._live(now), item, client, annotator, now)

    def holder(self, item: str) -> str | None:
        """The client that holds ``item`` now, if any."""
        with self._lock:
            lease = self._live(self._clock()).get(item)
            return lease.client if lease is not None else None

    def release(self, client: str, item: str | None = None) -> bool:
        """Give back ``client``'s lease (on ``item``, or whatever it holds); True if there was one."""
        with self._lock:
            live = self._live(self._clock())
            mine = [i for i, lease in live.items() if lease.client == client and (item is None or i == item)]
            for held in mine:
                del live[held]
            return bool(mine)

    def drop(self, item: str) -> None:
        """Forget the lease on ``item`` (it was answered)."""
        with self._lock:
            self._by_item.pop(item, None)

    def clear(self) -> None:
        """Forget every lease (a new batch was proposed)."""
        with self._lock:
            self._by_item.clear()
