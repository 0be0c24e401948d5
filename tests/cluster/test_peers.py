"""Forwarding writes between nodes, in-process: aiohttp servers on loopback ports, a real
WebSocket between them, and a handler standing in for the owner's actors."""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager
from decimal import Decimal

import aiohttp
import orjson
import pytest
from aiohttp import web

from sneakerd import errors
from sneakerd.actors.mailbox import Mailbox, ReplyTo
from sneakerd.cluster import peers as peer_mod
from sneakerd.cluster import wire
from sneakerd.cluster.peer_auth import Post
from sneakerd.cluster.peers import PEER_HEADER, PEER_PATH, Outcome, Peers, PeerServer
from sneakerd.domain.book import Reply
from sneakerd.domain.commands import (
    Cancel,
    Command,
    Purchase,
    RequestKey,
    Reserve,
    UpdateDrop,
)
from sneakerd.domain.model import (
    Drop,
    DropInfo,
    PurchaseRecord,
    ReservationRecord,
    ReservationStatus,
)
from sneakerd.domain.rules import Rejection
from sneakerd.pacer import RefusalPacer

NOW = 1_790_000_000_000
HOLD_MS = 60_000

Decide = Callable[[int, Command], Awaitable[Reply]]


class Owner:
    """The owner's side of a forward: records what arrived and answers with `decide`."""

    def __init__(self, decide: Decide | None = None) -> None:
        self.calls: list[tuple[int, Command]] = []
        self.decide = decide or reserve_everything
        self._arrival = asyncio.Condition()

    async def __call__(self, drop_id: int, command: Command) -> Reply:
        self.calls.append((drop_id, command))
        async with self._arrival:
            self._arrival.notify_all()
        return await self.decide(drop_id, command)

    async def reached(self, count: int) -> None:
        """Return once `count` commands have arrived."""
        async with self._arrival:
            await self._arrival.wait_for(lambda: len(self.calls) >= count)


async def reserve_everything(drop_id: int, command: Command) -> Reply:
    assert isinstance(command, Reserve)
    return ReservationRecord(
        1000 + command.user_id, drop_id, command.user_id, ReservationStatus.ACTIVE, NOW, NOW
    )


class Node:
    """One node: an aiohttp app serving `/internal/peer` on 127.0.0.1 (port 0 = any)."""

    def __init__(
        self,
        owner: Owner,
        secret: str,
        node_id: str,
        port: int = 0,
        post: Post | None = None,
        work: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> None:
        self.owner = owner
        self.secret = secret
        self.node_id = node_id
        self.port = port
        self.post = post
        self.work = work
        self.runner: web.AppRunner | None = None
        self.server: PeerServer | None = None

    async def start(self) -> Node:
        app = web.Application()
        self.server = peer_mod.add_routes(
            app, self.owner, self.secret, self.node_id, post=self.post, work=self.work
        )
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> peer_mod.ServerStats:
        assert self.server is not None
        return self.server.stats()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


class Recorder:
    """A `PeerObserver` that keeps every forward's outcome."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, float, Outcome]] = []

    def forwarded(self, url: str, seconds: float, outcome: Outcome) -> None:
        self.seen.append((url, seconds, outcome))


@pytest.fixture
def secret() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture
async def nodes(secret: str) -> AsyncIterator[tuple[Node, Node]]:
    """Two nodes, a and b, each serving the peer route."""
    a = await Node(Owner(), secret, "node-a").start()
    b = await Node(Owner(), secret, "node-b").start()
    yield a, b
    await a.stop()
    await b.stop()


@pytest.fixture
async def peers(secret: str) -> AsyncIterator[Peers]:
    """Node a's client side: what a forwards through."""
    client = Peers(secret, "node-a", backoff_initial_s=0.02, backoff_max_s=0.1)
    await client.start()
    yield client
    await client.close()


async def test_a_forwarded_reserve_reaches_the_owner_and_its_record_comes_back(
    nodes: tuple[Node, Node], peers: Peers
) -> None:
    a, b = nodes
    key = RequestKey("POST /api/reservations", "abc-Ä", "fp")
    reply = await peers.ask(b.url, 42, Reserve(7, key), timeout_s=5)
    assert reply == ReservationRecord(1007, 42, 7, ReservationStatus.ACTIVE, NOW, NOW)
    assert b.owner.calls == [(42, Reserve(7, key))]
    assert a.owner.calls == []


async def test_every_reply_kind_comes_back_equal(nodes: tuple[Node, Node], peers: Peers) -> None:
    _, b = nodes
    drop = Drop(
        5, DropInfo("Air", Decimal("199.90"), brand="N", ends_at=NOW), 10, 7, 2, 1, 4, NOW, NOW
    )
    answers: dict[int, Reply] = {
        1: PurchaseRecord(9, 5, 7, 1007, Decimal("199.90"), NOW),
        2: drop,
        3: None,
        4: ReservationRecord(3, 5, 7, ReservationStatus.CANCELLED, NOW + HOLD_MS, NOW),
    }

    async def decide(drop_id: int, command: Command) -> Reply:
        return answers[drop_id]

    b.owner.decide = decide
    for drop_id, expected in answers.items():
        got = await peers.ask(b.url, drop_id, Cancel(7, 3), timeout_s=5)
        assert got == expected
        assert repr(got) == repr(expected)


async def test_two_hundred_asks_in_one_turn_travel_in_one_frame(
    nodes: tuple[Node, Node], peers: Peers
) -> None:
    _, b = nodes
    await peers.ask(b.url, 1, Reserve(1), timeout_s=5)  # the connection is open now
    before, client_before = b.stats(), peers.stats()

    replies = await asyncio.gather(
        *(peers.ask(b.url, 1 + n % 3, Reserve(n), timeout_s=5) for n in range(200))
    )

    after, client_after = b.stats(), peers.stats()
    assert after.frames_in - before.frames_in == 1
    assert after.requests - before.requests == 200
    assert client_after.frames_out - client_before.frames_out == 1
    # The owner's handlers all finished in one turn, so their replies left in one frame too.
    assert after.frames_out - before.frames_out == 1
    assert client_after.connects == client_before.connects == 1
    assert [r.user_id for r in replies if isinstance(r, ReservationRecord)] == list(range(200))
    assert [r.drop_id for r in replies if isinstance(r, ReservationRecord)] == [
        1 + n % 3 for n in range(200)
    ]


async def test_the_owner_runs_the_requests_of_a_frame_concurrently(
    nodes: tuple[Node, Node], peers: Peers
) -> None:
    """The first request waits for the second to arrive: run one after the other, the first
    would never finish."""
    _, b = nodes
    second_arrived = asyncio.Event()

    async def decide(drop_id: int, command: Command) -> Reply:
        if drop_id == 1:
            await second_arrived.wait()
        else:
            second_arrived.set()
        return await reserve_everything(drop_id, command)

    b.owner.decide = decide
    first, second = await asyncio.gather(
        peers.ask(b.url, 1, Reserve(1), timeout_s=2), peers.ask(b.url, 2, Reserve(2), timeout_s=2)
    )
    assert isinstance(first, ReservationRecord) and first.drop_id == 1
    assert isinstance(second, ReservationRecord) and second.drop_id == 2


@pytest.mark.parametrize(
    "rejection",
    [
        Rejection(errors.OutOfStock, "No units left right now"),
        Rejection(errors.LimitReached, "You have made 3 holds on this drop (limit 3)"),
        Rejection(errors.InvalidDrop, "endsAt must be after startsAt", "endsAt"),
        Rejection(errors.NotFound, "No such reservation"),
    ],
)
async def test_a_domain_refusal_comes_back_as_the_same_rejection(
    nodes: tuple[Node, Node], peers: Peers, rejection: Rejection
) -> None:
    _, b = nodes

    async def refuse(drop_id: int, command: Command) -> Reply:
        return rejection

    b.owner.decide = refuse
    got = await peers.ask(b.url, 3, Purchase(7, 11, "ann"), timeout_s=5)
    assert got == rejection
    assert isinstance(got, Rejection) and got.error is rejection.error


@pytest.mark.parametrize(
    "raised",
    [
        errors.OutOfStock("gone"),
        errors.NotFound("No such drop"),
        errors.InvalidDrop("endsAt must be after startsAt", "endsAt"),
        errors.RequestInProgress("another request"),
        errors.Unavailable("the database is down"),
        errors.ActorStopped("drop 3 is stopping"),
    ],
)
async def test_an_error_raised_by_the_owner_comes_back_as_the_same_class(
    nodes: tuple[Node, Node], peers: Peers, raised: Exception
) -> None:
    _, b = nodes

    async def fail(drop_id: int, command: Command) -> Reply:
        raise raised

    b.owner.decide = fail
    with pytest.raises(type(raised)) as caught:
        await peers.ask(b.url, 3, UpdateDrop(name="x"), timeout_s=5)
    assert type(caught.value) is type(raised)
    assert str(caught.value) == str(raised)
    if isinstance(raised, errors.InvalidDrop):
        assert isinstance(caught.value, errors.InvalidDrop)
        assert caught.value.field == raised.field
    assert peers.stats().errors == 1


async def test_a_bug_on_the_owner_comes_back_as_a_remote_failure_without_its_text(
    nodes: tuple[Node, Node], peers: Peers
) -> None:
    _, b = nodes

    async def broken(drop_id: int, command: Command) -> Reply:
        raise KeyError("internal detail")

    b.owner.decide = broken
    with pytest.raises(wire.RemoteFailure) as caught:
        await peers.ask(b.url, 3, Reserve(1), timeout_s=5)
    assert "internal detail" not in str(caught.value)
    assert not isinstance(caught.value, errors.Unavailable)


async def test_a_handler_that_refuses_at_once_answers_that_request_only(
    nodes: tuple[Node, Node], peers: Peers, secret: str
) -> None:
    """A handler that raises before it returns an awaitable (a stopped mailbox does)."""

    def stopped(drop_id: int, command: Command) -> Awaitable[Reply]:
        if drop_id == 9:
            raise errors.ActorStopped("drop 9 is stopped")
        return reserve_everything(drop_id, command)

    c = await Node(Owner(), secret, "node-c").start()
    try:
        assert c.server is not None
        c.server._handler = stopped
        bad, good = await asyncio.gather(
            peers.ask(c.url, 9, Reserve(1), timeout_s=5),
            peers.ask(c.url, 8, Reserve(2), timeout_s=5),
            return_exceptions=True,
        )
        assert type(bad) is errors.ActorStopped
        assert isinstance(good, ReservationRecord)
    finally:
        await c.stop()


def _header(secret: str, node_id: str, unix_ms: int) -> str:
    return peer_mod.sign(peer_mod.peer_key(secret), node_id, unix_ms)


@pytest.mark.parametrize(
    "make_header",
    [
        pytest.param(lambda s: None, id="missing"),
        pytest.param(lambda s: "node-a", id="malformed"),
        pytest.param(lambda s: f"node-a.{int(time.time() * 1000)}.{'0' * 64}", id="bad-mac"),
        pytest.param(
            lambda s: _header("another-secret-of-enough-length", "node-a", int(time.time() * 1000)),
            id="other-secret",
        ),
        pytest.param(
            lambda s: _header(s, "node-a", int(time.time() * 1000)).replace("node-a", "node-x", 1),
            id="other-node-id",
        ),
        pytest.param(lambda s: _header(s, "node-a", int(time.time() * 1000) - 31_000), id="stale"),
        pytest.param(lambda s: _header(s, "node-a", int(time.time() * 1000) + 31_000), id="future"),
    ],
)
async def test_a_bad_or_stale_mac_is_refused_before_the_upgrade(
    nodes: tuple[Node, Node], secret: str, make_header: Callable[[str], str | None]
) -> None:
    _, b = nodes
    header = make_header(secret)
    headers = {PEER_HEADER: header} if header is not None else {}
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await session.ws_connect(b.url + PEER_PATH, headers=headers)
        assert caught.value.status == 403
        # The same request as plain HTTP shows the answer: the JSON envelope, no upgrade.
        async with session.get(b.url + PEER_PATH, headers=headers) as response:
            assert response.status == 403
            body = await response.json()
    assert body["error"]["code"] == "forbidden"
    assert body["error"]["message"]
    assert b.stats().accepted == 0
    assert b.stats().refused == 2


async def test_a_good_mac_is_accepted_and_a_dotted_node_id_works(
    nodes: tuple[Node, Node], secret: str
) -> None:
    _, b = nodes
    header = _header(secret, "10.0.0.7:5000", int(time.time() * 1000) - 29_000)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(b.url + PEER_PATH, headers={PEER_HEADER: header}) as ws,
    ):
        request = [{"i": 1, "d": 4, "c": wire.command_to_json(Reserve(3))}]
        await ws.send_str(orjson.dumps(request).decode())
        frame = await ws.receive_json()
    assert frame == [{"i": 1, "r": wire.reply_to_json(await reserve_everything(4, Reserve(3)))}]
    assert b.stats().accepted == 1


async def test_peers_with_the_wrong_secret_are_refused_and_nothing_runs(
    nodes: tuple[Node, Node],
) -> None:
    _, b = nodes
    intruder = Peers("not-the-shared-secret-at-all-0123456789", "node-z")
    await intruder.start()
    try:
        with pytest.raises(errors.Unavailable) as caught:
            await intruder.ask(b.url, 1, Reserve(1), timeout_s=5)
    finally:
        await intruder.close()
    assert "refused" in str(caught.value)
    assert "not sent" in str(caught.value)
    assert b.owner.calls == []
    assert b.stats().refused == 1


async def test_killing_the_owner_fails_pending_asks_in_time_and_a_later_ask_reconnects(
    nodes: tuple[Node, Node], peers: Peers, secret: str
) -> None:
    _, b = nodes
    never = asyncio.Event()

    async def stuck(drop_id: int, command: Command) -> Reply:
        await never.wait()
        return None

    b.owner.decide = stuck
    timeout_s = 5.0
    started = time.monotonic()
    asks = [
        asyncio.ensure_future(peers.ask(b.url, 1, Reserve(n), timeout_s=timeout_s))
        for n in range(5)
    ]
    await b.owner.reached(5)
    port = b.port
    await b.stop()
    results = await asyncio.gather(*asks, return_exceptions=True)
    elapsed = time.monotonic() - started

    assert all(type(r) is errors.OutcomeUnknown for r in results), results
    assert all("outcome is unknown" in str(r) for r in results)
    assert elapsed < timeout_s
    assert peers.stats().connections == 0

    again = await Node(Owner(), secret, "node-b", port=port).start()
    try:
        reply = await peers.ask(again.url, 2, Reserve(8), timeout_s=timeout_s)
        assert isinstance(reply, ReservationRecord) and reply.user_id == 8
        assert peers.stats().connects == 2
        assert again.owner.calls == [(2, Reserve(8))]
    finally:
        await again.stop()


async def test_an_owner_that_does_not_answer_is_unavailable_at_the_timeout(
    nodes: tuple[Node, Node], peers: Peers
) -> None:
    _, b = nodes
    never = asyncio.Event()

    async def silent(drop_id: int, command: Command) -> Reply:
        await never.wait()
        return None

    b.owner.decide = silent
    started = time.monotonic()
    with pytest.raises(errors.Unavailable) as caught:
        await peers.ask(b.url, 1, Reserve(1), timeout_s=0.2)
    assert 0.2 <= time.monotonic() - started < 2
    assert "outcome is unknown" in str(caught.value)
    assert "Idempotency-Key" in str(caught.value)
    # The connection is still good for the next ask.
    b.owner.decide = reserve_everything
    assert isinstance(await peers.ask(b.url, 1, Reserve(2), timeout_s=5), ReservationRecord)
    assert peers.stats().connects == 1


async def test_an_unreachable_owner_is_unavailable_at_once_and_nothing_was_sent(
    peers: Peers,
) -> None:
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(errors.Unavailable) as caught:
            await peers.ask(url, 1, Reserve(1), timeout_s=5)
        assert time.monotonic() - started < 2
        assert "not sent" in str(caught.value)
        assert peers.stats().connect_failures == 1


async def test_closing_fails_waiting_asks_and_refuses_new_ones(
    nodes: tuple[Node, Node], secret: str
) -> None:
    _, b = nodes
    never = asyncio.Event()

    async def stuck(drop_id: int, command: Command) -> Reply:
        await never.wait()
        return None

    b.owner.decide = stuck
    client = Peers(secret, "node-a")
    await client.start()
    pending = asyncio.ensure_future(client.ask(b.url, 1, Reserve(1), timeout_s=5))
    await b.owner.reached(1)
    await client.close()
    with pytest.raises(errors.Unavailable):
        await pending
    with pytest.raises(errors.Unavailable):
        await client.ask(b.url, 1, Reserve(2), timeout_s=5)


async def test_stats_and_the_observer_count_forwards_by_outcome(
    nodes: tuple[Node, Node], secret: str
) -> None:
    _, b = nodes
    recorder = Recorder()
    client = Peers(secret, "node-a", observer=recorder)
    await client.start()

    async def decide(drop_id: int, command: Command) -> Reply:
        if drop_id == 2:
            raise errors.OutOfStock()
        if drop_id == 3:
            await asyncio.Event().wait()
        return await reserve_everything(drop_id, command)

    b.owner.decide = decide
    try:
        await client.ask(b.url, 1, Reserve(1), timeout_s=5)
        with pytest.raises(errors.OutOfStock):
            await client.ask(b.url, 2, Reserve(1), timeout_s=5)
        with pytest.raises(errors.Unavailable):
            await client.ask(b.url, 3, Reserve(1), timeout_s=0.05)
        stats = client.stats()
    finally:
        await client.close()
    assert [outcome for _, _, outcome in recorder.seen] == ["reply", "error", "unavailable"]
    assert all(url == b.url for url, _, _ in recorder.seen)
    assert (stats.forwards, stats.replies, stats.errors, stats.unavailable) == (3, 1, 1, 1)
    assert stats.latency_max_s >= 0.05
    assert stats.latency_total_s >= stats.latency_max_s
    assert stats.connections == 1


async def test_both_nodes_forward_to_each_other_over_their_own_connections(
    nodes: tuple[Node, Node], secret: str, peers: Peers
) -> None:
    a, b = nodes
    from_b = Peers(secret, "node-b")
    await from_b.start()
    try:
        to_b, to_a = await asyncio.gather(
            peers.ask(b.url, 1, Reserve(1), timeout_s=5),
            from_b.ask(a.url, 2, Reserve(2), timeout_s=5),
        )
    finally:
        await from_b.close()
    assert isinstance(to_b, ReservationRecord) and isinstance(to_a, ReservationRecord)
    assert a.owner.calls == [(2, Reserve(2))]
    assert b.owner.calls == [(1, Reserve(1))]


async def test_forgetting_a_peer_closes_its_connection_and_a_later_ask_opens_another(
    nodes: tuple[Node, Node], peers: Peers
) -> None:
    _, b = nodes
    never = asyncio.Event()

    async def stuck(drop_id: int, command: Command) -> Reply:
        await never.wait()
        return None

    b.owner.decide = stuck
    pending = asyncio.ensure_future(peers.ask(b.url, 1, Reserve(1), timeout_s=5))
    await b.owner.reached(1)
    await peers.forget(b.url)
    with pytest.raises(errors.Unavailable):
        await pending
    assert peers.stats().connections == 0
    b.owner.decide = reserve_everything
    assert isinstance(await peers.ask(b.url, 1, Reserve(2), timeout_s=5), ReservationRecord)
    assert peers.stats().connects == 2


# -- the owner's fast path: commands straight into a running actor's mailbox ------------------


class MailboxActor:
    """A stand-in for the owner's running actors: drops 1 and 2 have a real `Mailbox` each,
    drained in batches by a task that answers each envelope with `decide` (an exception it
    raises goes to that envelope alone, as `DropActor._deliver` answers each caller); drop 4's
    mailbox is closed (a stopped actor). Any other drop has no actor here."""

    def __init__(self, decide: Decide = reserve_everything) -> None:
        self.decide = decide
        self.mailboxes: dict[int, Mailbox[Command, Reply]] = {
            n: Mailbox(f"drop {n}") for n in (1, 2, 4)
        }
        self.mailboxes[4].close()
        self.batches: list[int] = []
        self.answered: list[Command] = []
        self._tasks = [asyncio.create_task(self._drain(n, m)) for n, m in self.mailboxes.items()]

    def post(self, drop_id: int, command: Command, reply: ReplyTo[Reply]) -> bool:
        mailbox = self.mailboxes.get(drop_id)
        if mailbox is None:
            return False
        mailbox.post(command, reply)
        return True

    async def _drain(self, drop_id: int, mailbox: Mailbox[Command, Reply]) -> None:
        while batch := await mailbox.take_batch(500):
            self.batches.append(len(batch))
            for envelope in batch:
                try:
                    envelope.answer(await self.decide(drop_id, envelope.message))
                except Exception as exc:
                    envelope.fail(exc)
                self.answered.append(envelope.message)

    async def close(self) -> None:
        for mailbox in self.mailboxes.values():
            mailbox.close()
        await asyncio.gather(*self._tasks)


@pytest.fixture
async def actors() -> AsyncIterator[MailboxActor]:
    owner = MailboxActor()
    yield owner
    await owner.close()


@pytest.fixture
async def fast(secret: str, actors: MailboxActor) -> AsyncIterator[Node]:
    """An owner whose drops 1, 2 (and a stopped 4) have actors that take posted commands."""
    node = await Node(Owner(), secret, "node-f", post=actors.post).start()
    yield node
    await node.stop()


async def test_a_frame_of_posted_commands_is_answered_each_in_one_reply_frame(
    fast: Node, actors: MailboxActor, peers: Peers
) -> None:
    await peers.ask(fast.url, 1, Reserve(1), timeout_s=5)  # the connection is open now
    before = fast.stats()

    replies = await asyncio.gather(
        *(peers.ask(fast.url, 1 + n % 2, Reserve(n), timeout_s=5) for n in range(300))
    )

    after = fast.stats()
    assert after.frames_in - before.frames_in == 1
    assert after.posted - before.posted == 300
    assert after.frames_out - before.frames_out == 1  # both mailboxes answered in one turn
    assert fast.owner.calls == []  # no handler ran: every command went to a mailbox
    assert [(r.drop_id, r.user_id) for r in replies if isinstance(r, ReservationRecord)] == [
        (1 + n % 2, n) for n in range(300)
    ]
    assert sorted(actors.batches)[-2:] == [150, 150]  # each drop's commands: one batch


async def test_one_failing_posted_command_does_not_fail_the_others(
    fast: Node, actors: MailboxActor, peers: Peers
) -> None:
    async def decide(drop_id: int, command: Command) -> Reply:
        assert isinstance(command, Reserve)
        if command.user_id == 13:
            raise errors.LimitReached("You have made 3 holds on this drop (limit 3)")
        if command.user_id == 14:
            raise KeyError("internal detail")
        if command.user_id == 15:
            return Rejection(errors.OutOfStock, "No units left right now")
        return await reserve_everything(drop_id, command)

    actors.decide = decide
    got = await asyncio.gather(
        *(peers.ask(fast.url, 1, Reserve(n), timeout_s=5) for n in range(10, 20)),
        return_exceptions=True,
    )
    assert type(got[3]) is errors.LimitReached and str(got[3]) == str(
        errors.LimitReached("You have made 3 holds on this drop (limit 3)")
    )
    assert type(got[4]) is wire.RemoteFailure and "internal detail" not in str(got[4])
    assert got[5] == Rejection(errors.OutOfStock, "No units left right now")
    others = [g for i, g in enumerate(got) if i not in (3, 4, 5)]
    assert [g.user_id for g in others if isinstance(g, ReservationRecord)] == [
        10,
        11,
        12,
        16,
        17,
        18,
        19,
    ]


async def test_a_stopped_actor_or_a_drop_without_one_here_answers_that_request_only(
    fast: Node, peers: Peers
) -> None:
    """Drop 4's mailbox is closed: ActorStopped for it alone; drop 9 has no actor here, so the
    handler (the slower path, which would take the drop's lease) runs it."""
    stopped, elsewhere, posted = await asyncio.gather(
        peers.ask(fast.url, 4, Reserve(1), timeout_s=5),
        peers.ask(fast.url, 9, Reserve(2), timeout_s=5),
        peers.ask(fast.url, 1, Reserve(3), timeout_s=5),
        return_exceptions=True,
    )
    assert type(stopped) is errors.ActorStopped
    assert isinstance(elsewhere, ReservationRecord) and elsewhere.drop_id == 9
    assert isinstance(posted, ReservationRecord) and posted.drop_id == 1
    assert fast.owner.calls == [(9, Reserve(2))]
    assert fast.stats().posted == 1


async def test_a_malformed_frame_drops_the_connection_and_posted_replies_go_nowhere(
    fast: Node, actors: MailboxActor, peers: Peers, secret: str
) -> None:
    """A peer that breaks the protocol loses its connection; a command it had posted is
    still decided, and its reply, with nowhere to go, is dropped without harm; other peers'
    requests go on."""
    arrived, release = asyncio.Event(), asyncio.Event()

    async def slow(drop_id: int, command: Command) -> Reply:
        arrived.set()
        await release.wait()
        return await reserve_everything(drop_id, command)

    actors.decide = slow
    header = _header(secret, "node-x", int(time.time() * 1000))
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(fast.url + PEER_PATH, headers={PEER_HEADER: header}) as ws,
    ):
        request = [{"i": 1, "d": 1, "c": wire.command_to_json(Reserve(5))}]
        await ws.send_str(orjson.dumps(request).decode())
        await asyncio.wait_for(arrived.wait(), 5)
        assert fast.stats().posted == 1
        await ws.send_str('{"not": "a list"}')
        closing = await ws.receive(timeout=5)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == aiohttp.WSCloseCode.PROTOCOL_ERROR
    pending = asyncio.ensure_future(peers.ask(fast.url, 2, Reserve(6), timeout_s=5))
    release.set()
    reply = await pending
    assert isinstance(reply, ReservationRecord) and reply.user_id == 6
    assert Reserve(5) in actors.answered  # decided, its reply dropped with its connection


async def test_forwarded_commands_are_work_in_flight_on_the_owner_until_answered(
    secret: str, actors: MailboxActor, peers: Peers
) -> None:
    """The owner's refusals and fan-out make room for forwarded writes as for its own
    clients' (`sneakerd.pacer`): each counts from its arrival to its one answer, whichever way
    it ends (the handler, a mailbox, a refusal at once, a failure)."""
    pacer = RefusalPacer()
    gate = asyncio.Event()

    async def decide(drop_id: int, command: Command) -> Reply:
        await gate.wait()
        assert isinstance(command, Reserve)
        if command.user_id == 3:
            raise KeyError("a bug on the owner")
        return await reserve_everything(drop_id, command)

    owner = Owner(decide)
    node = await Node(owner, secret, "node-w", post=actors.post, work=pacer.other_work).start()
    try:
        asks = [
            asyncio.ensure_future(peers.ask(node.url, 9, Reserve(n), timeout_s=5))
            for n in range(1, 4)
        ]
        await owner.reached(3)
        assert list(pacer.in_flight) == [3]
        gate.set()
        got = await asyncio.gather(*asks, return_exceptions=True)
        assert [type(g) for g in got] == [
            ReservationRecord,
            ReservationRecord,
            wire.RemoteFailure,
        ]
        assert list(pacer.in_flight) == [0]
        await asyncio.gather(  # posted, an actor stopped (drop 4), and posted again
            peers.ask(node.url, 1, Reserve(5), timeout_s=5),
            peers.ask(node.url, 4, Reserve(6), timeout_s=5),
            peers.ask(node.url, 2, Reserve(7), timeout_s=5),
            return_exceptions=True,
        )
        assert list(pacer.in_flight) == [0]
    finally:
        await node.stop()
