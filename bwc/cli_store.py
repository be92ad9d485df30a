"""`bwc` commands for the store part (registered on the main app by `bwc.cli`): the store
check, retention classes, legal holds and deletion by policy. Parsing and printing only; the
work is in `bwc.evidence.lifecycle`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from bwc.cli_common import ctx, err, esc, esc_msg, out, print_json
from bwc.errors import StoreError, VerificationError
from bwc.evidence.timefmt import format_utc

store_app = typer.Typer(help="The evidence store.", no_args_is_help=True)
retention_app = typer.Typer(
    help="Retention classes, and deletion of footage past retention.", no_args_is_help=True
)

IdArg = Annotated[str, typer.Argument(metavar="ID", help="sha256 or a unique 8+ digit prefix.")]
ReasonOpt = Annotated[
    str, typer.Option("--reason", help="Why (recorded in the custody log). Required.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print as JSON.")]


@store_app.command("check")
def store_check(
    require_lock: Annotated[
        bool,
        typer.Option(
            "--require-lock", help="Exit 7 unless the store enforces retention (Object Lock)."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """What the store offers for evidence: versioning, Object Lock, encryption; and whether
    it agrees with the catalog.

    Says in plain words what that means for evidence. Lists every object the catalog does
    not know (an orphan: a commit that failed after the store write; nothing is deleted)
    and a published checkpoint older than this station's latest (a rollback): exit 1 for
    either. Exit 7 when the store cannot be reached."""
    from bwc.evidence import orphans

    station = ctx().station()
    info = station.store.describe()
    with station.session(snapshot=True) as s:
        rollback = orphans.store_checkpoint_problem(station, s)
        found = list(orphans.find(station, s, station.settings.orphan_grace_seconds))
    if as_json:
        print_json(
            info.__dict__
            | {
                "notes": list(info.notes),
                "orphans": [{"sha256": o.sha256, "written": format_utc(o.written)} for o in found],
                "checkpoint_problem": rollback,
            }
        )
    else:
        out.print(f"[bold]store[/] {esc(info.url)} ({info.kind})")
        if info.kind != "local":
            # as the S3 server answered: its text, shown escaped
            out.print(f"  versioning         {esc(info.versioning or 'off')}")
            out.print(f"  object lock        {'on' if info.object_lock else 'off'}")
            out.print(f"  default retention  {esc(info.default_retention or 'none')}")
            out.print(f"  encryption         {esc(info.encryption or 'none configured')}")
        for note in info.notes:
            out.print(f"- {esc_msg(note)}")
        for o in found:
            out.print(
                f"[red]ORPHAN[/] {o.sha256}: in the store (written {format_utc(o.written)}) "
                "but not in the catalog; nothing was deleted"
            )
        if rollback:
            out.print(f"[red]CHECKPOINT[/] {esc_msg(rollback)}")
        if not found and not rollback:
            out.print("every object in the store is in the catalog; its checkpoint is current")
    if rollback:
        raise VerificationError(rollback)
    if found:
        raise VerificationError(
            f"{len(found)} objects in the store are not in the catalog (first: {found[0].sha256})",
            hint="a commit failed after the store write, or they were put there by someone "
            "else; nothing was deleted",
        )
    if require_lock and not info.object_lock:
        raise StoreError(
            f"{info.url} does not enforce retention (no Object Lock)",
            hint="use a bucket created with Object Lock",
        )


def classify(
    item_id: IdArg,
    class_name: Annotated[
        str, typer.Option("--class", help="Retention class (retention.classes in bwc.toml).")
    ],
    reason: ReasonOpt,
    case: Annotated[
        str | None, typer.Option("--case", help="Link to an enforcement case id.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Allow a class that shortens retention (logged).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Set an item's retention class and case (only ever longer, unless --force).

    The store's Object Lock is extended to match, never shortened; logged as a custody
    event (retention-changed) with the reason."""
    from bwc.evidence import lifecycle

    res = lifecycle.classify(
        ctx().station(), item_id, class_name, case_id=case, reason=reason, force=force
    )
    if as_json:
        print_json({"sha256": res.sha256, "store_enforced": res.store_enforced, **res.details})
    else:
        out.print(esc_msg(res.message))


def hold(item_id: IdArg, reason: ReasonOpt, as_json: JsonOpt = False) -> None:
    """Place an item on legal hold: never deleted while held.

    Where the store has Object Lock, the hold is also placed on the stored objects."""
    from bwc.evidence import lifecycle

    res = lifecycle.place_hold(ctx().station(), item_id, reason)
    if as_json:
        print_json({"sha256": res.sha256, "store_enforced": res.store_enforced, "held": True})
    else:
        out.print(esc_msg(res.message))


def release(item_id: IdArg, reason: ReasonOpt, as_json: JsonOpt = False) -> None:
    """Release an item's legal hold; its retention class applies again."""
    from bwc.evidence import lifecycle

    res = lifecycle.release_hold(ctx().station(), item_id, reason)
    if as_json:
        print_json({"sha256": res.sha256, "store_enforced": res.store_enforced, "held": False})
    else:
        out.print(esc_msg(res.message))


@retention_app.command("apply")
def retention_apply(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be done, and why; change nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete footage past retention and not on hold; extend permanent locks.

    Every stored version is deleted; the catalog keeps the record, marked
    deleted-by-policy, with its sha256, and each deletion is a custody event."""
    from bwc.evidence import lifecycle

    rep = lifecycle.apply(ctx().station(), dry_run=dry_run)
    if as_json:
        print_json(
            {
                "now": format_utc(rep.now),
                "dry_run": rep.dry_run,
                "store_locks": rep.store_locks,
                "entries": [_entry_json(e) for e in rep.entries],
                "log_problems": rep.log_problems,
            }
        )
    else:
        if rep.log_problems:
            err.print(
                f"[yellow]warning:[/] the custody log fails verification: {rep.log_problems[0]}"
            )
        for e in rep.entries:
            # one line per item, full id: the dry run is a list to check before deleting
            extra = f" ({e.detail})" if e.detail else ""
            out.print(f"{e.status:<13} {e.decision.sha256}  {esc_msg(e.decision.reason + extra)}")
        if dry_run:
            out.print(
                f"dry run at {format_utc(rep.now)}: {rep.count('would-delete')} would be "
                f"deleted, {rep.count('would-extend')} locks would be extended, "
                f"{rep.count('kept')} past retention kept on hold; nothing was changed"
            )
        else:
            out.print(
                f"{rep.count('deleted')} deleted, {rep.count('extended')} locks extended, "
                f"{rep.count('kept')} kept on hold, {len(rep.failures)} not done"
            )
    bad = rep.unverified
    if bad:
        done = (
            "nothing was changed (dry run)"
            if dry_run
            else f"the other items were processed ({rep.count('deleted')} deleted, "
            f"{rep.count('extended')} locks extended)"
        )
        raise VerificationError(
            f"{len(bad)} item(s) not deleted because the catalog does not match what was "
            f"signed and logged; first: {bad[0].decision.sha256[:16]}: {bad[0].detail}; {done}",
            hint="see the list above; `bwc verify ID` shows every check of an item",
        )
    if rep.failures:
        first = rep.failures[0]
        raise StoreError(
            f"{len(rep.failures)} item(s) were not deleted or extended: "
            f"{first.decision.sha256[:16]}: {first.detail}",
            hint="see the list above; nothing else was changed for them",
        )


def _entry_json(e: Any) -> dict[str, Any]:
    d = e.decision
    return {
        "sha256": d.sha256,
        "status": e.status,
        "action": d.action,
        "class": d.class_name,
        "retain_until": format_utc(d.retain_until) if d.retain_until else "permanent",
        "lock_until": format_utc(d.lock_until) if d.lock_until else None,
        "reason": d.reason,
        "detail": e.detail,
    }


@retention_app.command("show")
def retention_show(item_id: IdArg, as_json: JsonOpt = False) -> None:
    """An item's retention class, date, case, hold and the store's own lock."""
    from bwc.evidence import lifecycle

    st = lifecycle.status(ctx().station(), item_id)
    if as_json:
        print_json(st)
        return
    out.print(f"[bold]retention of {st['sha256']}[/]")
    hold_ = st["legal_hold"]
    rows = [
        ("class", st["class"] + ("" if st["classified"] else " (default)")),
        ("case", st["case"] or "-"),
        ("kept until", st["retain_until"]),
        ("state", st["state"] + (f" at {st['deleted_at']}" if st["deleted_at"] else "")),
        (
            "legal hold",
            f"since {hold_['placed_at']} by {hold_['placed_by']}: {hold_['reason']}"
            if hold_
            else "none",
        ),
        ("store lock", st["store_lock_until"] or "none (catalog only)"),
        ("store hold", "on" if st["store_legal_hold"] else "off"),
        ("custody log", "agrees" if st["matches_log"] else "DIFFERS from the catalog"),
    ]
    for k, v in rows:
        out.print(f"  {k:<12} {esc_msg(str(v))}")
    if not st["matches_log"]:
        raise VerificationError(
            f"the catalog retention of {st['sha256'][:16]} differs from its custody events"
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(store_app, name="store")
    app.add_typer(retention_app, name="retention")
    app.command("classify")(classify)
    app.command("hold")(hold)
    app.command("release")(release)
