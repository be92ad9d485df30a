"""The fault trials' tally: every kill -9 and power-loss trial records what it did (kills,
files, the daemon's state at each kill) and what it found (files lost, files duplicated);
the conftest prints the totals at the end of the session (``make torture`` shows them).

Trials may run in several xdist workers: each appends one JSON line a trial to the file
named by PYTEST_BWC_TALLY, which the controlling process made and reads at the end."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ENV = "PYTEST_BWC_TALLY"  # not BWC_*: the tests' autouse fixture removes those

# the kinds of trial, in the order printed
KINDS = ("kill -9", "power loss")
# where a kill can land: before the catalog shows any job, in a job's state, after all
STATES = (
    "start-up",
    "discovered",
    "staged",
    "signed",
    "stored",
    "verified",
    "committed",
    "released",
)
_PIPELINE = STATES[1:7]


def kill_state(states: Counter[str] | dict[str, int] | None) -> str:
    """Name the daemon's state at a kill from its jobs' states: the furthest pipeline state
    any unfinished job was in, "released" once every job has ended, "start-up" before any."""
    if not states or not sum(states.values()):
        return "start-up"
    for state in reversed(_PIPELINE):
        if states.get(state, 0):
            return state
    return "released"


@dataclass
class Totals:
    trials: int = 0
    kills: int = 0
    files: int = 0
    lost: int = 0
    duplicated: int = 0
    by_state: Counter[str] = field(default_factory=Counter)

    def line(self, kind: str) -> str:
        states = ", ".join(f"{s} {self.by_state[s]}" for s in STATES if self.by_state[s])
        extra = sorted(set(self.by_state) - set(STATES))
        states += "".join(f", {s} {self.by_state[s]}" for s in extra)
        return (
            f"{kind} trials: {self.trials} trials, {self.kills} kills, {self.files} files, "
            f"lost {self.lost}, duplicated {self.duplicated}, kills by state: {states or '-'}"
        )


def record(kind: str, *, files: int, kills: Iterable[str], lost: int, duplicated: int) -> None:
    """One trial: ``kills`` names the state at each kill (``kill_state``)."""
    path = os.environ.get(ENV)
    if not path:
        return  # not run under the conftest (a single file run by hand without it)
    line = json.dumps(
        {"kind": kind, "files": files, "kills": list(kills), "lost": lost, "dup": duplicated}
    )
    with open(path, "a", encoding="utf-8") as f:  # one short line: appended whole
        f.write(line + "\n")


def totals(path: Path) -> dict[str, Totals]:
    out: dict[str, Totals] = {}
    try:
        lines = path.read_text("utf-8").splitlines()
    except FileNotFoundError:
        return out
    for raw in lines:
        r = json.loads(raw)
        t = out.setdefault(r["kind"], Totals())
        t.trials += 1
        t.kills += len(r["kills"])
        t.files += r["files"]
        t.lost += r["lost"]
        t.duplicated += r["dup"]
        t.by_state.update(r["kills"])
    return out


def summary(path: Path) -> list[str]:
    found = totals(path)
    return [found[k].line(k) for k in (*KINDS, *sorted(set(found) - set(KINDS))) if k in found]
