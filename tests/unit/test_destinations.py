"""Where a side effect may go: the webhook policy and the outbox root, as pure checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from laneway.destinations import DestinationRefused, WebhookPolicy, inside, outbox_destination
from laneway.settings import Settings, SettingsError, load_settings

OPEN = WebhookPolicy()
LOCAL = WebhookPolicy(("127.0.0.1", "localhost", "10.8.0.0/16"))


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/x",
        "https://127.1.2.3/x",
        "https://[::1]/x",
        "https://10.0.0.1/x",
        "https://172.16.5.4/x",
        "https://192.168.1.1/x",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fe80::1]/x",
        "https://[fd00:ec2::254]/x",
        "https://[::ffff:169.254.169.254]/x",
        "https://100.100.100.200/x",
        "https://0.0.0.0/x",
        "https://224.0.0.1/x",
        "https://localhost/x",
        "https://metadata.google.internal/x",
        "https://printer.local/x",
    ],
)
def test_internal_targets_are_refused(url: str) -> None:
    with pytest.raises(DestinationRefused, match="internal address"):
        OPEN.check_url(url)


def test_plain_http_only_to_allow_listed_hosts() -> None:
    with pytest.raises(DestinationRefused, match="must use https"):
        OPEN.check_url("http://hooks.example.com/in")
    assert LOCAL.check_url("http://127.0.0.1:8081/hooks") == "127.0.0.1"
    assert LOCAL.check_url("http://localhost/hooks") == "localhost"
    assert LOCAL.check_url("http://10.8.3.4/hooks") == "10.8.3.4"
    with pytest.raises(DestinationRefused, match="must use https"):
        LOCAL.check_url("http://10.9.3.4/hooks")


def test_public_https_targets_pass() -> None:
    assert OPEN.check_url("https://hooks.example.com/in") == "hooks.example.com"
    assert OPEN.check_url("https://93.184.216.34/in") == "93.184.216.34"


@pytest.mark.parametrize("url", ["ftp://x/y", "https://", "https://u:p@hooks.example.com/"])
def test_malformed_targets_are_refused(url: str) -> None:
    with pytest.raises(DestinationRefused):
        OPEN.check_url(url)


async def test_a_name_that_resolves_to_loopback_is_refused_after_resolution() -> None:
    # 127.0.0.1 written as one number is no address to ipaddress, but resolves to loopback.
    with pytest.raises(DestinationRefused, match=r"internal address, 2130706433 \(127\.0\.0\.1\)"):
        await OPEN.check("https://2130706433/x")


async def test_allow_listed_names_are_not_resolved() -> None:
    await LOCAL.check("http://localhost:9/x")


def test_outbox_paths_stay_under_the_root(tmp_path: Path) -> None:
    root = tmp_path / "outbox"
    root.mkdir()
    assert outbox_destination(root, "acme/briefs", "job-1.json") == (
        root.resolve() / "acme/briefs/job-1.json"
    )
    for bad in ("../x", "/etc", "a/../../x"):
        with pytest.raises(DestinationRefused):
            outbox_destination(root, bad, "job-1.json")


def test_a_symlink_cannot_lead_out_of_the_outbox(tmp_path: Path) -> None:
    root = tmp_path / "outbox"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(DestinationRefused, match="leaves the outbox root"):
        outbox_destination(root, "link/x", "job-1.json")
    with pytest.raises(DestinationRefused, match="leaves the outbox root"):
        inside(root, Path("/tmp/elsewhere/job-1.json"))


def test_settings_default_the_outbox_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.outbox_path == tmp_path / "outbox"
    assert Settings(data_dir=tmp_path, outbox_dir=tmp_path / "o").outbox_path == tmp_path / "o"


def test_webhook_secrets_setting_is_checked_without_showing_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LANEWAY_WEBHOOK_SECRETS", '{"acme-hooks": "too-short"}')
    with pytest.raises(SettingsError, match="LANEWAY_WEBHOOK_SECRETS") as caught:
        load_settings()
    assert "too-short" not in str(caught.value)
    monkeypatch.setenv("LANEWAY_WEBHOOK_SECRETS", '{"acme-hooks": "a-long-enough-secret"}')
    monkeypatch.setenv("LANEWAY_WEBHOOK_ALLOW_HOSTS", '["127.0.0.1", "Hooks.Internal"]')
    settings = load_settings()
    assert settings.webhook_secrets["acme-hooks"].get_secret_value() == "a-long-enough-secret"
    assert settings.webhook_allow_hosts == ["127.0.0.1", "hooks.internal"]
    assert "a-long-enough-secret" not in repr(settings)
