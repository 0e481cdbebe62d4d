"""validate_input over real files in an artifact store: every kind of bad line, by number."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from activities.batch_input import PreparedLine, prepared_lines, read_lines, validate_input
from laneway.batch import (
    MAX_REPORTED_LINE_ERRORS,
    BatchJobSpec,
    RequestTemplate,
    ValidationReport,
)
from laneway.jobs import ArtifactRef, DeliverToOutbox
from store.artifacts import ArtifactStore

MODEL = "gpt-4o-mini"
MB = 1024 * 1024


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


def line(custom_id: str | None, text: str = "hello", **overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "method": "POST",
        "url": "/v1/responses",
        "body": {"model": MODEL, "input": text},
    }
    if custom_id is not None:
        item["custom_id"] = custom_id
    item.update(overrides)
    return item


def put_lines(store: ArtifactStore, rows: Iterable[dict[str, Any] | str | bytes]) -> ArtifactRef:
    data = b"".join(
        (
            row
            if isinstance(row, bytes)
            else (row if isinstance(row, str) else json.dumps(row)).encode()
        )
        + b"\n"
        for row in rows
    )
    return store.put_bytes(data, "application/jsonl")


def spec_for(input_ref: ArtifactRef, **fields: Any) -> BatchJobSpec:
    if "template" in fields:
        fields.setdefault("input_format", "records")
    return BatchJobSpec(
        job_type="ticket_triage", workspace="acme", requested_by="alice", input=input_ref, **fields
    )


def validate(
    store: ArtifactStore, rows: Iterable[dict[str, Any] | str | bytes], **fields: Any
) -> ValidationReport:
    return validate_input(store, spec_for(put_lines(store, rows), **fields))


def accepted_lines(store: ArtifactStore, report: ValidationReport) -> list[PreparedLine]:
    return list(prepared_lines(store, report))


def sent(prepared: PreparedLine) -> dict[str, Any]:
    """The batch line as it would go to the provider."""
    value: dict[str, Any] = json.loads(prepared.request)
    return value


def quarantined(store: ArtifactStore, report: ValidationReport) -> list[dict[str, Any]]:
    assert report.quarantine is not None
    return [json.loads(raw) for raw in store.read_bytes(report.quarantine).splitlines()]


def errors_by_line(report: ValidationReport) -> dict[int, tuple[str, str]]:
    return {e.line: (e.code, e.message) for e in report.first_errors}


# ---- the requests format ------------------------------------------------------------------


def test_good_request_lines_are_prepared_in_input_order(store: ArtifactStore) -> None:
    rows = [line(f"req-{n}", f"text {n}") for n in range(5)]
    ref = put_lines(store, rows)
    report = validate_input(store, spec_for(ref))

    assert (report.lines_read, report.accepted, report.rejected) == (5, 5, 0)
    assert report.first_errors == [] and report.quarantine is None
    assert (report.endpoint, report.model) == ("/v1/responses", MODEL)
    prepared = accepted_lines(store, report)
    assert [p.line_no for p in prepared] == [1, 2, 3, 4, 5]
    assert [p.custom_id for p in prepared] == [f"req-{n}" for n in range(5)]
    assert sent(prepared[3]) == {**rows[3], "custom_id": "req-3"}
    assert all(p.input_tokens >= 1 and p.embedding_inputs == 0 for p in prepared)
    assert report.input_bytes == ref.size_bytes


def test_a_line_without_custom_id_gets_line_n_counting_blank_lines(store: ArtifactStore) -> None:
    no_method = line(None)
    del no_method["method"]  # POST is the default
    report = validate(store, [line("a"), "", "   ", line(None), no_method])

    assert (report.lines_read, report.accepted, report.rejected) == (5, 3, 0)
    prepared = accepted_lines(store, report)
    assert [(p.line_no, p.custom_id) for p in prepared] == [(1, "a"), (4, "line-4"), (5, "line-5")]
    assert sent(prepared[2])["method"] == "POST" and sent(prepared[2])["custom_id"] == "line-5"


def test_a_generated_id_that_collides_with_a_given_one_is_a_duplicate(
    store: ArtifactStore,
) -> None:
    report = validate(store, [line("line-2"), line(None)], bad_lines="quarantine")
    assert errors_by_line(report)[2][0] == "duplicate_custom_id"
    assert "'line-2' is already used on line 1" in errors_by_line(report)[2][1]


def test_a_duplicate_custom_id_names_both_lines(store: ArtifactStore) -> None:
    rows: list[dict[str, Any] | str] = [line(f"req-{n}") for n in range(6)]
    rows[4] = line("req-1")
    report = validate(store, rows)

    assert report.rejected == 1 and report.requests is None and report.accepted == 0
    [error] = report.first_errors
    assert (error.line, error.code) == (5, "duplicate_custom_id")
    assert "custom_id 'req-1' is already used on line 2" in error.message
    assert report.summary().startswith("1 of 6 input lines are invalid: line 5: custom_id")


@pytest.mark.parametrize(
    ("bad", "code", "words"),
    [
        ('{"custom_id": "x", "method": "POST", ', "invalid_json", "not valid JSON"),
        ("[1, 2, 3]", "invalid_json", "must be a JSON object"),
        ('"just a string"', "invalid_json", "must be a JSON object"),
        (b'{"custom_id": "\xff\xfe"}', "invalid_json", "not valid JSON"),
        (line("x", method="GET"), "invalid_method", "method must be POST, got 'GET'"),
        (line("x", url="/v1/completions"), "invalid_url", "got '/v1/completions'"),
        (line("x", url=None), "invalid_url", "url must be one of /v1/responses"),
        (line("x", body="hi"), "invalid_body", "body must be a JSON object"),
        (line("x", body={"input": "hi"}), "missing_model", "body.model is required"),
        (line(True), "invalid_custom_id", "custom_id must be a string, got bool"),  # type: ignore[arg-type]
        (line(""), "invalid_custom_id", "1-512 characters"),
        (line("x" * 513), "invalid_custom_id", "1-512 characters"),
    ],
)
def test_a_bad_line_is_reported_with_its_number_code_and_reason(
    store: ArtifactStore, bad: dict[str, Any] | str | bytes, code: str, words: str
) -> None:
    report = validate(store, [line("a"), line("b"), bad, line("d")])

    assert (report.lines_read, report.rejected) == (4, 1)
    assert report.requests is None and report.accepted == 0  # bad_lines "fail" by default
    [error] = report.first_errors
    assert (error.line, error.code) == (3, code)
    assert words in error.message


def test_an_integer_custom_id_is_taken_as_text(store: ArtifactStore) -> None:
    report = validate(store, [line(7), line("7")], bad_lines="quarantine")  # type: ignore[arg-type]
    assert [p.custom_id for p in accepted_lines(store, report)] == ["7"]
    assert errors_by_line(report)[2][0] == "duplicate_custom_id"


def test_one_endpoint_per_job(store: ArtifactStore) -> None:
    chat = line("c", url="/v1/chat/completions", body={"model": MODEL, "messages": []})
    report = validate(store, [line("a"), chat, line("b")], bad_lines="quarantine")
    assert errors_by_line(report) == {
        2: (
            "endpoint_mismatch",
            "url /v1/chat/completions differs from the job's endpoint /v1/responses: "
            "one endpoint per job",
        )
    }
    assert report.endpoint == "/v1/responses" and report.accepted == 2


def test_the_specs_endpoint_wins_over_the_first_line(store: ArtifactStore) -> None:
    chat = line("c", url="/v1/chat/completions", body={"model": MODEL, "messages": []})
    report = validate(
        store, [line("a"), chat], endpoint="/v1/chat/completions", bad_lines="quarantine"
    )
    assert errors_by_line(report)[1][0] == "endpoint_mismatch"
    assert report.endpoint == "/v1/chat/completions"
    assert [p.custom_id for p in accepted_lines(store, report)] == ["c"]


def test_one_model_per_job_names_the_line_that_set_it(store: ArtifactStore) -> None:
    other = line("b", body={"model": "gpt-4o", "input": "x"})
    report = validate(store, ["", line("a"), other, line("c")], bad_lines="quarantine")
    code, message = errors_by_line(report)[3]
    assert code == "model_mismatch"
    assert "model 'gpt-4o' differs from 'gpt-4o-mini' on line 2" in message
    assert report.model == MODEL and report.accepted == 2


# ---- the records format -------------------------------------------------------------------


def tickets(count: int) -> list[dict[str, Any]]:
    return [{"id": f"t-{n}", "title": f"Ticket {n}", "team": "billing"} for n in range(count)]


def test_records_with_a_prompt_template_become_responses_requests(store: ArtifactStore) -> None:
    template = RequestTemplate(
        endpoint="/v1/responses",
        model=MODEL,
        prompt_template="Route {title} for {team} ({{json}})",
        id_field="id",
        instructions="Answer with one word.",
        max_output_tokens=64,
        body={"temperature": 0},
    )
    report = validate(store, tickets(3), template=template, expected_output_tokens=256)

    assert (report.accepted, report.endpoint, report.model) == (3, "/v1/responses", MODEL)
    prepared = accepted_lines(store, report)
    assert [p.custom_id for p in prepared] == ["t-0", "t-1", "t-2"]
    assert sent(prepared[1]) == {
        "custom_id": "t-1",
        "method": "POST",
        "url": "/v1/responses",
        "body": {
            "model": MODEL,
            "input": "Route Ticket 1 for billing ({json})",
            "instructions": "Answer with one word.",
            "max_output_tokens": 64,
            "temperature": 0,
        },
    }
    assert prepared[1].output_tokens == 64  # the smaller of the cap and the expectation


def test_records_with_an_input_field_become_chat_requests_with_generated_ids(
    store: ArtifactStore,
) -> None:
    template = RequestTemplate(
        endpoint="/v1/chat/completions",
        model=MODEL,
        input_field="title",
        instructions="Be brief.",
        max_output_tokens=100,
    )
    report = validate(store, ["", *tickets(2)], template=template)

    prepared = accepted_lines(store, report)
    assert [(p.line_no, p.custom_id) for p in prepared] == [(2, "line-2"), (3, "line-3")]
    assert sent(prepared[0])["url"] == "/v1/chat/completions"
    assert sent(prepared[0])["body"] == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Ticket 0"},
        ],
        "max_completion_tokens": 100,
    }


def test_records_become_embeddings_requests_without_output_tokens(store: ArtifactStore) -> None:
    template = RequestTemplate(
        endpoint="/v1/embeddings", model="text-embedding-3-small", input_field="title"
    )
    report = validate(store, tickets(2), template=template)

    prepared = accepted_lines(store, report)
    assert sent(prepared[0])["body"] == {"model": "text-embedding-3-small", "input": "Ticket 0"}
    assert [(p.output_tokens, p.embedding_inputs) for p in prepared] == [(0, 1), (0, 1)]
    assert report.endpoint == "/v1/embeddings"


@pytest.mark.parametrize(
    ("record", "code", "words"),
    [
        ({"id": "a"}, "missing_field", "the record has no 'title' for the template"),
        ({"title": "x"}, "missing_field", "the record has no 'id' (id_field)"),
        ({"id": None, "title": "x"}, "missing_field", "(id_field)"),
        ({"id": ["a"], "title": "x"}, "invalid_custom_id", "id must be a string, got list"),
    ],
)
def test_a_record_missing_what_the_template_needs_is_rejected(
    store: ArtifactStore, record: dict[str, Any], code: str, words: str
) -> None:
    template = RequestTemplate(
        endpoint="/v1/responses", model=MODEL, prompt_template="Classify {title}", id_field="id"
    )
    report = validate(store, [{"id": "ok", "title": "fine"}, record], template=template)
    assert errors_by_line(report)[2][0] == code
    assert words in errors_by_line(report)[2][1]


@pytest.mark.parametrize("value", [None, "", 42, ["text"]])
def test_an_input_field_must_be_a_non_empty_string(store: ArtifactStore, value: object) -> None:
    template = RequestTemplate(endpoint="/v1/embeddings", model="m", input_field="text")
    report = validate(store, [{"text": "fine"}, {"text": value}], template=template)
    code, message = errors_by_line(report)[2]
    assert code == "missing_field"
    assert "the record's 'text' (input_field) must be a non-empty string" in message


def test_a_record_the_template_cannot_format_is_a_bad_line_not_a_crash(
    store: ArtifactStore,
) -> None:
    """A format spec that does not fit the value ({score:.1f} of "high") rejects that line."""
    template = RequestTemplate(
        endpoint="/v1/responses", model=MODEL, prompt_template="Score {score:.1f}: {title}"
    )
    rows: list[dict[str, Any]] = [{"score": 0.25, "title": "a"}, {"score": "high", "title": "b"}]
    report = validate(store, rows, template=template, bad_lines="quarantine")

    assert report.accepted == 1 and report.rejected == 1
    assert sent(accepted_lines(store, report)[0])["body"]["input"] == "Score 0.2: a"
    code, message = errors_by_line(report)[2]
    assert code == "invalid_field"
    assert message == (
        "the record does not fit the template (Unknown format code 'f' for object of type 'str')"
    )


@pytest.mark.parametrize(
    "record", [{"a.b": "x"}, {"a.b": "x", "a": "text"}, {"a.b": "x", "a": {"b": 1}}]
)
def test_a_dotted_placeholder_the_record_cannot_answer_is_a_bad_line(
    store: ArtifactStore, record: dict[str, Any]
) -> None:
    """{a.b} reads attribute b of field a, whatever a field literally named "a.b" holds."""
    template = RequestTemplate(endpoint="/v1/responses", model=MODEL, prompt_template="Q: {a.b}")
    report = validate(store, [record], template=template, bad_lines="quarantine")
    assert [e.code for e in report.first_errors] == ["invalid_field"]


# ---- size limits --------------------------------------------------------------------------


def test_a_line_over_max_line_bytes_is_skipped_and_numbering_goes_on(
    store: ArtifactStore,
) -> None:
    huge = json.dumps(line("huge", "x" * 5000))
    rows: list[dict[str, Any] | str] = [line("a"), huge, "", line("c"), line("d")]
    report = validate(store, rows, max_line_bytes=1024, bad_lines="quarantine")

    assert (report.lines_read, report.accepted, report.rejected) == (5, 3, 1)
    code, message = errors_by_line(report)[2]
    assert code == "line_too_large"
    assert f"the line has {len(huge) + 1:,} bytes; at most 1,024 are allowed" in message
    assert [(p.line_no, p.custom_id) for p in accepted_lines(store, report)] == [
        (1, "a"),
        (4, "c"),
        (5, "d"),
    ]
    [entry] = quarantined(store, report)
    assert entry["line"] == 2 and entry["code"] == "line_too_large" and "raw" not in entry


def test_a_line_of_exactly_max_line_bytes_is_accepted(store: ArtifactStore) -> None:
    base = json.dumps(line("edge", ""))
    exact = json.dumps(line("edge", "y" * (1024 - len(base))))
    assert len(exact) == 1024
    report = validate(
        store,
        [exact, json.dumps(line("over", "y" * (1025 - len(base))))],
        max_line_bytes=1024,
        bad_lines="quarantine",
    )
    assert [p.custom_id for p in accepted_lines(store, report)] == ["edge"]
    assert errors_by_line(report)[2][0] == "line_too_large"


def test_an_oversized_line_is_never_held_in_memory(store: ArtifactStore, tmp_path: Path) -> None:
    """A 40 MB line under a 1 KB limit: Python's peak allocation stays a few MB."""
    source = tmp_path / "in.jsonl"
    with source.open("wb") as out:
        out.write(json.dumps(line("a")).encode() + b"\n")
        out.write(b'{"custom_id": "big", "body": "' + b"z" * (40 * MB) + b'"}\n')
        out.write(json.dumps(line("c")).encode() + b"\n")
    spec = spec_for(store.put_file(source), max_line_bytes=1024, bad_lines="quarantine")

    tracemalloc.start()
    try:
        report = validate_input(store, spec)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 8 * MB, f"validation held {peak / MB:.1f} MB for a 40 MB line"
    assert errors_by_line(report)[2][0] == "line_too_large"
    assert [(p.line_no, p.custom_id) for p in accepted_lines(store, report)] == [(1, "a"), (3, "c")]


def test_read_lines_reports_sizes_and_never_returns_an_oversized_line(tmp_path: Path) -> None:
    path = tmp_path / "lines"
    path.write_bytes(b"short\n" + b"L" * 3000 + b"\n\nlast-without-newline")
    with path.open("rb") as handle:
        got = list(read_lines(handle, 256))
    assert got == [
        (1, b"short", 6),
        (2, None, 3001),
        (3, b"", 1),
        (4, b"last-without-newline", 20),
    ]


def test_an_input_over_max_input_bytes_is_refused_without_reading(store: ArtifactStore) -> None:
    ref = put_lines(store, [line(f"r{n}") for n in range(20)])
    report = validate_input(store, spec_for(ref, max_input_bytes=ref.size_bytes - 1))

    assert (report.lines_read, report.accepted, report.rejected) == (0, 0, 1)
    assert report.requests is None and report.quarantine is None
    [error] = report.first_errors
    assert (error.line, error.code) == (0, "input_too_large")
    assert f"the input has {ref.size_bytes:,} bytes" in error.message
    assert f"at most {ref.size_bytes - 1:,} (max_input_bytes): split it" in error.message
    assert validate_input(store, spec_for(ref, max_input_bytes=ref.size_bytes)).accepted == 20


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_an_empty_input_is_an_error(store: ArtifactStore, content: bytes) -> None:
    report = validate_input(store, spec_for(store.put_bytes(content)))
    assert report.accepted == 0 and report.rejected == 1 and report.requests is None
    assert [(e.line, e.code) for e in report.first_errors] == [(0, "empty_input")]
    assert "the input has no lines" in report.summary()


# ---- many errors, quarantine and fail ------------------------------------------------------


def test_the_first_20_errors_are_kept_and_the_summary_counts_the_rest(
    store: ArtifactStore,
) -> None:
    rows: list[dict[str, Any] | str] = [line(f"ok-{n}") for n in range(10)]
    rows += ["not json"] * 33
    report = validate(store, rows)

    assert report.rejected == 33 and len(report.first_errors) == MAX_REPORTED_LINE_ERRORS == 20
    assert [e.line for e in report.first_errors] == list(range(11, 31))
    summary = report.summary()
    assert summary.startswith("33 of 43 input lines are invalid: line 11: not valid JSON")
    assert summary.endswith("; and 13 more bad lines")
    assert "line 30:" in summary and "line 31:" not in summary


def test_one_more_bad_line_is_said_in_the_singular(store: ArtifactStore) -> None:
    report = validate(store, ["nope"] * 21)
    assert report.summary().endswith("; and 1 more bad line")
    exactly_twenty = validate(store, ["nope"] * 20).summary()
    assert "line 20: not valid JSON" in exactly_twenty and "more bad line" not in exactly_twenty


def test_quarantine_runs_the_good_lines_and_keeps_the_bad_ones(store: ArtifactStore) -> None:
    rows: list[dict[str, Any] | str] = [
        line("a"),
        "{broken",
        line("b"),
        line("a"),
        line("c", method="PUT"),
        line("d"),
    ]
    report = validate(store, rows, bad_lines="quarantine")

    assert (report.lines_read, report.accepted, report.rejected) == (6, 3, 3)
    assert [(p.line_no, p.custom_id) for p in accepted_lines(store, report)] == [
        (1, "a"),
        (3, "b"),
        (6, "d"),
    ]
    entries = quarantined(store, report)
    assert [(e["line"], e["code"]) for e in entries] == [
        (2, "invalid_json"),
        (4, "duplicate_custom_id"),
        (5, "invalid_method"),
    ]
    assert entries[0]["raw"] == "{broken"
    assert json.loads(entries[1]["raw"]) == line("a")
    assert all(e["message"] for e in entries)
    assert [e.line for e in report.first_errors] == [2, 4, 5]


def test_quarantine_with_nothing_good_left_gives_no_requests(store: ArtifactStore) -> None:
    report = validate(store, ["x", "y"], bad_lines="quarantine")
    assert report.requests is None and report.accepted == 0 and report.rejected == 2
    assert len(quarantined(store, report)) == 2


def test_fail_mode_gives_no_requests_but_reports_every_bad_line(store: ArtifactStore) -> None:
    report = validate(store, [line("a"), "{", line("b"), "[]"])
    assert report.requests is None and report.accepted == 0
    assert report.rejected == 2 and report.lines_read == 4
    assert [e.line for e in report.first_errors] == [2, 4]
    assert [e["line"] for e in quarantined(store, report)] == [2, 4]


def test_validating_twice_gives_the_same_report(store: ArtifactStore) -> None:
    rows: list[dict[str, Any] | str] = [line(f"r{n}") for n in range(50)] + ["bad"]
    ref = put_lines(store, rows)
    spec = spec_for(ref, bad_lines="quarantine")
    first, second = validate_input(store, spec), validate_input(store, spec)
    assert first == second and first.requests is not None
    assert not list((store.root).glob(".ids-*")), "the custom_id table is removed"


# ---- the spec itself --------------------------------------------------------------------


def _spec_error(**fields: Any) -> str:
    ref = ArtifactRef(uri="artifact://" + "0" * 64, sha256="0" * 64, size_bytes=1)
    with pytest.raises(ValidationError) as caught:
        BatchJobSpec(job_type="triage", workspace="acme", requested_by="alice", input=ref, **fields)
    return str(caught.value)


def _template_error(**fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        RequestTemplate(endpoint="/v1/responses", model=MODEL, **fields)
    return str(caught.value)


def test_records_without_a_template_say_what_is_missing() -> None:
    assert "input_format 'records' needs a template" in _spec_error(input_format="records")


def test_a_template_with_ready_requests_is_refused() -> None:
    template = RequestTemplate(endpoint="/v1/responses", model=MODEL, input_field="text")
    message = _spec_error(template=template)
    assert "a template is only used with input_format 'records'" in message


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({}, "give exactly one of template.prompt_template"),
        (
            {"prompt_template": "Say {x}", "input_field": "x"},
            "give exactly one of template.prompt_template",
        ),
        ({"prompt_template": "Classify {}"}, "placeholders name record fields, e.g. {title}"),
        ({"prompt_template": "Classify {0}"}, "write {{ and }} for literal braces"),
        ({"prompt_template": "Classify {title"}, "template.prompt_template is malformed"),
        ({"prompt_template": "Classify title}"}, "template.prompt_template is malformed"),
        ({"prompt_template": "Classify {title:>400000000}"}, "above the limit (width 1000"),
        ({"prompt_template": "Classify {title:.999999f}"}, "above the limit"),
        ({"prompt_template": "Classify {title:{width}}"}, "format spec that is not allowed"),
        ({"prompt_template": "Classify {title:>10000000000000000000000}"}, "above the limit"),
        ({"prompt_template": "Classify {title!x}"}, "unknown conversion !x"),
    ],
)
def test_a_bad_template_says_how_to_write_it(fields: dict[str, Any], words: str) -> None:
    assert words in _template_error(**fields)


@pytest.mark.parametrize(
    "template", ["{title:>20}", "{score:.1f}", "{n:,}", "{title!r}", "{x:*^30s}"]
)
def test_small_bounded_format_specs_are_accepted(template: str) -> None:
    RequestTemplate(endpoint="/v1/responses", model=MODEL, prompt_template=template)


def test_a_side_effect_needs_a_required_review() -> None:
    message = _spec_error(side_effect=DeliverToOutbox(path="reviewed"))
    assert "a side effect (deliver_to_outbox) runs only after a reviewer approves" in message
    assert "set review_policy to 'required' or remove side_effect" in message


def test_other_spec_mistakes_name_the_setting() -> None:
    assert "batch jobs take review_policy 'auto' or 'required'" in _spec_error(
        review_policy="on_incomplete"
    )
    assert "max_line_bytes cannot exceed shard_limits.max_bytes" in _spec_error(
        shard_limits={"max_bytes": 4096}, max_line_bytes=8192
    )
