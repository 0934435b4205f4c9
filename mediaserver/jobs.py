"""Background jobs: a queue in PostgreSQL and the worker pool every node runs over it.

A job is a row of `jobs` (sql/0003_uploads.sql). `enqueue` inserts it inside the caller's
transaction and NOTIFYs `CHANNEL`, so idle workers wake when that transaction commits (the
LISTEN runs on a connection of its own, outside the pool, so closing the pool never waits
for it); they also poll every `poll_seconds`, for retries coming due and notifications lost
with a connection. A claim is one `UPDATE … WHERE job_id = (SELECT … FOR UPDATE SKIP LOCKED)`, so
workers on any number of nodes never take the same row. Claiming bumps `attempts` and leases
the job; the worker renews the lease while the handler runs. A `running` job whose lease has
passed belongs to a node that died, and is claimed again. Every write after the claim is
fenced by `attempts`: a worker that lost its lease cannot overwrite its successor's result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiohttp import web

from mediaserver.db import Executor

log = logging.getLogger(__name__)

CHANNEL = "mediaserver_jobs"
MAX_BACKOFF_SECONDS = 600.0
RELISTEN_SECONDS = 5.0  # between attempts to get the LISTEN connection back
_RELEASE_TIMEOUT = 5.0  # seconds a shutting-down worker spends handing its job back

ENQUEUE = """
INSERT INTO jobs (kind, subject_id, payload, max_attempts) VALUES ($1, $2, $3, $4)
RETURNING job_id
"""
NOTIFY = "SELECT pg_notify($1, $2)"
CLAIM = """
UPDATE jobs SET status = 'running', attempts = attempts + 1,
       lease_until = now() + make_interval(secs => $1), updated_at = now()
WHERE job_id = (
    SELECT job_id FROM jobs
    WHERE kind = ANY($2::text[])
      AND ((status = 'queued' AND run_after <= now())
           OR (status = 'running' AND lease_until < now()))
    ORDER BY run_after LIMIT 1
    FOR UPDATE SKIP LOCKED)
RETURNING job_id, kind, subject_id, payload, attempts, max_attempts
"""
# $1 job, $2 attempts (the fence): each returns "UPDATE 0" once another worker took over.
RENEW = """
UPDATE jobs SET lease_until = now() + make_interval(secs => $3), updated_at = now()
WHERE job_id = $1 AND attempts = $2 AND status = 'running'
"""
DONE = """
UPDATE jobs SET status = 'done', lease_until = NULL, updated_at = now()
WHERE job_id = $1 AND attempts = $2 AND status = 'running'
"""
RETRY = """
UPDATE jobs SET status = 'queued', lease_until = NULL, last_error = $3,
       run_after = now() + make_interval(secs => $4), updated_at = now()
WHERE job_id = $1 AND attempts = $2 AND status = 'running'
"""
FAIL = """
UPDATE jobs SET status = 'failed', lease_until = NULL, last_error = $3, updated_at = now()
WHERE job_id = $1 AND attempts = $2 AND status = 'running'
"""
# A clean shutdown interrupted the attempt: it does not count, and any node may run it now.
RELEASE = """
UPDATE jobs SET status = 'queued', lease_until = NULL, attempts = attempts - 1,
       run_after = now(), updated_at = now()
WHERE job_id = $1 AND attempts = $2 AND status = 'running'
"""


@dataclass(frozen=True, slots=True)
class Job:
    """One claimed run of a job; `attempts` counts this run (1 for the first)."""

    job_id: uuid.UUID
    kind: str
    subject_id: uuid.UUID
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


JobHandler = Callable[[Job], Awaitable[None]]
#: Opens the dedicated LISTEN connection, e.g. `functools.partial(asyncpg.connect, url)`.
Connect = Callable[[], Awaitable[asyncpg.Connection]]
#: Called once when a job has failed for good, with the reason (for the subject's status).
FailureHook = Callable[[Job, str], Awaitable[None]]


class PermanentJobError(Exception):
    """Raised by a handler when retrying cannot help: the job fails at once with this message."""


@dataclass(frozen=True, slots=True)
class _Kind:
    handler: JobHandler
    on_failed: FailureHook | None


def backoff_seconds(attempts: int, base: float, cap: float = MAX_BACKOFF_SECONDS) -> float:
    """Delay before the retry that follows failed attempt number `attempts` (1, 2, …)."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


class JobQueue:
    """Enqueues jobs and, once `start()`ed, runs them with at most `workers` at a time."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        listen: Connect | None = None,
        workers: int = 2,
        lease_seconds: float = 60.0,
        backoff_seconds: float = 2.0,
        poll_seconds: float = 1.0,
    ) -> None:
        """`listen` opens the connection that waits for NOTIFY; without it, workers poll."""
        self._pool = pool
        self._connect = listen
        self._workers = workers
        self._lease = lease_seconds
        self._backoff = backoff_seconds
        self._poll = poll_seconds
        self._kinds: dict[str, _Kind] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._wakeup = asyncio.Event()

    def register(
        self, kind: str, handler: JobHandler, on_failed: FailureHook | None = None
    ) -> None:
        """Run jobs of `kind` with `handler` on this node (replacing an earlier registration).

        The handler should be idempotent: after a crash, a job runs again from the start."""
        self._kinds[kind] = _Kind(handler, on_failed)

    async def enqueue(
        self,
        conn: Executor,
        kind: str,
        subject_id: uuid.UUID,
        payload: dict[str, Any] | None = None,
        *,
        max_attempts: int = 5,
    ) -> uuid.UUID:
        """Add a job within the caller's transaction on `conn` (a connection of the app's
        pool); workers see it, and are woken, when that transaction commits."""
        job_id: uuid.UUID = await conn.fetchval(
            ENQUEUE, kind, subject_id, payload or {}, max_attempts
        )
        await conn.execute(NOTIFY, CHANNEL, kind)
        return job_id

    async def start(self) -> None:
        """Listen for new jobs and start the workers (none when `workers` is 0)."""
        if self._workers == 0:
            return
        self._tasks = [
            asyncio.create_task(self._work(), name=f"job-worker-{n}") for n in range(self._workers)
        ]
        if self._connect is not None:
            self._tasks.append(asyncio.create_task(self._listen(), name="job-listener"))

    async def close(self) -> None:
        """Stop the workers; a job they were running goes back to the queue."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _listen(self) -> None:
        """Keep a connection LISTENing on `CHANNEL`, getting it back after it is lost."""
        while True:
            try:
                await self._listen_once()
            except Exception as exc:  # the supervisor: workers poll until it is back
                log.warning("not listening for new jobs: %r", exc)
            await asyncio.sleep(RELISTEN_SECONDS)

    async def _listen_once(self) -> None:
        assert self._connect is not None
        conn = await self._connect()
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _: lost.set())
            await conn.add_listener(CHANNEL, self._notified)
            self._notified()  # jobs may have come while nobody listened
            await lost.wait()
        finally:
            conn.terminate()  # a LISTEN-only connection: nothing to finish first

    def _notified(self, *_: Any) -> None:
        # Wake every idle worker: set the event they wait on, and give later waiters a new one.
        event, self._wakeup = self._wakeup, asyncio.Event()
        event.set()

    async def _work(self) -> None:
        while True:
            wakeup = self._wakeup  # taken before the claim, so a NOTIFY in between is not lost
            try:
                job = await self._claim()
            except Exception as exc:  # the supervisor: a worker outlives database outages
                log.warning("could not claim a job: %r", exc)
                job = None
            if job is None:
                # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that
                # lands as the event is set (gh-86296), and close() would wait forever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll):
                        await wakeup.wait()
                continue
            await self._run(job)

    async def _claim(self) -> Job | None:
        if not self._kinds:
            return None
        row = await self._pool.fetchrow(CLAIM, self._lease, list(self._kinds))
        return Job(**dict(row)) if row is not None else None

    async def _run(self, job: Job) -> None:
        kind = self._kinds[job.kind]
        if job.attempts > job.max_attempts:  # its last attempt's node died mid-run
            await self._fail(job, kind, f"gave up after {job.max_attempts} attempts")
            return
        renewing = asyncio.create_task(self._keep_leased(job))
        try:
            await kind.handler(job)
        except asyncio.CancelledError:
            await self._release(job)
            raise
        except PermanentJobError as exc:
            await self._fail(job, kind, str(exc))
        except Exception as exc:  # the supervisor: any handler failure is retried or recorded
            await self._retry_or_fail(job, kind, exc)
        else:
            await self._record(DONE, job)
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing

    async def _keep_leased(self, job: Job) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                status = await self._pool.execute(RENEW, job.job_id, job.attempts, self._lease)
            except Exception:  # the supervisor: keep trying until the lease runs out
                log.warning("could not renew a job lease", extra={"job_id": str(job.job_id)})
                continue
            if status == "UPDATE 0":
                log.warning("job lease lost to another worker", extra={"job_id": str(job.job_id)})

    async def _retry_or_fail(self, job: Job, kind: _Kind, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        extra = {"job_id": str(job.job_id), "kind": job.kind, "attempt": job.attempts}
        if job.attempts >= job.max_attempts:
            log.error("job failed for good", exc_info=exc, extra=extra)
            await self._fail(job, kind, error)
            return
        delay = backoff_seconds(job.attempts, self._backoff)
        log.warning("job failed; retrying in %.1f s", delay, exc_info=exc, extra=extra)
        await self._record(RETRY, job, error, delay)

    async def _fail(self, job: Job, kind: _Kind, error: str) -> None:
        if await self._record(FAIL, job, error) and kind.on_failed is not None:
            try:
                await kind.on_failed(job, error)
            except Exception:  # the supervisor: the job stays failed either way
                log.exception("on_failed hook raised", extra={"job_id": str(job.job_id)})

    async def _release(self, job: Job) -> None:
        try:
            async with asyncio.timeout(_RELEASE_TIMEOUT):
                await self._pool.execute(RELEASE, job.job_id, job.attempts)
        except Exception:  # shutting down: the lease expiry hands the job on instead
            log.warning("could not release a job", extra={"job_id": str(job.job_id)})

    async def _record(self, query: str, job: Job, *args: Any) -> bool:
        """Write an outcome; False when the lease was lost (another worker owns the job)."""
        try:
            status = await self._pool.execute(query, job.job_id, job.attempts, *args)
        except Exception:  # the supervisor: the lease expiry re-runs the job
            log.exception("could not record a job outcome", extra={"job_id": str(job.job_id)})
            return False
        return bool(status != "UPDATE 0")


#: The node's job queue; services register their kinds on it.
JOBS = web.AppKey("job_queue", JobQueue)
