"""The pseudonymisation keyring: secrets encrypted under the master key.

The keyring file (``keys/keyring.json``) holds one or more key versions. Each
version is a random 256-bit secret, wrapped with AES-256-GCM under the master
key. Working keys for each purpose (sector pseudonyms, institution-scoped
pseudonyms, file encryption, record keys for perturbation) are derived from
a secret with HKDF, so one purpose's key never serves another.
Only key ids and fingerprints (an HMAC of a fixed label, which reveals
nothing of the key) are ever written beside the data or shown to users.

Rotation (``publieksdata keys rotate``, privacy/rotation.py) adds a version to
the *chain*. Raw identifiers are gone once pseudonymised, so the warehouse is
re-keyed from its pseudonyms: after versions v1..vn a pseudonym is
HMAC(vn, ... HMAC(v2, HMAC(v1, value))). Pseudonym keys therefore come as a
chain (``Keyring.chain``), and every version stays in the keyring. The file
and record purposes are not rotated: they derive from the first version, so
files sealed before a rotation stay readable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from publieksdata.settings import DataHome, PublieksdataError

PURPOSES = ("sector", "institution", "file", "record")
PSEUDONYM_PURPOSES = ("sector", "institution")  # chained and rotated
_KEY_BYTES = 32


@dataclass(frozen=True)
class MasterKeySource:
    key: bytes
    origin: str  # "env", "file" or "local demo key"


def _decode_master_key(text: str, where: str) -> bytes:
    text = text.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raw = b""
    if len(raw) != _KEY_BYTES:
        raise PublieksdataError(
            f"the master key from {where} is not 32 bytes of url-safe base64; "
            'make one with: python -c "import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'
        )
    return raw


def load_master_key(home: DataHome, *, create_local: bool = False) -> MasterKeySource:
    """The master key from PUBLIEKSDATA_MASTER_KEY, PUBLIEKSDATA_MASTER_KEY_FILE or the demo key."""
    if os.environ.get("PUBLIEKSDATA_MASTER_KEY"):
        return MasterKeySource(
            _decode_master_key(os.environ["PUBLIEKSDATA_MASTER_KEY"], "PUBLIEKSDATA_MASTER_KEY"),
            "env",
        )
    if os.environ.get("PUBLIEKSDATA_MASTER_KEY_FILE"):
        path = Path(os.environ["PUBLIEKSDATA_MASTER_KEY_FILE"])
        if not path.is_file():
            raise PublieksdataError(
                f"PUBLIEKSDATA_MASTER_KEY_FILE names {path}, which does not exist"
            )
        return MasterKeySource(_decode_master_key(path.read_text(), str(path)), "file")
    local = home.local_master_key
    if local.is_file():
        return MasterKeySource(_decode_master_key(local.read_text(), str(local)), "local demo key")
    if create_local:
        local.parent.mkdir(parents=True, exist_ok=True)
        local.parent.chmod(0o700)
        fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.urlsafe_b64encode(secrets.token_bytes(_KEY_BYTES)).decode() + "\n")
        return load_master_key(home)
    raise PublieksdataError(
        "no master key: set PUBLIEKSDATA_MASTER_KEY (or PUBLIEKSDATA_MASTER_KEY_FILE), "
        "or run 'publieksdata init' to create a local demo key"
    )


def fingerprint(secret: bytes) -> str:
    """A public identifier of a secret: HMAC of a fixed label, first 16 hex digits."""
    return hmac.new(secret, b"publieksdata key fingerprint", hashlib.sha256).hexdigest()[:16]


def _derive(secret: bytes, purpose: str) -> bytes:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown key purpose {purpose!r}")
    return HKDF(
        algorithm=hashes.SHA256(),
        length=_KEY_BYTES,
        salt=None,
        info=f"publieksdata/{purpose}/v1".encode(),
    ).derive(secret)


@dataclass(frozen=True)
class Keyring:
    """The active key version, the versions before it, and the working keys derived from them."""

    key_id: str
    fingerprint: str
    _secret: bytes
    _earlier: tuple[bytes, ...] = ()  # secrets of the earlier versions of the chain, oldest first

    def derive(self, purpose: str) -> bytes:
        """The working key of a purpose: the active version's for pseudonyms, else the first's.

        A pseudonym needs every version of the chain: use ``chain`` for those.
        """
        if purpose in PSEUDONYM_PURPOSES:
            return _derive(self._secret, purpose)
        return _derive((self._earlier + (self._secret,))[0], purpose)

    def chain(self, purpose: str) -> tuple[bytes, ...]:
        """The keys of a pseudonym purpose, oldest version first (privacy/pseudonymise.py)."""
        if purpose not in PSEUDONYM_PURPOSES:
            raise ValueError(f"{purpose!r} is not a pseudonym purpose")
        return tuple(_derive(secret, purpose) for secret in self._earlier + (self._secret,))

    @property
    def versions(self) -> int:
        return len(self._earlier) + 1

    def __repr__(self) -> str:  # never show the secret, not even in a traceback
        return (
            f"Keyring(key_id={self.key_id!r}, fingerprint={self.fingerprint!r}, "
            f"versions={self.versions})"
        )


def _keyring_path(home: DataHome) -> Path:
    return home.keys / "keyring.json"


def _wrap(master: bytes, secret: bytes, key_id: str) -> str:
    nonce = secrets.token_bytes(12)
    blob = nonce + AESGCM(master).encrypt(nonce, secret, key_id.encode())
    return base64.b64encode(blob).decode()


def _unwrap(master: bytes, wrapped: str, key_id: str) -> bytes:
    blob = base64.b64decode(wrapped)
    try:
        return AESGCM(master).decrypt(blob[:12], blob[12:], key_id.encode())
    except InvalidTag:
        raise PublieksdataError(
            f"the master key does not open key {key_id} of the keyring: "
            "use the master key this data home was created with"
        ) from None


def _new_version(master: bytes) -> tuple[str, dict, bytes]:
    secret = secrets.token_bytes(_KEY_BYTES)
    now = datetime.now(UTC)
    key_id = "k" + now.strftime("%Y%m%d%H%M%S%f")
    entry = {
        "created": now.isoformat(timespec="seconds"),
        "fingerprint": fingerprint(secret),
        "wrapped": _wrap(master, secret, key_id),
    }
    return key_id, entry, secret


def _read_doc(home: DataHome) -> dict:
    path = _keyring_path(home)
    if not path.is_file():
        raise PublieksdataError(f"no keyring in {home.keys}: run 'publieksdata init' first")
    doc = json.loads(path.read_text())
    doc.setdefault("chain", [doc["active"]])  # keyrings from before rotation existed
    return doc


def _write_doc(home: DataHome, doc: dict) -> None:
    """Replace the keyring file atomically (0600 in a 0700 folder)."""
    path = _keyring_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=2)
    os.replace(tmp, path)


def create_keyring(home: DataHome) -> Keyring:
    """Create the keyring with a first key version (no-op if it exists)."""
    if _keyring_path(home).exists():
        return open_keyring(home)
    master = load_master_key(home, create_local=True).key
    key_id, entry, _ = _new_version(master)
    _write_doc(home, {"active": key_id, "chain": [key_id], "keys": {key_id: entry}})
    return open_keyring(home)


def _open_version(master: bytes, doc: dict, key_id: str) -> bytes:
    entry = doc["keys"][key_id]
    secret = _unwrap(master, entry["wrapped"], key_id)
    if fingerprint(secret) != entry["fingerprint"]:
        raise PublieksdataError(f"key {key_id} of the keyring does not match its fingerprint")
    return secret


def _keyring_of(master: bytes, doc: dict, chain: list[str]) -> Keyring:
    secrets_ = [_open_version(master, doc, key_id) for key_id in chain]
    active = chain[-1]
    return Keyring(
        key_id=active,
        fingerprint=doc["keys"][active]["fingerprint"],
        _secret=secrets_[-1],
        _earlier=tuple(secrets_[:-1]),
    )


def open_keyring(home: DataHome) -> Keyring:
    """The active keyring: every version of the chain, the last one active."""
    doc = _read_doc(home)
    return _keyring_of(load_master_key(home).key, doc, doc["chain"])


def pending_keyring(home: DataHome, *, create: bool = False) -> Keyring | None:
    """The keyring as it will be after the rotation under way (None if there is none).

    A rotation first stores its new version as *pending*, then re-keys the
    warehouse, then activates the version: a crash in between leaves the
    pending version for the next ``keys rotate`` to finish with.
    """
    doc = _read_doc(home)
    master = load_master_key(home).key
    if doc.get("pending") is None:
        if not create:
            return None
        key_id, entry, _ = _new_version(master)
        doc["keys"][key_id] = entry
        doc["pending"] = key_id
        _write_doc(home, doc)
    return _keyring_of(master, doc, doc["chain"] + [doc["pending"]])


def activate_pending(home: DataHome) -> Keyring:
    """Make the pending version the active end of the chain."""
    doc = _read_doc(home)
    pending = doc.get("pending")
    if pending is None:
        raise PublieksdataError("no key rotation is under way")
    doc["chain"] = doc["chain"] + [pending]
    doc["active"] = pending
    doc["pending"] = None
    _write_doc(home, doc)
    return open_keyring(home)
