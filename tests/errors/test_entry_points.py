"""Every entry point says a bad setting in one line naming the variable, exits 2, no traceback;
a worker that cannot reach a dependency names it and exits non-zero. Real processes, as a person
runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.payload_keys import TEST_PAYLOAD_ENV

LANEWAY = str(Path(sys.executable).parent / "laneway")
BAD_TOKENS = ("LANEWAY_API_TOKENS", "{bad")
BAD_THRESHOLDS = ("LANEWAY_BATCH_PLAN_APPROVAL_USD", '{"acme": "fifty"}')
ENTRY_POINTS = {
    "jobs": [LANEWAY, "jobs", "list"],
    "submit": [
        LANEWAY,
        "submit",
        "background",
        "--job-type",
        "brief",
        "--model",
        "m",
        "--text",
        "hi",
    ],
    "approve": [LANEWAY, "approve", "job-1", "--note", "ok", "--token", "tok"],
    "results": [LANEWAY, "results", "job-1"],
    "worker": [LANEWAY, "worker"],
    "api": [LANEWAY, "api"],
    "dev": [LANEWAY, "dev"],
    "demo": [LANEWAY, "demo"],
}


def run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`argv` with only `env` set (and PATH), in `cwd`, so no .env or var/ of ours is read."""
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(cwd), **TEST_PAYLOAD_ENV}
    return subprocess.run(
        argv, cwd=cwd, env={**base, **env}, capture_output=True, text=True, timeout=90
    )


def assert_one_plain_line(ran: subprocess.CompletedProcess[str], prefix: str) -> str:
    assert "Traceback" not in ran.stderr, ran.stderr
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1, ran.stderr
    assert lines[0].startswith(prefix), ran.stderr
    return lines[0]


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("bad", [BAD_TOKENS, BAD_THRESHOLDS], ids=["tokens", "thresholds"])
def test_a_bad_json_setting_is_one_line_naming_it(
    name: str, bad: tuple[str, str], tmp_path: Path
) -> None:
    variable, value = bad
    ran = run(ENTRY_POINTS[name], tmp_path, **{variable: value})
    assert ran.returncode == 2, ran.stderr
    line = assert_one_plain_line(ran, f"laneway {name}: {variable}: ")
    assert "expected a JSON object such as {" in line
    assert not (tmp_path / "var").exists()  # nothing started


def test_the_module_entry_points_say_the_same(tmp_path: Path) -> None:
    for argv, prefix in [
        ([sys.executable, "-m", "workers"], "laneway worker: "),
        ([sys.executable, "-m", "client.http_api"], "laneway api: "),
    ]:
        ran = run(argv, tmp_path, PYTHONPATH=str(Path(__file__).parents[2]), **dict([BAD_TOKENS]))
        assert ran.returncode == 2, ran.stderr
        assert_one_plain_line(ran, f"{prefix}LANEWAY_API_TOKENS: not valid JSON")


def test_a_token_is_never_repeated_in_a_settings_error(tmp_path: Path) -> None:
    ran = run([LANEWAY, "jobs", "list"], tmp_path, LANEWAY_API_TOKENS='{"tok-secret-1": "rita"}')
    assert ran.returncode == 2
    line = assert_one_plain_line(ran, "laneway jobs: LANEWAY_API_TOKENS: ")
    assert "tok-secret-1" not in line


@pytest.mark.parametrize("name", ["api", "dev"])
def test_a_bad_tokens_file_stops_the_servers_at_start(name: str, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text("{not json")
    ran = run(ENTRY_POINTS[name], tmp_path, LANEWAY_API_TOKENS_FILE=str(tokens))
    assert ran.returncode == 2, ran.stderr
    assert_one_plain_line(ran, f"laneway {name}: LANEWAY_API_TOKENS_FILE: cannot use {tokens}")


# ---- a worker that cannot reach what it needs -------------------------------------------------

PROVIDER = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}


def test_worker_names_unreachable_temporal(tmp_path: Path) -> None:
    ran = run([LANEWAY, "worker"], tmp_path, LANEWAY_TEMPORAL_ADDRESS="127.0.0.1:1", **PROVIDER)
    assert ran.returncode == 1, ran.stderr
    assert "Traceback" not in ran.stderr
    assert (
        "laneway worker: cannot reach Temporal at 127.0.0.1:1 (namespace default): "
        "Connection refused; start it" in ran.stderr
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://laneway:s3cret@127.0.0.1:1/laneway",
        "nosuchdb://host/x",
    ],
    ids=["unreachable", "unknown-driver"],
)
def test_worker_names_an_unusable_ledger(url: str, tmp_path: Path) -> None:
    ran = run(
        [LANEWAY, "worker"],
        tmp_path,
        LANEWAY_TEMPORAL_ADDRESS="127.0.0.1:1",
        LANEWAY_DATABASE_URL=url,
        **PROVIDER,
    )
    assert ran.returncode == 1, ran.stderr
    line = assert_one_plain_line(ran, "laneway worker: cannot open the ledger at ")
    assert "LANEWAY_DATABASE_URL" in line
    assert "s3cret" not in ran.stderr


def test_worker_names_an_unwritable_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a directory cannot be made under a file, even by root
    data_dir = blocker / "var"
    ran = run(
        [LANEWAY, "worker"],
        tmp_path,
        LANEWAY_TEMPORAL_ADDRESS="127.0.0.1:1",
        LANEWAY_DATA_DIR=str(data_dir),
        **PROVIDER,
    )
    assert ran.returncode == 1, ran.stderr
    line = assert_one_plain_line(ran, f"laneway worker: its data directory {data_dir} ")
    assert "not writable" in line and "LANEWAY_DATA_DIR" in line


def test_worker_names_a_missing_provider_configuration(tmp_path: Path) -> None:
    ran = run([LANEWAY, "worker"], tmp_path, LANEWAY_TEMPORAL_ADDRESS="127.0.0.1:1")
    assert ran.returncode == 2, ran.stderr
    assert "Traceback" not in ran.stderr
    assert "laneway worker: the provider configuration: OPENAI_API_KEY is not set" in ran.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["submit", "background", "--job-type", "brief", "--model", "m", "--text", "hi"],
        ["jobs", "show"],
        ["cancel", "--reason", "x", "--token", "tok"],
    ],
    ids=["submit", "show", "cancel"],
)
def test_the_cli_refuses_an_id_no_surface_could_reach(argv: list[str], tmp_path: Path) -> None:
    bad = "../x"
    full = [LANEWAY, *argv, "--job-id", bad] if argv[0] == "submit" else [LANEWAY, *argv, bad]
    ran = run(full, tmp_path, LANEWAY_TEMPORAL_ADDRESS="127.0.0.1:1")
    assert ran.returncode == 2, ran.stderr
    line = assert_one_plain_line(ran, "laneway: job id '../x' is not allowed")
    assert "no '/'" in line


def test_api_names_unreachable_temporal_at_start(tmp_path: Path) -> None:
    ran = run(
        [LANEWAY, "api"],
        tmp_path,
        LANEWAY_TEMPORAL_ADDRESS="127.0.0.1:1",
        LANEWAY_API_ADDRESS="127.0.0.1:1",  # never bound: it stops before serving
    )
    assert ran.returncode == 1, ran.stderr
    assert "Traceback" not in ran.stderr
    assert "laneway api: cannot reach Temporal at 127.0.0.1:1: start it" in ran.stderr


def test_the_ledger_tool_says_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    ran = run(
        [sys.executable, "-m", "store.ledger", "current"],
        tmp_path,
        PYTHONPATH=str(Path(__file__).parents[2]),
        **dict([BAD_TOKENS]),
    )
    assert ran.returncode == 2, ran.stderr
    assert_one_plain_line(ran, "python -m store.ledger: LANEWAY_API_TOKENS: not valid JSON")
