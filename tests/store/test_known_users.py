"""The hot path's user check: existing users pass, unknown ones are refused, and a crowd's first
requests cost a handful of queries rather than one each (on SQLite and MariaDB alike)."""

from __future__ import annotations

import asyncio

import pytest

from sneakerd import errors
from sneakerd.domain.model import Role
from sneakerd.store import Store
from sneakerd.web.known_users import MAX_LOOKUP, KnownUsers
from sneakerd.web.problems import ApiError

NOW = 1_795_510_800_123


async def test_usernames_by_ids_returns_the_existing_ones(store: Store) -> None:
    made = [
        await store.create_user(f"u{i}", f"u{i}@example.com", "h", Role.CUSTOMER, NOW)
        for i in range(3)
    ]
    ids = [u.id for u in made]
    found = await store.usernames_by_ids([*ids, ids[0], 999_999])
    assert found == {u.id: u.username for u in made}
    assert await store.usernames_by_ids([]) == {}


async def test_a_crowd_of_first_requests_is_looked_up_in_a_few_queries(store: Store) -> None:
    crowd = 1_200
    made = [
        await store.create_user(f"c{i}", f"c{i}@example.com", "h", Role.CUSTOMER, NOW)
        for i in range(crowd)
    ]
    known = KnownUsers(store)
    known.start()
    try:
        names = await asyncio.gather(*(known.username(u.id) for u in made))
        assert names == [u.username for u in made]
        # At most one query per MAX_LOOKUP ids plus the one that the first miss starts alone.
        assert 1 <= known.lookups <= crowd // MAX_LOOKUP + 2, known.lookups
        asked = known.lookups
        assert await known.username(made[5].id) == "c5"  # remembered: no query
        assert known.lookups == asked
        with pytest.raises(ApiError) as refused:
            await known.username(999_999)
        assert refused.value.status == 401
        # Twins asking for the same unknown id share one answer.
        twins = await asyncio.gather(
            *(known.username(888_888) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(t, ApiError) and t.status == 401 for t in twins)
    finally:
        await known.stop()


async def test_a_stopped_loader_answers_unavailable(store: Store) -> None:
    known = KnownUsers(store)
    with pytest.raises(errors.Unavailable):
        await known.username(1)


async def test_an_unexpected_lookup_error_fails_its_batch_and_the_loader_goes_on(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lookup that fails in a way no one planned for (a bug, a driver's odd error) answers
    its waiters 503 and leaves the loader serving: it used to end the loader task, after which
    every later first request waited for ever."""
    user = await store.create_user("kept", "kept@example.com", "x", Role.CUSTOMER, NOW)
    real = store.usernames_by_ids
    calls = 0

    async def flaky(ids: list[int]) -> dict[int, str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return await real(ids)

    monkeypatch.setattr(store, "usernames_by_ids", flaky)
    known = KnownUsers(store)
    known.start()
    try:
        with pytest.raises(errors.Unavailable):
            await known.username(user.id)
        assert await asyncio.wait_for(known.username(user.id), 5) == "kept"
    finally:
        await known.stop()
