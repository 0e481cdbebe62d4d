"""Object ids shaped like OpenAI's."""

from __future__ import annotations

import secrets


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + secrets.token_hex(length // 2 + 1)[:length]


def file_id() -> str:
    return new_id("file-")


def batch_id() -> str:
    return new_id("batch_")


def batch_request_id() -> str:
    return new_id("batch_req_")


def request_id() -> str:
    return new_id("req_", 32)


def response_id() -> str:
    return new_id("resp_", 48)


def message_id() -> str:
    return new_id("msg_", 48)


def chat_completion_id() -> str:
    return new_id("chatcmpl-", 29)


def event_id() -> str:
    return new_id("evt_")
