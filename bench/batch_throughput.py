"""Batch lane throughput and memory: validate, shard (+ ledger registration) and ingest.

    uv run python bench/batch_throughput.py                 # 100,000 and 500,000 records
    uv run python bench/batch_throughput.py --records 20000 # a quick look

For each size it writes a records-format JSONL input, then runs each phase in a fresh
process, so every phase's peak RSS is its own:

- json pass: a bare `json.loads` + `json.dumps` of every line into another file (the floor)
- validate:  `validate_input` (parse, template, custom_id uniqueness on disk, prepared file)
- shard:     `plan_first_round` (shard files + every record registered in a SQLite ledger)
- ingest:    a provider output file for every record, through `results_in_file` and
             `BatchRecords.record_results`, as the ingest activity lands them

It prints records/s and peak RSS per phase, and the growth of peak RSS from the smallest to
the largest size: the pipeline's memory must stay flat as the input grows.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activities.artifacts import ArtifactStore  # noqa: E402
from activities.batch_input import plan_first_round, validate_input  # noqa: E402
from activities.batches import LineTally, results_in_file  # noqa: E402
from activities.ledger import Ledger, NewJob, upgrade_to_head  # noqa: E402
from activities.ledger.batch_records import BatchRecords  # noqa: E402
from laneway.batch import BatchJobSpec, RequestTemplate, RoundPlan, ValidationReport  # noqa: E402
from laneway.jobs import ArtifactRef  # noqa: E402

JOB_ID = "bench-job"
PHASES = ("json pass", "validate", "shard", "ingest")


def write_input(path: Path, count: int) -> None:
    with path.open("w") as out:
        for n in range(count):
            record = {"id": f"rec-{n}", "title": f"Ticket {n}: the export is slow", "tier": "pro"}
            out.write(json.dumps(record) + "\n")


def spec_for(store: ArtifactStore, path: Path) -> BatchJobSpec:
    return BatchJobSpec(
        job_type="bench",
        workspace="bench",
        requested_by="bench",
        input=store.put_file(path, "application/jsonl"),
        input_format="records",
        template=RequestTemplate(
            endpoint="/v1/responses",
            model="gpt-4o-mini",
            prompt_template="Classify this ticket: {title}",
            id_field="id",
        ),
    )


# ---- phases (each runs in its own process) ---------------------------------------------------


def json_pass(work: Path) -> int:
    count = 0
    with (work / "input.jsonl").open("rb") as source, (work / "copy.jsonl").open("w") as out:
        for raw in source:
            out.write(json.dumps(json.loads(raw)) + "\n")
            count += 1
    return count


def validate(work: Path) -> int:
    store = ArtifactStore(work / "artifacts")
    report = validate_input(store, spec_for(store, work / "input.jsonl"))
    (work / "validation.json").write_text(report.model_dump_json())
    return report.accepted


def shard(work: Path) -> int:
    store = ArtifactStore(work / "artifacts")
    validation = ValidationReport.model_validate_json((work / "validation.json").read_text())
    url = f"sqlite:///{work / 'ledger.db'}"
    upgrade_to_head(url)
    ledger = Ledger.from_url(url)
    spec = spec_for(store, work / "input.jsonl")
    ledger.record_job(NewJob.batch(JOB_ID, JOB_ID, spec))
    plan = plan_first_round(store, BatchRecords(ledger.engine), JOB_ID, spec, validation)
    (work / "plan.json").write_text(plan.model_dump_json())
    return plan.requests


def ingest(work: Path) -> int:
    store = ArtifactStore(work / "artifacts")
    ledger = Ledger.from_url(f"sqlite:///{work / 'ledger.db'}")
    records = BatchRecords(ledger.engine)
    plan = RoundPlan.model_validate_json((work / "plan.json").read_text())
    for shard_ref in plan.shards:
        output = _provider_output(store, shard_ref.file)
        results = results_in_file(store, output, LineTally())
        for _landed in records.record_results(JOB_ID, 1, shard_ref.index, "batch_x", results):
            pass
    counts = records.counts(JOB_ID)
    assert counts.succeeded == counts.total == plan.requests, counts
    return plan.requests


def _provider_output(store: ArtifactStore, shard_file: ArtifactRef) -> ArtifactRef:
    """What the provider would answer for a shard: one successful line per request."""
    with store.writer("application/jsonl") as out, store.open(shard_file) as requests:
        for n, raw in enumerate(requests):
            body = {
                "id": f"resp_{n}",
                "object": "response",
                "status": "completed",
                "output_text": "billing",
                "usage": {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15},
            }
            result = {
                "id": f"batch_req_{n}",
                "custom_id": json.loads(raw)["custom_id"],
                "response": {"status_code": 200, "request_id": "req_1", "body": body},
                "error": None,
            }
            out.write(json.dumps(result).encode() + b"\n")
    return out.ref


PHASE_FUNCTIONS: dict[str, Callable[[Path], int]] = {
    "json pass": json_pass,
    "validate": validate,
    "shard": shard,
    "ingest": ingest,
}


def _run_phase(name: str, work: Path, answer: Any) -> None:
    started = time.perf_counter()
    count = PHASE_FUNCTIONS[name](work)
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    answer.put((count, seconds, peak_kb / 1024))


def measure(name: str, work: Path) -> tuple[int, float, float]:
    context = multiprocessing.get_context("spawn")
    answer = context.Queue()
    process = context.Process(target=_run_phase, args=(name, work, answer))
    process.start()
    result: tuple[int, float, float] = answer.get()
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"phase {name} failed with exit code {process.exitcode}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 500_000])
    sizes = parser.parse_args().records
    peaks: dict[str, list[float]] = {phase: [] for phase in PHASES}
    print(f"{'phase':<10} {'records':>9} {'seconds':>8} {'records/s':>10} {'peak RSS MB':>12}")
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="laneway-bench-") as tmp:
            work = Path(tmp)
            write_input(work / "input.jsonl", size)
            for phase in PHASES:
                count, seconds, peak_mb = measure(phase, work)
                peaks[phase].append(peak_mb)
                rate = count / seconds if seconds else float("inf")
                print(f"{phase:<10} {count:>9,} {seconds:>8.2f} {rate:>10,.0f} {peak_mb:>12.1f}")
    if len(sizes) > 1:
        print(f"\npeak RSS growth from {sizes[0]:,} to {sizes[-1]:,} records:")
        for phase, values in peaks.items():
            print(
                f"  {phase:<10} {values[0]:.1f} MB -> {values[-1]:.1f} MB "
                f"({values[-1] - values[0]:+.1f} MB)"
            )


if __name__ == "__main__":
    main()
