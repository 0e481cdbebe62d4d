"""StackCheckWorkflow: a worker picked up a task and reached the provider."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from laneway.stack_check import ProviderCheck
    from workflows.activity_types import check_provider


@workflow.defn
class StackCheckWorkflow:
    @workflow.run
    async def run(self) -> ProviderCheck:
        workflow.logger.info("checking the provider")
        workflow.set_current_details("**running** · asking the provider for its models")
        check = await workflow.execute_activity(
            check_provider,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=5)),
        )
        workflow.set_current_details(
            f"**completed** · {len(check.models)} models at {check.base_url}"
        )
        return check
