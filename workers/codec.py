"""The encrypting payload codec: every payload Laneway writes to Temporal is AES-GCM sealed.

A sealed payload carries `encoding: binary/encrypted` and the id of the key that sealed it
(`encryption-key-id`) in its metadata; its data is a 12-byte nonce followed by the
ciphertext of the whole original payload (metadata and data). Keys rotate by id: one key is
current and seals new payloads, every configured key opens the payloads it sealed. A payload
without the encrypted encoding (e.g. histories written before encryption) decodes unchanged.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
_NONCE_BYTES = 12
_KEY_BYTES = (16, 24, 32)


class PayloadKeyError(Exception):
    """A payload key cannot be used, or a payload cannot be opened; says which and why."""


@dataclass(frozen=True)
class PayloadKeyring:
    """The configured keys by id, and the id of the one that seals new payloads."""

    keys: Mapping[str, bytes]
    current: str

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise PayloadKeyError(
                f"the current payload key {self.current!r} is not among the configured keys "
                f"({', '.join(sorted(self.keys)) or 'none'})"
            )
        for key_id, key in self.keys.items():
            if not key_id:
                raise PayloadKeyError("a payload key id must not be empty")
            if len(key) not in _KEY_BYTES:
                raise PayloadKeyError(
                    f"payload key {key_id!r} has {len(key)} bytes; AES-GCM takes 16, 24 or 32"
                )

    @classmethod
    def from_base64(cls, keys: Mapping[str, str], current: str | None) -> PayloadKeyring:
        """Keys as configured (base64 text); `current` may be omitted when there is one key."""
        decoded: dict[str, bytes] = {}
        for key_id, text in keys.items():
            try:
                decoded[key_id] = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise PayloadKeyError(f"payload key {key_id!r} is not base64") from None
        if current is None:
            if len(decoded) != 1:
                raise PayloadKeyError(
                    "several payload keys are configured: name the one that encrypts "
                    "new payloads in LANEWAY_PAYLOAD_KEY_ID"
                )
            [current] = decoded
        return cls(keys=decoded, current=current)


def new_key() -> str:
    """A fresh random 256-bit key, base64, as LANEWAY_PAYLOAD_KEYS takes it."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def write_dev_keys(path: Path) -> None:
    """A development key file (owner-only) at `path`, unless one is there already."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    content = json.dumps({"keys": {"dev-1": new_key()}, "current": "dev-1"}, indent=2) + "\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(content)


class EncryptionCodec(PayloadCodec):
    """AES-GCM over whole payloads, keyed by id (see the module docstring)."""

    def __init__(self, keyring: PayloadKeyring) -> None:
        self._keyring = keyring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.keys.items()}

    @property
    def current_key_id(self) -> str:
        return self._keyring.current

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.seal(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.open(payload) for payload in payloads]

    def seal(self, payload: Payload) -> Payload:
        key_id = self._keyring.current
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), None)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()},
            data=nonce + sealed,
        )

    def open(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # not sealed by this codec: written before encryption
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadKeyError(
                f"a payload was encrypted with key {key_id!r}, which is not configured "
                "(LANEWAY_PAYLOAD_KEYS): add it to decrypt"
            )
        data = payload.data
        try:
            plain = cipher.decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], None)
        except InvalidTag:
            raise PayloadKeyError(
                f"a payload does not open with key {key_id!r}: it was altered, or the key "
                "configured under that id is not the one that encrypted it"
            ) from None
        return Payload.FromString(plain)
