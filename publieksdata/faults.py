"""Fault injection for the crash tests: the process kills itself at a named point.

``PUBLIEKSDATA_FAULT=<point>`` makes the process SIGKILL itself when it reaches that point,
exactly like a power cut there; ``<point>@<n>`` waits for the n-th time the point is reached.
Unset (always, outside tests) nothing happens. Points:

- ``intake.after_quarantine``: an upload sealed into quarantine, not yet validated;
- ``intake.after_validated``: a delivery validated and handed to the privacy step (the
  single pass; without it: its canonical file written, the ledger updated) while intake's
  other workers are still reading theirs (``@n``: the n-th);
- ``privacy.after_commit``: a group of deliveries committed, their quarantine files (sealed
  originals, or canonical files) not yet deleted;
- ``privacy.after_delivery``: a delivery wholly done (rows committed, file deleted), the next
  one not begun -- with ``@n``, some deliveries pseudonymised and the rest still waiting;
- ``dbt.mid_build``: while ``dbt build`` runs, after a model has been materialised (``@n``:
  the n-th); the dbt process is killed together with the job, as a power cut would;
- ``dbt.after_build``: dbt finished (every model and test), the release not yet begun.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterable

ENV = "PUBLIEKSDATA_FAULT"
_reached: Counter[str] = Counter()


def fault_point(name: str, *, also_kill: Iterable[int] = ()) -> None:
    """SIGKILL this process (and the processes ``also_kill``) if the fault ``name`` is set."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, nth = spec.partition("@")
    if point != name:
        return
    _reached[name] += 1
    if nth and _reached[name] < int(nth):
        return
    for pid in also_kill:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.kill(os.getpid(), signal.SIGKILL)
