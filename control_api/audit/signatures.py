"""Witness signature checks for the verifier, in chunks, on every core.

Ed25519 verification (RFC 8032) is nearly all of the verifier's work, and rows are
independent of each other for it. So with N cores, N - 1 helper processes check
chunks of rows while this process walks the chain (MACs, links, columns); when every
helper already has its share queued, this process checks the chunk itself rather than
wait, so no core idles and none is shared by two busy processes. Answers are taken
back in submission order, so the first bad signature found is the first in the log.
Helpers start only once a whole chunk is full: a short log is checked in-process.

Each helper is a forked process behind its own pipe, answering chunks in the order
it got them: no executor threads in this process compete with the walk for the GIL.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection

from control_api.audit.chain import WitnessPublic

# (witness key id, signature, event JSON); the key id is one the verifier knows.
Item = tuple[str, str, str]


def first_bad(witnesses: Mapping[str, WitnessPublic], items: Sequence[Item]) -> int | None:
    """Index of the first item whose signature does not verify, or None."""
    for index, (key_id, signature, event_json) in enumerate(items):
        if not witnesses[key_id].verify_event(signature, event_json):
            return index
    return None


def available_cores() -> int:
    return len(os.sched_getaffinity(0))


def _serve(conn: Connection, pems: dict[str, bytes]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the verifier's to handle; it ends us
    witnesses = {key_id: WitnessPublic.from_pem(pem) for key_id, pem in pems.items()}
    while (items := conn.recv()) is not None:
        conn.send(first_bad(witnesses, items))


class _Helper:
    def __init__(self, pems: dict[str, bytes]) -> None:
        # fork: a helper starts in milliseconds and uses nothing inherited but the keys.
        context = multiprocessing.get_context("fork")
        self.conn, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs, pems), daemon=True)
        self.process.start()
        theirs.close()
        self.waiting = 0  # chunks sent, answers not yet read

    def answer(self) -> int | None:
        try:
            found = self.conn.recv()
        except EOFError:
            raise RuntimeError("a signature-checking process died") from None
        self.waiting -= 1
        return found


class Answer:
    """A chunk's first bad index: known now, or to be read from its helper."""

    def __init__(self, helper: _Helper | None = None, found: int | None = None) -> None:
        self.helper, self.found = helper, found

    def ready(self) -> bool:
        # Chunks settle in order, so this one is its helper's oldest unread answer.
        return self.helper is None or self.helper.conn.poll()

    def result(self) -> int | None:
        if self.helper is not None:
            self.found, self.helper = self.helper.answer(), None
        return self.found


class SignatureChecks:
    """`check` each chunk, then take the `result` of each answer in the same order."""

    # Two chunks per helper (one being checked, one queued), so a helper never waits
    # while this process checks a chunk of its own.
    DEPTH = 2

    def __init__(self, witnesses: Mapping[str, WitnessPublic], cores: int) -> None:
        self.witnesses = witnesses
        self.wanted = max(cores - 1, 0)
        self.helpers: list[_Helper] = []

    @property
    def processes(self) -> int:
        """How many processes checked signatures: 1 until helpers started."""
        return 1 + len(self.helpers)

    def check(self, items: Sequence[Item], full: bool) -> Answer:
        """Hand a full chunk to a helper with room for it, or check it here and now
        (the last chunk always: nothing else is left for this process to do)."""
        if full and self.wanted and not self.helpers:
            pems = {key_id: w.pem() for key_id, w in self.witnesses.items()}
            self.helpers = [_Helper(pems) for _ in range(self.wanted)]
        if full:
            helper = min(self.helpers, key=lambda h: h.waiting, default=None)
            if helper is not None and helper.waiting < self.DEPTH:
                helper.conn.send(items)
                helper.waiting += 1
                return Answer(helper)
        return Answer(found=first_bad(self.witnesses, items))

    def close(self) -> None:
        for helper in self.helpers:
            helper.process.terminate()  # it may be mid-chunk after an early failure
            helper.process.join()
            helper.conn.close()
