"""verify.py run as the clerk runs it (`env -i python3 -I verify.py` inside the bundle) on a
bundle built from values (tests/bundle_fixture.py): a good bundle passes in both languages;
every tampering is a FAIL line naming what is wrong, exit 1; a folder that is not a bundle
is exit 2; a malformed bundle never shows a traceback."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bwc.evidence.signing import public_pem, raw_public
from tests.bundle_fixture import (
    OTHER_KEY,
    STATION_KEY,
    ItemSpec,
    edit_json,
    make_bundle,
    reseal,
)

pytestmark = pytest.mark.integration


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def fails(self) -> list[str]:
        return [line for line in self.out.splitlines() if line.startswith(("FAIL", "失败"))]


def run_verify(bundle: Path, *args: str, script: Path | None = None) -> Run:
    """As README.txt says: inside the bundle, a bare environment, isolated mode."""
    r = subprocess.run(
        ["env", "-i", sys.executable, "-I", str(script or "verify.py"), *args],
        cwd=bundle,
        capture_output=True,
        timeout=120,
        check=False,
    )
    run = Run(r.returncode, r.stdout.decode("utf-8"), r.stderr.decode("utf-8", "replace"))
    assert "Traceback" not in run.err + run.out, run.err
    return run


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("good")
    return make_bundle(
        base, items=[ItemSpec("clip0.mp4"), ItemSpec("录像 1.mp4", old_key=True)], tsa=True
    )


def _copy(good: Path, tmp_path: Path) -> Path:
    import shutil

    dest = tmp_path / "b"
    shutil.copytree(good, dest, symlinks=True)
    return dest


def _items(bundle: Path) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads((bundle / "bundle.json").read_bytes())["items"]
    return items


def test_good_bundle_en(good: Path) -> None:
    r = run_verify(good)
    assert r.code == 0, r.out
    assert r.fails == []
    lines = r.out.splitlines()
    assert lines[-1].startswith("ok    VERDICT: all ")
    assert sum(line.startswith("ok") for line in lines) >= 17
    for what in ("SHA256SUMS.sig", "log/checkpoint:", "log/consistency.json", "checkpoint.tsr"):
        assert any(what in line for line in lines), what
    assert "openssl ts -verify" in r.out
    sha = _items(good)[1]["sha256"]
    assert f"item {sha[:12]}: custody: ingested first" in r.out


def test_good_bundle_zh_and_lang_override(tmp_path: Path) -> None:
    b = make_bundle(tmp_path, items=1, lang="zh", published=False)
    r = run_verify(b)
    assert r.code == 0, r.out
    assert r.out.splitlines()[-1].startswith("通过")
    assert "结论：全部" in r.out
    assert "此次导出前未发布过检查点" in r.out
    en = run_verify(b, "--lang", "en")
    assert en.code == 0 and "VERDICT: all" in en.out and "通过" not in en.out


def test_quiet_prints_failures_and_verdict_only(good: Path, tmp_path: Path) -> None:
    assert run_verify(good, "--quiet").out.splitlines() == [
        line for line in run_verify(good).out.splitlines() if "VERDICT" in line
    ]
    b = _copy(good, tmp_path)
    (b / "README.txt").write_text("changed\n")
    r = run_verify(b, "--quiet")
    assert r.code == 1
    assert all(line.startswith("FAIL") for line in r.out.splitlines())
    assert len(r.out.splitlines()) == 2


def test_runs_from_elsewhere_with_the_bundle_as_argument(good: Path, tmp_path: Path) -> None:
    r = subprocess.run(
        ["env", "-i", sys.executable, "-I", str(good / "verify.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stdout  # default: the folder verify.py is in
    r2 = run_verify(tmp_path, str(good), script=good / "verify.py")
    assert r2.code == 0


def test_stock_tools_agree_with_the_fixture(good: Path) -> None:
    """The fixture is a real bundle: sha256sum -c, openssl pkeyutl and openssl ts accept it."""
    subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=good, check=True)
    meta = json.loads((good / "bundle.json").read_bytes())
    subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", f"keys/{meta['sums_key']}.pem",
         "-rawin", "-in", "SHA256SUMS", "-sigfile", "SHA256SUMS.sig"],
        cwd=good, check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        ["openssl", "ts", "-verify", "-data", "log/checkpoint", "-in", "log/checkpoint.tsr",
         "-CAfile", "log/tsa.pem"],
        cwd=good, check=True, capture_output=True,
    )  # fmt: skip


# --------------------------------------------------------------------------- the tamper matrix


def _flip(path: Path, offset: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1
    path.write_bytes(bytes(data))


def _item(b: Path, n: int = 0) -> Path:
    return b / "items" / str(_items(b)[n]["sha256"])


def footage_byte(b: Path) -> None:
    _flip(b / _items(b)[0]["file"], 100)


def footage_byte_resealed(b: Path) -> None:
    footage_byte(b)
    reseal(b)


def manifest_field(b: Path) -> None:
    edit_json(_item(b) / "manifest.json", lambda m: m.update(officer_id="OFF-1"))
    reseal(b)


def manifest_sig(b: Path) -> None:
    _flip(_item(b) / "manifest.sig", 3)
    reseal(b)


def custody_leaf(b: Path) -> None:
    def change(c: dict[str, Any]) -> None:
        leaf = json.loads(base64.b64decode(c["events"][0]["leaf"]))
        leaf["actor"] = "someone-else"
        text = json.dumps(leaf, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        c["events"][0]["leaf"] = base64.b64encode(text.encode()).decode()

    edit_json(_item(b) / "custody.json", change)
    reseal(b)


def proof_hash(b: Path) -> None:
    def change(c: dict[str, Any]) -> None:
        h = bytearray(base64.b64decode(c["events"][1]["proof"][0]))
        h[0] ^= 1
        c["events"][1]["proof"][0] = base64.b64encode(bytes(h)).decode()

    edit_json(_item(b) / "custody.json", change)
    reseal(b)


def checkpoint(b: Path) -> None:
    text = (b / "log" / "checkpoint").read_text()
    lines = text.split("\n")
    lines[1] = str(int(lines[1]) + 1)
    (b / "log" / "checkpoint").write_text("\n".join(lines))
    reseal(b)


def key_swapped(b: Path) -> None:
    meta = json.loads((b / "bundle.json").read_bytes())
    pem = public_pem(raw_public(OTHER_KEY))
    (b / "keys" / f"{meta['sums_key']}.pem").write_text(pem)
    reseal(b, OTHER_KEY)


def sums_edited(b: Path) -> None:
    readme = b / "README.txt"
    readme.write_text("a different README\n")
    digest = hashlib.sha256(readme.read_bytes()).hexdigest()
    sums = (b / "SHA256SUMS").read_text().splitlines(True)
    sums = [f"{digest}  README.txt\n" if line.endswith("  README.txt\n") else line for line in sums]
    (b / "SHA256SUMS").write_text("".join(sums))


def file_added(b: Path) -> None:
    (_item(b) / "extra.mp4").write_bytes(b"more footage")


def file_removed(b: Path) -> None:
    (_item(b) / "custody.json").unlink()


def manifest_sig_removed(b: Path) -> None:
    (_item(b) / "manifest.sig").unlink()
    reseal(b)


def custody_removed(b: Path) -> None:
    (_item(b) / "custody.json").unlink()
    reseal(b)


def extra_footage_signed(b: Path) -> None:
    (_item(b) / "extra.mp4").write_bytes(b"more footage")
    reseal(b)


def bundle_json_edited(b: Path) -> None:
    edit_json(b / "bundle.json", lambda m: m.update(recipient="Someone else"))


def recipient_edited_resealed(b: Path) -> None:
    edit_json(b / "bundle.json", lambda m: m.update(recipient="Someone else"))
    reseal(b)


def bundle_id_edited_resealed(b: Path) -> None:
    edit_json(b / "bundle.json", lambda m: m.update(bundle_id="f" * 32))
    reseal(b)


def consistency_proof(b: Path) -> None:
    def change(c: dict[str, Any]) -> None:
        h = bytearray(base64.b64decode(c["proof"][-1]))
        h[5] ^= 0x10
        c["proof"][-1] = base64.b64encode(bytes(h)).decode()

    edit_json(b / "log" / "consistency.json", change)
    reseal(b)


def tsr_imprint(b: Path) -> None:
    tsr = b / "log" / "checkpoint.tsr"
    data = tsr.read_bytes()
    imprint = hashlib.sha256((b / "log" / "checkpoint").read_bytes()).digest()
    at = data.index(imprint)
    tsr.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :])
    reseal(b)


def symlink_out(b: Path) -> None:
    os.symlink("/etc/passwd", _item(b) / "link.txt")


def item_verified_false(b: Path) -> None:
    edit_json(b / "bundle.json", lambda m: m["items"][0].update(verified=False, failures=["x"]))
    reseal(b)


TAMPERS: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "footage byte": (footage_byte, ["{file}: SHA-256 differs from SHA256SUMS"]),
    "footage byte, resealed": (
        footage_byte_resealed,
        ["item {short}: {file} is not what its manifest states: its SHA-256 is"],
    ),
    "manifest field": (
        manifest_field,
        [
            "item {short}: items/{sha}/manifest.sig is not a valid",
            "manifest.json is not the manifest the log",
        ],
    ),
    "manifest.sig": (manifest_sig, ["item {short}: items/{sha}/manifest.sig is not a valid"]),
    "custody leaf": (
        custody_leaf,
        ["items/{sha}/custody.json event 1 (log entry", "inclusion proof fails"],
    ),
    "proof hash": (
        proof_hash,
        ["items/{sha}/custody.json event 2 (log entry", "inclusion proof fails"],
    ),
    "checkpoint": (checkpoint, ["log/checkpoint: not a valid signed checkpoint"]),
    "key swapped": (key_swapped, ["keys/", "the key's id is"]),
    "SHA256SUMS edited": (sums_edited, ["SHA256SUMS.sig: Ed25519 signature over SHA256SUMS"]),
    "file added": (file_added, ["items/{sha}/extra.mp4 is in the folder but not in SHA256SUMS"]),
    "file removed": (
        file_removed,
        ["items/{sha}/custody.json is listed in SHA256SUMS but missing"],
    ),
    "manifest.sig removed, resealed": (
        manifest_sig_removed,
        ["item {short}: manifest.sig is missing", "the bundle lacks"],
    ),
    "custody.json removed, resealed": (
        custody_removed,
        ["item {short}: custody.json is missing", "the bundle lacks"],
    ),
    "extra file signed into an item": (
        extra_footage_signed,
        ["items/{sha}/extra.mp4 is not a file a bundle has"],
    ),
    "bundle.json edited": (bundle_json_edited, ["bundle.json: SHA-256 differs from SHA256SUMS"]),
    "recipient edited, resealed": (
        recipient_edited_resealed,
        ["item {short}: custody: bundle.json's recipient differs from the logged export's"],
    ),
    "bundle id edited, resealed": (
        bundle_id_edited_resealed,
        ["item {short}: custody: the log does not record this export"],
    ),
    "consistency proof": (consistency_proof, ["log/consistency.json: consistency proof from size"]),
    "tsr imprint": (tsr_imprint, ["log/checkpoint.tsr: its message imprint is not the SHA-256"]),
    "symlink": (symlink_out, ["items/{sha}/link.txt is a symbolic link"]),
    "item marked failed": (item_verified_false, ["item {short}: the exporter marked it as failed"]),
}


@pytest.mark.parametrize("name", TAMPERS)
def test_tamper_is_caught_and_named(good: Path, tmp_path: Path, name: str) -> None:
    b = _copy(good, tmp_path)
    first = _items(b)[0]
    tamper, expected = TAMPERS[name]
    tamper(b)
    r = run_verify(b)
    assert r.code == 1, r.out
    assert r.out.splitlines()[-1].startswith("FAIL  VERDICT:")
    fails = "\n".join(r.fails)
    fields = {
        "sha": first["sha256"],
        "short": first["sha256"][:12],
        "file": first["file"],
        "name": first["file"].rsplit("/", 1)[1],
    }
    for text in expected:
        assert text.format(**fields) in fails, f"{text!r} not in:\n{fails}"


def test_deleted_item_fails(tmp_path: Path) -> None:
    b = make_bundle(tmp_path, items=1, extra_events=((0, "deleted-by-policy"),))
    r = run_verify(b)
    assert r.code == 1
    short = _items(b)[0]["sha256"][:12]
    assert f"item {short}: custody: the log records its deletion" in "\n".join(r.fails)


def test_custody_without_its_intake_fails(good: Path, tmp_path: Path) -> None:
    b = _copy(good, tmp_path)
    edit_json(_item(b) / "custody.json", lambda c: c["events"].pop(0))
    reseal(b)
    r = run_verify(b)
    assert r.code == 1
    short = _items(b)[0]["sha256"][:12]
    fails = "\n".join(r.fails)
    assert f"item {short}: custody: the first event is exported, not ingested" in fails
    assert "manifest.json is not the manifest the log recorded" in fails


def test_tamper_reported_in_chinese(good: Path, tmp_path: Path) -> None:
    b = _copy(good, tmp_path)
    manifest_sig(b)
    r = run_verify(b, "--lang", "zh")
    assert r.code == 1
    sha = _items(b)[0]["sha256"]
    assert f"失败    证据 {sha[:12]}：items/{sha}/manifest.sig 不是 keys/" in r.out
    assert r.out.splitlines()[-1].startswith("失败") and "项失败" in r.out


# ------------------------------------------------------------------------ not a bundle; malformed


def test_not_a_bundle_is_exit_2(tmp_path: Path, good: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_verify(empty, str(empty), script=good / "verify.py")
    assert r.code == 2 and "bundle.json" in r.out
    b = _copy(good, tmp_path)
    (b / "bundle.json").write_bytes(b"{not json")
    assert run_verify(b).code == 2
    (b / "bundle.json").write_text('{"format":"bwc-bundle/2"}')
    r = run_verify(b, "--lang", "en")
    assert r.code == 2 and "not a bwc-bundle/1 bundle" in r.out
    b2 = _copy(good, tmp_path / "x")
    (b2 / "SHA256SUMS").unlink()
    assert run_verify(b2).code == 2


def _sums_garbage(b: Path) -> None:
    reseal(b)
    sums = (b / "SHA256SUMS").read_bytes() + b"zz ../../etc/passwd\n"
    (b / "SHA256SUMS").write_bytes(sums)
    (b / "SHA256SUMS.sig").write_bytes(STATION_KEY.sign(sums))


def _custody(b: Path) -> Path:
    return _item(b) / "custody.json"


MALFORMED: dict[str, tuple[Callable[[Path], object], str]] = {
    "custody.json truncated": (
        lambda b: _custody(b).write_bytes(_custody(b).read_bytes()[:50]),
        "items/{sha}/custody.json is not valid JSON",
    ),
    "leaf not base64": (
        lambda b: edit_json(_custody(b), lambda c: c["events"][0].update(leaf="%%%")),
        "malformed index, leaf or proof",
    ),
    "proof of wrong length": (
        lambda b: edit_json(
            _custody(b), lambda c: c["events"][0]["proof"].append(c["events"][0]["proof"][0])
        ),
        "inclusion proof fails: proof has",
    ),
    "proof hash too short": (
        lambda b: edit_json(_custody(b), lambda c: c["events"][0]["proof"].__setitem__(0, "AAAA")),
        "a hash is not 32 bytes",
    ),
    "events not a list": (
        lambda b: edit_json(_custody(b), lambda c: c.update(events={"a": 1})),
        "items/{sha}/custody.json: no events",
    ),
    "manifest.sig truncated": (
        lambda b: (_item(b) / "manifest.sig").write_bytes(b"\x00" * 10),
        "item {short}: items/{sha}/manifest.sig is not a valid",
    ),
    "manifest not JSON": (
        lambda b: (_item(b) / "manifest.json").write_bytes(b"\xff\xfe"),
        "items/{sha}/manifest.json is not valid JSON",
    ),
    "tsr truncated": (
        lambda b: (b / "log" / "checkpoint.tsr").write_bytes(
            (b / "log" / "checkpoint.tsr").read_bytes()[:40]
        ),
        "log/checkpoint.tsr: not a readable RFC 3161 timestamp",
    ),
    "key not PEM": (
        lambda b: next((b / "keys").glob("*.pem")).write_bytes(b"-----BEGIN PUBLIC KEY-----\n!!\n"),
        "is not an Ed25519 public key",
    ),
    "consistency.json deeply nested": (
        lambda b: (b / "log" / "consistency.json").write_bytes(b"[" * 200000),
        "log/consistency.json is not valid JSON",
    ),
    "SHA256SUMS garbage line": (_sums_garbage, "SHA256SUMS is malformed: line"),
    "bundle.json items wrong type": (
        lambda b: edit_json(b / "bundle.json", lambda m: m.update(items="all")),
        "bundle.json: missing or malformed items",
    ),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_is_a_fail_line_not_a_traceback(good: Path, tmp_path: Path, name: str) -> None:
    b = _copy(good, tmp_path)
    first = _items(b)[0]
    change, expected = MALFORMED[name]
    reseal(b)  # so the parsers, not only SHA256SUMS, meet the malformed file
    change(b)
    if change is not _sums_garbage:
        reseal(b)
    r = run_verify(b)
    assert r.code == 1, r.out
    assert "could not finish" not in r.out, r.out
    want = expected.format(sha=first["sha256"], short=first["sha256"][:12])
    assert want in "\n".join(r.fails), r.out


# Files whose every byte a check depends on (the README, report and TSA signature bytes are
# covered by SHA256SUMS alone: with SHA256SUMS resealed, changing them is not detected here).
def _strict(rel: str) -> bool:
    return rel.startswith(("items/", "keys/")) or rel in (
        "log/checkpoint",
        "log/consistency.json",
    )


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_any_byte_changed_never_crashes(good: Path, tmp_path_factory: Any, data: Any) -> None:
    b = _copy(good, tmp_path_factory.mktemp("fuzz"))
    files = sorted(
        p.relative_to(b).as_posix()
        for p in b.rglob("*")
        if p.is_file() and p.name not in ("SHA256SUMS", "SHA256SUMS.sig", "verify.py")
    )
    rel = data.draw(st.sampled_from(files), label="file")
    content = (b / rel).read_bytes()
    i = data.draw(st.integers(0, len(content) - 1), label="offset")
    byte = data.draw(st.integers(0, 255).filter(lambda x: x != content[i]), label="byte")
    (b / rel).write_bytes(content[:i] + bytes([byte]) + content[i + 1 :])
    r = run_verify(b)
    if rel == "bundle.json" and r.code == 2:  # no longer JSON, or not of this format
        assert r.out.count("\n") == 1, r.out
        return
    assert r.code == 1 and f"{rel}: SHA-256 differs" in r.out, r.out
    reseal(b)
    r = run_verify(b)
    assert "could not finish" not in r.out, r.out
    assert r.code in (0, 1)
    if _strict(rel):
        assert r.code == 1, f"{rel}[{i}] = {byte}: not detected\n{r.out}"
