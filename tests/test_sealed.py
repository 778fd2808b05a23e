"""Files at rest in quarantine/ and rejected/ are sealed (AES-GCM) and tamper-evident."""

import os
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.sealed import (
    SealedFileError,
    SealedFileSystem,
    SealedWriter,
    open_sealed,
    seal_file,
    sealed_url,
)

KEY = b"k" * 32


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=5000), segment=st.sampled_from([1, 7, 64, 4096]))
def test_roundtrip_any_size_and_segment(tmp_path_factory, data, segment):
    path = tmp_path_factory.mktemp("s") / "f.sealed"
    with SealedWriter(str(path), KEY, segment_size=segment) as w:
        w.write(data)
    with open_sealed(path, KEY) as r:
        assert r.read() == data
        if data:
            r.seek(len(data) // 2)
            assert r.read() == data[len(data) // 2 :]


def test_plaintext_is_not_on_disk_and_tampering_is_detected(tmp_path: Path):
    plain = tmp_path / "p.csv"
    plain.write_bytes(b"email\nvisitor@example.nl\n" * 100_000)
    sealed = tmp_path / "s"
    seal_file(plain, sealed, KEY)
    raw = sealed.read_bytes()
    assert b"visitor" not in raw
    assert oct(sealed.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(SealedFileError):
        open_sealed(sealed, b"x" * 32).read()
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 1
    (tmp_path / "t").write_bytes(bytes(flipped))
    with pytest.raises(SealedFileError):
        open_sealed(tmp_path / "t", KEY).read()
    # cutting whole segments off the end is detected too (the last segment is marked final)
    (tmp_path / "cut").write_bytes(raw[: 24 + (1 << 20) + 16])
    with pytest.raises(SealedFileError):
        open_sealed(tmp_path / "cut", KEY).read()


def test_duckdb_reads_and_writes_sealed_files(tmp_path: Path):
    conn = duckdb.connect()
    conn.register_filesystem(SealedFileSystem(KEY))
    plain = tmp_path / "p.csv"
    plain.write_text('a;b\n1;"x;\ny"\n2;z\n', encoding="latin-1")
    seal_file(plain, tmp_path / "p.sealed", KEY)
    rows = conn.execute(
        "select * from read_csv(?, all_varchar = true, header = true)",
        [sealed_url(tmp_path / "p.sealed")],
    ).fetchall()
    assert rows == [("1", "x;\ny"), ("2", "z")]
    target = tmp_path / "out.parquet"
    conn.execute(
        f"copy (select range as i from range(1000)) to '{sealed_url(target)}' (format parquet)"
    )
    assert target.read_bytes()[:4] == b"PDQ1"
    assert (
        conn.execute("select sum(i) from read_parquet(?)", [sealed_url(target)]).fetchone()[0]
        == 499500
    )
    assert os.path.getsize(target) > 0
