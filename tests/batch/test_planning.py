"""plan_first_round and plan_retry_round over real files and a SQLite ledger."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from activities.batch_input import (
    PlanTooLarge,
    estimate,
    plan_first_round,
    plan_retry_round,
    prepared_lines,
    validate_input,
)
from laneway.batch import (
    MAX_EMBEDDING_INPUTS_PER_BATCH,
    MAX_SHARDS_PER_ROUND,
    BatchJobSpec,
    RecordState,
    RequestTemplate,
    RoundPlan,
)
from laneway.jobs import Usage
from laneway.pricing import cost
from store.artifacts import ArtifactStore
from store.ledger import Ledger, NewJob, upgrade_to_head
from store.ledger.batch_records import BatchRecords, RecordResult

JOB = "batch-plan-1"
MODEL = "gpt-4o-mini"


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade_to_head(url)
    return Ledger.from_url(url)


@pytest.fixture
def records(ledger: Ledger) -> BatchRecords:
    return BatchRecords(ledger.engine)


def request(n: int, text: str | None = None, model: str = MODEL) -> dict[str, Any]:
    return {
        "custom_id": f"req-{n}",
        "method": "POST",
        "url": "/v1/responses",
        "body": {"model": model, "input": text if text is not None else f"Classify {n}"},
    }


class Job:
    """An input validated and its job recorded, ready to plan."""

    def __init__(
        self,
        store: ArtifactStore,
        ledger: Ledger,
        rows: Iterable[dict[str, Any] | str],
        **fields: Any,
    ) -> None:
        data = b"".join(
            (row if isinstance(row, str) else json.dumps(row)).encode() + b"\n" for row in rows
        )
        if "template" in fields:
            fields.setdefault("input_format", "records")
        self.store = store
        self.spec = BatchJobSpec(
            job_type="ticket_triage",
            workspace="acme",
            requested_by="alice",
            input=store.put_bytes(data, "application/jsonl"),
            **fields,
        )
        self.validation = validate_input(store, self.spec)
        ledger.record_job(NewJob.batch(JOB, JOB, self.spec))

    def plan(self, records: BatchRecords) -> RoundPlan:
        return plan_first_round(self.store, records, JOB, self.spec, self.validation)

    def retry(self, records: BatchRecords, round: int) -> RoundPlan:
        return plan_retry_round(self.store, records, JOB, self.spec, self.validation, round)


def shard_lines(store: ArtifactStore, plan: RoundPlan) -> list[list[dict[str, Any]]]:
    return [
        [json.loads(raw) for raw in store.read_bytes(shard.file).splitlines()]
        for shard in plan.shards
    ]


def ids_of(lines: Iterable[dict[str, Any]]) -> list[str]:
    return [line["custom_id"] for line in lines]


def registered(records: BatchRecords) -> list[tuple[str, int, int, int, RecordState]]:
    return [
        (r.custom_id, r.line_no, r.round, r.shard, r.state) for r in records.records_in_order(JOB)
    ]


def test_shards_hold_at_most_max_requests_in_input_order(
    store: ArtifactStore, ledger: Ledger, records: BatchRecords
) -> None:
    job = Job(store, ledger, [request(n) for n in range(25)], shard_limits={"max_requests": 10})
    plan = job.plan(records)

    assert (plan.round, plan.requests) == (1, 25)
    assert [(s.round, s.index, s.requests) for s in plan.shards] == [
        (1, 0, 10),
        (1, 1, 10),
        (1, 2, 5),
    ]
    files = shard_lines(store, plan)
    assert [ids_of(f) for f in files] == [
        [f"req-{n}" for n in range(0, 10)],
        [f"req-{n}" for n in range(10, 20)],
        [f"req-{n}" for n in range(20, 25)],
    ]
    assert files[1][3] == request(13)  # the line exactly as the provider gets it
    prepared = list(prepared_lines(store, job.validation))
    assert [s.file.size_bytes for s in plan.shards] == [
        sum(len(p.request) + 1 for p in prepared[i : i + 10]) for i in (0, 10, 20)
    ]
    assert [s.estimated_input_tokens for s in plan.shards] == [
        sum(p.input_tokens for p in prepared[i : i + 10]) for i in (0, 10, 20)
    ]


def test_every_record_is_registered_once_with_its_shard(
    store: ArtifactStore, ledger: Ledger, records: BatchRecords
) -> None:
    rows: list[dict[str, Any] | str] = [request(n) for n in range(12)]
    rows[4] = "not json"  # quarantined: its line number is skipped, the others keep theirs
    rows[7] = ""
    job = Job(store, ledger, rows, shard_limits={"max_requests": 4}, bad_lines="quarantine")
    plan = job.plan(records)

    by_shard = [ids_of(f) for f in shard_lines(store, plan)]
    assert by_shard == [
        ["req-0", "req-1", "req-2", "req-3"],
        ["req-5", "req-6", "req-8", "req-9"],
        ["req-10", "req-11"],
    ]
    assert registered(records) == [
        (custom_id, int(custom_id.split("-")[1]) + 1, 1, shard, RecordState.PENDING)
        for shard, ids in enumerate(by_shard)
        for custom_id in ids
    ]
    assert records.counts(JOB).total == job.validation.accepted == plan.requests == 10


def test_shards_stop_at_max_bytes_exactly(
    store: ArtifactStore, ledger: Ledger, records: BatchRecords
) -> None:
    """Lines of 256 bytes with their newline: four fill a 1,024-byte shard to the byte."""
    base = len(json.dumps(request(0, ""), separators=(",", ":")))
    rows = [request(n, "x" * (255 - base - len(str(n)) + 1)) for n in range(10)]
    job = Job(store, ledger, rows, shard_limits={"max_bytes": 1024}, max_line_bytes=1024)
    assert {len(p.request) + 1 for p in prepared_lines(store, job.validation)} == {256}
    plan = job.plan(records)

    assert [s.requests for s in plan.shards] == [4, 4, 2]
    assert [s.file.size_bytes for s in plan.shards] == [1024, 1024, 512]
    assert [len(store.path_for(s.file).read_bytes()) for s in plan.shards] == [1024, 1024, 512]


def test_shards_of_uneven_lines_never_pass_max_bytes_and_are_filled_greedily(
    store: ArtifactStore, ledger: Ledger, records: BatchRecords
) -> None:
    rows = [request(n, "y" * ((n * 37) % 900)) for n in range(200)]
    job = Job(store, ledger, rows, shard_limits={"max_bytes": 4096}, max_line_bytes=1024)
    plan = job.plan(records)

    files = [store.read_bytes(s.file) for s in plan.shards]
    assert all(len(data) <= 4096 for data in files)
    assert [len(data) for data in files] == [s.file.size_bytes for s in plan.shards]
    for this, after in itertools.pairwise(files):
        next_line = after.split(b"\n", 1)[0] + b"\n"
        assert len(this) + len(next_line) > 4096, "a shard was closed while the next line fit"
    assert [c for f in shard_lines(store, plan) for c in ids_of(f)] == [
        f"req-{n}" for n in range(200)
    ]


def test_a_request_larger_than_a_shard_is_refused_by_validation(
    store: ArtifactStore, ledger: Ledger, records: BatchRecords
) -> None:
    """The template adds text to the record: a 1,000-byte record becomes a 1,100-byte line."""
    template = RequestTemplate(
        endpoint="/v1/responses",
        model=MODEL,
        prompt_template="Classify this support ticket for the routing team: {text}",
        id_field="id",
    )
    rows = [{"id": "small", "text": "short"}, {"id": "big", "text": "z" * 980}]
    job = Job(
        store,
        ledger,
        rows,
        template=template,
        shard_limits={"max_bytes": 1024},
        max_line_bytes=1024,
        bad_lines="quarantine",
    )
    [error] = job.validation.first_errors
    assert (error.line, error.code) == (2, "request_too_large")
    assert "a shard holds at most 1,024 (shard_limits.max_bytes)" in error.message
    plan = job.plan(records)
    assert all(s.file.size_bytes <= 1024 for s in plan.shards)
    assert ids_of(shard_lines(store, plan)[0]) == ["small"]


def test_a_request_with_more_embedding_inputs_than_a_batch_takes_is_refused(
    store: ArtifactStore, ledger: Ledger, records: BatchRecords
) -> None:
    def embed(custom_id: str, inputs: int) -> dict[str, Any]:
        body = {"model": "text-embedding-3-small", "input": ["a"] * inputs}
        return {"custom_id": custom_id, "method": "POST", "url": "/v1/embeddings", "body": body}

    rows = [embed("fits", MAX_EMBEDDING_INPUTS_PER_BATCH), embed("over", 50_001)]
    job = Job(store, ledger, rows, bad_lines="quarantine")
    [error] = job.validation.first_errors
    assert (error.line, error.code) == (2, "too_many_inputs")
    assert "50,001 embedding inputs; a batch takes at most 50,000" in error.message
    plan = job.plan(records)
    assert [s.requests for s in plan.shards] == [1]


def test_embedding_shards_hold_at_most_50000_inputs(
    store: ArtifactStore, ledger: Ledger, records: BatchRecords
) -> None:
    rows = [
        {
            "custom_id": f"emb-{n}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "text-embedding-3-small", "input": ["a"] * 2048},
        }
        for n in range(30)
    ]
    job = Job(store, ledger, rows)
    plan = job.plan(records)

    inputs = [sum(len(line["body"]["input"]) for line in f) for f in shard_lines(store, plan)]
    assert inputs == [24 * 2048, 6 * 2048]
    assert max(inputs) <= MAX_EMBEDDING_INPUTS_PER_BATCH
    assert [s.requests for s in plan.shards] == [24, 6]
    assert plan.estimate.output_tokens == 0


def test_the_estimate_prices_the_batch_at_half_the_standard_rate(
    store: ArtifactStore, ledger: Ledger, records: BatchRecords
) -> None:
    job = Job(store, ledger, [request(n) for n in range(40)], expected_output_tokens=100)
    plan = job.plan(records)
    prepared = list(prepared_lines(store, job.validation))

    assert plan.estimate.input_tokens == sum(p.input_tokens for p in prepared) > 0
    assert plan.estimate.output_tokens == 40 * 100
    usage = Usage(input_tokens=plan.estimate.input_tokens, output_tokens=4000)
    assert plan.estimate.cost_standard_usd == cost(usage, MODEL, "standard")
    assert plan.estimate.cost_batch_usd is not None and plan.estimate.cost_standard_usd
    assert plan.estimate.cost_batch_usd * 2 == plan.estimate.cost_standard_usd
    assert plan.estimate.cost_batch_usd > 0


def test_an_unknown_model_has_no_price_but_still_counts_tokens(
    store: ArtifactStore, ledger: Ledger, records: BatchRecords
) -> None:
    job = Job(store, ledger, [request(n, model="my-finetune-7") for n in range(3)])
    plan = job.plan(records)
    assert plan.estimate.cost_batch_usd is None and plan.estimate.cost_standard_usd is None
    assert plan.estimate.input_tokens > 0 and plan.estimate.output_tokens == 3 * 256
    assert estimate(None, 10, 10).cost_batch_usd is None
    gpt_55 = estimate("gpt-5.5", 1_000_000, 1_000_000)
    assert (gpt_55.cost_standard_usd, gpt_55.cost_batch_usd) == (Decimal("35"), Decimal("17.5"))


def test_planning_again_gives_the_same_shards_and_no_new_records(
    store: ArtifactStore, ledger: Ledger, records: BatchRecords
) -> None:
    job = Job(store, ledger, [request(n) for n in range(4500)], shard_limits={"max_requests": 1000})
    first = job.plan(records)
    before = registered(records)
    second = job.plan(records)  # the activity retried after a crash

    assert second == first and len(first.shards) == 5
    assert registered(records) == before and len(before) == 4500
    assert records.counts(JOB).total == 4500


def test_more_shards_than_a_round_may_hold_is_refused(
    store: ArtifactStore, ledger: Ledger, records: BatchRecords
) -> None:
    rows = [request(n) for n in range(MAX_SHARDS_PER_ROUND + 1)]
    job = Job(store, ledger, rows, shard_limits={"max_requests": 1})
    with pytest.raises(PlanTooLarge, match="more than 200 shards: split it into several jobs"):
        job.plan(records)


def test_nothing_to_plan_gives_an_empty_round(
    store: ArtifactStore, ledger: Ledger, records: BatchRecords
) -> None:
    job = Job(store, ledger, [request(0), "bad"])  # fails: no requests file
    assert job.validation.requests is None
    plan = job.plan(records)
    assert (plan.requests, plan.shards) == (0, [])
    assert records.counts(JOB).total == 0


# ---- retry rounds ---------------------------------------------------------------------------


def ok(custom_id: str) -> RecordResult:
    return RecordResult(custom_id=custom_id, state=RecordState.SUCCEEDED, usage=Usage())


def failed(custom_id: str, *, retryable: bool) -> RecordResult:
    code = "server_error" if retryable else "invalid_request"
    return RecordResult(custom_id, RecordState.FAILED, retryable, code, "-")


def finish_round(records: BatchRecords, plan: RoundPlan, results: dict[str, RecordResult]) -> None:
    """Land the given results per shard, then close what is left as missing (retryable)."""
    for shard in plan.shards:
        # every shard is offered every result: the ledger keeps those of its own records
        landing = records.record_results(
            JOB, plan.round, shard.index, f"b{shard.index}", results.values()
        )
        list(landing)
        records.fail_pending(
            JOB,
            plan.round,
            shard.index,
            state=RecordState.MISSING,
            retryable=True,
            code="missing_result",
            message="-",
            batch_id=f"b{shard.index}",
        )


def test_a_retry_round_sends_exactly_the_retryable_records_in_input_order(
    store: ArtifactStore, ledger: Ledger, records: BatchRecords
) -> None:
    job = Job(store, ledger, [request(n) for n in range(30)], shard_limits={"max_requests": 4})
    first = job.plan(records)
    results = {f"req-{n}": ok(f"req-{n}") for n in range(30) if n % 3 == 0}
    results |= {f"req-{n}": failed(f"req-{n}", retryable=True) for n in (1, 7, 22)}
    results |= {f"req-{n}": failed(f"req-{n}", retryable=False) for n in (2, 8, 29)}
    # the rest (4, 5, 10, ...) get no result at all: missing, which is retryable
    finish_round(records, first, results)
    wanted = [n for n in range(30) if n % 3 != 0 and n not in (2, 8, 29)]

    second = job.retry(records, 2)

    assert (second.round, second.requests) == (2, len(wanted))
    files = shard_lines(store, second)
    assert [c for f in files for c in ids_of(f)] == [f"req-{n}" for n in wanted]
    assert [s.requests for s in second.shards] == [4, 4, 4, 4, 1]
    assert all(s.round == 2 for s in second.shards)
    assert files[0][0] == request(1)
    moved = {r.custom_id: r for r in records.records_in_order(JOB) if r.round == 2}
    assert list(moved) == [f"req-{n}" for n in wanted]
    assert all(r.state is RecordState.PENDING and not r.retryable for r in moved.values())
    assert [moved[f"req-{n}"].shard for n in wanted] == [i // 4 for i in range(len(wanted))]
    stayed = records.counts(JOB, round=1)
    assert (stayed.total, stayed.succeeded, stayed.failed, stayed.retryable) == (13, 10, 3, 0)
    assert second.estimate.input_tokens == sum(s.estimated_input_tokens for s in second.shards)


def test_planning_a_retry_round_again_changes_nothing(
    store: ArtifactStore, ledger: Ledger, records: BatchRecords
) -> None:
    # 3,000 records to resend: moves are written in chunks while the candidates are read
    job = Job(store, ledger, [request(n) for n in range(6000)], shard_limits={"max_requests": 800})
    first = job.plan(records)
    finish_round(records, first, {f"req-{n}": ok(f"req-{n}") for n in range(0, 6000, 2)})

    second = job.retry(records, 2)
    after_first_try = registered(records)
    again = job.retry(records, 2)  # repeated after a crash, once the records had moved

    assert again == second and second.requests == 3000
    assert [s.requests for s in second.shards] == [800, 800, 800, 600]
    assert [c for f in shard_lines(store, second) for c in ids_of(f)] == [
        f"req-{n}" for n in range(1, 6000, 2)
    ]
    assert registered(records) == after_first_try
    assert records.counts(JOB, round=2).pending == 3000


def test_a_third_round_takes_only_what_the_second_left_retryable(
    store: ArtifactStore, ledger: Ledger, records: BatchRecords
) -> None:
    job = Job(store, ledger, [request(n) for n in range(10)])
    first = job.plan(records)
    finish_round(records, first, {f"req-{n}": ok(f"req-{n}") for n in range(5)})
    second = job.retry(records, 2)
    assert ids_of(shard_lines(store, second)[0]) == [f"req-{n}" for n in range(5, 10)]
    finish_round(
        records,
        second,
        {
            "req-5": ok("req-5"),
            "req-6": failed("req-6", retryable=False),
            "req-7": failed("req-7", retryable=True),
            "req-3": failed("req-3", retryable=True),  # a round-1 record: not in this round
        },
    )

    third = job.retry(records, 3)

    assert ids_of(shard_lines(store, third)[0]) == ["req-7", "req-8", "req-9"]
    counts = records.counts(JOB)
    assert (counts.total, counts.succeeded, counts.failed, counts.pending) == (10, 6, 1, 3)


def test_a_retry_round_with_nothing_retryable_is_empty(
    store: ArtifactStore, ledger: Ledger, records: BatchRecords
) -> None:
    job = Job(store, ledger, [request(n) for n in range(6)])
    first = job.plan(records)
    results = {f"req-{n}": ok(f"req-{n}") for n in range(5)}
    results["req-5"] = failed("req-5", retryable=False)
    finish_round(records, first, results)

    second = job.retry(records, 2)
    assert (second.requests, second.shards) == (0, [])
    assert records.counts(JOB, round=2).total == 0


def test_a_retry_round_fills_its_shards_within_the_byte_limit(
    store: ArtifactStore, ledger: Ledger, records: BatchRecords
) -> None:
    rows = [request(n, "w" * ((n * 53) % 700)) for n in range(120)]
    job = Job(store, ledger, rows, shard_limits={"max_bytes": 2048}, max_line_bytes=1024)
    first = job.plan(records)
    finish_round(records, first, {f"req-{n}": ok(f"req-{n}") for n in range(0, 120, 3)})

    second = job.retry(records, 2)

    assert all(s.file.size_bytes <= 2048 for s in second.shards)
    assert [c for f in shard_lines(store, second) for c in ids_of(f)] == [
        f"req-{n}" for n in range(120) if n % 3
    ]
