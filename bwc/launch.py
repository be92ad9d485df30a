"""The `bwc` console script: tunes the garbage collector while a command's code loads, then
runs the CLI (``bwc.cli.entry``).

Loading a command's code (typer, pydantic, SQLAlchemy, the AWS SDK: ~90,000 objects, none of
them garbage) makes Python's cyclic collector scan the growing heap some 200 times, ~8% of a
command's start. Until ``loaded`` is called (the station is open), a collection runs only
every 100,000 allocations instead of 700; then what was loaded is frozen (never scanned
again) and the usual thresholds return. Nothing is switched off: a command that never calls
``loaded`` still collects, only less often.
"""

from __future__ import annotations

import gc

_USUAL = gc.get_threshold()
_LOADING = (100_000, 10, 10)
_state = {"loading": False}


def entry() -> None:
    gc.set_threshold(*_LOADING)
    _state["loading"] = True
    from bwc import cli, cli_common

    cli_common.station_opened.append(lambda: loaded())  # looked up when called
    cli.entry()


def loaded() -> None:
    """The command's code is loaded: freeze it and collect as usual from now on. Does nothing
    unless the process was started by ``entry`` (tests call the CLI in one long process,
    where freezing would keep garbage alive)."""
    if _state["loading"]:
        _state["loading"] = False
        gc.freeze()
        gc.set_threshold(*_USUAL)
