"""Files encrypted at rest in quarantine/ and rejected/, readable by DuckDB without plaintext on disk.

Format (``PDQ1``): a 24-byte header (magic, segment size, random file id), then the
plaintext in segments of ``segment_size`` bytes, each sealed with AES-256-GCM under the
"file" key of the keyring. A segment's nonce is the file id prefix plus its index, and its
associated data binds the header, the index and whether it is the last segment, so segments
cannot be reordered, swapped between files or cut off unnoticed.

``SealedFileSystem`` is an fsspec filesystem (protocol ``sealed``) that DuckDB reads and
writes through ``register_filesystem``: ``read_csv('sealed:///…')`` and
``COPY … TO 'sealed:///…'`` stream through 1 MiB segments. The key lives in the filesystem
object, never in SQL text.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import struct
import threading
from pathlib import Path

import fsspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"PDQ1"
SEGMENT = 1 << 20
_HEADER = struct.Struct(">4sI16s")
TAG = 16


class SealedFileError(Exception):
    """A sealed file is damaged, truncated or sealed under another key."""


def _aad(header: bytes, index: int, final: bool) -> bytes:
    return header + struct.pack(">Q?", index, final)


def _nonce(file_id: bytes, index: int) -> bytes:
    return file_id[:4] + struct.pack(">Q", index)


def is_sealed(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == MAGIC


class SealedWriter(io.RawIOBase):
    def __init__(self, path: str, key: bytes, segment_size: int = SEGMENT):
        self._aes = AESGCM(key)
        self._segment = segment_size
        self._file_id = secrets.token_bytes(16)
        self._header = _HEADER.pack(MAGIC, segment_size, self._file_id)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._fh = os.fdopen(fd, "wb")
        self._fh.write(self._header)
        self._buf = bytearray()
        self._index = 0
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._buf += data
        self._pos += len(data)
        while len(self._buf) > self._segment:  # keep one segment back: it may be the last
            self._emit(bytes(self._buf[: self._segment]), final=False)
            del self._buf[: self._segment]
        return len(data)

    def tell(self) -> int:
        return self._pos

    def _emit(self, chunk: bytes, final: bool) -> None:
        sealed = self._aes.encrypt(
            _nonce(self._file_id, self._index), chunk, _aad(self._header, self._index, final)
        )
        self._fh.write(sealed)
        self._index += 1

    def close(self) -> None:
        if not self.closed:
            self._emit(bytes(self._buf), final=True)
            self._buf.clear()
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
        super().close()


class SealedReader(io.RawIOBase):
    """Random-access reader of a sealed file, safe to share between threads.

    DuckDB reads one handle from several threads as ``seek(offset); read(n)`` pairs, so the
    position is kept per thread and the file is read with ``os.pread``.
    """

    def __init__(self, path: str, key: bytes):
        self._aes = AESGCM(key)
        self._fd = os.open(path, os.O_RDONLY)
        header = os.pread(self._fd, _HEADER.size, 0)
        if len(header) != _HEADER.size:
            os.close(self._fd)
            raise SealedFileError("the file is too short to be a sealed file")
        magic, self._segment, self._file_id = _HEADER.unpack(header)
        if magic != MAGIC:
            os.close(self._fd)
            raise SealedFileError("the file is not a sealed file")
        self._header = header
        body = os.fstat(self._fd).st_size - _HEADER.size
        stored = self._segment + TAG
        self._n_segments = max(1, -(-body // stored))
        self._size = body - TAG * self._n_segments
        if self._size < 0:
            os.close(self._fd)
            raise SealedFileError("the sealed file is truncated")
        self._local = threading.local()

    @property
    def size(self) -> int:
        return self._size

    @property
    def _pos(self) -> int:
        return getattr(self._local, "pos", 0)

    @_pos.setter
    def _pos(self, value: int) -> None:
        self._local.pos = value

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def _segment_plain(self, index: int) -> bytes:
        cache = getattr(self._local, "cache", None)
        if cache and cache[0] == index:
            return cache[1]
        stored = self._segment + TAG
        sealed = os.pread(self._fd, stored, _HEADER.size + index * stored)
        final = index == self._n_segments - 1
        try:
            plain = self._aes.decrypt(
                _nonce(self._file_id, index), sealed, _aad(self._header, index, final)
            )
        except InvalidTag:
            raise SealedFileError(
                "a sealed file failed its integrity check (damaged, truncated or another key)"
            ) from None
        self._local.cache = (index, plain)
        return plain

    def readinto(self, buffer) -> int:
        pos = self._pos
        want = min(len(buffer), self._size - pos)
        if want <= 0:
            return 0
        out = memoryview(buffer).cast("B")
        done = 0
        while done < want:
            index, offset = divmod(pos + done, self._segment)
            plain = self._segment_plain(index)
            take = min(want - done, len(plain) - offset)
            out[done : done + take] = plain[offset : offset + take]
            done += take
        self._pos = pos + done
        return done

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def seal_file(source: Path, target: Path, key: bytes) -> str:
    """Encrypt ``source`` into ``target`` (streamed); the caller removes the plaintext.
    Returns the SHA-256 (hex) of the plaintext, hashed on the same pass."""
    digest = hashlib.sha256()
    with open(source, "rb") as src, SealedWriter(str(target), key) as dst:
        while chunk := src.read(SEGMENT):
            digest.update(chunk)
            dst.write(chunk)
    return digest.hexdigest()


def open_sealed(path: Path, key: bytes) -> io.BufferedReader:
    return io.BufferedReader(SealedReader(str(path), key), buffer_size=SEGMENT)


class SealedFileSystem(fsspec.AbstractFileSystem):
    """fsspec view of sealed files: paths are ordinary absolute paths under ``sealed://``."""

    protocol = "sealed"
    cachable = False

    def __init__(self, key: bytes, **kwargs):
        super().__init__(**kwargs)
        self._key = key

    @classmethod
    def _strip_protocol(cls, path):
        path = str(path)
        if path.startswith("sealed://"):
            path = path[len("sealed://") :]
        return "/" + path.lstrip("/")

    def _open(self, path, mode="rb", block_size=None, autocommit=True, cache_options=None, **kw):
        path = self._strip_protocol(path)
        if "w" in mode:
            return io.BufferedWriter(SealedWriter(path, self._key), buffer_size=SEGMENT)
        return SealedReader(path, self._key)  # unbuffered: DuckDB shares it between threads

    def info(self, path, **kwargs):
        path = self._strip_protocol(path)
        p = Path(path)
        if p.is_dir():
            return {"name": path, "size": 0, "type": "directory"}
        if not p.exists():
            raise FileNotFoundError(path)
        with SealedReader(path, self._key) as reader:
            size = reader.size
        return {"name": path, "size": size, "type": "file"}

    def ls(self, path, detail=True, **kwargs):
        path = self._strip_protocol(path)
        p = Path(path)
        entries = [p] if p.is_file() else sorted(p.iterdir())
        infos = [self.info(str(e)) for e in entries]
        return infos if detail else [i["name"] for i in infos]

    def modified(self, path):
        from datetime import UTC, datetime

        return datetime.fromtimestamp(os.stat(self._strip_protocol(path)).st_mtime, tz=UTC)

    def mv(self, path1, path2, recursive=False, maxdepth=None, **kwargs):
        os.replace(self._strip_protocol(path1), self._strip_protocol(path2))

    def rm_file(self, path):
        os.unlink(self._strip_protocol(path))

    def mkdir(self, path, create_parents=True, **kwargs):
        Path(self._strip_protocol(path)).mkdir(parents=create_parents, exist_ok=True)

    def makedirs(self, path, exist_ok=False):
        Path(self._strip_protocol(path)).mkdir(parents=True, exist_ok=exist_ok)

    def __repr__(self) -> str:  # never show the key
        return "SealedFileSystem()"


def sealed_url(path: Path) -> str:
    return "sealed://" + str(path)
