"""`make demo` runs `laneway demo`: one reviewed job end to end, then nothing left running."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.e2e.test_dev_stack import alive, descendants


def test_demo_runs_a_reviewed_job_and_cleans_up(tmp_path: Path) -> None:
    env = {**os.environ, "LANEWAY_DATA_DIR": str(tmp_path / "var")}
    demo = subprocess.Popen(
        [sys.executable, "-m", "client.cli", "demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: set[int] = set()

    def watch() -> None:  # remember every process the demo started
        while demo.poll() is None:
            seen.update(descendants(demo.pid))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    output, _ = demo.communicate(timeout=150)
    watcher.join()
    assert demo.returncode == 0, output
    assert "status: needs_review" in output
    assert "rita (reviewer) approves" in output
    assert "status: completed (approved and delivered)" in output
    assert "Sentiment:" in output and "durable workflows" in output
    assert "cost $0.0000" in output
    assert "Web UI: http://127.0.0.1:8233/namespaces/default/workflows/job-" in output
    assert output.rstrip().endswith("Stack stopped.")
    assert len(seen) >= 3, "temporal, emulator and worker ran"
    assert not [pid for pid in seen if alive(pid)], "processes outlived the demo"
