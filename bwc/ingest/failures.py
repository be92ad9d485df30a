"""Failed files, retried or acknowledged (`bwc retry`, `bwc ack`).

A file the daemon could not take is an ingest job in state ``failed``, listed by `bwc status`
until a person acts on it:

- retried: the job goes back to ``discovered`` and is copied from the camera again, by the
  running daemon at its next rescan (or by the next daemon start, which resumes every
  unfinished job). Only while the camera is still docked (its dock session open) and the file
  still on it: a camera docked again has a new session, whose scan takes the file anew.
- acknowledged: a named person says why the failure is accepted (a corrupt file the officer
  confirms is junk); the job stays, in state ``acknowledged``, no longer listed as failed.

Each is a custody event (``ingest-retried``, ``failure-acknowledged``) in the same transaction
as the job's change. The daemon never touches a job in an end state, and the change is made
only if the job is still ``failed`` under the log's lock, so a retry cannot race a worker.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from sqlalchemy import update
from sqlmodel import Session, col, select

from bwc.errors import InputError, NotFoundError, UsageError
from bwc.evidence import custody
from bwc.evidence.manifest import encode_path
from bwc.evidence.models import DockSession, IngestJob
from bwc.evidence.station import Station
from bwc.ingest import source
from bwc.ingest.discover import display

# the events of a person's answer to a failure (docs/events.md)
Kind = Literal["ingest-retried", "failure-acknowledged"]
RETRIED: Final = "ingest-retried"
ACKNOWLEDGED: Final = "failure-acknowledged"
ACK_STATE = "acknowledged"


@dataclass(frozen=True)
class Done:
    """A job retried or acknowledged, or (``ok`` False) one ``--all`` could not retry."""

    job: int
    session: int
    path: str
    ok: bool
    detail: str


def find_failed(s: Session, station_id: str, target: str) -> IngestJob:
    """The failed job that ``target`` names: a job id, or a file as `bwc status` shows it (its
    path on the camera, or the full path under the dock). NotFoundError when none or several
    jobs match; UsageError when the job matched is not failed (its state said)."""
    jobs: list[IngestJob] = []
    if target.isdigit():
        job = s.get(IngestJob, int(target))
        if job is not None and job.station_id == station_id:
            jobs = [job]
    if not jobs:
        raw = os.fsencode(target)
        named = (col(IngestJob.rel) == raw) | (col(IngestJob.path) == raw)
        # among the failed first (the state's index); any job only to say why not
        jobs = list(
            s.exec(
                select(IngestJob)
                .where(IngestJob.station_id == station_id)
                .where(IngestJob.state == "failed")
                .where(named)
                .order_by(col(IngestJob.id))
            )
        ) or list(
            s.exec(
                select(IngestJob)
                .where(IngestJob.station_id == station_id)
                .where(named)
                .order_by(col(IngestJob.id).desc())
                .limit(1)
            )
        )
    if not jobs:
        raise NotFoundError(
            f"no file {display(os.fsencode(target))} (or job id) at this station",
            hint="name it as `bwc status` shows it, or by its job id; nothing was changed",
        )
    failed = [j for j in jobs if j.state == "failed"]
    if len(failed) > 1:
        ids = ", ".join(str(j.id) for j in failed)
        raise NotFoundError(
            f"{display(os.fsencode(target))} names {len(failed)} failed files (jobs {ids}), "
            "from different cameras",
            hint="name one by its job id (`bwc status --json` shows them); nothing was changed",
        )
    if not failed:
        last = jobs[-1]
        raise UsageError(
            f"{display(last.rel)} (job {last.id}) is {last.state}, not failed",
            hint="only a failed file can be retried or acknowledged; nothing was changed",
        )
    return failed[0]


def failed_jobs(s: Session, station_id: str) -> list[IngestJob]:
    return list(
        s.exec(
            select(IngestJob)
            .where(IngestJob.station_id == station_id)
            .where(IngestJob.state == "failed")
            .order_by(col(IngestJob.id))
        )
    )


def not_retryable(sess: DockSession | None, job: IngestJob) -> str | None:
    """Why the file cannot be taken again from where it was found, or None."""
    if sess is None or sess.closed_at is not None:
        return (
            "the camera was undocked since; dock it again and its files are taken again "
            "(a failure that stays can be acknowledged: `bwc ack`)"
        )
    if not os.path.isdir(sess.mount) or not source.lexists(sess.mount, job.rel):
        return "the file is no longer on the camera"
    return None


def _change(
    station: Station, job_id: int, state: str, kind: Kind, reason: str | None
) -> IngestJob | None:
    """Set a job that is still failed to ``state`` and log ``kind``, in one transaction under
    the log's lock; None (nothing changed) when it is no longer failed."""
    now = station.clock.now()
    with station.session() as s:
        custody.lock_head(s)
        job = s.get(IngestJob, job_id)
        if job is None or job.state != "failed":
            return None
        sess = s.get(DockSession, job.session_id)
        values: dict[str, object] = {"state": state, "updated_at": now}
        if state == "discovered":
            # copied from the camera again: nothing staged before is trusted
            values |= {"reason": None, "next_try": None, "attempts": 0, "outcome": None}
        details: dict[str, object] = {
            "job": job_id,
            "dock_session": job.session_id,
            "path": encode_path(job.rel)[0],
            "device_id": sess.device_id if sess else None,
            "failure": job.reason,
        }
        if reason is not None:
            details["reason"] = reason
        s.expunge(job)  # the row as it failed, for the caller
        # only if still failed: the row is never changed under a worker that took it
        changed = s.execute(
            update(IngestJob)
            .where(col(IngestJob.id) == job_id)
            .where(col(IngestJob.state) == "failed")
            .values(**values)
        )
        if getattr(changed, "rowcount", 1) != 1:
            return None
        custody.append_events(s, [station.event(kind, None, **details)])
    return job


def retry(station: Station, targets: Sequence[str], *, all_: bool = False) -> list[Done]:
    """Put failed jobs back to be copied again. Named files: each must be failed and still
    on its docked camera, else an error and nothing changed. ``all_``: every failed job that
    can be, and one not-ok ``Done`` for each that cannot."""
    with station.session(snapshot=True) as s:
        if all_:
            jobs = failed_jobs(s, station.station_id)
        else:
            named = [find_failed(s, station.station_id, t) for t in targets]
            jobs = list({j.id: j for j in named}.values())  # a file named twice: once
        sessions = {j.session_id: s.get(DockSession, j.session_id) for j in jobs}
    # every named file is checked before any is changed
    done: list[Done] = []
    todo: list[IngestJob] = []
    for j in jobs:
        why = not_retryable(sessions[j.session_id], j)
        if why is None:
            todo.append(j)
        elif all_:
            done.append(_done(j, False, why))
        else:
            raise InputError(
                f"cannot retry {display(j.rel)} (job {j.id}): {why}",
                hint="nothing was changed",
            )
    for j in todo:
        assert j.id is not None
        changed = _change(station, j.id, "discovered", RETRIED, None)
        if changed is None:
            done.append(_done(j, False, "no longer failed (changed meanwhile)"))
        else:
            done.append(_done(j, True, "queued to be copied again"))
    return sorted(done, key=lambda d: d.job)


def acknowledge(station: Station, target: str, reason: str) -> Done:
    """Mark a failed job acknowledged, with the reason, logged; the job is kept."""
    with station.session(snapshot=True) as s:
        job = find_failed(s, station.station_id, target)
    assert job.id is not None
    changed = _change(station, job.id, ACK_STATE, ACKNOWLEDGED, reason)
    if changed is None:
        raise UsageError(
            f"{display(job.rel)} (job {job.id}) is no longer failed (changed meanwhile)",
            hint="see `bwc status`; nothing was changed",
        )
    return _done(job, True, "acknowledged")


def _done(job: IngestJob, ok: bool, detail: str) -> Done:
    assert job.id is not None
    return Done(job=job.id, session=job.session_id, path=os.fsdecode(job.rel), ok=ok, detail=detail)
