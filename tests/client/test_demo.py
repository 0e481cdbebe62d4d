"""`make demo` runs `laneway demo`: one reviewed job end to end, then nothing left running."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.e2e.test_dev_stack import alive, descendants

WEB_UI_LINK = re.compile(
    r"^Web UI: http://127\.0\.0\.1:(\d+)/namespaces/default/workflows/(job-[0-9a-f]{32})$", re.M
)


def run_demo_watching_children(data_dir: Path) -> tuple[int, str, set[int], float]:
    """Run `python -m client.cli demo` as `make demo` would; remember every process it starts."""
    started = time.monotonic()
    demo = subprocess.Popen(
        [sys.executable, "-m", "client.cli", "demo"],
        env={**os.environ, "LANEWAY_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: set[int] = set()

    def watch() -> None:
        while demo.poll() is None:
            seen.update(descendants(demo.pid))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    output, _ = demo.communicate(timeout=150)
    watcher.join()
    return demo.returncode, output, seen, time.monotonic() - started


def test_demo_runs_a_reviewed_job_and_leaves_nothing_running(tmp_path: Path) -> None:
    code, output, children, seconds = run_demo_watching_children(tmp_path / "var")

    assert code == 0, output
    background, _, batch = output.partition("\nBatch job ")
    statuses = re.findall(r"^\s+[\d.]+s  (\w+)", background, re.M)
    # "running" shows only if a look at the job falls while the provider works: the emulator's
    # webhook can bring the job from queued to needs_review between two looks.
    assert [s for s in statuses if s != "running"] == [
        "queued",
        "needs_review",
        "rita",
        "completed",
    ], output
    assert 'rita (reviewer in demo) approves: "reads well; deliver it"' in output
    assert "completed     approved and delivered" in output

    link = WEB_UI_LINK.search(output)
    assert link is not None, output
    ui_port, job_id = link.groups()
    assert f"Temporal Web UI   http://127.0.0.1:{ui_port}\n" in output
    outbox_file = tmp_path / "var" / "demo" / "outbox" / "briefs" / f"{job_id}.json"
    delivered = json.loads(outbox_file.read_text())["output"]
    assert delivered.startswith("Sentiment: positive. Summary: Research brief")
    assert f"Delivered to {outbox_file}:\n  {delivered[:60]}" in output
    assert re.search(r"^Usage: \d+ input \+ \d+ output = \d+ tokens \(gpt-4o-mini", output, re.M)
    assert re.search(r"^Cost:  \$0\.0000\d+$", output, re.M), output

    batch_statuses = re.findall(r"^\s+[\d.]+s  (\w+)", batch, re.M)
    assert batch_statuses[0] == "queued" and batch_statuses[-1] == "completed", batch
    assert "completed round 1:  2000 of 2000 succeeded, 0 failed, 0 pending" in batch
    assert "Every record accounted for: 2000 succeeded, 0 failed, 0 never sent" in batch
    assert "  first line: T-00000 'Question about billing (#0)' -> " in batch
    assert re.search(
        r"^Cost:  \$0\.\d+ at batch price \(\$0\.\d+ at standard price\)$", batch, re.M
    )

    assert output.rstrip().endswith("Stack stopped.")
    assert len(children) >= 3, "the Temporal server, the emulator and the worker ran"
    assert not [pid for pid in children if alive(pid)], "processes outlived the demo"
    assert seconds < 60, f"the demo took {seconds:.0f}s"
