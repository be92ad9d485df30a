"""`bwc export` from a real ingest: the bundle is docs/bundle.md's, byte for byte where it
says so; a clerk's stock tools (sha256sum, openssl) and `bwc verify-bundle` accept it; the
export is in the custody log; a failing item refuses the export (nothing written, nothing
logged) unless --include-failed; S3 stores export too."""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from bwc.evidence.bundle import layout
from bwc.evidence.export import ExportRequest, Selection, export
from bwc.evidence.station import Station
from bwc.evidence.stores.local import LocalStore
from tests.integration.bundles import (
    bwc_verify_bundle,
    expected_files,
    files_of,
    info,
    manifest_keys,
    run,
)
from tests.integration.s3 import S3Env, s3_fixture  # noqa: F401

pytestmark = pytest.mark.integration


def ingest(bwc, camera: Path) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    r = bwc("ingest", camera, "--officer", "110023", "--device", "DSJ0042", "--json")
    assert r.code == 0, r.out + r.err
    r = bwc("list", "--json")
    assert r.code == 0, r.err
    return list(json.loads(r.out))


def clips(items: list[dict[str, Any]]) -> list[str]:
    return sorted(i["sha256"] for i in items if i["path"].endswith(".MP4"))


def log_events(bwc) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    r = bwc("log", "events", "--json")
    assert r.code == 0, r.err
    return list(json.loads(r.out))


def partials(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".partial-" in p.name]


# ---------------------------------------------------------------------------- the happy path


def test_export_by_ids_passes_stock_tools_and_verify_bundle(  # type: ignore[no-untyped-def]
    bwc, home: Path, camera: Path, tmp_path: Path
) -> None:
    items = ingest(bwc, camera)
    ids = clips(items)[:2]
    out = tmp_path / "bundle"
    r = bwc("export", ids[0][:10], ids[1], "--out", out, "--for", "巡回法庭 第一庭", "--json")
    assert r.code == 0, r.out + r.err
    res = json.loads(r.out)
    assert res["path"] == str(out) and not partials(tmp_path)
    # exactly the files docs/bundle.md lists (the report with its PDF; no TSA configured)
    assert files_of(out) == expected_files(out)
    data = info(out)
    assert data["pdf"] is True and data["timestamp"] is None
    assert (out / layout.BUNDLE_JSON).read_bytes() == layout.bundle_json(data)  # canonical
    assert data["format"] == "bwc-bundle/1" and data["bundle_id"] == res["bundle_id"]
    assert data["recipient"] == "巡回法庭 第一庭" and data["actor"] == "test-clerk"
    assert data["station"] == "st-test" and data["lang"] == "zh"
    assert data["selection"] == {"ids": [ids[0][:10], ids[1]]}
    assert [i["sha256"] for i in data["items"]] == ids
    assert all(i["verified"] and not i["failures"] for i in data["items"])
    by_path = {i["sha256"]: i for i in items}
    for it in data["items"]:
        name = Path(by_path[it["sha256"]]["path"]).name
        assert it["file"] == f"items/{it['sha256']}/{name}"
        # the footage, unchanged
        assert hashlib.sha256((out / it["file"]).read_bytes()).hexdigest() == it["sha256"]
    keys = {p.stem for p in (out / "keys").glob("*.pem")}
    assert keys == manifest_keys(out) | {data["sums_key"]}
    cp = (out / layout.CHECKPOINT).read_text()
    assert cp.split("\n")[1] == str(data["checkpoint_size"]) == str(res["checkpoint_size"])

    # the clerk's steps, as README.txt gives them, run in the bundle
    readme = (out / layout.README).read_bytes()
    assert readme.decode().startswith("执法记录仪证据包")
    commands = layout.readme_commands(readme)
    assert any(c.startswith("sha256sum -c") for c in commands)
    for cmd in commands:
        if cmd.startswith("python3"):
            cmd = "env -i /usr/bin/" + cmd  # as on a machine without bwc: no environment
        ran = run(cmd, out, shell=True)
        assert ran.code == 0, f"{cmd}: {ran.out}"
        if "| sha256sum" in cmd:  # the fingerprint pipeline prints a fingerprints.txt line
            digest = ran.out.split()[0]
            assert f"{digest}  {data['sums_key']}.pem\n" in (out / layout.FINGERPRINTS).read_text()
    assert (
        "Signature Verified Successfully"
        in run(next(c for c in commands if "SHA256SUMS.sig" in c), out, shell=True).out
    )
    # and every manifest's signature, with the key its key_id names
    for it in data["items"]:
        d = f"items/{it['sha256']}"
        kid = json.loads((out / d / "manifest.json").read_bytes())["key_id"]
        ran = run(
            f"openssl pkeyutl -verify -pubin -inkey keys/{kid}.pem -rawin "
            f"-in {d}/manifest.json -sigfile {d}/manifest.sig",
            out,
            shell=True,
        )
        assert ran.code == 0, ran.out
    ran = bwc_verify_bundle(out)
    assert ran.code == 0, ran.out
    assert "FAIL" not in ran.out and "verdict: bundle" in ran.out
    # custody.json: every event of the item, proving this export
    for it in data["items"]:
        c = json.loads((out / f"items/{it['sha256']}/custody.json").read_bytes())
        kinds = [json.loads(base64.b64decode(e["leaf"]))["kind"] for e in c["events"]]
        assert kinds[0] == "ingested" and kinds[-1] == "exported"
        last = json.loads(base64.b64decode(c["events"][-1]["leaf"]))
        assert last["details"]["bundle"] == data["bundle_id"]


def test_export_is_in_the_access_trail(bwc, home: Path, camera: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ids = clips(ingest(bwc, camera))[:2]
    out = tmp_path / "b"
    r = bwc("export", "--no-pdf", *ids, "--out", out, "--for", "Police joint op 7", "--json")
    assert r.code == 0, r.err
    bundle_id = json.loads(r.out)["bundle_id"]
    exported = [e for e in log_events(bwc) if e["kind"] == "exported"]
    per_item = [e for e in exported if e["item"]]
    assert sorted(e["item"] for e in per_item) == ids
    manifests = {
        i: hashlib.sha256((out / f"items/{i}/manifest.json").read_bytes()).hexdigest() for i in ids
    }
    for e in per_item:
        assert e["actor"] == "test-clerk"
        assert e["details"]["bundle"] == bundle_id
        assert e["details"]["recipient"] == "Police joint op 7"
        assert e["details"]["verified"] is True
        assert e["details"]["manifest_sha256"] == manifests[e["item"]]
    (whole,) = [e for e in exported if not e["item"]]
    sums = hashlib.sha256((out / layout.SUMS).read_bytes()).hexdigest()
    assert whole["details"] == {
        "bundle": bundle_id,
        "recipient": "Police joint op 7",
        "items": 2,
        "sums_sha256": sums,
        "checkpoint_size": info(out)["checkpoint_size"],
    }
    # the bundle-level event comes after the checkpoint the bundle carries
    assert whole["index"] >= info(out)["checkpoint_size"]


def test_export_by_officer_and_recording_time(  # type: ignore[no-untyped-def]
    bwc, home: Path, camera: Path, tmp_path: Path
) -> None:
    items = ingest(bwc, camera)
    # clips start at 09:30:00, :01, :02 local time (Asia/Shanghai)
    want = sorted(
        i["sha256"]
        for i in items
        if i["recorded_start"] and i["recorded_start"] < "2026-10-15T01:30:02"
    )
    assert len(want) == 2
    out = tmp_path / "b"
    r = bwc(
        "export",
        "--no-pdf",
        "--officer",
        "110023",
        "--recorded-from",
        "2026-10-15T09:30",
        "--recorded-to",
        "2026-10-15T09:30:02",
        "--out",
        out,
        "--for",
        "court",
        "--lang",
        "en",
    )
    assert r.code == 0, r.out + r.err
    data = info(out)
    assert [i["sha256"] for i in data["items"]] == want
    assert data["selection"] == {
        "officer": "110023",
        "recorded_from": "2026-10-15T01:30:00Z",
        "recorded_to": "2026-10-15T01:30:02Z",
    }
    assert (out / layout.README).read_text().startswith("Body-worn camera evidence bundle")
    assert bwc_verify_bundle(out).code == 0
    # nobody's footage in that time: exit 3, nothing written
    before = len(log_events(bwc))
    r = bwc(
        "export", "--officer", "999", "--recorded-from", "2026-10-15", "--recorded-to",
        "2026-10-16", "--out", tmp_path / "c", "--for", "court",
    )  # fmt: skip
    assert r.code == 3 and "no item of officer" in r.err
    assert not (tmp_path / "c").exists() and not partials(tmp_path)
    assert len(log_events(bwc)) == before
    # an officer without a time range is a usage error
    r = bwc("export", "--no-pdf", "--officer", "110023", "--out", tmp_path / "d", "--for", "court")
    assert r.code == 2 and "go together" in r.err


def test_export_by_case(bwc, home: Path, camera: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ids = clips(ingest(bwc, camera))
    r = bwc(
        "classify", ids[1], "--class", "evidence", "--case", "ZF-2026-0815", "--reason", "court"
    )
    assert r.code == 0, r.err
    out = tmp_path / "b"
    r = bwc("export", "--no-pdf", "--case", "ZF-2026-0815", "--out", out, "--for", "court")
    assert r.code == 0, r.out + r.err
    assert [i["sha256"] for i in info(out)["items"]] == [ids[1]]
    assert info(out)["selection"] == {"case": "ZF-2026-0815"}
    r = bwc(
        "export", "--no-pdf", "--case", "ZF-2026-0816", "--out", tmp_path / "c", "--for", "court"
    )
    assert r.code == 3 and "ZF-2026-0816" in r.err
    # one way of choosing only
    r = bwc(
        "export",
        "--no-pdf",
        ids[0],
        "--case",
        "ZF-2026-0815",
        "--out",
        tmp_path / "d",
        "--for",
        "x",
    )
    assert r.code == 2


def test_export_zip(bwc, home: Path, camera: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ids = clips(ingest(bwc, camera))[:1]
    out = tmp_path / "case-7.zip"
    r = bwc("export", "--no-pdf", *ids, "--out", out, "--for", "court", "--zip", "--json")
    assert r.code == 0, r.out + r.err
    assert out.is_file() and sorted(p.name for p in tmp_path.iterdir() if "case-7" in p.name) == [
        "case-7.zip"
    ]
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        assert all(n.startswith("case-7/") for n in names)
        footage = next(i for i in z.infolist() if i.filename.endswith(".MP4"))
        assert footage.compress_type == zipfile.ZIP_STORED
        z.extractall(tmp_path / "unzipped")
    assert run(["sha256sum", "-c", "SHA256SUMS"], tmp_path / "unzipped" / "case-7").code == 0
    ran = bwc_verify_bundle(out)
    assert ran.code == 0, ran.out
    # the zip tampered: one footage byte
    data = bytearray(out.read_bytes())
    at = data.find(b"mdat")
    data[at + 40] ^= 0xFF
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    ran = bwc_verify_bundle(bad)
    assert ran.code == 1 and "FAIL" in ran.out and ".MP4" in ran.out


# ---------------------------------------------------------------------------- --zip streams


def partial_files(folder: Path) -> set[str]:
    """The files in the export's partial folders under ``folder`` now."""
    return {
        p.relative_to(folder).as_posix()
        for d in folder.glob("*.partial-*")
        for p in d.rglob("*")
        if p.is_file()
    }


class _Reader:
    """A stored object's reader that calls ``note`` before each read; with ``cut`` it gives
    the first half of the object and then fails, as a disk or a connection lost mid-read."""

    def __init__(self, f: BinaryIO, cut: bool, note: Callable[[], None]) -> None:
        self._f, self._cut, self._note, self._reads = f, cut, note, 0

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()

    def read(self, n: int) -> bytes:
        self._note()
        self._reads += 1
        if not self._cut:
            return self._f.read(n)
        if self._reads > 1:
            raise OSError(errno.EIO, "Input/output error")
        data = self._f.read()
        return data[: len(data) // 2]


def watch_reads(
    monkeypatch: pytest.MonkeyPatch, folder: Path, cut: str | None = None
) -> list[set[str]]:
    """What the partial folders under ``folder`` held at each read of a stored object (and
    the object ``cut`` fails halfway)."""
    seen: list[set[str]] = []
    real = LocalStore.open_object

    def open_object(self: LocalStore, sha256: str) -> BinaryIO:
        reader = _Reader(
            real(self, sha256), sha256 == cut, lambda: seen.append(partial_files(folder))
        )
        return reader  # type: ignore[return-value]

    monkeypatch.setattr(LocalStore, "open_object", open_object)
    return seen


def only_the_zip(seen: list[set[str]]) -> bool:
    return bool(seen) and all(len(s) == 1 and next(iter(s)).endswith(".zip") for s in seen)


def test_zip_export_writes_the_footage_once_straight_into_the_zip(  # type: ignore[no-untyped-def]
    bwc, home: Path, camera: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = clips(ingest(bwc, camera))
    seen = watch_reads(monkeypatch, tmp_path)
    out = tmp_path / "case-9.zip"
    r = bwc("export", "--no-pdf", *ids, "--out", out, "--for", "court", "--zip", "--json")
    assert r.code == 0, r.out + r.err
    # while the footage was read, the partial folder held the zip being written and nothing
    # else: no folder copy of the footage to be zipped afterwards (the disk held it twice)
    assert len(seen) >= len(ids) and only_the_zip(seen), seen
    assert sorted(p.name for p in tmp_path.iterdir() if "case-9" in p.name) == ["case-9.zip"]
    assert run(["unzip", "-tq", str(out)], tmp_path).code == 0
    with zipfile.ZipFile(out) as z:
        kinds = {i.filename: i.compress_type for i in z.infolist()}
    footage = [n for n in kinds if n.endswith(".MP4")]
    assert len(footage) == len(ids) and all(kinds[n] == zipfile.ZIP_STORED for n in footage)
    assert all(k == zipfile.ZIP_DEFLATED for n, k in kinds.items() if n not in footage)
    # the clerk's unzip, then the stock tools and both verifiers
    assert run(["unzip", "-q", str(out), "-d", "unzipped"], tmp_path).code == 0
    unzipped = tmp_path / "unzipped" / "case-9"
    assert run(["sha256sum", "-c", "SHA256SUMS"], unzipped).code == 0
    ran = run(["env", "-i", "/usr/bin/python3", "-I", "verify.py"], unzipped)
    assert ran.code == 0, ran.out
    for bundle in (out, unzipped):
        ran = bwc_verify_bundle(bundle)
        assert ran.code == 0 and "FAIL" not in ran.out, ran.out
    # the same bundle a folder export writes: the same files, the same SHA256SUMS paths
    folder = tmp_path / "folder"
    assert bwc("export", "--no-pdf", *ids, "--out", folder, "--for", "court").code == 0
    assert files_of(unzipped) == files_of(folder) == expected_files(folder)

    def paths(b: Path) -> list[str]:
        return [x.split("  ", 1)[1] for x in (b / layout.SUMS).read_text().splitlines()]

    assert paths(unzipped) == paths(folder)
    for it in info(folder)["items"]:
        assert (unzipped / it["file"]).read_bytes() == (folder / it["file"]).read_bytes()


def test_zip_export_of_an_object_cut_mid_read_keeps_no_part_of_it(  # type: ignore[no-untyped-def]
    bwc, home: Path, camera: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The object's first half went into the zip before its store failed: the item is
    listed as failed, and not a byte of that half is left in the zip."""
    noise = os.urandom(300_000)  # bytes found nowhere else (the test clips share frames)
    (camera / "DCIM" / "X0001.bin").write_bytes(noise)
    items = ingest(bwc, camera)
    (cut,) = [i["sha256"] for i in items if i["path"].endswith("X0001.bin")]
    ids = [*clips(items)[:2], cut]
    seen = watch_reads(monkeypatch, tmp_path, cut=cut)
    out = tmp_path / "b.zip"
    r = bwc("export", "--no-pdf", *ids, "--out", out, "--for", "court", "--zip")
    assert r.code == 1 and cut[:16] in r.err and "nothing was exported" in r.err, r.err
    assert not out.exists() and not partials(tmp_path)
    r = bwc("export", "--no-pdf", *ids, "--out", out, "--for", "court", "--zip", "--include-failed")
    assert r.code == 0, r.out + r.err
    assert only_the_zip(seen), seen  # the footage went straight into the zip
    raw = out.read_bytes()
    assert noise[1000:1064] not in raw and noise[100_000:100_064] not in raw
    assert run(["unzip", "-tq", str(out)], tmp_path).code == 0
    with zipfile.ZipFile(out) as z:
        assert z.testzip() is None
        mine = sorted(n for n in z.namelist() if n.startswith(f"b/items/{cut}/"))
        data = json.loads(z.read(f"b/{layout.BUNDLE_JSON}"))
    assert mine == [f"b/items/{cut}/{m}" for m in ("custody.json", "manifest.json", "manifest.sig")]
    (bad,) = [i for i in data["items"] if i["sha256"] == cut]
    assert bad["verified"] is False and any("Input/output error" in f for f in bad["failures"])
    assert all(i["verified"] for i in data["items"] if i["sha256"] != cut)
    ran = bwc_verify_bundle(out)
    assert ran.code == 1 and f"FAIL  items/{cut}: the footage file" in ran.out, ran.out
    assert all(cut in x for x in ran.out.splitlines() if x.startswith("FAIL")), ran.out


def test_zip_export_interrupted_mid_footage_leaves_nothing(  # type: ignore[no-untyped-def]
    bwc, home: Path, camera: Path, tmp_path: Path
) -> None:
    """Ctrl-C (KeyboardInterrupt) while a footage member is half written into the zip: no
    file at --out, no partial folder, nothing logged."""
    (camera / "DCIM" / "X0002.bin").write_bytes(os.urandom(3 << 20))  # three chunks
    items = ingest(bwc, camera)
    ids = sorted(i["sha256"] for i in items if i["path"].endswith((".MP4", ".bin")))
    before = log_events(bwc)
    out = tmp_path / "b.zip"
    at_stop: list[set[str]] = []

    def progress(done: int, total: int) -> None:
        if done >= 1 << 20:  # a first MiB of the big object is in the zip
            at_stop.append(partial_files(tmp_path))
            raise KeyboardInterrupt

    station = Station.open(home, actor="test-clerk", passphrase=None)
    req = ExportRequest(out, Selection(ids=tuple(ids)), "court", pdf=False, zip=True)
    with pytest.raises(KeyboardInterrupt):
        export(station, req, progress)
    assert only_the_zip(at_stop), at_stop  # stopped while the zip was being written
    assert not out.exists() and not partials(tmp_path)
    assert log_events(bwc) == before


# ---------------------------------------------------------------------------- refusals


def _tamper_object(home: Path, sha: str) -> None:
    path = home / "store" / "objects" / sha[:2] / sha
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_failing_item_refuses_the_export(  # type: ignore[no-untyped-def]
    bwc, home: Path, camera: Path, tmp_path: Path
) -> None:
    ids = clips(ingest(bwc, camera))
    _tamper_object(home, ids[1])
    before = log_events(bwc)
    out = tmp_path / "b"
    r = bwc("export", "--no-pdf", *ids, "--out", out, "--for", "court")
    assert r.code == 1, r.out + r.err
    assert "1 of 3 items fail verification, nothing was exported" in r.err
    assert ids[1][:16] in r.err and "sha256 mismatch" in r.err
    assert not out.exists() and not partials(tmp_path)
    assert log_events(bwc) == before  # no event appended, not even a checkpoint's

    r = bwc(
        "export", "--no-pdf", *ids, "--out", out, "--for", "court", "--include-failed", "--json"
    )
    assert r.code == 0, r.out + r.err
    data = info(out)
    bad = next(i for i in data["items"] if i["sha256"] == ids[1])
    assert bad["verified"] is False and any("sha256 mismatch" in f for f in bad["failures"])
    assert all(i["verified"] for i in data["items"] if i["sha256"] != ids[1])
    ran = bwc_verify_bundle(out)
    assert ran.code == 1
    fails = [x for x in ran.out.splitlines() if x.startswith("FAIL")]
    assert any(f"items/{ids[1]}" in x and "marked as failed" in x for x in fails)
    assert all(ids[1] in x for x in fails), fails  # only the failed item fails
    # its exported event says so, and vouches for no manifest
    (ev,) = [e for e in log_events(bwc) if e["kind"] == "exported" and e["item"] == ids[1]]
    assert ev["details"]["verified"] is False and "manifest_sha256" not in ev["details"]


def test_missing_object(bwc, home: Path, camera: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ids = clips(ingest(bwc, camera))[:2]
    obj = home / "store" / "objects" / ids[0][:2] / ids[0]
    obj.unlink()
    before = log_events(bwc)
    r = bwc("export", "--no-pdf", *ids, "--out", tmp_path / "b", "--for", "court")
    assert r.code == 1 and ids[0][:16] in r.err and "missing" in r.err
    assert log_events(bwc) == before and not partials(tmp_path)
    r = bwc(
        "export", "--no-pdf", *ids, "--out", tmp_path / "b", "--for", "court", "--include-failed"
    )
    assert r.code == 0, r.err
    assert not list((tmp_path / "b" / "items" / ids[0]).glob("*.MP4"))  # no part of it
    ran = bwc_verify_bundle(tmp_path / "b")
    assert ran.code == 1 and f"FAIL  items/{ids[0]}: the footage file" in ran.out


def test_refusals_change_nothing(bwc, home: Path, camera: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ids = clips(ingest(bwc, camera))
    before = log_events(bwc)
    (tmp_path / "there").mkdir()
    r = bwc("export", "--no-pdf", ids[0], "--out", tmp_path / "there", "--for", "court")
    assert r.code == 2 and "exists" in r.err
    r = bwc("export", "--no-pdf", "ffffffffffff", "--out", tmp_path / "b", "--for", "court")
    assert r.code == 3 and "no evidence item" in r.err
    r = bwc("export", "--no-pdf", ids[0], "--out", tmp_path / "no" / "such" / "b", "--for", "court")
    assert r.code == 2 and "is not a folder" in r.err
    r = bwc("export", "--no-pdf", ids[0], "--out", tmp_path / "b", "--for", " ")
    assert r.code == 2
    r = bwc("export", "--no-pdf", ids[0], "--out", tmp_path / "b", "--for", "x", "--lang", "fr")
    assert r.code == 2
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    if os.geteuid() != 0:  # root writes anywhere
        r = bwc("export", "--no-pdf", ids[0], "--out", ro / "b", "--for", "court")
        assert r.code == 2 and "cannot write" in r.err
    r = bwc("export", "--no-pdf", "--out", tmp_path / "b", "--for", "court")
    assert r.code == 2
    assert log_events(bwc) == before
    assert not (tmp_path / "b").exists() and not partials(tmp_path)


# ---------------------------------------------------------------------------- S3


def test_export_from_s3(  # type: ignore[no-untyped-def]
    bwc, s3: S3Env, camera: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = bwc("init", "--station-id", "st-s3")
    assert r.code == 0, r.err
    ids = clips(ingest(bwc, camera))
    out = tmp_path / "b"
    r = bwc("export", "--no-pdf", *ids, "--out", out, "--for", "court", "--json")
    assert r.code == 0, r.out + r.err
    assert files_of(out) == expected_files(out)
    assert run(["sha256sum", "-c", "SHA256SUMS"], out).code == 0
    ran = bwc_verify_bundle(out)
    assert ran.code == 0, ran.out
    # the consistency proof starts at what the store had published before the export
    c = json.loads((out / layout.CONSISTENCY).read_bytes())
    assert c["from_size"] > 0 and c["to_size"] == info(out)["checkpoint_size"]
    published = s3.client().get_object(Bucket=s3.bucket, Key=f"{s3.prefix}/log/checkpoint")
    assert published["Body"].read().decode() == (out / layout.CHECKPOINT).read_text()

    # the store unreachable: exit 7, nothing written, nothing logged
    before = log_events(bwc)
    s3.server.stop()
    monkeypatch.setenv("BWC_S3_RETRY_SECONDS", "1")
    r = bwc("export", "--no-pdf", *ids, "--out", tmp_path / "c", "--for", "court")
    assert r.code == 7, r.out + r.err
    assert not (tmp_path / "c").exists() and not partials(tmp_path)
    s3.server.start()
    assert log_events(bwc) == before


def test_wrong_passphrase(  # type: ignore[no-untyped-def]
    bwc, tmp_path: Path, camera: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BWC_KEY_PASSPHRASE", "right one")
    assert bwc("init", "--station-id", "st-p").code == 0
    ids = clips(ingest(bwc, camera))
    before = log_events(bwc)
    monkeypatch.setenv("BWC_KEY_PASSPHRASE", "wrong one")
    r = bwc("export", "--no-pdf", *ids, "--out", tmp_path / "b", "--for", "court")
    assert r.code == 5 and "wrong passphrase" in r.err
    assert not (tmp_path / "b").exists() and not partials(tmp_path)
    assert log_events(bwc) == before


def test_a_timestamped_bundle_with_its_report_checks_everywhere(  # type: ignore[no-untyped-def]
    bwc, home: Path, camera: Path, tmp_path: Path, tsa, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's "done when", whole: a station with a TSA (a real `openssl ts` behind HTTP
    on loopback) exports; the bundle holds the token, the chain, the custody report as HTML
    and as a PDF Chromium printed; the clerk's README steps (`sha256sum -c`, `openssl
    pkeyutl`, `openssl ts -verify`, `python3 verify.py` with no environment), `bwc
    verify-bundle` and the PDF's text all agree. Then the TSA goes down: the export refuses
    before anything is logged, and --no-timestamp exports without a token."""
    import io

    from pypdf import PdfReader

    tsa.env(monkeypatch)
    ids = clips(ingest(bwc, camera))[:1]
    out = tmp_path / "b"
    r = bwc("export", *ids, "--out", out, "--for", "court", "--lang", "en")
    assert r.code == 0, r.out + r.err
    files = files_of(out)
    assert files == expected_files(out)
    assert {layout.REPORT_HTML, layout.REPORT_PDF, layout.TSR, layout.TSA_PEM} <= files
    data = info(out)
    assert data["pdf"] is True
    assert data["timestamp"]["tsa_url"] == tsa.url
    assert data["timestamp"]["gen_time"].endswith("Z")
    # the clerk's steps, as README.txt gives them (the timestamp's among them)
    commands = layout.readme_commands((out / layout.README).read_bytes())
    assert any(" ts -verify" in c for c in commands)
    for cmd in commands:
        if cmd.startswith("python3"):
            cmd = "env -i /usr/bin/" + cmd
        ran = run(cmd, out, shell=True)
        assert ran.code == 0, f"{cmd}: {ran.out}"
    ran = bwc_verify_bundle(out)
    assert ran.code == 0, ran.out
    assert f"ok    {layout.TSR}: timestamped at" in ran.out
    # the report: every custody event of the item, the export among them, as text in the PDF
    pdf = PdfReader(io.BytesIO((out / layout.REPORT_PDF).read_bytes()))
    text = "".join(p.extract_text() or "" for p in pdf.pages).replace("\n", "")
    assert ids[0] in text and data["bundle_id"] in text
    html = (out / layout.REPORT_HTML).read_text(encoding="utf-8")
    assert "court" in html and ids[0] in html

    before = log_events(bwc)
    tsa.down()
    r = bwc("export", *ids, "--out", tmp_path / "c", "--for", "court", "--no-pdf")
    assert r.code == 11, r.out + r.err
    assert "--no-timestamp" in r.err
    assert not (tmp_path / "c").exists() and not partials(tmp_path)
    assert log_events(bwc) == before
    r = bwc("export", *ids, "--out", tmp_path / "c", "--for", "court", "--no-pdf", "--no-timestamp")
    assert r.code == 0, r.out + r.err
    assert info(tmp_path / "c")["timestamp"] is None
    assert bwc_verify_bundle(tmp_path / "c").code == 0


def test_no_chromium_refuses_before_anything_is_logged(  # type: ignore[no-untyped-def]
    bwc, home: Path, camera: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PDF is printed after the export is logged; a station without Chromium is told so
    first (exit 9), with nothing written or logged, and --no-pdf exports without it."""
    ids = clips(ingest(bwc, camera))[:1]
    before = log_events(bwc)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no browser to be found
    r = bwc("export", *ids, "--out", tmp_path / "b", "--for", "court")
    assert r.code == 9, r.out + r.err
    assert "chromium not found" in r.err and "--no-pdf" in r.err
    assert not (tmp_path / "b").exists() and not partials(tmp_path)
    assert log_events(bwc) == before
    r = bwc("export", *ids, "--out", tmp_path / "b", "--for", "court", "--no-pdf")
    assert r.code == 0, r.out + r.err
    assert info(tmp_path / "b")["pdf"] == "not asked for (--no-pdf)"
    assert not (tmp_path / "b" / layout.REPORT_PDF).exists()
    assert (tmp_path / "b" / layout.REPORT_HTML).is_file()


def test_an_unbacked_case_link_refuses_the_export(  # type: ignore[no-untyped-def]
    bwc, home: Path, camera: Path, tmp_path: Path
) -> None:
    """A case link row with no `case-linked` event (inserted behind bwc's back) is caught:
    by case, the export refuses (naming it); by id, the item fails its `cases` check, as
    `bwc verify` says, and the export refuses it too."""
    import sqlite3

    ids = clips(ingest(bwc, camera))
    r = bwc("case", "link", "OP-7", ids[0], "--reason", "joint operation", "--new-case")
    assert r.code == 0, r.out + r.err
    with sqlite3.connect(home / "catalog.sqlite") as db:
        db.execute(
            "INSERT INTO case_link (case_id, sha256, linked_at, linked_by) "
            "SELECT 'OP-7', ?, linked_at, linked_by FROM case_link LIMIT 1",
            (ids[1],),
        )
    before = log_events(bwc)
    r = bwc("export", "--no-pdf", "--case", "OP-7", "--out", tmp_path / "b", "--for", "court")
    assert r.code == 1 and ids[1][:16] in r.err, r.out + r.err
    r = bwc("export", "--no-pdf", ids[1], "--out", tmp_path / "b", "--for", "court")
    assert r.code == 1 and "cases" in r.err, r.out + r.err
    assert not (tmp_path / "b").exists() and not partials(tmp_path)
    assert log_events(bwc) == before
