"""Validation problems said without pydantic's class names and prefixes."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from laneway.jobs import JobInput
from laneway.problems import describe
from tests.plain_messages import internal_names


class Outbox(BaseModel):
    directory: str


class Webhook(BaseModel):
    url: str


class Spec(BaseModel):
    job_input: JobInput
    target: Outbox | Webhook
    name: str

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if " " in value:
            raise ValueError("use a slug such as research_brief")
        return value


def test_problems_name_fields_and_say_what_is_wrong_without_class_names() -> None:
    with pytest.raises(ValidationError) as raised:
        Spec.model_validate({"job_input": "text", "target": {}, "name": "Bad Type"})
    said = describe(raised.value)
    assert internal_names(str(raised.value)), "pydantic's own words name the classes"
    assert internal_names(said) == []
    assert said == (
        "job_input: Input should be an object; target.directory: Field required; "
        "target.url: Field required; name: use a slug such as research_brief"
    )
