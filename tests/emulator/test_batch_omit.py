"""The batch_omit_results fault: the batch counts every request, its files lack some lines."""

from __future__ import annotations

from openai import OpenAI
from openai.types import Batch

from emulator.faults import FaultKind, FaultMatch, FaultRule
from emulator.server import EmulatorServer
from tests.emulator.helpers import DAY, by_custom_id, chat_line, read_jsonl, start_batch

REQUESTS = 400


def _omit(fraction: float, **fields: object) -> FaultRule:
    return FaultRule.model_validate(
        {"kind": FaultKind.BATCH_OMIT_RESULTS, "fraction": fraction, **fields}
    )


def _finished(server: EmulatorServer, client: OpenAI, batch: Batch) -> Batch:
    server.control.advance_clock(DAY / 2)
    return client.batches.retrieve(batch.id)


def _ids_in(client: OpenAI, file_id: str | None) -> list[str]:
    return [] if file_id is None else [row["custom_id"] for row in read_jsonl(client, file_id)]


def test_a_fifth_of_the_results_are_left_out_while_the_counts_cover_all(
    frozen: EmulatorServer, client: OpenAI
) -> None:
    frozen.control.add_fault(_omit(0.2))
    frozen.control.add_fault(
        FaultRule.model_validate({"kind": FaultKind.BATCH_FAIL_FRACTION, "fraction": 0.25})
    )
    batch = _finished(frozen, client, start_batch(client, [chat_line(i) for i in range(REQUESTS)]))

    assert batch.status == "completed" and batch.request_counts is not None
    counts = batch.request_counts
    assert counts.total == REQUESTS and counts.completed + counts.failed == REQUESTS
    done, failed = _ids_in(client, batch.output_file_id), _ids_in(client, batch.error_file_id)
    written = done + failed
    assert len(set(written)) == len(written), "no line is written twice"
    assert set(written) <= {f"req-{i}" for i in range(REQUESTS)}
    omitted = REQUESTS - len(written)
    assert 0.12 * REQUESTS <= omitted <= 0.28 * REQUESTS, f"{omitted} of {REQUESTS} left out"
    # Lines go missing from both files, and the counts still include them.
    assert len(done) < counts.completed and len(failed) < counts.failed


def test_the_same_custom_ids_are_left_out_every_time(
    frozen: EmulatorServer, client: OpenAI
) -> None:
    frozen.control.add_fault(_omit(0.2, seed=3))
    lines = [chat_line(i) for i in range(100)]
    first = _finished(frozen, client, start_batch(client, lines))
    second = _finished(frozen, client, start_batch(client, lines))
    written = [set(_ids_in(client, b.output_file_id)) for b in (first, second)]
    assert written[0] == written[1] and 0 < len(written[0]) < 100


def test_fraction_one_gives_a_completed_batch_without_an_output_file(
    frozen: EmulatorServer, client: OpenAI
) -> None:
    frozen.control.add_fault(_omit(1.0, match=FaultMatch(metadata_key="suite")))
    lines = [chat_line(i) for i in range(30)]
    hit = _finished(frozen, client, start_batch(client, lines, metadata={"suite": "omit"}))
    spared = _finished(frozen, client, start_batch(client, lines))

    assert hit.status == "completed" and hit.completed_at is not None
    assert hit.output_file_id is None and hit.error_file_id is None
    assert hit.request_counts is not None
    assert (hit.request_counts.total, hit.request_counts.completed) == (30, 30)
    assert spared.status == "completed"
    assert len(by_custom_id(read_jsonl(client, spared.output_file_id))) == 30
