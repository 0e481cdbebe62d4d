"""Fixtures for the background lane: a job spec factory and a client-side job runner."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from laneway.background import Actor, BackgroundJobInput, ControlRequest
from laneway.jobs import JobInput, JobSpec

WORKSPACE = "acme"
REQUESTER = "alice"
REVIEWER = Actor(id="rita", workspace=WORKSPACE, roles=frozenset({"reviewer"}))
OUTSIDER = Actor(id="oscar", workspace="globex", roles=frozenset({"reviewer"}))
OPERATOR = Actor(id="otto", workspace=WORKSPACE, roles=frozenset({"operator"}))


def control(actor: Actor, note: str = "") -> ControlRequest:
    return ControlRequest(actor=actor, note=note)


@pytest.fixture
def make_job() -> Callable[..., BackgroundJobInput]:
    def make(
        text: str = "Research brief: durable workflows are great.", **spec: Any
    ) -> BackgroundJobInput:
        job_input = spec.pop("input", None) or JobInput(model="gpt-4o-mini", text=text)
        return BackgroundJobInput(
            job_id=f"job-{uuid.uuid4().hex[:12]}",
            spec=JobSpec(
                job_type="research_brief",
                workspace=WORKSPACE,
                requested_by=REQUESTER,
                input=job_input,
                **spec,
            ),
        )

    return make
