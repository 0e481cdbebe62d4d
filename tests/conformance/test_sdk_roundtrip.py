"""The SDK-only round trip script passes against the emulator, and notices when it should not."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from types import ModuleType

import pytest

from emulator.server import EmulatorServer
from tests.conformance.spec import repo_root

SCRIPT = repo_root() / "scripts" / "sdk_roundtrip.py"
FAST = ["--poll-interval", "0.05", "--timeout", "60"]


def load_script() -> ModuleType:
    """Imported by path: `scripts/` is a folder of scripts, not a package."""
    spec = importlib.util.spec_from_file_location("sdk_roundtrip", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sdk_roundtrip = load_script()


def stick_the_cancelled_response(server: EmulatorServer) -> None:
    """Keep the script's second response in progress, so its cancel really cancels."""
    key, value = next(iter(sdk_roundtrip.CANCEL_METADATA.items()))
    server.control.add_fault(
        {"kind": "response_stick", "match": {"metadata_key": key, "metadata_value": value}}
    )


def test_a_1000_line_batch_and_background_responses(fast_emulator: EmulatorServer) -> None:
    stick_the_cancelled_response(fast_emulator)
    before = fast_emulator.control.stats()["counts"]
    env = {**os.environ, "OPENAI_BASE_URL": fast_emulator.base_url, "OPENAI_API_KEY": "any"}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *FAST],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert ": completed, 1000/1000 answered, 0 problems" in lines[0]
    assert lines[1].startswith("background resp_") and lines[1].endswith(": cancelled")
    assert lines[-1] == "roundtrip ok"
    after = fast_emulator.control.stats()["counts"]
    assert [after[kind] - before[kind] for kind in ("batches", "responses")] == [1, 2]


def test_the_script_reports_failed_requests(
    fast_emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fast_emulator.control.add_fault(
        {"kind": "batch_fail_fraction", "match": {"path_prefix": "/v1/batches"}, "fraction": 0.1}
    )
    monkeypatch.setenv("OPENAI_BASE_URL", fast_emulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "any")
    assert sdk_roundtrip.main(["--lines", "50", *FAST]) == 1
    out, err = capsys.readouterr()
    assert "PROBLEM: req-" in err and "failed:" in err
    assert out.splitlines()[-1].startswith("roundtrip failed:")


def test_answers_must_be_about_their_own_request() -> None:
    _, markers = sdk_roundtrip.batch_input(13, "m")
    body = {"choices": [{"message": {"content": "Summary: ticket T00012: it works"}}]}
    line = {"custom_id": "req-00001", "response": {"status_code": 200, "body": body}}
    assert "not about ticket T00001" in str(sdk_roundtrip.check_line(line, markers, True))
    assert sdk_roundtrip.check_line({**line, "custom_id": "req-00012"}, markers, True) is None
    assert "never sent" in str(sdk_roundtrip.check_line({**line, "custom_id": "x"}, markers, True))
    twice = [{"custom_id": cid} for cid in [*markers, "req-00003"]]
    assert sdk_roundtrip.check_join(markers, twice) == ["answered more than once: ['req-00003']"]
    assert "1 requests never answered" in sdk_roundtrip.check_join(markers, twice[1:])[0]
