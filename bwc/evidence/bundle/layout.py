"""The court bundle's layout (docs/bundle.md, bwc-bundle/1): file names and the exact bytes of
every file bwc composes. Pure: values in, bytes out; the export writes them, the checks and
the tests compare against them."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bwc.evidence.canonical import canonical_json

FORMAT = "bwc-bundle/1"
BUNDLE_JSON = "bundle.json"
SUMS = "SHA256SUMS"
SUMS_SIG = "SHA256SUMS.sig"
README = "README.txt"
VERIFY_PY = "verify.py"
CHECKPOINT = "log/checkpoint"
CONSISTENCY = "log/consistency.json"
TSR = "log/checkpoint.tsr"
TSA_PEM = "log/tsa.pem"
FINGERPRINTS = "keys/fingerprints.txt"
REPORT_HTML = "custody-report.html"
REPORT_PDF = "custody-report.pdf"
ITEM_META = ("manifest.json", "manifest.sig", "custody.json")
LANGS = ("zh", "en")

_NAME_MAX = 200
_EXT = re.compile(r"\.[A-Za-z0-9]{1,8}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# ---------------------------------------------------------------------------- names


def is_portable(name: str) -> bool:
    """docs/bundle.md: 1–200 UTF-8 bytes, no control character, no DEL, no slash or
    backslash, no leading dot, and not one of the item folder's own files."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate (an undecodable byte kept by Python)
        return False
    if not 1 <= size <= _NAME_MAX or name.startswith(".") or name in ITEM_META:
        return False
    return not any(c < " " or c == "\x7f" or c in "/\\" for c in name)


def footage_name(original_path: str) -> str:
    """The footage's file name in its item folder: the original's last component when it is
    portable, else ``item`` + its extension (or ``item.bin``)."""
    last = original_path.replace("\\", "/").rsplit("/", 1)[-1]
    if is_portable(last):
        return last
    m = _EXT.search(last)
    return "item" + (m.group() if m else ".bin")


def item_dir(sha256: str) -> str:
    return f"items/{sha256}"


def key_path(key_id: str) -> str:
    return f"keys/{key_id}.pem"


# ---------------------------------------------------------------------------- SHA256SUMS


def sums_text(digests: Mapping[str, str]) -> bytes:
    """GNU coreutils format, sorted by the paths' UTF-8 bytes: ``<hex>  <path>\\n``."""
    lines = []
    for path in sorted(digests, key=lambda p: p.encode("utf-8")):
        if path in (SUMS, SUMS_SIG):
            raise ValueError(f"{path} is never listed in itself")
        lines.append(f"{digests[path]}  {path}\n")
    return "".join(lines).encode("utf-8")


def parse_sums(data: bytes) -> tuple[dict[str, str], list[str]]:
    """The paths and digests SHA256SUMS lists, and what is wrong with it (line by line)."""
    out: dict[str, str] = {}
    problems: list[str] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return out, ["SHA256SUMS is not UTF-8"]
    if text and not text.endswith("\n"):
        problems.append("SHA256SUMS does not end with a newline")
    for n, line in enumerate(text.splitlines(), 1):
        digest, sep, path = line.partition("  ")
        if not sep or not _HEX64.match(digest) or not path:
            problems.append(f"SHA256SUMS line {n} is not `<sha256>  <path>`")
            continue
        if path.startswith("/") or ".." in path.split("/") or "\\" in path:
            problems.append(f"SHA256SUMS line {n}: {path!r} is not a path inside the bundle")
            continue
        if path in out:
            problems.append(f"SHA256SUMS line {n}: {path} is listed twice")
        out[path] = digest
    return out, problems


# ---------------------------------------------------------------------------- JSON files


def bundle_json(info: Mapping[str, Any]) -> bytes:
    return canonical_json(dict(info))


def custody_json(
    sha256: str, origin: str, size: int, events: Sequence[tuple[int, bytes, Sequence[bytes]]]
) -> bytes:
    """``events``: (index, exact leaf bytes, inclusion proof), ascending by index."""
    return canonical_json(
        {
            "checkpoint_size": size,
            "events": [
                {"index": i, "leaf": b64(leaf), "proof": [b64(h) for h in proof]}
                for i, leaf, proof in events
            ],
            "origin": origin,
            "sha256": sha256,
        }
    )


def consistency_json(
    from_note: str | None, from_size: int, proof: Sequence[bytes], to_size: int
) -> bytes:
    return canonical_json(
        {
            "from_checkpoint": from_note,
            "from_size": from_size,
            "proof": [b64(h) for h in proof],
            "to_size": to_size,
        }
    )


# ---------------------------------------------------------------------------- keys


def spki_der(public_key: bytes) -> bytes:
    return Ed25519PublicKey.from_public_bytes(public_key).public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(public_key: bytes) -> str:
    """SHA-256 of the key's DER SubjectPublicKeyInfo, what `openssl pkey -pubin -outform DER
    | sha256sum` prints and what the bureau publishes."""
    return hashlib.sha256(spki_der(public_key)).hexdigest()


def fingerprints_txt(keys: Mapping[str, bytes]) -> bytes:
    """One line per key, ``<fingerprint>  <key_id>.pem``, sorted."""
    lines = sorted(f"{fingerprint(pub)}  {kid}.pem\n" for kid, pub in keys.items())
    return "".join(lines).encode("ascii")


# ---------------------------------------------------------------------------- README.txt


def readme_text(
    lang: str,
    *,
    sums_key: str,
    example_item: str | None,
    example_key: str | None,
    timestamp: bool,
    verify_py: bool,
) -> bytes:
    """README.txt: how a clerk checks the bundle, step by step, in both languages (the
    bundle's language first). Every command line here is run by a test on a real bundle."""
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}")
    parts = [
        _readme(x, sums_key, example_item, example_key, timestamp, verify_py)
        for x in (lang, *(x for x in LANGS if x != lang))
    ]
    return ("\n" + "=" * 72 + "\n\n").join(parts).encode("utf-8")


def _commands(
    sums_key: str, item: str | None, key: str | None, timestamp: bool, verify_py: bool
) -> dict[str, str]:
    c = {
        "sums": "sha256sum -c SHA256SUMS",
        "sums_sig": (
            f"openssl pkeyutl -verify -pubin -inkey keys/{sums_key}.pem -rawin "
            "-in SHA256SUMS -sigfile SHA256SUMS.sig"
        ),
        "manifest_sig": (
            f"openssl pkeyutl -verify -pubin -inkey keys/{key or '<key_id>'}.pem -rawin "
            f"-in items/{item or '<sha256>'}/manifest.json "
            f"-sigfile items/{item or '<sha256>'}/manifest.sig"
        ),
        "fingerprint_example": (
            f"openssl pkey -pubin -in keys/{sums_key}.pem -outform DER | sha256sum"
        ),
        "ts": "openssl ts -verify -data log/checkpoint -in log/checkpoint.tsr -CAfile log/tsa.pem",
        "verify_py": "python3 verify.py",
    }
    if not timestamp:
        c.pop("ts")
    if not verify_py:
        c.pop("verify_py")
    return c


def _readme(
    lang: str,
    sums_key: str,
    item: str | None,
    key: str | None,
    timestamp: bool,
    verify_py: bool,
) -> str:
    c = _commands(sums_key, item, key, timestamp, verify_py)
    zh = lang == "zh"
    steps: list[tuple[str, list[str]]] = []
    if zh:
        title = "执法记录仪证据包 (bwc-bundle/1)：核验说明"
        intro = (
            "本证据包可以不安装 bwc，仅用 sha256sum、openssl 和 Python 3.8+ 核验。\n"
            "请在证据包目录内（本文件所在目录）打开终端，逐步执行下列命令。"
        )
        steps.append(
            (
                "第 1 步：核对每个文件的 SHA-256（每行应显示“OK”/“成功”）",
                [c["sums"]],
            )
        )
        steps.append(
            (
                "第 2 步：核验 SHA256SUMS 的签名（应显示 Signature Verified Successfully）",
                [c["sums_sig"]],
            )
        )
        steps.append(
            (
                "第 3 步：核验每个证据清单（manifest）的签名；密钥编号见该清单的 key_id 字段，"
                "对 items/ 下每个目录都执行一次",
                [c["manifest_sig"]],
            )
        )
        steps.append(
            (
                "第 4 步：核对公钥指纹。下面的命令打印一个公钥的指纹（其他公钥同理，"
                "换文件名即可），应与 keys/fingerprints.txt 中的一行相同；"
                "再将 keys/fingerprints.txt 与执法局另行公布的公钥指纹"
                "（公告、官网或公函）逐一比对。指纹不一致，则本包不能证明来自该局",
                [c["fingerprint_example"], "cat keys/fingerprints.txt"],
            )
        )
        if "ts" in c:
            steps.append(
                (
                    "第 5 步：核验可信时间戳（应显示 Verification: OK），"
                    "并将 log/tsa.pem 中的根证书与时间戳机构公布的比对",
                    [c["ts"]],
                )
            )
        if "verify_py" in c:
            steps.append(
                (
                    f"第 {len(steps) + 1} 步：运行独立核验程序（只用 Python 标准库），"
                    "核对默克尔证明、检查点签名和全部签名；最后一行给出结论，全部通过时退出码为 0",
                    [c["verify_py"]],
                )
            )
        tail = (
            "说明：bundle.json 说明本包的内容与导出人；custody-report.html / .pdf 为保管链报告；"
            "items/<sha256>/ 下为原始录像及其签名清单和保管事件；log/checkpoint 为导出时签署的"
            "日志检查点。"
        )
    else:
        title = "Body-worn camera evidence bundle (bwc-bundle/1): how to check it"
        intro = (
            "This bundle is checked without bwc, with sha256sum, openssl and Python 3.8+.\n"
            "Open a terminal in the bundle's folder (where this file is) and run, in order:"
        )
        steps.append(("Step 1: every file's SHA-256 (each line must say OK)", [c["sums"]]))
        steps.append(
            (
                "Step 2: the signature of SHA256SUMS (must say Signature Verified Successfully)",
                [c["sums_sig"]],
            )
        )
        steps.append(
            (
                "Step 3: each manifest's signature; the key is the manifest's key_id field. "
                "Run it for every folder under items/",
                [c["manifest_sig"]],
            )
        )
        steps.append(
            (
                "Step 4: the key fingerprints. The first command prints a key's fingerprint "
                "(the same for each file in keys/), which must be a line of "
                "keys/fingerprints.txt; then compare "
                "keys/fingerprints.txt with the fingerprints the bureau publishes separately "
                "(notice, web site or letter). If they differ, the bundle does not prove it "
                "comes from the bureau",
                [c["fingerprint_example"], "cat keys/fingerprints.txt"],
            )
        )
        if "ts" in c:
            steps.append(
                (
                    "Step 5: the trusted timestamp (must say Verification: OK); compare the "
                    "root certificate in log/tsa.pem with the one the TSA publishes",
                    [c["ts"]],
                )
            )
        if "verify_py" in c:
            steps.append(
                (
                    f"Step {len(steps) + 1}: the standalone verifier (Python standard library "
                    "only): Merkle proofs, the checkpoint's signature and every signature; the "
                    "last line is the verdict, exit code 0 when everything passed",
                    [c["verify_py"]],
                )
            )
        tail = (
            "bundle.json says what the bundle holds and who exported it; custody-report.html / "
            ".pdf is the chain-of-custody report; items/<sha256>/ holds the original footage "
            "with its signed manifest and custody events; log/checkpoint is the log's "
            "checkpoint signed at export time."
        )
    body = [title, "", intro, ""]
    for head, cmds in steps:
        body.append(head)
        body.extend(f"    {x}" for x in cmds)
        body.append("")
    body.append(tail)
    return "\n".join(body) + "\n"


def readme_commands(text: bytes) -> list[str]:
    """The command lines README.txt shows (indented by four spaces), for the tests."""
    return list(
        dict.fromkeys(
            line[4:] for line in text.decode("utf-8").splitlines() if line.startswith("    ")
        )
    )


def listed(paths: Iterable[str]) -> list[str]:
    return sorted(paths, key=lambda p: p.encode("utf-8"))
