"""The tests' payload keys, and settings and a data converter that use them, as workers do."""

from __future__ import annotations

import json
from typing import Any

from temporalio.converter import DataConverter

from laneway.settings import Settings
from workers.temporal_client import data_converter

# The tests' payload keys: "test-old" still decrypts, "test-1" encrypts (a rotated keyring).
TEST_PAYLOAD_KEYS = {
    "test-old": "dGVzdC1vbGQta2V5LTAxMjM0NTY3ODlhYmNkZWYwMTI=",
    "test-1": "dGVzdC1wYXlsb2FkLWtleS0wMTIzNDU2Nzg5YWJjZGU=",
}
TEST_PAYLOAD_KEY_ID = "test-1"
TEST_PAYLOAD_ENV = {
    "LANEWAY_PAYLOAD_KEYS": json.dumps(TEST_PAYLOAD_KEYS),
    "LANEWAY_PAYLOAD_KEY_ID": TEST_PAYLOAD_KEY_ID,
}


def keyed_settings(**fields: Any) -> Settings:
    """Settings with the tests' payload keys (and whatever else is given)."""
    keys: dict[str, Any] = {"payload_keys": TEST_PAYLOAD_KEYS}
    return Settings(**(keys | {"payload_key_id": TEST_PAYLOAD_KEY_ID} | fields))


def workers_data_converter() -> DataConverter:
    """The data converter the workers use, with the tests' payload keys."""
    return data_converter(keyed_settings())
