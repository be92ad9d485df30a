"""RFC 3161 timestamps (issue 14, item 5): requests to a real local TSA (`openssl ts -reply`
over HTTP on 127.0.0.1), tokens checked by bwc and by `openssl ts -verify`, every kind of bad
token named, and checkpoints that never wait for a TSA that is down."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bwc.config.settings import load_settings
from bwc.errors import HomeError, TimestampError
from bwc.evidence import stamps, timestamp
from bwc.evidence.station import Station
from bwc.ingest.daemon import retry_timestamps
from tests.integration import pg
from tests.integration.daemon_util import StartDaemon, set_daemon_config, wait_until
from tests.integration.s3 import S3Env, s3_fixture  # noqa: F401
from tests.tsa import TestTSA

pytestmark = pytest.mark.integration

DATA = b"bwc/st-tsa\n3\nAAAA\n\n- st-tsa sig\n"


def sql(home: Path, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(home / "catalog.sqlite")) as con, con:
        return list(con.execute(query, params))


def openssl_verify(data: Path, tsr: Path, ca: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "ts", "-verify", "-data", str(data), "-in", str(tsr), "-CAfile", str(ca)],
        capture_output=True,
        text=True,
        check=False,
    )


def flip(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x01
    return bytes(b)


# ---------------------------------------------------------------------------- the protocol


def test_request_verify_round_trip_and_openssl_accepts_it(tsa: TestTSA, tmp_path: Path) -> None:
    ca = tsa.ca_file.read_bytes()
    token = timestamp.request_timestamp(tsa.url, DATA, ca, 3.0)
    assert timestamp.verify_token(token.tsr, DATA, ca) == []
    assert token.gen_time.tzinfo is not None
    # a bundle's log/checkpoint, log/checkpoint.tsr and log/tsa.pem: stock openssl checks them
    (tmp_path / "checkpoint").write_bytes(DATA)
    (tmp_path / "checkpoint.tsr").write_bytes(token.tsr)
    (tmp_path / "tsa.pem").write_bytes(timestamp.chain_pem(token.tsr, ca))
    r = openssl_verify(tmp_path / "checkpoint", tmp_path / "checkpoint.tsr", tmp_path / "tsa.pem")
    assert r.returncode == 0 and "Verification: OK" in r.stdout, r.stdout + r.stderr
    # the chain holds the TSA's certificate and the root
    assert (tmp_path / "tsa.pem").read_bytes().count(b"BEGIN CERTIFICATE") == 2
    # the root's fingerprint as `openssl x509 -fingerprint -sha256` prints it
    fp = subprocess.run(
        ["openssl", "x509", "-in", str(tsa.ca_file), "-noout", "-fingerprint", "-sha256"],
        capture_output=True, text=True, check=True,
    ).stdout.strip().split("=", 1)[1]  # fmt: skip
    assert timestamp.root_fingerprints((tmp_path / "tsa.pem").read_bytes()) == [
        f"{fp}  CN=bwc test TSA root"
    ]
    # of several trusted roots, only the TSA's goes in the chain
    both = ca + tsa.other_ca_file.read_bytes()
    assert timestamp.chain_pem(token.tsr, both) == (tmp_path / "tsa.pem").read_bytes()
    assert timestamp.verify_token(token.tsr, DATA, both) == []
    assert timestamp.verify_token(token.tsr, DATA, (tmp_path / "tsa.pem").read_bytes()) == []
    # and openssl refuses other bytes, as bwc does
    (tmp_path / "other").write_bytes(DATA + b"x")
    assert openssl_verify(tmp_path / "other", tmp_path / "checkpoint.tsr", tsa.ca_file).returncode
    assert any("other bytes" in p for p in timestamp.verify_token(token.tsr, DATA + b"x", ca))


def test_tampered_and_foreign_tokens_are_named(tsa: TestTSA) -> None:
    ca = tsa.ca_file.read_bytes()
    tsr = timestamp.request_timestamp(tsa.url, DATA, ca, 3.0).tsr
    at = tsr.find(hashlib.sha256(DATA).digest())
    assert at > 0
    problems = timestamp.verify_token(flip(tsr, at), DATA, ca)
    assert any("imprint" in p and "other bytes" in p for p in problems), problems
    assert any("signed content was changed" in p for p in problems), problems
    # a byte of the ECDSA signature (the last field of the token)
    problems = timestamp.verify_token(flip(tsr, len(tsr) - 3), DATA, ca)
    assert problems and any("signature does not verify" in p for p in problems), problems
    # a valid token from a TSA under another CA
    tsa.mode = "other-ca"
    foreign = timestamp.read_token(
        timestamp.post(tsa.url, timestamp.make_request(DATA)[0], 3.0)
    ).tsr
    assert timestamp.verify_token(foreign, DATA, tsa.other_ca_file.read_bytes()) == []
    problems = timestamp.verify_token(foreign, DATA, ca)
    assert problems == [
        "the TSA's certificate does not chain to a trusted root (an unknown TSA)"
    ], problems
    assert timestamp.verify_token(b"junk", DATA, ca)[0].startswith("not an RFC 3161")
    assert timestamp.verify_token(tsr, DATA, b"")[-1].startswith("no trusted root")


def test_any_byte_of_a_token_changed_never_crashes_the_check(tsa: TestTSA) -> None:
    """A damaged token is reported, never a traceback (cryptography parses certificates
    lazily: a bad one raised from deep inside the library before this was caught), and any
    change to what the TSA signed (imprint, time) is reported."""
    ca = tsa.ca_file.read_bytes()
    tsr = timestamp.request_timestamp(tsa.url, DATA, ca, 3.0).tsr
    imprint = tsr.find(hashlib.sha256(DATA).digest())
    when = tsr.find(b"Z", imprint) - 14  # genTime: YYYYMMDDhhmmssZ after the serial
    signed = set(range(imprint, imprint + 32)) | set(range(when, when + 14))
    for at in range(len(tsr)):
        bad = flip(tsr, at)
        problems = timestamp.verify_token(bad, DATA, ca)
        timestamp.chain_pem(bad, ca)
        with contextlib.suppress(TimestampError):
            timestamp.read_token(bad)
        if at in signed:
            assert problems, at


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("500", "answered HTTP 500"),
        ("garbage", "not an RFC 3161 TimeStampResp"),
        ("wrong-imprint", "the token is for other bytes"),
        ("other-ca", "an unknown TSA"),
    ],
)
def test_a_bad_answer_is_refused(tsa: TestTSA, mode: str, said: str) -> None:
    tsa.mode = mode
    with pytest.raises(TimestampError, match=said):
        timestamp.request_timestamp(tsa.url, DATA, tsa.ca_file.read_bytes(), 3.0)


def test_a_tsa_that_is_down_is_unreachable(tsa: TestTSA) -> None:
    tsa.down()
    with pytest.raises(timestamp.Unreachable, match="cannot reach the TSA"):
        timestamp.request_timestamp(tsa.url, DATA, tsa.ca_file.read_bytes(), 3.0)


def test_timestamp_for_export(bwc, tsa: TestTSA, monkeypatch: pytest.MonkeyPatch) -> None:
    assert bwc("init", "--station-id", "st-tsa").code == 0
    home = Path(os.environ["BWC_HOME"])
    assert timestamp.timestamp_for_export(load_settings(home), DATA) is None
    tsa.env(monkeypatch)
    settings = load_settings(home)
    got = timestamp.timestamp_for_export(settings, DATA)
    assert got is not None
    tsr, chain = got
    assert timestamp.verify_token(tsr, DATA, chain) == []
    assert timestamp.verify_token(tsr, DATA, tsa.ca_file.read_bytes()) == []
    # a TSA answering 500 is asked EXPORT_ATTEMPTS times, then the export is told
    tsa.mode, tsa.requests = "500", 0
    with pytest.raises(timestamp.Unreachable, match="HTTP 500"):
        timestamp.timestamp_for_export(settings, DATA)
    assert tsa.requests == timestamp.EXPORT_ATTEMPTS
    # a bad answer is not asked again: it is not a passing outage
    tsa.mode, tsa.requests = "garbage", 0
    with pytest.raises(TimestampError, match="bad reply"):
        timestamp.timestamp_for_export(settings, DATA)
    assert tsa.requests == 1


def test_settings(tmp_path: Path, bwc, tsa: TestTSA, monkeypatch: pytest.MonkeyPatch) -> None:
    assert bwc("init", "--station-id", "st-tsa").code == 0
    home = Path(os.environ["BWC_HOME"])
    monkeypatch.setenv("BWC_TIMESTAMP_TSA_URL", tsa.url)
    with pytest.raises(HomeError, match=r"timestamp\.ca_file: must be set with tsa_url"):
        load_settings(home)
    monkeypatch.setenv("BWC_TIMESTAMP_TSA_URL", "ftp://tsa.example/")
    monkeypatch.setenv("BWC_TIMESTAMP_CA_FILE", "roots.pem")
    with pytest.raises(HomeError, match=r"timestamp\.tsa_url: must be an http"):
        load_settings(home)
    r = bwc("status")
    assert r.code == 4 and "timestamp.tsa_url" in r.err
    # a ca_file that is not there: said when it is used, never blocking the checkpoint
    monkeypatch.setenv("BWC_TIMESTAMP_TSA_URL", tsa.url)
    r = bwc("log", "checkpoint")
    assert r.code == 0, r.err
    r = bwc("log", "timestamp")
    assert r.code == 4 and "timestamp.ca_file: cannot read" in r.err, r.err


# ---------------------------------------------------------------------------- checkpoints


def _store_files(home: Path, size: int) -> tuple[Path, Path]:
    d = home / "store" / "log" / "timestamps"
    return d / f"{size}.checkpoint", d / f"{size}.tsr"


def _writable(p: Path) -> None:
    os.chmod(p, stat.S_IRUSR | stat.S_IWUSR)
    os.chmod(p.parent, stat.S_IRWXU)


def test_published_checkpoints_are_timestamped(
    bwc, tsa: TestTSA, monkeypatch: pytest.MonkeyPatch, clip_cache: Path
) -> None:
    tsa.env(monkeypatch)
    assert bwc("init", "--station-id", "st-tsa").code == 0
    home = Path(os.environ["BWC_HOME"])
    clip = sorted(clip_cache.iterdir())[0]
    assert bwc("ingest", clip).code == 0
    rows = sql(
        home,
        "SELECT c.size, c.note, t.tsr, t.published FROM checkpoint c "
        "JOIN checkpoint_timestamp t ON t.checkpoint_id = c.id ORDER BY c.id",
    )
    assert len(rows) >= 2 and all(r[2] is not None and r[3] for r in rows)
    size, note, tsr, _ = rows[-1]
    note_file, tsr_file = _store_files(home, size)
    assert note_file.read_bytes() == note.encode() and tsr_file.read_bytes() == bytes(tsr)
    r = openssl_verify(note_file, tsr_file, tsa.ca_file)
    assert r.returncode == 0, r.stdout + r.stderr
    r = bwc("log", "verify")
    assert r.code == 0, r.out + r.err
    assert f"{len(rows)} checkpoint timestamps (RFC 3161) verified" in r.out
    r = bwc("status")
    assert "every checkpoint timestamped" in r.out
    r = bwc("log", "verify", "--from-store", (home / "store").as_uri())
    assert r.code == 0, r.out + r.err
    assert "imprint and TSA signature verified" in r.out


def test_a_tsa_that_is_down_never_blocks_and_is_caught_up(
    bwc, tsa: TestTSA, monkeypatch: pytest.MonkeyPatch, clip_cache: Path
) -> None:
    tsa.env(monkeypatch)
    tsa.down()
    assert bwc("init", "--station-id", "st-tsa").code == 0
    home = Path(os.environ["BWC_HOME"])
    clip = sorted(clip_cache.iterdir())[0]
    r = bwc("ingest", clip)
    assert r.code == 0, r.err
    pending = sql(home, "SELECT count(*) FROM checkpoint_timestamp WHERE tsr IS NULL")[0][0]
    assert pending >= 2
    assert not (home / "store" / "log" / "timestamps").exists()
    r = bwc("status", "--json")
    assert '"timestamps_pending": ' + str(pending) in r.out
    r = bwc("status")
    assert f"{pending} checkpoints await an RFC 3161 timestamp" in r.out
    r = bwc("log", "timestamp")
    assert r.code == 11, r.out + r.err
    assert f"{pending} checkpoints still await a timestamp" in r.err
    assert "cannot reach the TSA" in r.err
    assert sql(home, "SELECT max(attempts), max(last_error) FROM checkpoint_timestamp")[0][0] >= 2
    tsa.up()
    # one round takes at most `limit`, oldest first, and says how many are left
    st = Station.open(home, actor="clerk", passphrase=None)
    try:
        res = stamps.fetch_pending(st.session, st.store, st.settings, st.clock.now, limit=1)
    finally:
        st.engine.dispose()
    assert [f.checkpoint_id for f in res.fetched] == [1] and res.pending == pending - 1
    assert res.error is None and res.published == 1
    r = bwc("log", "timestamp")
    assert r.code == 0, r.err
    assert r.out.count("timestamped checkpoint #") == pending - 1
    assert sql(home, "SELECT count(*) FROM checkpoint_timestamp WHERE tsr IS NULL")[0][0] == 0
    assert "no checkpoint awaits a timestamp" in bwc("log", "timestamp").out
    size = sql(home, "SELECT max(size) FROM checkpoint")[0][0]
    note_file, tsr_file = _store_files(home, size)
    assert openssl_verify(note_file, tsr_file, tsa.ca_file).returncode == 0
    r = bwc("log", "verify")
    assert r.code == 0, r.out + r.err


def test_the_daemon_retry_fetches_pending_timestamps(
    bwc, tsa: TestTSA, monkeypatch: pytest.MonkeyPatch
) -> None:
    tsa.env(monkeypatch)
    tsa.down()
    assert bwc("init", "--station-id", "st-tsa").code == 0
    home = Path(os.environ["BWC_HOME"])
    st = Station.open(home, actor="daemon", passphrase=None)
    try:
        assert retry_timestamps(st) == 1  # still down: said, not raised
        tsa.up()
        assert retry_timestamps(st) == 0
    finally:
        st.engine.dispose()
    assert sql(home, "SELECT count(*) FROM checkpoint_timestamp WHERE tsr IS NOT NULL")[0][0] == 1


def test_the_running_daemon_catches_up_once_the_tsa_is_back(
    bwc, tsa: TestTSA, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, start_daemon: StartDaemon
) -> None:
    tsa.env(monkeypatch)
    monkeypatch.setenv("BWC_TIMESTAMP_RETRY_SECONDS", "0.5")
    tsa.down()
    assert bwc("init", "--station-id", "st-tsa").code == 0
    home = Path(os.environ["BWC_HOME"])
    set_daemon_config(home, rescan_seconds=0.2)
    (tmp_path / "dock").mkdir()
    d = start_daemon(home, tmp_path / "dock")
    wait_until(lambda: (home / "daemon.json").exists(), 15, "the first heartbeat", daemon=d)

    def pending() -> int:
        return int(sql(home, "SELECT count(*) FROM checkpoint_timestamp WHERE tsr IS NULL")[0][0])

    assert pending() >= 1  # init's checkpoint (and the daemon's, if it signed one)
    tsa.up()
    wait_until(lambda: pending() == 0, 15, "the pending timestamp fetched", daemon=d)
    size = sql(home, "SELECT max(size) FROM checkpoint")[0][0]
    wait_until(lambda: _store_files(home, size)[1].exists(), 5, "its store copy", daemon=d)


def test_log_verify_names_a_tampered_token(
    bwc, tsa: TestTSA, monkeypatch: pytest.MonkeyPatch
) -> None:
    tsa.env(monkeypatch)
    assert bwc("init", "--station-id", "st-tsa").code == 0
    assert bwc("log", "checkpoint").code == 0  # the same size: the same note bytes
    home = Path(os.environ["BWC_HOME"])
    (cp_id, size, tsr), *_ = sql(
        home,
        "SELECT t.checkpoint_id, c.size, t.tsr FROM checkpoint_timestamp t "
        "JOIN checkpoint c ON c.id = t.checkpoint_id ORDER BY c.id",
    )
    tsr = bytes(tsr)
    assert bwc("log", "verify").code == 0
    # the catalog's copy: a signature byte
    sql(home, "UPDATE checkpoint_timestamp SET tsr = ? WHERE checkpoint_id = ?",
        (flip(tsr, len(tsr) - 3), cp_id))  # fmt: skip
    r = bwc("log", "verify")
    assert r.code == 1
    assert (
        f"timestamp of checkpoint #{cp_id} (size {size}), in the catalog: the TSA's signature"
        in r.out
    )
    sql(home, "UPDATE checkpoint_timestamp SET tsr = ? WHERE checkpoint_id = ?", (tsr, cp_id))
    assert bwc("log", "verify").code == 0
    # the store's copy: swapped for a token over other bytes from the same TSA
    other = timestamp.request_timestamp(tsa.url, b"other", tsa.ca_file.read_bytes(), 3.0).tsr
    _note_file, tsr_file = _store_files(home, size)
    _writable(tsr_file)
    tsr_file.write_bytes(other)
    r = bwc("log", "verify")
    assert r.code == 1
    assert f"log/timestamps/{size}.tsr in the store: the message imprint" in r.out
    r = bwc("log", "verify", "--from-store", (home / "store").as_uri())
    assert r.code == 1 and f"log/timestamps/{size}.tsr in the store" in r.out
    # gone from the store
    tsr_file.unlink()
    r = bwc("log", "verify")
    assert r.code == 1 and f"log/timestamps/{size}.tsr is missing from the store" in r.out
    # no roots configured: the tokens are not silently taken as checked
    tsr_file.write_bytes(tsr)
    monkeypatch.setenv("BWC_TIMESTAMP_TSA_URL", "")
    monkeypatch.setenv("BWC_TIMESTAMP_CA_FILE", "")
    r = bwc("log", "verify")
    assert r.code == 1 and "cannot be checked: no [timestamp] ca_file" in r.out
    r = bwc("log", "verify", "--from-store", (home / "store").as_uri())
    assert r.code == 0 and "signature NOT checked" in r.out


def test_timestamps_in_an_s3_store(
    bwc, s3: S3Env, tsa: TestTSA, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store copies are write-once objects in S3 too (Object Lock where the bucket has it),
    and `--from-store` reads them back."""
    tsa.env(monkeypatch)
    assert bwc("init", "--station-id", "st-tsa-s3").code == 0
    home = Path(os.environ["BWC_HOME"])
    (size,) = sql(home, "SELECT size FROM checkpoint")[0]
    c = s3.client()
    tsr = c.get_object(Bucket=s3.bucket, Key=f"{s3.prefix}/log/timestamps/{size}.tsr")["Body"]
    stored = tsr.read()
    assert timestamp.verify_token(stored, sql(home, "SELECT note FROM checkpoint")[0][0].encode(),
                                  tsa.ca_file.read_bytes()) == []  # fmt: skip
    r = bwc("log", "verify")
    assert r.code == 0 and "1 checkpoint timestamps (RFC 3161) verified" in r.out, r.out + r.err
    r = bwc("log", "verify", "--from-store", s3.url)
    assert r.code == 0 and "imprint and TSA signature verified" in r.out, r.out + r.err


def test_pending_then_fetched_on_postgresql(
    bwc, tsa: TestTSA, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog side on PostgreSQL: the pending row, the conditional update, the count."""
    with pg.databases() as dbs:
        name = dbs.create()
        monkeypatch.setenv("BWC_CATALOG", pg.sqlalchemy_url(name))
        tsa.env(monkeypatch)
        tsa.down()
        assert bwc("init", "--station-id", "st-tsa-pg").code == 0
        assert "1 checkpoints await" in bwc("status").out
        assert bwc("log", "timestamp").code == 11
        tsa.up()
        r = bwc("log", "timestamp")
        assert r.code == 0 and "timestamped checkpoint #1 (size 1)" in r.out, r.out + r.err
        r = bwc("log", "verify")
        assert r.code == 0 and "1 checkpoint timestamps (RFC 3161) verified" in r.out, r.out
        with pg.connect(name) as conn:
            conn.execute("UPDATE checkpoint_timestamp SET gen_time = gen_time + interval '1 hour'")
        r = bwc("log", "verify")
        assert r.code == 1 and "the catalog's gen_time differs from the token's" in r.out, r.out
