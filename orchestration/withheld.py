"""Unexpected errors of the steps that read deliveries, without their messages.

A library that fails on a value (DuckDB casting, a parser, a normaliser) often quotes that
value in its message, and Dagster keeps a failed step's message and traceback in its event
log, prints it to the console and shows it in the UI. Intake and privacy read raw deliveries,
identifiers included, so there an unexpected error is replaced by one that names only its
class and where it was raised (file, line, function: code, never data). PublieksdataError is
ours, written to be safe, and passes unchanged.

Running out of DuckDB's memory limit is no defect and says what to change: the error names the
step's limit and its value (settings, never data). Which setting is the step's limit is said
by the caller (``memory_setting``), not guessed from the step's name.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator
from pathlib import Path

from publieksdata.settings import PublieksdataError

REPO = Path(__file__).resolve().parent.parent


def _where(exc: BaseException) -> str:
    """The innermost frame of the project's own code, as ``path line N (function)``."""
    ours = None
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename)
        if path.is_relative_to(REPO):
            ours = f"{path.relative_to(REPO)} line {frame.lineno} ({frame.name})"
    return ours or "a library"


def _memory_limits() -> dict:
    from publieksdata.warehouse import privacy_memory_limit, work_memory_limit

    return {
        "PUBLIEKSDATA_WORK_MEMORY": work_memory_limit,
        "PUBLIEKSDATA_PRIVACY_MEMORY": privacy_memory_limit,
    }


@contextlib.contextmanager
def values_withheld(step: str, memory_setting: str = "PUBLIEKSDATA_WORK_MEMORY") -> Iterator[None]:
    """Errors of ``step`` without their messages; ``memory_setting``: the environment variable
    that holds the step's DuckDB memory limit, named when the step runs out of it."""
    limit = _memory_limits()[memory_setting]  # an unknown setting fails here, before the step
    try:
        yield
    except PublieksdataError:
        raise
    except Exception as exc:
        import duckdb

        # a commit that cannot allocate fails as a TransactionException ("Failed to commit:
        # could not allocate block ..."): the text is DuckDB's, read here, never shown
        if isinstance(exc, duckdb.OutOfMemoryException) or (
            isinstance(exc, duckdb.TransactionException) and "could not allocate" in str(exc)
        ):
            raise PublieksdataError(
                f"{step} ran out of memory: DuckDB's limit for this step, "
                f"{memory_setting}={limit()}, was not enough (raised in {_where(exc)}). Nothing "
                f"of the deliveries being processed was committed: set {memory_setting} higher "
                "(e.g. 2GB more) and run again"
            ) from None
        raise PublieksdataError(
            f"{step} failed: unexpected {type(exc).__name__} in {_where(exc)}; its message is "
            "withheld because it could quote a value from a delivery. Nothing of the delivery "
            "being processed was committed: fix the cause and run again"
        ) from None
