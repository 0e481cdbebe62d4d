"""Every Ledger method, and that repeating a write with the same key changes nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from decimal import Decimal

import pytest

from laneway.jobs import ArtifactRef, JobSpec, Usage
from laneway.status import EventKind, Lane, ProductStatus
from store.ledger import JobNotFound, Ledger, NewJob, ProviderIdTaken

PROMPT = "Draft the quarterly letter to investors about the recall"
USAGE = Usage(input_tokens=1200, cached_input_tokens=200, output_tokens=300, reasoning_tokens=50)
OUTPUT_REF = ArtifactRef(
    uri="artifact://" + "b" * 64, sha256="b" * 64, size_bytes=90_000, media_type="text/plain"
)


def spec() -> JobSpec:
    return JobSpec.model_validate(
        {
            "job_type": "research_brief",
            "workspace": "acme",
            "requested_by": "ana@acme.test",
            "input": {"model": "gpt-5.5", "text": PROMPT},
        }
    )


def new_job(job_id: str = "job-1") -> NewJob:
    return NewJob.background(job_id, f"background/{job_id}", spec())


def add_job(ledger: Ledger, job_id: str = "job-1") -> str:
    ledger.record_job(new_job(job_id))
    return job_id


# --- jobs ---------------------------------------------------------------------------------


def test_record_job_stores_the_job_before_any_provider_call(ledger: Ledger) -> None:
    job = ledger.record_job(new_job())
    assert job.job_id == "job-1"
    assert job.workflow_id == "background/job-1"
    assert job.lane is Lane.BACKGROUND
    assert job.status is ProductStatus.QUEUED
    assert job.attempts == 0
    assert job.provider_ids == []
    assert job.input_summary["model"] == "gpt-5.5"
    assert job.input_summary["input_chars"] == len(PROMPT)
    assert job.created_at.tzinfo is UTC
    assert ledger.get_job("job-1") == job


def test_record_job_never_stores_prompt_text(ledger: Ledger) -> None:
    job = ledger.record_job(new_job())
    assert PROMPT not in job.model_dump_json()


def test_record_job_twice_keeps_one_row(ledger: Ledger) -> None:
    first = ledger.record_job(new_job())
    second = ledger.record_job(new_job())
    assert second == first
    assert len(ledger.list_jobs()) == 1
    assert [event.kind for event in ledger.list_events("job-1")] == ["created"]


def test_get_unknown_job(ledger: Ledger) -> None:
    assert ledger.get_job("nope") is None


def test_list_jobs_filters_and_orders_newest_first(ledger: Ledger) -> None:
    for job_id in ("a", "b", "c"):
        add_job(ledger, job_id)
    ledger.record_status("b", ProductStatus.RUNNING, "b-running")
    assert [job.job_id for job in ledger.list_jobs()] == ["c", "b", "a"]
    assert [job.job_id for job in ledger.list_jobs(status=ProductStatus.RUNNING)] == ["b"]
    assert ledger.list_jobs(workspace="other") == []
    assert len(ledger.list_jobs(limit=2)) == 2


# --- status and events --------------------------------------------------------------------


def test_record_status_moves_the_job_and_audits_it(ledger: Ledger) -> None:
    add_job(ledger)
    event = ledger.record_status("job-1", ProductStatus.RUNNING, "attempt-1-running", note="go")
    assert (event.from_status, event.to_status) == (ProductStatus.QUEUED, ProductStatus.RUNNING)
    assert event.kind == "status_changed"
    assert event.actor == "laneway"
    assert event.note == "go"
    job = ledger.get_job("job-1")
    assert job is not None
    assert job.status is ProductStatus.RUNNING
    assert job.updated_at > job.created_at


def test_same_event_key_twice_is_one_event(ledger: Ledger) -> None:
    add_job(ledger)
    first = ledger.record_status("job-1", ProductStatus.RUNNING, "k1")
    again = ledger.record_status("job-1", ProductStatus.FAILED, "k1", note="a retry")
    assert again == first
    assert len(ledger.list_events("job-1")) == 2  # created + running
    job = ledger.get_job("job-1")
    assert job is not None
    assert job.status is ProductStatus.RUNNING


def test_event_keys_are_per_job(ledger: Ledger) -> None:
    add_job(ledger, "a")
    add_job(ledger, "b")
    ledger.record_status("a", ProductStatus.RUNNING, "running")
    ledger.record_status("b", ProductStatus.RUNNING, "running")
    assert len(ledger.list_events("a")) == len(ledger.list_events("b")) == 2


def test_controls_are_recorded_with_who(ledger: Ledger) -> None:
    add_job(ledger)
    ledger.record_status("job-1", ProductStatus.NEEDS_REVIEW, "review")
    ledger.record_event("job-1", EventKind.ESCALATED, "escalate-1", actor="lead@acme.test")
    ledger.record_status(
        "job-1",
        ProductStatus.COMPLETED,
        "approve-1",
        actor="rev@acme.test",
        note="looks right",
        kind=EventKind.APPROVED,
    )
    events = ledger.list_events("job-1")
    assert [(e.kind, e.actor) for e in events] == [
        ("created", "ana@acme.test"),
        ("status_changed", "laneway"),
        ("escalated", "lead@acme.test"),
        ("approved", "rev@acme.test"),
    ]
    escalated = events[2]
    assert escalated.from_status == escalated.to_status == ProductStatus.NEEDS_REVIEW
    assert [e.at for e in events] == sorted(e.at for e in events)


def test_status_of_an_unknown_job_is_an_error(ledger: Ledger) -> None:
    with pytest.raises(JobNotFound, match="'ghost'"):
        ledger.record_status("ghost", ProductStatus.RUNNING, "k")
    with pytest.raises(JobNotFound):
        ledger.record_event("ghost", EventKind.NOTE, "k")


def test_racing_writers_with_one_key_write_one_event(ledger: Ledger) -> None:
    add_job(ledger)
    with ThreadPoolExecutor(max_workers=8) as pool:
        events = list(
            pool.map(
                lambda _: ledger.record_status("job-1", ProductStatus.RUNNING, "race"), range(16)
            )
        )
    assert len({event.id for event in events}) == 1
    assert len(ledger.list_events("job-1")) == 2


# --- provider intents and ids ---------------------------------------------------------------


def test_provider_intent_is_recorded_before_the_call_and_resolved_after(ledger: Ledger) -> None:
    add_job(ledger)
    intent = ledger.record_provider_intent(
        "job-1", "wf-job-1-attempt-1", operation="responses.create", attempt=1
    )
    assert intent.provider_id is None
    assert ledger.get_provider_intent("wf-job-1-attempt-1") == intent
    job = ledger.get_job("job-1")
    assert job is not None
    assert job.attempts == 1

    resolved = ledger.resolve_provider_intent("wf-job-1-attempt-1", "resp_1")
    assert resolved.provider_id == "resp_1"
    assert resolved.resolved_at is not None
    found = ledger.find_job_by_provider_id("resp_1")
    assert found is not None
    assert found.job_id == "job-1"
    assert found.provider_ids == ["resp_1"]


def test_provider_intent_writes_are_idempotent(ledger: Ledger) -> None:
    add_job(ledger)
    first = ledger.record_provider_intent("job-1", "key", operation="responses.create")
    assert ledger.record_provider_intent("job-1", "key", operation="responses.create") == first
    resolved = ledger.resolve_provider_intent("key", "resp_1")
    assert ledger.resolve_provider_intent("key", "resp_1") == resolved
    job = ledger.get_job("job-1")
    assert job is not None
    assert job.provider_ids == ["resp_1"]


def test_a_later_attempt_raises_the_attempt_count(ledger: Ledger) -> None:
    add_job(ledger)
    ledger.record_provider_intent("job-1", "k2", operation="responses.create", attempt=2)
    ledger.record_provider_intent("job-1", "k1", operation="responses.create", attempt=1)
    job = ledger.get_job("job-1")
    assert job is not None
    assert job.attempts == 2


def test_unknown_intent(ledger: Ledger) -> None:
    assert ledger.get_provider_intent("nope") is None
    with pytest.raises(LookupError, match="'nope'"):
        ledger.resolve_provider_intent("nope", "resp_1")


def test_set_provider_ids_keeps_earlier_ids_in_order(ledger: Ledger) -> None:
    add_job(ledger)
    ledger.set_provider_ids("job-1", ["resp_1"])
    job = ledger.set_provider_ids("job-1", ["resp_2", "resp_1", "resp_2"])
    assert job.provider_ids == ["resp_1", "resp_2"]
    for provider_id in ("resp_1", "resp_2"):
        found = ledger.find_job_by_provider_id(provider_id)
        assert found is not None
        assert found.job_id == "job-1"


def test_a_provider_id_belongs_to_one_job(ledger: Ledger) -> None:
    add_job(ledger, "a")
    add_job(ledger, "b")
    ledger.set_provider_ids("a", ["resp_1"])
    with pytest.raises(ProviderIdTaken, match="already belongs to job 'a'"):
        ledger.set_provider_ids("b", ["resp_1"])


def test_find_unknown_provider_id(ledger: Ledger) -> None:
    add_job(ledger)
    assert ledger.find_job_by_provider_id("resp_unknown") is None


# --- results ------------------------------------------------------------------------------


def test_small_result_is_stored_inline(ledger: Ledger) -> None:
    add_job(ledger)
    result = ledger.record_result(
        "job-1",
        1,
        usage=USAGE,
        model="gpt-5.5",
        tier="standard",
        cost_usd=Decimal("0.0145000000"),
        inline_output="short answer",
    )
    assert result.inline_output == "short answer"
    assert result.output is None
    assert result.usage == USAGE
    assert ledger.get_result("job-1") == result


def test_large_result_is_a_reference_and_money_stays_exact(ledger: Ledger) -> None:
    add_job(ledger)
    tiny = Decimal("0.0000000125")
    ledger.record_result(
        "job-1", 1, usage=USAGE, model="gpt-5.5", tier="flex", cost_usd=tiny, output=OUTPUT_REF
    )
    stored = ledger.get_result("job-1", 1)
    assert stored is not None
    assert stored.output == OUTPUT_REF
    assert stored.cost_usd == tiny
    assert stored.tier == "flex"


def test_record_result_twice_keeps_the_first(ledger: Ledger) -> None:
    add_job(ledger)
    first = ledger.record_result(
        "job-1", 1, usage=USAGE, model="m", tier="standard", cost_usd=None, inline_output="a"
    )
    again = ledger.record_result(
        "job-1", 1, usage=Usage(), model="m", tier="standard", cost_usd=None, inline_output="b"
    )
    assert again == first


def test_get_result_defaults_to_the_latest_attempt(ledger: Ledger) -> None:
    add_job(ledger)
    for attempt in (1, 2):
        ledger.record_result(
            "job-1",
            attempt,
            usage=USAGE,
            model="m",
            tier="standard",
            cost_usd=None,
            inline_output=f"attempt {attempt}",
        )
    latest = ledger.get_result("job-1")
    assert latest is not None
    assert latest.attempt == 2
    first = ledger.get_result("job-1", 1)
    assert first is not None
    assert first.inline_output == "attempt 1"
    assert ledger.get_result("job-1", 3) is None
    assert ledger.get_result("other") is None


def test_oversized_inline_output_is_refused(ledger: Ledger) -> None:
    add_job(ledger)
    big = "x" * (ledger.inline_limit_bytes + 1)
    assert not ledger.fits_inline(big)
    with pytest.raises(ValueError, match="artifact store"):
        ledger.record_result(
            "job-1", 1, usage=USAGE, model="m", tier="standard", cost_usd=None, inline_output=big
        )


def test_output_is_a_reference_or_inline_not_both(ledger: Ledger) -> None:
    add_job(ledger)
    with pytest.raises(ValueError, match="not both"):
        ledger.record_result(
            "job-1",
            1,
            usage=USAGE,
            model="m",
            tier="standard",
            cost_usd=None,
            output=OUTPUT_REF,
            inline_output="x",
        )


def test_result_for_an_unknown_job_is_an_error(ledger: Ledger) -> None:
    with pytest.raises(JobNotFound):
        ledger.record_result("ghost", 1, usage=USAGE, model="m", tier="standard", cost_usd=None)


# --- side effects -------------------------------------------------------------------------


def test_side_effect_is_claimed_once(ledger: Ledger) -> None:
    add_job(ledger)
    assert ledger.claim_side_effect("job-1", "post_webhook") is True
    assert ledger.claim_side_effect("job-1", "post_webhook") is False
    claimed = ledger.get_side_effect("job-1")
    assert claimed is not None
    assert claimed.outcome is None
    assert claimed.kind == "post_webhook"


def test_racing_claims_let_exactly_one_through(ledger: Ledger) -> None:
    add_job(ledger)
    with ThreadPoolExecutor(max_workers=8) as pool:
        wins = list(pool.map(lambda _: ledger.claim_side_effect("job-1", "outbox"), range(16)))
    assert wins.count(True) == 1


def test_side_effect_outcome_is_recorded_once(ledger: Ledger) -> None:
    add_job(ledger)
    ledger.claim_side_effect("job-1", "deliver_to_outbox")
    done = ledger.finish_side_effect("job-1", "delivered", note="var/outbox/job-1.json")
    assert ledger.finish_side_effect("job-1", "failed") == done
    assert done.outcome == "delivered"
    assert done.finished_at is not None


def test_side_effect_edge_cases(ledger: Ledger) -> None:
    add_job(ledger)
    assert ledger.get_side_effect("job-1") is None
    with pytest.raises(LookupError, match="no claimed side effect"):
        ledger.finish_side_effect("job-1", "delivered")
    with pytest.raises(JobNotFound):
        ledger.claim_side_effect("ghost", "outbox")
