"""structlog configuration: one call per process, at start.

Everything funnels through the standard library's logging so that Temporal's own loggers
(`workflow.logger` is replay-safe: it stays silent while a workflow replays) come out in the
same format, with the workflow id, run id and job id lifted into fields of their own.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LogFormat = Literal["console", "json"]

# Record attributes Temporal attaches (`extra=`) and the field names Laneway logs them under.
_TEMPORAL_FIELDS = {
    "temporal_workflow": {
        "workflow_id": "workflow_id",
        "run_id": "run_id",
        "workflow_type": "workflow_type",
    },
    "temporal_activity": {
        "workflow_id": "workflow_id",
        "workflow_run_id": "run_id",
        "activity_type": "activity_type",
        "attempt": "attempt",
    },
}

_configured: tuple[LogFormat, str] | None = None


def lift_temporal_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Turn Temporal's `extra` dicts and a `job_id` extra into top-level fields."""
    record = event_dict.get("_record")
    if record is None:
        return event_dict
    for attribute, fields in _TEMPORAL_FIELDS.items():
        details: MutableMapping[str, Any] | None = getattr(record, attribute, None)
        event_dict.pop(attribute, None)
        for source, target in fields.items():
            if details and details.get(source) is not None:
                event_dict.setdefault(target, details[source])
    job_id = getattr(record, "job_id", None)
    if job_id is not None:
        event_dict.setdefault("job_id", job_id)
    return event_dict


def _renderer(log_format: LogFormat) -> Processor:
    if log_format == "json":
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())


def configure_logging(log_format: LogFormat = "console", level: str = "info") -> None:
    """Configure structlog and the standard logging root once; later calls are no-ops."""
    global _configured
    if _configured is not None:
        return
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), lift_temporal_context],
            processors=[
                lift_temporal_context,
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _renderer(log_format),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    _quiet_temporal_message_suffix()
    _configured = (log_format, level)


def _quiet_temporal_message_suffix() -> None:
    # The ids are fields of their own; Temporal's default also appends them to the message.
    from temporalio import activity, workflow

    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
