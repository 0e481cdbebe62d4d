"""Settings: defaults, and a bad value stops the process with a message naming the variable."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import pytest

from laneway.settings import Settings, SettingsError, load_settings


def test_defaults_point_at_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LANEWAY_TEMPORAL_ADDRESS", "LANEWAY_TASK_QUEUE", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.temporal_address == "127.0.0.1:7233"
    assert settings.task_queue == "laneway"
    assert settings.emulator_base_url == "http://127.0.0.1:8081/v1"
    assert settings.temporal_ui_url == "http://127.0.0.1:8233"


def test_standard_openai_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9999/v1")
    monkeypatch.setenv("OPENAI_WEBHOOK_SECRET", "whsec_abc")
    settings = load_settings()
    assert settings.openai_api_key == "sk-test"
    assert settings.openai_base_url == "http://127.0.0.1:9999/v1"
    assert settings.openai_webhook_secret == "whsec_abc"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("LANEWAY_TEMPORAL_ADDRESS", "localhost", "expected host:port"),
        ("LANEWAY_EMULATOR_ADDRESS", "127.0.0.1:99999", "expected host:port"),
        ("LANEWAY_TEMPORAL_UI_PORT", "eighty", "valid integer"),
        ("LANEWAY_LOG_FORMAT", "xml", "'console' or 'json'"),
        ("LANEWAY_TASK_QUEUE", "", "at least 1 character"),
        ("OPENAI_BASE_URL", "api.openai.com/v1", "expected an http(s) URL"),
        ("OPENAI_WEBHOOK_SECRET", " ", "webhook signing secret"),
    ],
)
def test_bad_value_names_the_variable_and_what_it_expects(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = str(error.value)
    assert f"{variable}:" in message
    assert expected in message


def test_every_bad_variable_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANEWAY_TEMPORAL_ADDRESS", "nowhere")
    monkeypatch.setenv("LANEWAY_LOG_LEVEL", "loud")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "LANEWAY_TEMPORAL_ADDRESS" in str(error.value)
    assert "LANEWAY_LOG_LEVEL" in str(error.value)


def test_settings_are_immutable() -> None:
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.task_queue = "other"  # type: ignore[misc]


@pytest.mark.parametrize("command", [["worker"], ["dev"]])
def test_process_stops_at_start_on_a_bad_value(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "client.cli", *command],
        env={"LANEWAY_TEMPORAL_ADDRESS": "no-port-here", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "LANEWAY_TEMPORAL_ADDRESS: expected host:port" in result.stderr


def test_batch_plan_thresholds_are_read_per_workspace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANEWAY_BATCH_PLAN_APPROVAL_USD", '{"acme": "50", "globex": "0.5"}')
    assert load_settings().batch_plan_approval_usd == {
        "acme": Decimal("50"),
        "globex": Decimal("0.5"),
    }
    monkeypatch.setenv("LANEWAY_BATCH_PLAN_APPROVAL_USD", '{"acme": "fifty"}')
    with pytest.raises(SettingsError, match="LANEWAY_BATCH_PLAN_APPROVAL_USD: Input should be"):
        load_settings()
