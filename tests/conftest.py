import base64
import os
from pathlib import Path

import pytest

from publieksdata.settings import DataHome

TEST_MASTER_KEY = base64.urlsafe_b64encode(b"\x01" * 32).decode()  # the key of `home`


def isolated_home(root: Path, mp: pytest.MonkeyPatch, key_byte: bytes = b"\x01") -> DataHome:
    """A fresh data home at ``root`` with its own master key, keyring, warehouse and Dagster
    instance; every setting that points elsewhere is redirected through ``mp``."""
    mp.setenv("PUBLIEKSDATA_HOME", str(root))
    mp.setenv("PUBLIEKSDATA_MASTER_KEY", base64.urlsafe_b64encode(key_byte * 32).decode())
    mp.setenv("PUBLIEKSDATA_WAREHOUSE", str(root / "warehouse.duckdb"))
    mp.setenv("DAGSTER_HOME", str(root / "dagster"))
    mp.setenv("DBT_LOG_PATH", str(root / "dbt" / "logs"))
    mp.delenv("PUBLIEKSDATA_MASTER_KEY_FILE", raising=False)
    mp.delenv("PUBLIEKSDATA_K", raising=False)
    mp.delenv("PUBLIEKSDATA_INTAKE_WORKERS", raising=False)
    h = DataHome(root)
    h.create()
    from privacy.keyring import create_keyring

    create_keyring(h)
    return h


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DataHome:
    """A fresh data home per test (see isolated_home)."""
    return isolated_home(tmp_path / "home", monkeypatch)


def write_minimal_sector(home: DataHome) -> None:
    """A registry of two members and a reference set of three PC4 areas."""
    home.registry.write_text(
        "code,name,discipline,pc4\nth_a,Theater A,theater,1011\nmu_b,Museum B,museum,3511\n"
    )
    home.reference_pc4.parent.mkdir(parents=True, exist_ok=True)
    home.reference_pc4.write_text(
        "pc4,gemeente_code,gemeente_naam,provincie,lat,lon,aantal_inwoners\n"
        "1011,GM0363,Amsterdam,Noord-Holland,52.37,4.90,5000\n"
        "1012,GM0363,Amsterdam,Noord-Holland,52.38,4.89,6000\n"
        "3511,GM0344,Utrecht,Utrecht,52.09,5.11,4000\n"
    )


def deliver(home: DataHome, institution: str, name: str, content: bytes | str) -> Path:
    folder = home.landing / institution
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def all_files(root: Path):
    for dirpath, _, files in os.walk(root):
        for f in files:
            yield Path(dirpath) / f
