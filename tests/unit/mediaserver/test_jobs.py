"""The PostgreSQL job queue on a real database: exclusive claims across nodes, retries with
backoff, giving up, leases (renewed while running, taken over once expired), NOTIFY wake-ups
and clean shutdown. Each test uses its own job kind, so the queues of other tests' nodes on
the same database never see its jobs."""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from mediaserver.db import create_pool
from mediaserver.jobs import Job, JobQueue, PermanentJobError, backoff_seconds

DEADLINE = 10.0


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url)
    yield pool
    await pool.close()


@pytest.fixture
def kind() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def queues(
    pool: asyncpg.Pool, database_url: str
) -> AsyncIterator[Callable[..., Awaitable[JobQueue]]]:
    """`await make(pool=None, **options)`: queues (LISTENing on their own connection, as in
    the app), closed at the end of the test."""
    started: list[JobQueue] = []

    async def make(pool_: asyncpg.Pool | None = None, **options: Any) -> JobQueue:
        options.setdefault("listen", functools.partial(asyncpg.connect, database_url))
        queue = JobQueue(pool_ or pool, **options)
        started.append(queue)
        return queue

    yield make
    for queue in started:
        await queue.close()


async def enqueue(pool: asyncpg.Pool, queue: JobQueue, kind: str, n: int = 1, **kw: Any) -> list:
    async with pool.acquire() as conn, conn.transaction():
        return [await queue.enqueue(conn, kind, uuid.uuid4(), {"n": i}, **kw) for i in range(n)]


async def job(pool: asyncpg.Pool, job_id: uuid.UUID) -> dict[str, Any]:
    row = await pool.fetchrow(
        "SELECT status, attempts, last_error, lease_until, run_after - updated_at AS wait "
        "FROM jobs WHERE job_id = $1",
        job_id,
    )
    return dict(row)


async def eventually(check: Callable[[], Awaitable[bool]], deadline_s: float = DEADLINE) -> None:
    """Poll `check` until it is true; fail at the deadline."""
    deadline = time.monotonic() + deadline_s
    while not await check():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.02)


async def status_is(pool: asyncpg.Pool, job_id: uuid.UUID, status: str) -> None:
    async def check() -> bool:
        return (await job(pool, job_id))["status"] == status

    await eventually(check)


def test_backoff_doubles_per_attempt_up_to_the_cap() -> None:
    assert [backoff_seconds(n, 2.0) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert backoff_seconds(30, 2.0) == 600.0
    assert backoff_seconds(3, 0.0) == 0.0


async def test_two_nodes_never_run_the_same_job_twice(
    database_url: str, pool: asyncpg.Pool, queues: Any, kind: str
) -> None:
    other_pool = await create_pool(database_url)  # the second node's own connections
    runs: list[tuple[str, uuid.UUID]] = []
    try:
        nodes = {"a": await queues(workers=4), "b": await queues(other_pool, workers=4)}
        for (name, queue), node_pool in zip(nodes.items(), (pool, other_pool), strict=True):

            async def run(job: Job, name: str = name, node_pool: Any = node_pool) -> None:
                runs.append((name, job.job_id))
                await node_pool.execute("SELECT pg_sleep(0.002)")  # hold the job a moment

            queue.register(kind, run)
        for queue in nodes.values():
            await queue.start()
        ids = await enqueue(pool, nodes["a"], kind, 50)

        async def all_done() -> bool:
            done = await pool.fetchval(
                "SELECT count(*) FROM jobs WHERE kind = $1 AND status = 'done'", kind
            )
            return bool(done == 50)

        await eventually(all_done)
        assert sorted(job_id for _, job_id in runs) == sorted(ids)  # each exactly once
        assert {name for name, _ in runs} == {"a", "b"}
        attempts = await pool.fetch("SELECT attempts FROM jobs WHERE kind = $1", kind)
        assert {r["attempts"] for r in attempts} == {1}
    finally:
        for queue in nodes.values():
            await queue.close()
        await other_pool.close()


async def test_a_failed_attempt_is_retried_after_its_backoff(
    pool: asyncpg.Pool, queues: Any, kind: str
) -> None:
    queue = await queues(backoff_seconds=30)
    calls: list[int] = []

    async def boom(job: Job) -> None:
        calls.append(job.attempts)
        raise RuntimeError("source unavailable")

    queue.register(kind, boom)
    await queue.start()
    (job_id,) = await enqueue(pool, queue, kind)

    async def failed_once() -> bool:  # the handler has raised *and* the retry is recorded
        row = await job(pool, job_id)
        return row["attempts"] == 1 and row["status"] != "running" and calls == [1]

    await eventually(failed_once)
    row = await job(pool, job_id)
    assert row["status"] == "queued" and row["lease_until"] is None
    assert row["last_error"] == "RuntimeError: source unavailable"
    assert row["wait"] == timedelta(seconds=30)  # not run again before its backoff


async def test_a_job_fails_for_good_after_max_attempts(
    pool: asyncpg.Pool, queues: Any, kind: str
) -> None:
    queue = await queues(backoff_seconds=0.01, poll_seconds=0.05)  # retries are polled for
    failures: list[tuple[int, str]] = []

    async def boom(job: Job) -> None:
        raise RuntimeError(f"boom {job.attempts}")

    async def on_failed(job: Job, error: str) -> None:
        failures.append((job.attempts, error))

    queue.register(kind, boom, on_failed)
    await queue.start()
    (job_id,) = await enqueue(pool, queue, kind, max_attempts=3)
    await status_is(pool, job_id, "failed")
    row = await job(pool, job_id)
    assert (row["attempts"], row["last_error"]) == (3, "RuntimeError: boom 3")
    await eventually(lambda: _true(failures))
    assert failures == [(3, "RuntimeError: boom 3")]


async def _true(value: Any) -> bool:
    return bool(value)


async def test_a_permanent_error_fails_the_job_at_once(
    pool: asyncpg.Pool, queues: Any, kind: str
) -> None:
    queue = await queues()
    failures: list[str] = []

    async def corrupt(job: Job) -> None:
        raise PermanentJobError("Transcoding error: the file is damaged.")

    async def on_failed(job: Job, error: str) -> None:
        failures.append(error)

    queue.register(kind, corrupt, on_failed)
    await queue.start()
    (job_id,) = await enqueue(pool, queue, kind)
    await status_is(pool, job_id, "failed")
    assert (await job(pool, job_id))["attempts"] == 1
    await eventually(lambda: _true(failures))
    assert failures == ["Transcoding error: the file is damaged."]


async def insert_abandoned(
    pool: asyncpg.Pool, kind: str, attempts: int, lease: timedelta
) -> uuid.UUID:
    """A job as a node leaves it when it dies mid-run: `running`, lease at `now() + lease`."""
    job_id: uuid.UUID = await pool.fetchval(
        "INSERT INTO jobs (kind, subject_id, status, attempts, max_attempts, lease_until) "
        "VALUES ($1, $2, 'running', $3, 2, now() + $4) RETURNING job_id",
        kind,
        uuid.uuid4(),
        attempts,
        lease,
    )
    return job_id


async def test_a_job_whose_node_died_is_taken_over_once_its_lease_expires(
    pool: asyncpg.Pool, queues: Any, kind: str
) -> None:
    queue = await queues()
    ran: list[tuple[uuid.UUID, int]] = []

    async def run(job: Job) -> None:
        ran.append((job.job_id, job.attempts))

    queue.register(kind, run)
    alive = await insert_abandoned(pool, kind, 1, timedelta(hours=1))  # its node is still working
    dead = await insert_abandoned(pool, kind, 1, timedelta(seconds=-1))
    await queue.start()
    await status_is(pool, dead, "done")
    assert ran == [(dead, 2)]
    assert (await job(pool, alive))["status"] == "running"


async def test_a_job_abandoned_on_its_last_attempt_fails(
    pool: asyncpg.Pool, queues: Any, kind: str
) -> None:
    queue = await queues()
    ran: list[Job] = []
    failures: list[str] = []

    async def run(job: Job) -> None:
        ran.append(job)

    async def on_failed(job: Job, error: str) -> None:
        failures.append(error)

    queue.register(kind, run, on_failed)
    job_id = await insert_abandoned(pool, kind, 2, timedelta(seconds=-1))  # max_attempts is 2
    await queue.start()
    await status_is(pool, job_id, "failed")
    await eventually(lambda: _true(failures))
    assert ran == [] and failures == ["gave up after 2 attempts"]


async def test_a_running_job_keeps_its_lease(pool: asyncpg.Pool, queues: Any, kind: str) -> None:
    owner = await queues(lease_seconds=0.6)
    rival = await queues(lease_seconds=0.6)
    release = asyncio.Event()
    ran: list[str] = []

    async def slow(job: Job) -> None:
        ran.append("owner")
        await release.wait()

    async def steal(job: Job) -> None:
        ran.append("rival")

    owner.register(kind, slow)
    await owner.start()
    (job_id,) = await enqueue(pool, owner, kind)
    await eventually(lambda: _true(ran))
    rival.register(kind, steal)
    await rival.start()
    leases: set[Any] = set()

    async def renewed_past_the_first_lease() -> bool:
        leases.add((await job(pool, job_id))["lease_until"])
        return len(leases) >= 5  # renewed every 0.2 s: about 1 s, well past the first lease

    await eventually(renewed_past_the_first_lease)
    release.set()
    await status_is(pool, job_id, "done")
    assert ran == ["owner"] and (await job(pool, job_id))["attempts"] == 1


async def test_closing_hands_a_running_job_back(pool: asyncpg.Pool, queues: Any, kind: str) -> None:
    queue = await queues()
    started = asyncio.Event()

    async def hangs(job: Job) -> None:
        started.set()
        await asyncio.Event().wait()

    queue.register(kind, hangs)
    await queue.start()
    (job_id,) = await enqueue(pool, queue, kind)
    await asyncio.wait_for(started.wait(), DEADLINE)
    await queue.close()
    row = await job(pool, job_id)
    assert (row["status"], row["attempts"], row["lease_until"]) == ("queued", 0, None)


async def test_an_enqueued_job_wakes_idle_workers_at_once(
    pool: asyncpg.Pool, queues: Any, kind: str
) -> None:
    queue = await queues(poll_seconds=60)  # only NOTIFY can wake them in time
    queue.register(kind, _noop)
    await queue.start()
    (first,) = await enqueue(pool, queue, kind)
    await status_is(pool, first, "done")  # the workers are idle after this
    began = time.monotonic()
    (second,) = await enqueue(pool, queue, kind)
    await status_is(pool, second, "done")
    assert time.monotonic() - began < 2


async def _noop(job: Job) -> None:
    return None


async def test_a_queue_without_workers_runs_nothing(
    pool: asyncpg.Pool, queues: Any, kind: str
) -> None:
    queue = await queues(workers=0)
    queue.register(kind, _noop)
    await queue.start()
    (job_id,) = await enqueue(pool, queue, kind)
    assert (await job(pool, job_id))["status"] == "queued"
