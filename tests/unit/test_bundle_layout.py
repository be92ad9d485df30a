"""bwc.evidence.bundle.layout: the portable name rule, SHA256SUMS, the JSON files, key
fingerprints and README.txt, as docs/bundle.md states them."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bwc.errors import UsageError
from bwc.evidence.bundle import layout
from bwc.evidence.export import Selection
from bwc.evidence.items import ItemFilter
from bwc.evidence.signing import raw_public

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("original", "name"),
    [
        ("DCIM/DSJ0042_110023_20261015093000_0000.MP4", "DSJ0042_110023_20261015093000_0000.MP4"),
        ("执法/录像 1.mp4", "录像 1.mp4"),
        ("a\\b\\c.MOV", "c.MOV"),  # a Windows path: its last component
        ("DCIM/.hidden.MP4", "item.MP4"),
        ("DCIM/bad\x01name.mp4", "item.mp4"),
        ("DCIM/del\x7f.jpg", "item.jpg"),
        ("DCIM/manifest.json", "item.json"),
        ("DCIM/custody.json", "item.json"),
        ("DCIM/" + "x" * 201 + ".wav", "item.wav"),
        ("DCIM/" + "录" * 67, "item.bin"),  # 201 UTF-8 bytes, no extension
        ("DCIM/%FF%FE.mp4", "%FF%FE.mp4"),  # percent-encoded bytes are portable text
        ("DCIM/bad\x01name.verylongext", "item.bin"),
        ("DCIM/", "item.bin"),
    ],
)
def test_footage_name(original: str, name: str) -> None:
    assert layout.footage_name(original) == name
    assert layout.is_portable(name)


def test_name_limits() -> None:
    assert layout.is_portable("x" * 200)
    assert not layout.is_portable("x" * 201)
    assert not layout.is_portable("")
    assert not layout.is_portable("a/b")
    assert not layout.is_portable("\ud800.mp4")  # a lone surrogate is not UTF-8


def test_sums_text_is_coreutils_format_sorted_by_utf8_bytes() -> None:
    d = {"b": "1" * 64, "B": "2" * 64, "é": "3" * 64, "z/a": "4" * 64}
    text = layout.sums_text(d)
    assert text == (f"{'2' * 64}  B\n{'1' * 64}  b\n{'4' * 64}  z/a\n{'3' * 64}  é\n".encode())
    assert layout.parse_sums(text) == (d, [])
    with pytest.raises(ValueError):
        layout.sums_text({layout.SUMS: "0" * 64})


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"abc  x\n", "line 1 is not"),
        (b"0" * 64 + b" x\n", "line 1 is not"),
        (b"0" * 64 + b"  ../x\n", "not a path inside"),
        (b"0" * 64 + b"  /etc/passwd\n", "not a path inside"),
        (b"0" * 64 + b"  x\n" + b"1" * 64 + b"  x\n", "listed twice"),
        (b"0" * 64 + b"  x", "newline"),
        (b"\xff\n", "not UTF-8"),
    ],
)
def test_parse_sums_names_what_is_wrong(text: bytes, problem: str) -> None:
    _, problems = layout.parse_sums(text)
    assert any(problem in p for p in problems), problems


def test_json_files_are_canonical() -> None:
    c = layout.custody_json("a" * 64, "bwc/st", 9, [(3, b"{}", [b"\x00" * 32])])
    assert c == (
        b'{"checkpoint_size":9,"events":[{"index":3,"leaf":"e30=","proof":["'
        + b"A" * 43
        + b'="]}],"origin":"bwc/st","sha256":"'
        + b"a" * 64
        + b'"}'
    )
    k = layout.consistency_json(None, 0, [], 5)
    assert k == b'{"from_checkpoint":null,"from_size":0,"proof":[],"to_size":5}'
    assert json.loads(layout.bundle_json({"b": 1, "a": "é"})) == {"a": "é", "b": 1}
    assert layout.bundle_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_fingerprints_are_sha256_of_the_der_key() -> None:
    keys = {}
    for _ in range(3):
        k = Ed25519PrivateKey.generate()
        pub = raw_public(k)
        der = k.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        assert layout.fingerprint(pub) == hashlib.sha256(der).hexdigest()
        keys[hashlib.sha256(pub).hexdigest()[:16]] = pub
    lines = layout.fingerprints_txt(keys).decode().splitlines()
    assert lines == sorted(lines) and len(lines) == 3
    for line in lines:
        fp, name = line.split("  ")
        assert fp == layout.fingerprint(keys[name.removesuffix(".pem")])


def test_readme_speaks_the_bundle_language_first() -> None:
    args = {"sums_key": "k" * 16, "example_item": "a" * 64, "example_key": "m" * 16}
    zh = layout.readme_text("zh", timestamp=False, verify_py=True, **args).decode()
    en = layout.readme_text("en", timestamp=False, verify_py=True, **args).decode()
    assert zh.index("核验说明") < zh.index("how to check it")
    assert en.index("how to check it") < en.index("核验说明")
    cmds = layout.readme_commands(zh.encode())
    assert cmds == layout.readme_commands(en.encode())
    assert cmds == [
        "sha256sum -c SHA256SUMS",
        f"openssl pkeyutl -verify -pubin -inkey keys/{'k' * 16}.pem -rawin -in SHA256SUMS "
        "-sigfile SHA256SUMS.sig",
        f"openssl pkeyutl -verify -pubin -inkey keys/{'m' * 16}.pem -rawin -in items/"
        f"{'a' * 64}/manifest.json -sigfile items/{'a' * 64}/manifest.sig",
        f"openssl pkey -pubin -in keys/{'k' * 16}.pem -outform DER | sha256sum",
        "cat keys/fingerprints.txt",
        "python3 verify.py",
    ]
    ts = layout.readme_text("en", timestamp=True, verify_py=False, **args)
    assert (
        "openssl ts -verify -data log/checkpoint -in log/checkpoint.tsr -CAfile log/tsa.pem"
        in layout.readme_commands(ts)
    )
    assert "python3 verify.py" not in layout.readme_commands(ts)
    with pytest.raises(ValueError):
        layout.readme_text("fr", timestamp=False, verify_py=False, **args)


def test_selection_is_exactly_one_way() -> None:
    with pytest.raises(UsageError):
        Selection()
    with pytest.raises(UsageError):
        Selection(case="c", ids=("a",))
    with pytest.raises(UsageError, match="--recorded-from"):
        Selection(officer=ItemFilter(officer="110023"))
    assert Selection(ids=("abc",)).to_json() == {"ids": ["abc"]}
    assert Selection(case="ZF-1").to_json() == {"case": "ZF-1"}
