"""Scale: 120,000 records across three batches, and a 50,000-line input, within seconds."""

from __future__ import annotations

import json
import time

from tests.emulator.conftest import StartEmulator, sdk
from tests.emulator.helpers import VALIDATING, chat_line, jsonl, upload, wait_until

RECORDS_PER_BATCH = 40_000


def test_120k_records_across_three_batches(start_emulator: StartEmulator) -> None:
    # 40,000 requests take 6,000 emulated seconds: two real seconds at this speed.
    server = start_emulator(speed=3000.0)
    client = sdk(server)
    started = time.monotonic()
    batches = []
    for part in range(3):
        offset = part * RECORDS_PER_BATCH
        lines = [chat_line(offset + i) for i in range(RECORDS_PER_BATCH)]
        file = upload(client, jsonl(lines), f"part-{part}.jsonl")
        batches.append(
            client.batches.create(
                input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
        )

    def all_completed() -> bool:
        return all(client.batches.retrieve(b.id).status == "completed" for b in batches)

    wait_until(all_completed, timeout=60, what="three batches to complete")
    seen = 0
    for part, batch in enumerate(batches):
        done = client.batches.retrieve(batch.id)
        assert done.request_counts is not None and done.request_counts.completed == 40_000
        assert done.output_file_id is not None and done.error_file_id is None
        for row in client.files.content(done.output_file_id).text.splitlines():
            result = json.loads(row)
            index = int(result["custom_id"].removeprefix("req-"))
            assert index // RECORDS_PER_BATCH == part
            content = result["response"]["body"]["choices"][0]["message"]["content"]
            assert f"record-{index} " in content
            seen += 1
    assert seen == 120_000
    assert time.monotonic() - started < 60


def test_50k_line_input_validates(start_emulator: StartEmulator) -> None:
    server = start_emulator()
    client = sdk(server)
    file = upload(client, jsonl([chat_line(i) for i in range(50_000)]))
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    server.control.advance_clock(VALIDATING)
    batch = client.batches.retrieve(batch.id)
    assert batch.status == "in_progress" and batch.request_counts is not None
    assert batch.request_counts.total == 50_000
