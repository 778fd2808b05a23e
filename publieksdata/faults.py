"""Fault injection for the crash tests: the process kills itself at a named point.

``PUBLIEKSDATA_FAULT=<point>`` makes the process SIGKILL itself when it reaches that point,
exactly like a power cut there; unset (always, outside tests) nothing happens. Points:
``intake.after_quarantine`` (an upload sealed into quarantine, not yet validated),
``privacy.after_commit`` (a delivery's rows committed, its quarantine file not yet deleted).
"""

import os
import signal


def fault_point(name: str) -> None:
    if os.environ.get("PUBLIEKSDATA_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
