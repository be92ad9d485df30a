"""A station: the settings, catalog, store, clock, actor and signing key wired together.

``init_home`` creates a home; ``Station.open`` opens one. Commands in ``cli`` work through a
Station; nothing below it reads the environment.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from bwc.config.settings import CONFIG_NAME, Settings, load_settings, render_default_config
from bwc.errors import (
    BwcError,
    HomeError,
    KeyMaterialError,
    NoteError,
    NotFoundError,
)
from bwc.evidence import custody, keys, note, stamps
from bwc.evidence.db import READ_ONLY_SNAPSHOT, check_schema, failure, make_engine, migrate
from bwc.evidence.models import Event, SigningKey
from bwc.evidence.signing import Ed25519Signer
from bwc.evidence.stores import ObjectStore, open_store
from bwc.evidence.timefmt import Clock, SystemClock, format_utc
from bwc.evidence.tlog import TILE_WIDTH, Tile, superseded, tile_width, tiles_of
from bwc.fsutil import (
    PRIVATE_DIR,
    PRIVATE_FILE,
    SHARED_DIR,
    SHARED_FILE,
    fsync_dir,
    make_dir,
    tighten,
    write_atomic,
)

logger = logging.getLogger(__name__)

# Rounds of "publish, then publish the catalog's newer checkpoint if there is one": each round
# follows another station's checkpoint signed meanwhile; stations sign a few a minute each.
PUBLISH_ROUNDS = 10


@dataclass
class Station:
    settings: Settings
    engine: Engine
    store: ObjectStore
    actor: str
    clock: Clock = field(default_factory=SystemClock)
    passphrase: bytes | None = None
    _signer: Ed25519Signer | None = None

    @classmethod
    def open(
        cls,
        home: Path,
        *,
        actor: str,
        passphrase: bytes | None,
        clock: Clock | None = None,
        settings: Settings | None = None,
    ) -> Station:
        """Open the station at ``home``; ``settings``: already loaded from it (else loaded)."""
        settings = settings or load_settings(home)
        engine = make_engine(settings.catalog, settings.catalog_wait_seconds)
        check_schema(engine)
        return cls.wire(settings, engine, actor=actor, passphrase=passphrase, clock=clock)

    @classmethod
    def wire(
        cls,
        settings: Settings,
        engine: Engine,
        *,
        actor: str,
        passphrase: bytes | None,
        clock: Clock | None,
    ) -> Station:
        """The parts put together: the store opened from the settings, the clock."""
        clock = clock or SystemClock()
        store = open_store(settings.store, settings, clock)
        return cls(settings, engine, store, actor, clock, passphrase)

    @property
    def station_id(self) -> str:
        return self.settings.station_id

    def signer(self) -> Ed25519Signer:
        """The active signing key, loaded (and decrypted) on first use only. Every command
        that signs opens it here before it changes anything, so a key the catalog does not
        know is refused before it signs (KeyMaterialError)."""
        if self._signer is None:
            key_id = keys.active_key_id(self.settings.keys_dir)
            signer = keys.load_signer(self.settings.keys_dir, key_id, self.passphrase)
            self._check_registered(signer)
            self._signer = signer
        return self._signer

    def _check_registered(self, signer: Ed25519Signer) -> None:
        """Refuse a key that is not this station's registered key: its signatures and
        checkpoints would verify against no key the log announced, for good."""
        with self.session(snapshot=True) as s:
            row = s.get(SigningKey, signer.key_id)
            registered = (row.station_id, bytes(row.public_key)) if row is not None else None
            retired = row.retired_at if row is not None else None
        path = self.settings.keys_dir / "active"
        if registered == (self.station_id, signer.public_key):
            if retired is None:
                return
            # a keys folder restored from before a rotation: the retired key (rotated away,
            # perhaps because it leaked) must not sign again
            raise KeyMaterialError(
                f"the active signing key {signer.key_id} ({path}) was retired at "
                f"{format_utc(retired)} by `bwc keys rotate`: nothing was signed or changed",
                hint=f"run `bwc keys list` for the station's current key, and restore {path} "
                "and that key's .pem file from the station's backup",
            )
        why = (
            "is not registered in the catalog"
            if registered is None
            else f"is registered for station {registered[0]!r}, not {self.station_id!r}"
            if registered[0] != self.station_id
            else "does not match the public key the catalog registered under its id"
        )
        raise KeyMaterialError(
            f"the active signing key {signer.key_id} ({path}) {why}: nothing was signed or "
            "changed, since what it signs could never be verified",
            hint=f"run `bwc keys list` for the keys this catalog knows, and restore {path} and "
            "that key's .pem file from the station's backup",
        )

    @contextmanager
    def session(self, *, snapshot: bool = False) -> Iterator[Session]:
        """One transaction: committed when the block ends normally, rolled back otherwise.
        ``snapshot``: a read-only one in which every read sees one consistent state of the
        catalog even while other stations append (PostgreSQL REPEATABLE READ; SQLite a
        deferred transaction in WAL mode), and which never holds the write lock."""
        bind = self.engine
        if snapshot and self.engine.dialect.name == "postgresql":
            bind = self.engine.execution_options(isolation_level="REPEATABLE READ")
        elif snapshot:
            bind = self.engine.execution_options(**{READ_ONLY_SNAPSHOT: True})
        try:
            with Session(bind, expire_on_commit=False) as s, s.begin():
                yield s
        except SQLAlchemyError as e:
            # rolled back: say what happened (a full disk, a duplicate, damage) and what to do
            raise failure(self.engine, e) from e

    def event(self, kind: str, item: str | None = None, **details: object) -> custody.NewEvent:
        return custody.NewEvent(
            kind=kind,
            at=self.clock.now(),
            actor=self.actor,
            station_id=self.station_id,
            item_sha256=item,
            details=dict(details),
        )

    def checkpoint(self) -> str:
        """Sign the log as it stands, store the note in the catalog, publish the log's new
        tiles in the store, then the note beside them (readers fetch the note first). With a
        TSA configured, then ask it once for the checkpoint's timestamp: a TSA that does not
        answer leaves it pending (fetched later), never fails the checkpoint."""
        signer = self.signer()
        tsa = self.settings.timestamp
        with self.session() as s:
            row = custody.make_checkpoint(s, signer, self.station_id, self.clock.now())
            if tsa.enabled:
                stamps.mark_pending(s, row, tsa.tsa_url, self.clock.now())
            note_text, size, cp_id = row.note, row.size, row.id
        self.publish(size, note_text)
        if tsa.enabled:
            try:
                done = self.fetch_timestamps(only=cp_id)
                if done.error:
                    logger.warning(
                        "checkpoint %s published without its timestamp: %s", size, done.error
                    )
            except BwcError as e:  # an unusable ca_file: said, and `bwc status` counts it
                logger.warning("checkpoint %s published without its timestamp: %s", size, e)
        return note_text

    def fetch_timestamps(self, *, only: int | None = None) -> stamps.FetchResult:
        """Fetch pending checkpoint timestamps now (``only``: that checkpoint's)."""
        return stamps.fetch_pending(
            self.session, self.store, self.settings, self.clock.now, only=only
        )

    def publish(
        self,
        size: int,
        note_text: str,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Bring the store's copy of the log (C2SP tlog-tiles under log/) to ``size`` and
        put ``note_text`` as its checkpoint, unless the store already holds a newer one
        (another station's). Returns how many files were written.

        Stations sharing a store race here, and the store has no compare-and-swap: a slow
        station can overwrite a newer checkpoint with its older one. So after each put the
        station looks at the catalog's latest checkpoint and, if it is newer than what it
        put, publishes that one too: whoever wrote last has then left the newest there."""
        written = 0
        for _ in range(PUBLISH_ROUNDS):
            written += self._publish_one(size, note_text, progress)
            with self.session(snapshot=True) as s:
                latest = custody.latest_checkpoint(s)
            if latest is None or latest.size <= size:
                break
            size, note_text, progress = latest.size, latest.note, None
        return written

    def _publish_one(
        self, size: int, note_text: str, progress: Callable[[int, int], None] | None
    ) -> int:
        since = self._published_size(self.store.get_checkpoint())
        if since >= size:
            return 0
        written = 0
        stale = []
        with self.session(snapshot=True) as s:
            todo = tiles_of(size, since=since, entries=True)
            for n, tile in enumerate(todo, 1):
                self.store.put_log(tile.path, custody.tile_bytes(s, tile), final=tile.full)
                written += 1
                old = superseded(tile, since)
                if old is not None:
                    stale.append(old.path)
                if progress is not None:
                    progress(n, len(todo))
        self.store.put_checkpoint(note_text)
        # Only now: a reader holding the older checkpoint could still be fetching them.
        for path in stale:
            self.store.delete_log(path)
        return written + 1

    @staticmethod
    def _checkpoint_size(text: str | None) -> int:
        try:
            return note.unverified_checkpoint(text).size if text else 0
        except NoteError:
            return 0

    def _published_size(self, stored: str | None) -> int:
        """The size up to which the store holds the log: its checkpoint's, if the tiles for
        it are there too (a store written before tiles were published holds none)."""
        size = self._checkpoint_size(stored)
        if size == 0:
            return 0
        last = Tile(0, (size - 1) // TILE_WIDTH, tile_width(size, 0, (size - 1) // TILE_WIDTH))
        return size if self.store.get_log(last.path) is not None else 0

    # -- keys

    def rotate_key(self) -> tuple[str, str]:
        """Make a new signing key that signs from now on (old keys stay valid for what they
        signed); announce it in the log and sign a checkpoint with it. (old id, new id)"""
        old = self.signer()
        new = keys.generate_key(self.settings.keys_dir, self.passphrase)
        register_key(self, new, previous=old.key_id)
        keys.set_active(self.settings.keys_dir, new.key_id)
        self._signer = new
        self.checkpoint()
        return old.key_id, new.key_id

    def key_list(self) -> list[KeyView]:
        """Every signing key the catalog knows, oldest first."""
        active = keys.active_key_id(self.settings.keys_dir)
        with self.session(snapshot=True) as s:
            rows = list(s.exec(select(SigningKey).order_by(col(SigningKey.created_at))))
        return [
            KeyView(
                key_id=k.key_id,
                station_id=k.station_id,
                public_key=k.public_key,
                created_at=k.created_at,
                retired_at=k.retired_at,
                active=k.key_id == active and k.station_id == self.station_id,
            )
            for k in rows
        ]

    def public_key(self, key_id: str | None = None) -> bytes:
        """A key's public half (default: the active key's), from the catalog."""
        kid = key_id or keys.active_key_id(self.settings.keys_dir)
        with self.session(snapshot=True) as s:
            row = s.get(SigningKey, kid)
        if row is None:
            raise NotFoundError(f"no signing key {kid}", hint="see `bwc keys list`")
        return row.public_key

    # -- the log

    def log_events(self) -> Iterator[Event]:
        """Every custody event in index order, read a batch at a time."""
        last = -1
        while True:
            with self.session(snapshot=True) as s:  # readers never take the write lock
                rows = list(
                    s.exec(
                        select(Event)
                        .where(col(Event.idx) > last)
                        .order_by(col(Event.idx))
                        .limit(5000)
                    )
                )
            if not rows:
                return
            yield from rows
            last = rows[-1].idx


@dataclass(frozen=True)
class KeyView:
    key_id: str
    station_id: str
    public_key: bytes
    created_at: datetime
    retired_at: datetime | None
    active: bool


def init_home(
    home: Path,
    *,
    station_id: str | None,
    passphrase: bytes | None,
    actor: str,
    clock: Clock | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Station, bool, list[str]]:
    """Create (or finish creating) a home. Idempotent: an existing home is migrated (the
    log's tiles built once, ``progress(done, total)`` on the way), its key kept, and what
    other users could read in it made private (listed). Returns the station, whether a new
    key was made, and the permissions tightened."""
    clock = clock or SystemClock()
    make_dir(home, PRIVATE_DIR, parents=True)
    cfg = home / CONFIG_NAME
    if not cfg.exists():
        sid = station_id or f"station-{secrets.token_hex(4)}"
        write_atomic(cfg, render_default_config(sid).encode("utf-8"), mode=PRIVATE_FILE)
    elif station_id:
        current = load_settings(home).station_id
        if current != station_id:
            raise HomeError(
                f"{home} is already initialised as station {current!r}",
                hint="use another --home, or edit station_id in bwc.toml",
            )
    settings = load_settings(home)
    for sub in ("keys", "spool"):
        make_dir(home / sub, PRIVATE_DIR)
    catalog_file = _sqlite_file(settings.catalog)
    if catalog_file is not None and not catalog_file.exists():
        # SQLite creates its file (and the -wal and -shm beside it, with the file's mode)
        # readable by everyone unless it is there already, private
        make_dir(catalog_file.parent, PRIVATE_DIR, parents=True)
        os.close(os.open(catalog_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
        # its name made durable (SQLite syncs the file's bytes, never its folder entry)
        fsync_dir(catalog_file.parent)
    tightened = secure_home(settings)
    engine = make_engine(settings.catalog, settings.catalog_wait_seconds)
    migrate(engine)
    station = Station.wire(settings, engine, actor=actor, passphrase=passphrase, clock=clock)
    station.store.create()
    with station.session() as s:
        custody.ensure_origin(s, settings.log_origin)
    with station.session() as s:
        custody.build_tiles(s, progress)
    created = False
    keys_dir = settings.keys_dir
    if not (keys_dir / "active").exists():
        signer = keys.generate_key(keys_dir, passphrase)
        register_key(station, signer, previous=None)
        keys.set_active(keys_dir, signer.key_id)
        station._signer = signer
        station.checkpoint()
        created = True
    else:
        # a store written before tiles were published gets the whole log, once
        with station.session() as s:
            latest = custody.latest_checkpoint(s)
        if latest is not None:
            station.publish(latest.size, latest.note, progress)
    return station, created, tightened


def _sqlite_file(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def secure_home(settings: Settings) -> list[str]:
    """Take from other users what they could read in a home made by an older bwc or under
    a loose umask: the home, config, keys, spool and catalog private (0700 folders, 0600
    files), a local store's evidence its owner's and group's only (0750 folders, 0440
    objects). Returns one line per path changed: "path: 0755 -> 0700"."""
    changed: list[str] = []

    def fix(path: Path, mode: int) -> None:
        old = tighten(path, mode)
        if old is not None:
            new = old & mode
            changed.append(f"{path}: {old:04o} -> {new:04o}")

    def tree(root: Path, dir_mode: int, file_mode: int) -> None:
        for dirpath, dirs, files in os.walk(root):
            fix(Path(dirpath), dir_mode)
            for name in files:
                p = Path(dirpath) / name
                if not p.is_symlink():
                    fix(p, file_mode)
            dirs[:] = [d for d in dirs if not (Path(dirpath) / d).is_symlink()]

    home = settings.home
    store: Path | None = None
    if settings.store.startswith("file:"):
        store = Path(unquote(urlparse(settings.store).path))
    fix(home, PRIVATE_DIR)
    for name in os.listdir(home):
        p = home / name
        if p.is_symlink() or p == store:  # the local store has its own modes, below
            continue
        if p.is_dir():
            tree(p, PRIVATE_DIR, PRIVATE_FILE)
        else:
            fix(p, PRIVATE_FILE)  # config, catalog (-wal, -shm), heartbeat, trust, locks
    catalog_file = _sqlite_file(settings.catalog)
    if catalog_file is not None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            fix(catalog_file.with_name(catalog_file.name + suffix), PRIVATE_FILE)
    if store is not None and store.is_dir():
        tree(store, SHARED_DIR, SHARED_FILE)  # read-only objects stay so: 0440
    return changed


def register_key(station: Station, signer: Ed25519Signer, previous: str | None) -> None:
    """Record a new public key in the catalog and announce it in the log (key-rotated), so a
    key later removed from or swapped in the catalog is detected by `bwc log verify`."""
    now = station.clock.now()
    with station.session() as s:
        if previous is not None:
            old = s.get(SigningKey, previous)
            if old is not None and old.retired_at is None:
                old.retired_at = now
                s.add(old)
        (announced,) = custody.append_events(
            s,
            [
                station.event(
                    "key-rotated",
                    previous_key_id=previous,
                    key_id=signer.key_id,
                    public_key=custody.b64(signer.public_key),
                )
            ],
        )
        s.add(
            SigningKey(
                key_id=signer.key_id,
                station_id=station.station_id,
                public_key=signer.public_key,
                created_at=now,
                announced_idx=announced.idx,
            )
        )
