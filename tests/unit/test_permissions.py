"""The one rule of who may act on a job, as every surface applies it."""

from __future__ import annotations

import pytest

from laneway.background import Actor
from laneway.permissions import refusal

JOB = {"workspace": "acme", "requested_by": "alice"}
ALICE = Actor(id="alice", workspace="acme", roles=frozenset({"reviewer"}))
RITA = Actor(id="rita", workspace="acme", roles=frozenset({"reviewer"}))
OLGA = Actor(id="olga", workspace="acme", roles=frozenset({"operator"}))
BOB = Actor(id="bob", workspace="acme")
ALICE_ELSEWHERE = Actor(id="alice", workspace="globex", roles=frozenset({"reviewer", "operator"}))


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_only_another_reviewer_of_the_workspace_decides(action: str) -> None:
    assert refusal(RITA, action, **JOB) is None
    assert refusal(ALICE, action, **JOB) == f"alice requested this job and cannot {action} it"
    assert refusal(OLGA, action, **JOB) == "olga is not a reviewer in workspace acme"
    assert refusal(ALICE_ELSEWHERE, action, **JOB) == "alice is not a reviewer in workspace acme"


@pytest.mark.parametrize("action", ["cancel", "retry", "escalate", "archive"])
def test_requester_operators_and_reviewers_control(action: str) -> None:
    for allowed in (ALICE, RITA, OLGA):
        assert refusal(allowed, action, **JOB) is None
    assert refusal(BOB, action, **JOB) == f"bob may not {action} jobs of workspace acme"
    # Same name, other workspace: not the requester, not an operator here.
    assert (
        refusal(ALICE_ELSEWHERE, action, **JOB) == f"alice may not {action} jobs of workspace acme"
    )
