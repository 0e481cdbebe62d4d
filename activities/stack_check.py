"""Activity behind the stack check: ask the provider which models it serves."""

from __future__ import annotations

from dataclasses import dataclass

from openai import AsyncOpenAI
from temporalio import activity

from laneway.stack_check import CHECK_PROVIDER_ACTIVITY, ProviderCheck


@dataclass
class StackCheckActivities:
    openai: AsyncOpenAI

    @activity.defn(name=CHECK_PROVIDER_ACTIVITY)
    async def check_provider(self) -> ProviderCheck:
        page = await self.openai.models.list()
        models = [model.id async for model in page]
        activity.logger.info("provider answered", extra={"models": len(models)})
        return ProviderCheck(base_url=str(self.openai.base_url), models=models)
