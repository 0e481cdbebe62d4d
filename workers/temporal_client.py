"""Connecting to Temporal the same way everywhere: pydantic models on the wire, encrypted.

`data_converter(settings)` is the one data converter of every Laneway process (worker, Python
client, CLI, HTTP API, tests): the pydantic payload converter with the encrypting codec of
`workers.codec`, keyed as the settings say. Where the keys come from, first found wins:

1. LANEWAY_PAYLOAD_KEYS (and LANEWAY_PAYLOAD_KEYS_FILE), current key LANEWAY_PAYLOAD_KEY_ID;
2. the development key `laneway dev` writes to DATA_DIR/dev-payload-keys.json;
3. none: Laneway refuses to start (a SettingsError naming LANEWAY_PAYLOAD_KEYS). It never
   writes prompt text into Temporal unencrypted.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from laneway.settings import Settings, SettingsError
from laneway.visibility import SEARCH_ATTRIBUTES
from workers.codec import EncryptionCodec, PayloadKeyError, PayloadKeyring

DEV_KEYS_FILENAME = "dev-payload-keys.json"


def dev_keys_path(settings: Settings) -> Path:
    """Where `laneway dev` keeps its development payload key."""
    return settings.data_dir / DEV_KEYS_FILENAME


def _read_keys_file(path: Path, variable: str) -> tuple[dict[str, str], str | None]:
    try:
        raw = json.loads(path.read_text())
        keys = {str(k): str(v) for k, v in dict(raw["keys"]).items()}
        current = raw.get("current")
        return keys, None if current is None else str(current)
    except OSError as error:
        problem = error.strerror or "unreadable"
    except (ValueError, TypeError, KeyError, AttributeError):
        problem = "not a JSON object of keys"
    raise SettingsError(
        f"{variable}: cannot use {path}: {problem}; expected "
        '{"keys": {"<key id>": "<base64 key>"}, "current": "<key id>"}'
    )


def payload_keyring(settings: Settings) -> PayloadKeyring:
    """The payload keys `settings` name (see the module docstring), or SettingsError."""
    keys = {k: v.get_secret_value() for k, v in settings.payload_keys.items()}
    current = settings.payload_key_id
    variable = "LANEWAY_PAYLOAD_KEYS"
    if settings.payload_keys_file is not None:
        from_file, file_current = _read_keys_file(
            settings.payload_keys_file, "LANEWAY_PAYLOAD_KEYS_FILE"
        )
        keys = {**from_file, **keys}
        current = current or file_current
    elif not keys and dev_keys_path(settings).exists():
        variable = "the development key file"
        keys, current = _read_keys_file(dev_keys_path(settings), variable)
    if not keys:
        raise SettingsError(
            "LANEWAY_PAYLOAD_KEYS: no payload encryption key is configured, and Laneway "
            "never writes job data to Temporal unencrypted; set LANEWAY_PAYLOAD_KEYS to "
            '{"<key id>": "<base64 of 32 random bytes>"} (e.g. from `openssl rand -base64 32`)'
            " and LANEWAY_PAYLOAD_KEY_ID to its id, or run `laneway dev`, which makes a "
            f"development key in {dev_keys_path(settings)}"
        )
    try:
        return PayloadKeyring.from_base64(keys, current)
    except PayloadKeyError as error:
        raise SettingsError(f"{variable}: {error}") from None


def data_converter(settings: Settings) -> DataConverter:
    """The data converter every Laneway process uses: pydantic models, encrypted payloads."""
    codec = EncryptionCodec(payload_keyring(settings))
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)


async def connect(settings: Settings) -> Client:
    """A client of the settings' Temporal namespace, with Laneway's data converter.

    Raises SettingsError (before any connection) when no payload key is configured."""
    converter = data_converter(settings)
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=converter,
    )


_INDEXED_TYPES = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "KeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    "Text": IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
    "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
}


async def register_search_attributes(client: Client) -> None:
    """Register Laneway's search attributes on a server that lacks them (idempotent)."""
    request = AddSearchAttributesRequest(
        namespace=client.namespace,
        search_attributes={name: _INDEXED_TYPES[kind] for name, kind in SEARCH_ATTRIBUTES.items()},
    )
    try:
        await client.operator_service.add_search_attributes(request)
    except RPCError as error:
        if error.status != RPCStatusCode.ALREADY_EXISTS:
            raise
