"""Witness signature checks for the verifier, in chunks, spread over worker processes.

Ed25519 verification (RFC 8032) is nearly all of the verifier's work, and rows are
independent of each other for it, so the verifier hands each chunk of rows to a
process pool and walks the chain (MACs, links, columns) meanwhile. Results are taken
back in submission order, so the first bad signature found is the first in the log.
A pool starts only once a whole chunk is full: a short log is checked in-process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from control_api.audit.chain import WitnessPublic

# (witness key id, signature, event JSON); the key id is one the verifier knows.
Item = tuple[str, str, str]

_pool_witnesses: dict[str, WitnessPublic] = {}


def first_bad(witnesses: Mapping[str, WitnessPublic], items: Sequence[Item]) -> int | None:
    """Index of the first item whose signature does not verify, or None."""
    for index, (key_id, signature, event_json) in enumerate(items):
        if not witnesses[key_id].verify_event(signature, event_json):
            return index
    return None


def _start_worker(pems: dict[str, bytes]) -> None:
    _pool_witnesses.update({key_id: WitnessPublic.from_pem(pem) for key_id, pem in pems.items()})


def _first_bad_in_worker(items: Sequence[Item]) -> int | None:
    return first_bad(_pool_witnesses, items)


def available_cores() -> int:
    return len(os.sched_getaffinity(0))


class SignatureChecks:
    """`submit` a chunk, then `result` for each chunk in the same order."""

    def __init__(self, witnesses: Mapping[str, WitnessPublic], workers: int) -> None:
        self.witnesses = witnesses
        self.workers = workers
        self.in_flight = 2 * workers  # enough to keep every worker busy while one result is read
        self._pool: ProcessPoolExecutor | None = None

    @property
    def started(self) -> bool:
        return self._pool is not None

    def submit(self, items: Sequence[Item], full: bool) -> Future | int | None:
        """Check `items` (a full chunk, or the last one); in-process until a full chunk comes."""
        if self._pool is None and full and self.workers > 1:
            pems = {key_id: w.pem() for key_id, w in self.witnesses.items()}
            # fork: workers start in milliseconds and inherit nothing they use but the keys.
            self._pool = ProcessPoolExecutor(self.workers, multiprocessing.get_context("fork"),
                                             initializer=_start_worker, initargs=(pems,))
        if self._pool is None:
            return first_bad(self.witnesses, items)
        return self._pool.submit(_first_bad_in_worker, items)

    @staticmethod
    def result(handle: Future | int | None) -> int | None:
        return handle.result() if isinstance(handle, Future) else handle

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
