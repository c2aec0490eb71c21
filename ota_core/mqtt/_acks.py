"""Pairing of SUBACK/UNSUBACK packets with the calls that wait for them, whichever arrives first."""

from __future__ import annotations

import threading
from typing import Any

_CONNECTION_LOST = object()


class AckTracker:
    """Matches broker acknowledgements to waiters by packet id.

    An acknowledgement can arrive on the network thread before the caller has registered its packet id,
    so early results are kept until registration. Ids nobody waits for are registered as ignored.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._early: dict[int, Any] = {}
        self._waiting: dict[int, list[Any]] = {}
        self._ignored: set[int] = set()

    def complete(self, packet_id: int, result: Any) -> None:
        """Record the broker's answer for ``packet_id`` (called on the network thread; never blocks long)."""
        with self._condition:
            if packet_id in self._ignored:
                self._ignored.discard(packet_id)
            elif packet_id in self._waiting:
                self._waiting[packet_id].append(result)
                self._condition.notify_all()
            else:
                self._early[packet_id] = result

    def register(self, packet_id: int, *, wait: bool) -> None:
        """Announce a packet id just sent; ``wait`` says whether a caller will wait for its answer."""
        with self._condition:
            self._ignored.discard(packet_id)
            if packet_id in self._early:
                result = self._early.pop(packet_id)
                if wait:
                    self._waiting[packet_id] = [result]
            elif wait:
                self._waiting[packet_id] = []
            else:
                self._ignored.add(packet_id)

    def wait(self, packet_id: int, timeout: float) -> tuple[bool, Any]:
        """Wait for the answer: ``(True, result)``, or ``(False, None)`` on timeout or connection loss."""
        with self._condition:
            box = self._waiting[packet_id]
            self._condition.wait_for(lambda: bool(box), timeout)
            del self._waiting[packet_id]
            if not box:
                self._ignored.add(packet_id)
                return False, None
            if box[0] is _CONNECTION_LOST:
                return False, None
            return True, box[0]

    def connection_lost(self) -> None:
        """Release every waiter: answers for packets of a dropped connection will never come."""
        with self._condition:
            for box in self._waiting.values():
                if not box:
                    box.append(_CONNECTION_LOST)
            self._early.clear()
            self._ignored.clear()
            self._condition.notify_all()
