"""The load client's stamped connection (`loadtest/client.py`): an answer is timed to its arrival
at the client's socket (the kernel's receive stamp), not to when a busy client read it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from loadtest import client

ANSWER = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"


BUSY = 0.1
"""Seconds the loop (the client's too: one loop here) is held after a `busy` answer is sent."""


async def answer_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while head := await reader.readuntil(b"\r\n\r\n"):
            writer.write(ANSWER)  # into the client's socket at once (loopback)
            if head.startswith(b"GET /busy"):
                time.sleep(BUSY)  # noqa: ASYNC251 (the point: the client busy meanwhile)
            await writer.drain()
    writer.close()


@pytest.fixture
async def port() -> AsyncIterator[int]:
    server = await asyncio.start_server(answer_each, "127.0.0.1", 0)
    async with server:
        yield int(server.sockets[0].getsockname()[1])


async def test_an_answer_read_late_is_timed_to_its_arrival(port: int) -> None:
    conns = await client.open_connections(port, 1, settle=0.05, stamped=True)
    request = b"GET /busy HTTP/1.1\r\n\r\n"
    results, _ = await client.run_load(port, [request], 1, connections=conns)
    (result,) = results
    assert result.status == 201 and result.body == b"ok"
    assert result.sent < result.arrived < result.done
    assert result.done - result.sent >= BUSY
    assert result.latency < BUSY / 2
    (outcome,) = client.outcomes_of(results).latencies.values()
    (read,) = client.outcomes_of(results, as_read=True).latencies.values()
    assert max(outcome) < BUSY / 2 and max(read) >= BUSY


async def test_a_plain_connection_is_timed_to_its_read(port: int) -> None:
    results, _ = await client.run_load(port, [b"GET / HTTP/1.1\r\n\r\n"] * 3, 1)
    assert [r.status for r in results] == [201, 201, 201]
    assert all(r.arrived == 0.0 and r.latency == r.done - r.sent for r in results)


def test_answers_are_taken_whole_and_one_at_a_time() -> None:
    buf = bytearray(ANSWER[:20])
    assert client.take_answer(buf) is None
    buf += ANSWER[20:] + ANSWER
    assert client.take_answer(buf) == (201, b"ok")
    assert client.take_answer(buf) == (201, b"ok")
    assert buf == bytearray()
    assert isinstance(client.take_answer(bytearray(b"HTTP/1.1 200 OK\r\n\r\n")), ValueError)
