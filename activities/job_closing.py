"""The activity that lets a canceled job close Canceled in Temporal (see laneway.lifecycle)."""

from __future__ import annotations

from temporalio import activity
from temporalio.service import RPCError, RPCStatusCode

from laneway.lifecycle import CLOSE_AS_CANCELED, CloseAsCanceledRequest


@activity.defn(name=CLOSE_AS_CANCELED)
async def close_job_as_canceled(request: CloseAsCanceledRequest) -> None:
    """Request cancellation of the job's own run through the worker's Temporal client.

    Repeating it is harmless; a run that has already closed has nothing left to cancel.
    """
    handle = activity.client().get_workflow_handle(request.workflow_id, run_id=request.run_id)
    try:
        await handle.cancel()
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
