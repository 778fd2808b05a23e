"""One place that says where state lives (the data home) and which settings are in force."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_K = 10
MIN_K = 5


class PublieksdataError(Exception):
    """An error a user can act on; the CLI prints it as one line, without a traceback."""


@dataclass(frozen=True)
class DataHome:
    """The folders and files of one data home (interfaces.md, "Data home")."""

    root: Path

    @property
    def registry(self) -> Path:
        return self.root / "institutions.csv"

    @property
    def reference_pc4(self) -> Path:
        return self.root / "reference" / "pc4.csv"

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def rejected(self) -> Path:
        return self.root / "rejected"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def published(self) -> Path:
        return self.root / "published"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def dagster(self) -> Path:
        return self.root / "dagster"

    @property
    def dbt(self) -> Path:
        """dbt's run artifacts (target/, logs) for runs against this home."""
        return self.root / "dbt"

    @property
    def local_master_key(self) -> Path:
        """Demo-only master key, used when no PUBLIEKSDATA_MASTER_KEY(_FILE) is set."""
        return self.keys / "master.key"

    def private_dirs(self) -> list[Path]:
        """Folders that hold identifiers or keys: readable by the pipeline only (0700)."""
        return [self.quarantine, self.rejected, self.keys]

    def create(self) -> None:
        for folder in (self.root, self.landing, self.published, self.root / "reference"):
            folder.mkdir(parents=True, exist_ok=True)
        for folder in self.private_dirs():
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o700)


def data_home(path: str | os.PathLike | None = None) -> DataHome:
    """The data home from the argument, else PUBLIEKSDATA_HOME, else ./data."""
    raw = path if path is not None else os.environ.get("PUBLIEKSDATA_HOME", "data")
    return DataHome(Path(raw).expanduser().resolve())


def k_threshold() -> int:
    """The minimum number of distinct persons behind a published cell (metrics.md)."""
    raw = os.environ.get("PUBLIEKSDATA_K", str(DEFAULT_K))
    try:
        k = int(raw)
    except ValueError:
        raise PublieksdataError(f"PUBLIEKSDATA_K must be a whole number, got {raw!r}") from None
    if k < MIN_K:
        raise PublieksdataError(
            f"PUBLIEKSDATA_K={k} is refused: the disclosure rules need k >= {MIN_K}"
        )
    return k


def publication_workers() -> int:
    """Processes that write the members' packages of a release at the same time
    (PUBLIEKSDATA_PUBLICATION_WORKERS; default: the machine's cores, at most 4). Writing a
    package is Python's work, one core per process (docs/performance.md)."""
    return _workers("PUBLIEKSDATA_PUBLICATION_WORKERS")


def intake_workers() -> int:
    """Deliveries read and typed at the same time by intake (PUBLIEKSDATA_INTAKE_WORKERS).

    Default: the machine's cores, at most 4. A delivery's parse is mostly one core of work
    (DuckDB cannot split a small file), so two deliveries at once use both cores of a
    two-core machine (docs/performance.md).
    """
    return _workers("PUBLIEKSDATA_INTAKE_WORKERS")


def _workers(name: str) -> int:
    """A count of workers from the environment variable ``name``; default the machine's
    cores, at most 4."""
    raw = os.environ.get(name)
    if raw is None:
        return max(1, min(4, os.cpu_count() or 1))
    try:
        workers = int(raw)
    except ValueError:
        raise PublieksdataError(f"{name} must be a whole number, got {raw!r}") from None
    if workers < 1:
        raise PublieksdataError(f"{name} must be at least 1, got {workers}")
    return workers
