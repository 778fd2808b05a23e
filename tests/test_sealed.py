"""Files at rest in quarantine/ and rejected/ are sealed (AES-GCM) and tamper-evident."""

import hashlib
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
    # the digest of the plaintext, hashed on the sealing pass (it names the delivery)
    assert seal_file(plain, sealed, KEY) == hashlib.sha256(plain.read_bytes()).hexdigest()
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


def test_large_windows_1252_delivery_reads_whole_through_the_sealed_file(tmp_path: Path):
    """DuckDB 2.0's Latin-1 decoder, reading through the sealed (Python) file system, spliced
    bytes from elsewhere in the file into a line past the first 32 MB: two deliveries of the
    generated 10M sector were rejected as 'ragged'. It depends on timing (seen most often on a
    2-thread read after a 1-thread one, with intake's 512MB limit, as below). Such files are
    now transcoded to a sealed UTF-8 copy first, and DuckDB decodes only UTF-8."""
    from ingest.read import DeliveryFile, read_delivery

    n = 2_500_000  # ~69 MB: more than two of DuckDB's 32 MB buffers
    plain = tmp_path / "tickets.csv"
    with plain.open("wb") as fh:
        fh.write(b"ticket_id;achternaam;woonplaats\n")
        fh.write("".join(f"{i};Jos\xe9 M\xfcller;Utrecht\n" for i in range(n)).encode("latin-1"))
    seal_file(plain, tmp_path / "sealed", KEY)
    plain.unlink()
    for threads in (1, 2, 2):
        conn = duckdb.connect(config={"memory_limit": "512MB"})
        conn.execute(f"set threads = {threads}")
        conn.register_filesystem(SealedFileSystem(KEY))
        result = read_delivery(conn, DeliveryFile(tmp_path / "sealed", KEY))
        assert (result.rows, result.encoding) == (n, "windows-1252")
        assert result.columns == ["ticket_id", "last_name", "city"]
        assert conn.execute(
            "select count(*), count(distinct last_name), min(last_name), max(rowid + 1), "
            "count(*) filter (where cast(ticket_id as bigint) != rowid) from raw"
        ).fetchall() == [(n, 1, "Jos\u00e9 M\u00fcller", n, 0)]
        conn.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sealed"]  # the UTF-8 copy is gone
