"""Who may take which control action on a job: one rule for workflows, the CLI and the HTTP API.

Workflows enforce it in their update validators (so nothing reaches history when it fails),
raising ACTION_FORBIDDEN, which the client turns into `JobActionForbidden` and the HTTP API
into a 403.
"""

from __future__ import annotations

from typing import Final

from laneway.background import Actor
from laneway.status import Action

# ApplicationError types the workflows raise, so a client can tell "not yours to do" from
# "not possible now" without parsing sentences.
ACTION_FORBIDDEN: Final = "ActionForbidden"
ACTION_NOT_ALLOWED_NOW: Final = "ActionNotAllowedNow"

REVIEW_ACTIONS: Final = frozenset({Action.APPROVE.value, Action.REJECT.value})


def refusal(actor: Actor, action: str, *, workspace: str, requested_by: str) -> str | None:
    """Why `actor` may not `action` a job of `workspace` requested by `requested_by`, or None.

    Approve and reject: a reviewer of the workspace who did not request the job. Every other
    action: the requester, or an operator or reviewer of the workspace.
    """
    if action in REVIEW_ACTIONS:
        if not actor.may_review(workspace):
            return f"{actor.id} is not a reviewer in workspace {workspace}"
        if actor.id == requested_by:
            return f"{actor.id} requested this job and cannot {action} it"
        return None
    is_requester = actor.workspace == workspace and actor.id == requested_by
    if not (is_requester or actor.may_operate(workspace)):
        return f"{actor.id} may not {action} jobs of workspace {workspace}"
    return None
