"""The batch lane's pipeline at scale: records/s and peak RSS of each phase, per input size.

    uv run python bench/batch_pipeline.py                          # 100,000 and 500,000 records
    uv run python bench/batch_pipeline.py --records 20000 100000   # any sizes
    uv run python bench/batch_pipeline.py --format requests        # ready batch lines as input

For every size, an input of that many records is generated in a temporary directory, then each
phase runs in a fresh subprocess of this script (`--phase NAME --work DIR`), so the peak RSS a
phase reports (`getrusage(RUSAGE_SELF).ru_maxrss` in that child) is its own and comparable:

- json pass  `json.loads` + `json.dumps` of every input line into another file: the floor
- validate   `validate_input`: parse, template, custom_id uniqueness, prepared requests file
- plan       `plan_first_round`: shard files, and every record registered in a SQLite ledger
- ingest     a synthetic provider output file and error file per shard (contract section 1
             lines, in a shuffled order, ~2% of them 429s in the error file), fed through
             `results_in_file` into `BatchRecords.record_results`

The provider files are written by an untimed setup subprocess before ingest, so ingest measures
reading and landing results only. "start RSS MB" is the child's RSS when its phase starts (the
interpreter and the imported libraries, about 98 MB); importing peaks a little above it (about
101 MB), so a phase's first megabytes do not show in its peak. The last lines compare each
phase's peak at the largest size with the smallest: memory must not grow with the records.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activities.batch_input import plan_first_round, validate_input  # noqa: E402
from activities.batches import LineTally, results_in_file  # noqa: E402
from laneway.batch import BatchJobSpec, RequestTemplate, RoundPlan, ValidationReport  # noqa: E402
from store.artifacts import ArtifactStore  # noqa: E402
from store.ledger import Ledger, NewJob, upgrade_to_head  # noqa: E402
from store.ledger.batch_records import BatchRecords  # noqa: E402

JOB_ID = "bench-pipeline"
MODEL = "gpt-4o-mini"
PHASES = ("json pass", "validate", "plan", "ingest")
SETUP_PROVIDER_FILES = "provider files"
ERROR_SHARE = 0.02  # of the result lines, 429s in the error file


# ---- the input --------------------------------------------------------------------------------


def write_input(path: Path, count: int, input_format: str) -> None:
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            title = f"Ticket {n}: the export to CSV times out after {n % 97} minutes"
            if input_format == "records":
                item: dict[str, Any] = {"id": f"rec-{n}", "title": title, "tier": "pro"}
            else:
                item = {
                    "custom_id": f"rec-{n}",
                    "method": "POST",
                    "url": "/v1/responses",
                    "body": {"model": MODEL, "input": f"Classify this ticket: {title}"},
                }
            out.write(json.dumps(item) + "\n")


def spec_for(store: ArtifactStore, work: Path) -> BatchJobSpec:
    input_format = (work / "format").read_text()
    template = None
    if input_format == "records":
        template = RequestTemplate(
            endpoint="/v1/responses",
            model=MODEL,
            prompt_template="Classify this ticket: {title}",
            id_field="id",
        )
    return BatchJobSpec(
        job_type="bench",
        workspace="bench",
        requested_by="bench",
        input=store.put_file(work / "input.jsonl", "application/jsonl"),
        input_format=input_format,
        template=template,
    )


# ---- the phases (each in its own process) ------------------------------------------------------


def json_pass(work: Path) -> int:
    count = 0
    with (work / "input.jsonl").open("rb") as source, (work / "copy.jsonl").open("w") as out:
        for raw in source:
            out.write(json.dumps(json.loads(raw)) + "\n")
            count += 1
    return count


def validate(work: Path) -> int:
    store = ArtifactStore(work / "artifacts")
    report = validate_input(store, spec_for(store, work))
    assert report.rejected == 0 and report.requests is not None, report.summary()
    (work / "validation.json").write_text(report.model_dump_json())
    return report.lines_read


def plan(work: Path) -> int:
    store = ArtifactStore(work / "artifacts")
    validation = ValidationReport.model_validate_json((work / "validation.json").read_text())
    url = f"sqlite:///{work / 'ledger.db'}"
    upgrade_to_head(url)
    ledger = Ledger.from_url(url)
    spec = spec_for(store, work)
    ledger.record_job(NewJob.batch(JOB_ID, JOB_ID, spec))
    round_plan = plan_first_round(store, BatchRecords(ledger.engine), JOB_ID, spec, validation)
    (work / "plan.json").write_text(round_plan.model_dump_json())
    return round_plan.requests


def provider_files(work: Path) -> int:
    """Setup for ingest (untimed): what the provider would answer for every shard."""
    store = ArtifactStore(work / "artifacts")
    round_plan = RoundPlan.model_validate_json((work / "plan.json").read_text())
    files: list[dict[str, Any]] = []
    for shard in round_plan.shards:
        with store.open(shard.file) as requests:
            ids = [json.loads(raw)["custom_id"] for raw in requests]  # one shard: <= 50,000
        random.Random(shard.index).shuffle(ids)  # the provider's order is not the input's
        errors_from = int(len(ids) * (1 - ERROR_SHARE))
        with store.writer("application/jsonl") as out:
            for n, custom_id in enumerate(ids[:errors_from]):
                out.write(_line(n, custom_id, 200, _response_body(n)))
        with store.writer("application/jsonl") as errors:
            for n, custom_id in enumerate(ids[errors_from:]):
                errors.write(_line(n, custom_id, 429, _rate_limited()))
        files.append(
            {"shard": shard.index, "output": out.ref.model_dump(), "error": errors.ref.model_dump()}
        )
    (work / "provider.json").write_text(json.dumps(files))
    return round_plan.requests


def _line(n: int, custom_id: str, status: int, body: dict[str, Any]) -> bytes:
    response = {"status_code": status, "request_id": f"req_{n:08x}", "body": body}
    item = {"id": f"batch_req_{n:08x}", "custom_id": custom_id, "response": response, "error": None}
    return json.dumps(item, separators=(",", ":")).encode() + b"\n"


def _response_body(n: int) -> dict[str, Any]:
    text = ("billing", "bug", "feature request")[n % 3]
    return {
        "id": f"resp_{n:08x}",
        "object": "response",
        "created_at": 1_767_225_600,
        "status": "completed",
        "model": MODEL,
        "output": [
            {
                "type": "message",
                "id": f"msg_{n:08x}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "usage": {
            "input_tokens": 24,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 2,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 26,
        },
    }


def _rate_limited() -> dict[str, Any]:
    message = "Rate limit reached for requests. Please try again later."
    return {
        "error": {
            "message": message,
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }


def ingest(work: Path) -> int:
    from laneway.jobs import ArtifactRef

    store = ArtifactStore(work / "artifacts")
    records = BatchRecords(Ledger.from_url(f"sqlite:///{work / 'ledger.db'}").engine)
    tally = LineTally()
    for entry in json.loads((work / "provider.json").read_text()):
        for key in ("output", "error"):
            results = results_in_file(store, ArtifactRef.model_validate(entry[key]), tally)
            for _landed in records.record_results(JOB_ID, 1, entry["shard"], "batch_x", results):
                pass
    counts = records.counts(JOB_ID)
    assert counts.pending == 0 and counts.succeeded + counts.failed == counts.total, counts
    assert tally.unreadable == 0 and tally.lines == counts.total, tally
    return tally.lines


PHASE_FUNCTIONS: dict[str, Callable[[Path], int]] = {
    "json pass": json_pass,
    "validate": validate,
    "plan": plan,
    SETUP_PROVIDER_FILES: provider_files,
    "ingest": ingest,
}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _current_rss_mb() -> float:
    """The RSS right now (Linux); the import-time peak can hide a phase's first megabytes."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return _peak_rss_mb()


def run_phase_here(name: str, work: Path) -> None:
    """The child's side: run one phase, print its figures as JSON on the last line."""
    start_mb = _current_rss_mb()
    started = time.perf_counter()
    count = PHASE_FUNCTIONS[name](work)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "count": count,
                "seconds": seconds,
                "peak_mb": _peak_rss_mb(),
                "start_mb": start_mb,
            }
        )
    )


# ---- the parent -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    count: int
    seconds: float
    peak_mb: float
    start_mb: float


def measure(name: str, work: Path) -> Figures:
    command = [sys.executable, str(Path(__file__).resolve()), "--phase", name, "--work", str(work)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"phase {name!r} failed ({done.returncode}):\n{done.stderr}")
    return Figures(**json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 500_000])
    parser.add_argument("--format", choices=("records", "requests"), default="records")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase is not None:
        run_phase_here(args.phase, args.work)
        return

    sizes: list[int] = args.records
    peaks: dict[str, list[float]] = {phase: [] for phase in PHASES}
    print(f"input format: {args.format}")
    print(
        f"{'phase':<10} {'records':>9} {'seconds':>8} {'records/s':>10} "
        f"{'peak RSS MB':>12} {'start RSS MB':>13}"
    )
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="laneway-pipeline-") as tmp:
            work = Path(tmp)
            (work / "format").write_text(args.format)
            write_input(work / "input.jsonl", size, args.format)
            for phase in PHASES:
                if phase == "ingest":
                    measure(SETUP_PROVIDER_FILES, work)
                figures = measure(phase, work)
                peaks[phase].append(figures.peak_mb)
                rate = figures.count / figures.seconds if figures.seconds else float("inf")
                print(
                    f"{phase:<10} {figures.count:>9,} {figures.seconds:>8.2f} {rate:>10,.0f} "
                    f"{figures.peak_mb:>12.1f} {figures.start_mb:>13.1f}",
                    flush=True,
                )
    if len(sizes) > 1:
        print(f"\npeak RSS at {sizes[-1]:,} vs {sizes[0]:,} records:")
        for phase, values in peaks.items():
            print(
                f"  {phase:<10} {values[-1]:.1f} MB vs {values[0]:.1f} MB "
                f"({values[-1] - values[0]:+.1f} MB, x{values[-1] / values[0]:.2f})"
            )


if __name__ == "__main__":
    main()
