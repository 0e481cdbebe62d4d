"""The encrypting payload codec and where its keys come from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter

from laneway.jobs import JobInput
from laneway.settings import Settings, SettingsError, load_settings
from workers.codec import (
    ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    PayloadKeyError,
    PayloadKeyring,
    new_key,
    write_dev_keys,
)
from workers.temporal_client import data_converter, dev_keys_path, payload_keyring

SECRET_TEXT = "sk-live-SECRET-prompt-text-4242"


def plain(text: str = SECRET_TEXT) -> Payload:
    [payload] = pydantic_data_converter.payload_converter.to_payloads([text])
    return payload


def codec(current: str, **keys: str) -> EncryptionCodec:
    return EncryptionCodec(PayloadKeyring.from_base64(keys, current))


async def test_a_payload_is_sealed_with_the_current_key_and_opens_again() -> None:
    old, new = new_key(), new_key()
    sealing = codec("k2", k1=old, k2=new)
    [sealed] = await sealing.encode([plain()])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == b"k2"
    assert SECRET_TEXT.encode() not in sealed.SerializeToString()
    assert await sealing.decode([sealed]) == [plain()]
    [again] = await sealing.encode([plain()])
    assert again.data != sealed.data, "a fresh nonce for every payload"


async def test_rotation_old_payloads_open_with_the_old_key_new_ones_use_the_new() -> None:
    old, new = new_key(), new_key()
    [before] = await codec("k1", k1=old).encode([plain()])
    rotated = codec("k2", k1=old, k2=new)
    assert await rotated.decode([before]) == [plain()]
    [after] = await rotated.encode([plain()])
    assert after.metadata[KEY_ID_METADATA] == b"k2"
    with pytest.raises(PayloadKeyError, match="key 'k2', which is not configured"):
        await codec("k1", k1=old).decode([after])


async def test_payloads_without_the_marker_decode_unchanged() -> None:
    unmarked = [plain(), Payload(metadata={"encoding": b"binary/null"}), Payload(data=b"raw")]
    assert await codec("k", k=new_key()).decode(unmarked) == unmarked


async def test_an_altered_payload_or_a_wrong_key_is_refused_in_words() -> None:
    [sealed] = await codec("k", k=new_key()).encode([plain()])
    with pytest.raises(PayloadKeyError, match="altered, or the key"):
        await codec("k", k=new_key()).decode([sealed])
    tampered = Payload(metadata=sealed.metadata, data=sealed.data[:-1] + b"\x00")
    with pytest.raises(PayloadKeyError, match="altered"):
        await codec("k", k=new_key()).decode([tampered])


async def test_the_data_converter_round_trips_models_encrypted() -> None:
    converter = data_converter(Settings(payload_keys={"k": new_key()}))
    job_input = JobInput(model="gpt-4o-mini", text=SECRET_TEXT)
    payloads = await converter.encode([job_input])
    assert SECRET_TEXT.encode() not in b"".join(p.SerializeToString() for p in payloads)
    assert await converter.decode(payloads, [JobInput]) == [job_input]


def test_bad_keys_are_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value, words in [
        ("LANEWAY_PAYLOAD_KEYS", '{"k": "not base64!"}', "payload key 'k' is not base64"),
        ("LANEWAY_PAYLOAD_KEYS", '{"k": "c2hvcnQ="}', "has 5 bytes; AES-GCM takes 16, 24 or 32"),
    ]:
        monkeypatch.setenv(name, value)
        with pytest.raises(SettingsError) as raised:
            load_settings()
        assert f"{name}: " in str(raised.value) and words in str(raised.value)
        assert "not base64!" not in str(raised.value).replace(words, ""), "no key in messages"
    monkeypatch.setenv("LANEWAY_PAYLOAD_KEYS", json.dumps({"a": new_key()}))
    monkeypatch.setenv("LANEWAY_PAYLOAD_KEY_ID", "b")
    with pytest.raises(SettingsError, match="LANEWAY_PAYLOAD_KEY_ID names 'b'"):
        load_settings()


def test_several_keys_need_a_current_one(tmp_path: Path) -> None:
    keys = {"a": new_key(), "b": new_key()}
    with pytest.raises(SettingsError, match="LANEWAY_PAYLOAD_KEY_ID"):
        payload_keyring(Settings(data_dir=tmp_path, payload_keys=keys))
    chosen = Settings(data_dir=tmp_path, payload_keys=keys, payload_key_id="b")
    assert payload_keyring(chosen).current == "b"


def test_no_key_no_start_unless_laneway_dev_wrote_one(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(SettingsError, match="LANEWAY_PAYLOAD_KEYS: no payload encryption key"):
        data_converter(settings)
    write_dev_keys(dev_keys_path(settings))
    assert dev_keys_path(settings).stat().st_mode & 0o777 == 0o600
    first = payload_keyring(settings)
    write_dev_keys(dev_keys_path(settings))  # kept: payloads sealed with it must still open
    assert payload_keyring(settings) == first and first.current == "dev-1"


def test_a_keys_file_merges_with_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": {"f": new_key()}, "current": "f"}))
    settings = Settings(data_dir=tmp_path, payload_keys_file=path, payload_keys={"e": new_key()})
    keyring = payload_keyring(settings)
    assert (sorted(keyring.keys), keyring.current) == (["e", "f"], "f")
    path.write_text("nope")
    with pytest.raises(SettingsError, match="LANEWAY_PAYLOAD_KEYS_FILE: cannot use"):
        payload_keyring(settings)


@pytest.mark.parametrize("command", [["api"], ["worker"], ["jobs", "list"]])
def test_every_entry_point_without_a_key_says_so_in_one_line(
    command: list[str], tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANEWAY_", "OPENAI_"))}
    env |= {"LANEWAY_DATA_DIR": str(tmp_path), "LANEWAY_TEMPORAL_ADDRESS": "127.0.0.1:9"}
    ran = subprocess.run(
        [sys.executable, "-m", "client.cli", *command],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 2, ran.stderr
    [line] = ran.stderr.strip().splitlines()
    assert "LANEWAY_PAYLOAD_KEYS: no payload encryption key" in line
    assert "Traceback" not in ran.stderr
