"""The manifest: lossless paths, RFC 8785 canonical bytes (golden), parsing and its errors."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bwc.errors import VerificationError
from bwc.evidence.canonical import canonical_json, is_canonical
from bwc.evidence.manifest import (
    FLAG_NOT_MEDIA,
    FLAG_UNATTRIBUTED,
    SCHEMA,
    Manifest,
    decode_path,
    encode_path,
    parse_manifest,
    recorded_end,
)

pytestmark = pytest.mark.unit

SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
CST = timezone(timedelta(hours=8))


def sample(**changes: Any) -> Manifest:
    m = Manifest(
        sha256=SHA,
        size=1048576,
        path="执法/DSJ0042_20261015093000.MP4",
        path_encoding="utf-8",
        device_id="DSJ0042",
        officer_id="110023",
        recorded_start=datetime(2026, 10, 15, 9, 30, 0, tzinfo=CST),
        recorded_end=datetime(2026, 10, 15, 1, 35, 0, 250000, tzinfo=UTC),
        start_source="container",
        media={
            "format": "mov,mp4,m4a,3gp,3g2,mj2",
            "streams": [
                {"type": "video", "codec": "h264", "width": 1920, "height": 1080, "fps": "30/1"},
                {"type": "audio", "codec": "aac", "sample_rate": 48000},
            ],
            "duration_ms": 300250,
            "creation_time": "2026-10-15T01:30:00Z",
        },
        station_id="st-07",
        ingested_at=datetime(2026, 10, 15, 10, 0, 0, 123456, tzinfo=UTC),
        key_id="0123456789abcdef",
        flags=(FLAG_UNATTRIBUTED, FLAG_NOT_MEDIA, FLAG_UNATTRIBUTED),
        device_source="profile",
        officer_source="ledger",
        profile="cn-standard",
    )
    return dataclasses.replace(m, **changes)


# ---------------------------------------------------------------------------- golden bytes

GOLDEN = (
    b'{"device_id":"DSJ0042",'
    b'"device_source":"profile",'
    b'"flags":["not-media","unattributed"],'
    b'"ingested_at":"2026-10-15T10:00:00.123456Z",'
    b'"key_id":"0123456789abcdef",'
    b'"media":{"creation_time":"2026-10-15T01:30:00Z","duration_ms":300250,'
    b'"format":"mov,mp4,m4a,3gp,3g2,mj2",'
    b'"streams":[{"codec":"h264","fps":"30/1","height":1080,"type":"video","width":1920},'
    b'{"codec":"aac","sample_rate":48000,"type":"audio"}]},'
    b'"officer_id":"110023",'
    b'"officer_source":"ledger",'
    b'"path":"\xe6\x89\xa7\xe6\xb3\x95/DSJ0042_20261015093000.MP4",'
    b'"path_encoding":"utf-8",'
    b'"profile":"cn-standard",'
    b'"recorded_end":"2026-10-15T01:35:00.250000Z",'
    b'"recorded_start":"2026-10-15T01:30:00Z",'
    b'"schema":"bwc.manifest/1",'
    b'"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",'
    b'"size":1048576,'
    b'"start_source":"container",'
    b'"station_id":"st-07"}'
)

GOLDEN_MINIMAL = (
    b'{"device_id":null,'
    b'"device_source":null,'
    b'"flags":["no-recorded-time","non-utf8-name","unattributed","zero-byte"],'
    b'"ingested_at":"2026-01-01T00:00:00Z",'
    b'"key_id":"k",'
    b'"media":null,'
    b'"officer_id":null,'
    b'"officer_source":null,'
    b'"path":"DCIM/CLIP_%FF%FE%25%20\\"x\\".MP4",'
    b'"path_encoding":"percent-encoded-bytes",'
    b'"profile":null,'
    b'"recorded_end":null,'
    b'"recorded_start":null,'
    b'"schema":"bwc.manifest/1",'
    b'"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",'
    b'"size":0,'
    b'"start_source":"unknown",'
    b'"station_id":"st-\\n\\u0007"}'
)


def test_golden_bytes() -> None:
    assert sample().canonical() == GOLDEN


def test_golden_bytes_nulls_escapes_and_percent_path() -> None:
    path, enc = encode_path(b'DCIM/CLIP_\xff\xfe% "x".MP4')
    m = Manifest(
        sha256=SHA,
        size=0,
        path=path,
        path_encoding=enc,
        device_id=None,
        officer_id=None,
        recorded_start=None,
        recorded_end=None,
        start_source="unknown",
        media=None,
        station_id="st-\n\x07",
        ingested_at=datetime(2026, 1, 1, 8, 0, tzinfo=CST),
        key_id="k",
        flags=("zero-byte", "unattributed", "non-utf8-name", "no-recorded-time"),
    )
    assert m.canonical() == GOLDEN_MINIMAL


# ---------------------------------------------------------------------------- RFC 8785


def _key_orders(data: bytes) -> list[list[str]]:
    orders: list[list[str]] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        orders.append([k for k, _ in pairs])
        return dict(pairs)

    json.loads(data, object_pairs_hook=hook)
    return orders


def test_canonical_keys_sorted_at_every_level_and_no_whitespace() -> None:
    data = sample().canonical()
    orders = _key_orders(data)
    assert len(orders) == 4  # manifest, media, two streams
    for keys in orders:
        assert keys == sorted(keys)
    # no insignificant whitespace: identical to the most compact sorted serialisation
    compact = json.dumps(
        json.loads(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert data == compact
    assert b"\n" not in data
    assert b": " not in data
    assert b", " not in data
    assert is_canonical(data)


def test_canonical_is_utf8_not_ascii_escaped() -> None:
    data = sample().canonical()
    assert "执法".encode() in data
    assert b"\\u" not in data


def test_canonical_flags_sorted_and_unique() -> None:
    m = sample(flags=("zero-byte", "not-media", "zero-byte", "a"))
    assert json.loads(m.canonical())["flags"] == ["a", "not-media", "zero-byte"]


def test_canonical_times_are_utc_z() -> None:
    obj = json.loads(sample().canonical())
    assert obj["recorded_start"] == "2026-10-15T01:30:00Z"
    assert obj["ingested_at"] == "2026-10-15T10:00:00.123456Z"


def test_floats_are_refused_in_signed_data() -> None:
    with pytest.raises(TypeError, match="float"):
        sample(media={"duration": 1.5}).canonical()


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        sample(ingested_at=datetime(2026, 1, 1)).canonical()


def test_schema_and_every_field_present() -> None:
    obj = json.loads(sample().canonical())
    assert obj["schema"] == SCHEMA
    assert set(obj) == {f.name for f in dataclasses.fields(Manifest)} | {"schema"}


# ---------------------------------------------------------------------------- paths


@given(st.binary(max_size=200).filter(lambda b: b"/" not in b))
def test_path_component_round_trip(raw: bytes) -> None:
    text, enc = encode_path(raw)
    assert enc in ("utf-8", "percent-encoded-bytes")
    assert decode_path(text, enc) == raw


@given(st.binary(max_size=300))
def test_any_bytes_round_trip(raw: bytes) -> None:
    text, enc = encode_path(raw)
    assert decode_path(text, enc) == raw
    if enc == "percent-encoded-bytes":
        # plain printable ASCII, survives any transport and JSON without escapes
        assert all(0x20 < ord(c) < 0x7F for c in text)


@given(st.lists(st.binary(min_size=1, max_size=20).filter(lambda b: b"/" not in b), max_size=6))
def test_relative_path_round_trip_keeps_separators(parts: list[bytes]) -> None:
    raw = b"/".join(parts)
    text, enc = encode_path(raw)
    assert decode_path(text, enc) == raw
    assert text.count("/") == raw.count(b"/")


@given(st.text(max_size=100))
def test_valid_utf8_stays_readable(name: str) -> None:
    raw = name.encode("utf-8", "surrogatepass")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return  # lone surrogates are not valid UTF-8
    assert encode_path(raw) == (name, "utf-8")


@given(st.binary(max_size=200))
def test_round_trip_through_the_signed_bytes(raw: bytes) -> None:
    text, enc = encode_path(raw)
    parsed = parse_manifest(sample(path=text, path_encoding=enc).canonical())
    assert decode_path(parsed.path, parsed.path_encoding) == raw


@pytest.mark.parametrize(
    ("raw", "text", "enc"),
    [
        (b"DCIM/CLIP.MP4", "DCIM/CLIP.MP4", "utf-8"),
        (b"100% sure.MP4", "100% sure.MP4", "utf-8"),
        ("执法记录仪/录像.MP4".encode(), "执法记录仪/录像.MP4", "utf-8"),
        (b"\xff", "%FF", "percent-encoded-bytes"),
        (b"a b%\xff", "a%20b%25%FF", "percent-encoded-bytes"),
        (b"\xd6\xb4\xb7\xa8.MP4", "%D6%B4%B7%A8.MP4", "percent-encoded-bytes"),  # GBK
        (b"x\x00\x7f\xff/", "x%00%7F%FF/", "percent-encoded-bytes"),
    ],
)
def test_encode_path_examples(raw: bytes, text: str, enc: str) -> None:
    assert encode_path(raw) == (text, enc)
    assert decode_path(text, enc) == raw


# ---------------------------------------------------------------------------- parsing


def test_parse_round_trip() -> None:
    m = sample(flags=("not-media", "unattributed"))
    parsed = parse_manifest(m.canonical())
    assert parsed == m
    assert parsed.canonical() == m.canonical()
    assert parsed.recorded_start is not None
    assert parsed.recorded_start.utcoffset() == timedelta(0)


def test_parse_round_trip_nulls() -> None:
    m = sample(
        device_id=None,
        officer_id=None,
        recorded_start=None,
        recorded_end=None,
        media=None,
        flags=(),
    )
    assert parse_manifest(m.canonical()) == m


@given(
    size=st.integers(min_value=0, max_value=2**53 - 1),  # RFC 8785: exact integers only
    officer=st.none() | st.text(max_size=20),
    flags=st.lists(st.sampled_from(["zero-byte", "not-media", "unattributed"]), unique=True),
    start=st.none()
    | st.datetimes(
        min_value=datetime(1000, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
    ),
)
def test_parse_round_trip_property(
    size: int, officer: str | None, flags: list[str], start: datetime | None
) -> None:
    m = sample(
        size=size,
        officer_id=officer,
        flags=tuple(sorted(flags)),
        recorded_start=start,
        recorded_end=None,
    )
    assert parse_manifest(m.canonical()) == m


def test_round_trip_year_before_1000() -> None:
    """A device clock can be set to anything; a time that was signed must parse back
    (format_utc must write four year digits, as RFC 3339 requires)."""
    start = datetime(999, 1, 1, tzinfo=UTC)
    m = sample(recorded_start=start, recorded_end=None)
    assert json.loads(m.canonical())["recorded_start"] == "0999-01-01T00:00:00Z"
    assert parse_manifest(m.canonical()) == m


def _obj(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(sample().canonical())
    obj.update(changes)
    return obj


def _bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"\xff\xfe{}",
        b"[]",
        b'"bwc.manifest/1"',
        b"null",
        b"{}",
        b'{"schema":"bwc.manifest/1"}',
    ],
    ids=["empty", "text", "not-utf8", "array", "string", "null", "empty-object", "schema-only"],
)
def test_malformed_bytes(data: bytes) -> None:
    with pytest.raises(VerificationError, match="malformed manifest"):
        parse_manifest(data)


@pytest.mark.parametrize("key", sorted(json.loads(sample().canonical())))
def test_each_missing_key(key: str) -> None:
    obj = _obj()
    del obj[key]
    with pytest.raises(VerificationError, match="malformed manifest"):
        parse_manifest(_bytes(obj))


@pytest.mark.parametrize(
    "changes",
    [
        {"schema": "bwc.manifest/2"},
        {"schema": None},
        {"sha256": SHA.upper()},
        {"sha256": SHA[:-1]},
        {"sha256": SHA + "0"},
        {"sha256": 5},
        {"size": -1},
        {"size": "12"},
        {"size": 1.0},
        {"recorded_start": "yesterday"},
        {"recorded_start": "2026-10-15T01:30:00"},  # no zone
        {"recorded_end": "2026-13-01T00:00:00Z"},
        {"ingested_at": "2026-10-15"},
        {"ingested_at": "2026-10-15T10:00:00"},
        {"flags": 5},
    ],
    ids=lambda c: "-".join(f"{k}={v!r}" for k, v in c.items()),
)
def test_bad_values(changes: dict[str, Any]) -> None:
    with pytest.raises(VerificationError, match="malformed manifest"):
        parse_manifest(_bytes(_obj(**changes)))


@pytest.mark.parametrize(
    "changes",
    [
        {"ingested_at": None},
        {"ingested_at": 1760522400},
        {"recorded_start": 1760522400},
        {"recorded_end": ["2026-10-15T01:30:00Z"]},
        {"size": True},
        {"flags": "not-media"},
        {"flags": [1, 2]},
        {"path": 5},
        {"path_encoding": "latin-1"},
        {"station_id": None},
        {"key_id": None},
        {"device_id": 42},
        {"media": "mp4"},
    ],
    ids=lambda c: "-".join(f"{k}={v!r}" for k, v in c.items()),
)
def test_wrong_types_are_malformed(changes: dict[str, Any]) -> None:
    """A manifest row edited in the catalog must be reported as malformed (VerificationError,
    which `bwc verify` turns into a failed check), never crash with another exception and
    never be coerced into a different value."""
    with pytest.raises(VerificationError, match="malformed manifest"):
        parse_manifest(_bytes(_obj(**changes)))


# ---------------------------------------------------------------------------- recorded_end


def test_recorded_end() -> None:
    start = datetime(2026, 10, 15, 1, 30, tzinfo=UTC)
    assert recorded_end(start, {"duration_ms": 1500}) == start + timedelta(seconds=1.5)
    assert recorded_end(start, {"duration_ms": None}) is None
    assert recorded_end(start, None) is None
    assert recorded_end(start, {}) is None
    assert recorded_end(None, {"duration_ms": 1500}) is None


def test_canonical_json_matches_the_manifest_bytes() -> None:
    m = sample()
    assert canonical_json(m.to_json()) == m.canonical()


# ---------------------------------------------------------------------------- fast canonical form

_json_leaf = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**60), max_value=2**60) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(_json_leaf)
@example(2**53 - 1)
@example(2**53)
@example(-(2**53))
@example({"\U0001f600": None, "\ufffd": None})
@example({"\x7f\u2028": '\x00\x1f\\"', "b": [True, False, None]})
def test_fast_canonical_form_equals_rfc8785(value: object) -> None:
    """The fast path (json with sorted keys) writes exactly what the RFC 8785 reference
    writes, for every value without floats; what the reference refuses is refused."""
    import rfc8785

    try:
        want = bytes(rfc8785.dumps(value))
    except Exception as e:  # whatever the reference refuses
        with pytest.raises(type(e)):
            canonical_json(value)
        return
    assert canonical_json(value) == want


def test_fast_canonical_form_falls_back_where_it_would_differ() -> None:
    import rfc8785

    # keys ordered by UTF-16 code units differ from code point order above U+D800
    value = {"\U0001f600": 1, "\ufb01": 2, "a": [2**53 - 1, -(2**53 - 1)]}
    with pytest.raises(ValueError):
        canonical_json({"n": 2**53})
    assert canonical_json(value) == bytes(rfc8785.dumps(value))
    with pytest.raises(TypeError):
        canonical_json({"x": [1.5]})


# ---------------------------------------------------------------------------- event leaves

_text = st.text(max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**53 - 1),
    st.sampled_from(["ingested", "viewed", "key-rotated"]),
    _text,
    _text,
    st.one_of(st.none(), st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)),
    st.dictionaries(st.text(max_size=6), _json_leaf, max_size=4),
    st.datetimes(timezones=st.just(UTC)),
)
def test_event_leaf_is_the_canonical_json_of_the_event(
    index: int, kind: str, actor: str, station: str, item: str | None, details: dict, at: datetime
) -> None:
    """The leaf assembled around its index (leaf_parts) is byte for byte the RFC 8785 form
    of the whole event, and row_matches_leaf recognises the row that wrote it."""
    import rfc8785

    from bwc.evidence.events import NewEvent, decode_leaf, event_leaf, row_matches_leaf
    from bwc.evidence.timefmt import format_utc

    ev = NewEvent(kind, at, actor, station, item, details)
    whole = {
        "v": 1,
        "index": index,
        "kind": kind,
        "at": format_utc(at),
        "actor": actor,
        "station": station,
        "item": item,
        "details": details,
    }
    try:
        want = bytes(rfc8785.dumps(whole))
    except Exception as e:  # whatever the reference refuses
        with pytest.raises(type(e)):
            event_leaf(index, ev)
        return
    leaf = event_leaf(index, ev)
    assert leaf == want
    assert decode_leaf(leaf).index == index
    assert row_matches_leaf(leaf, index, kind, format_utc(at), actor, station, item)


def test_manifest_nested_past_the_stack_is_malformed_not_a_crash() -> None:
    """A tampered manifest (catalog row or store object) nested deeper than the recursion
    limit is reported as malformed (VerificationError), not a RecursionError (exit 10)."""
    deep = b'{"media": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(VerificationError, match="nested too deeply"):
        parse_manifest(deep)
    assert not is_canonical(deep)
