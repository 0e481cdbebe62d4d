"""How a job's workflow closes, so that Temporal's close status tells the product outcome.

completed -> Completed; failed or expired -> Failed, with an error whose type names the product
status (`JobFailed`, `JobExpired`), whose message is the reason and whose details carry the
job's outcome; canceled (including rejected) -> Canceled. The Web UI's badges and its Failures
filter then agree with `LanewayStatus`.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel

from laneway.background import JobOutcome, JobView
from laneway.batch import BatchOutcome, BatchProgress
from laneway.status import ProductStatus

CLOSE_AS_CANCELED: Final = "close_job_as_canceled"

JOB_FAILED: Final = "JobFailed"
JOB_EXPIRED: Final = "JobExpired"
FAILURE_TYPES: Final = {ProductStatus.FAILED: JOB_FAILED, ProductStatus.EXPIRED: JOB_EXPIRED}


class CloseAsCanceledRequest(BaseModel):
    """A canceled job asks Temporal to cancel its own run, so that it closes Canceled.

    (A workflow cannot request its own cancellation through the server; a client call from
    an activity can.)
    """

    workflow_id: str
    run_id: str


JobState = JobView | BatchProgress
"""A job as people see it: what the `status` query and every control action answer."""
JobEnd = JobOutcome | BatchOutcome
"""How a job ended: what its workflow returns (or carries in its failure's details)."""
