"""Settings: defaults, BWC_* overrides, every invalid setting named, the rendered default file."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bwc.config.settings import (
    _DEFAULT_IGNORE,
    CONFIG_NAME,
    DaemonSettings,
    Settings,
    TimestampSettings,
    default_catalog_url,
    default_store_url,
    load_settings,
    render_default_config,
    resolve_home,
    validate,
)
from bwc.errors import HomeError

pytestmark = pytest.mark.unit


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


def write_config(home: Path, text: str) -> None:
    (home / CONFIG_NAME).write_text(text, encoding="utf-8")


def invalid(home: Path, raw: dict[str, Any]) -> str:
    with pytest.raises(HomeError) as info:
        validate(home, raw)
    assert info.value.exit_code == 4
    return str(info.value)


# ---------------------------------------------------------------------------- defaults


def test_defaults(home: Path) -> None:
    s = validate(home, {"station_id": "st-01"})
    assert s == Settings(
        home=home,
        station_id="st-01",
        catalog=f"sqlite:///{home}/catalog.sqlite",
        store=home.joinpath("store").as_uri(),
        log_origin="bwc/st-01",
        timezone="Asia/Shanghai",
        ignore=_DEFAULT_IGNORE,
        verify_workers=os.cpu_count() or 1,
    )
    assert s.keys_dir == home / "keys"
    assert s.spool_dir == home / "spool"
    assert str(s.tz) == "Asia/Shanghai"
    assert s.catalog == default_catalog_url(home)
    assert s.store == default_store_url(home)
    assert s.store.startswith("file:///")


def test_default_ignore_covers_os_junk() -> None:
    for name in ("System Volume Information", "$RECYCLE.BIN", "Thumbs.db", ".DS_Store", "._*"):
        assert name in _DEFAULT_IGNORE


def test_station_id_is_required(home: Path) -> None:
    assert "station_id:" in invalid(home, {})


def test_rendered_default_config_parses_and_validates(home: Path) -> None:
    text = render_default_config("st-42")
    raw = tomllib.loads(text)
    assert raw["station_id"] == "st-42"
    write_config(home, text)
    s = load_settings(home, env={})
    assert s == validate(home, {"station_id": "st-42"})


def test_rendered_default_config_documents_every_setting() -> None:
    text = render_default_config("st-42")
    for name in Settings.model_fields:
        if name == "home":
            continue
        if name == "daemon":
            assert re.search(r"^\[daemon\]$", text, re.MULTILINE)
            for field in DaemonSettings.model_fields:
                assert re.search(rf"^#? ?{field} = ", text, re.MULTILINE), field
            continue
        if name == "profiles":
            assert re.search(r"^# \[\[profiles\]\]$", text, re.MULTILINE)
            continue
        if name in ("s3", "retention", "audit"):  # tables, tested in their own tests
            assert re.search(rf"^\[{name}\]$", text, re.MULTILINE), name
            continue
        if name == "timestamp":
            assert re.search(r"^\[timestamp\]$", text, re.MULTILINE)
            for field in TimestampSettings.model_fields:
                assert re.search(rf"^{field} = ", text, re.MULTILINE), field
            continue
        assert re.search(rf"^#? ?{name} = ", text, re.MULTILINE), name


def test_rendered_default_config_is_stable() -> None:
    assert render_default_config("a") == render_default_config("a")
    assert render_default_config("a") != render_default_config("b")


# ---------------------------------------------------------------------------- environment


def test_env_overrides(home: Path) -> None:
    write_config(home, render_default_config("st-file"))
    env = {
        "BWC_STATION_ID": "st-env",
        "BWC_CATALOG": "postgresql+psycopg://bwc@db/bwc",
        "BWC_STORE": "s3://evidence/station-07",
        "BWC_LOG_ORIGIN": "city.example/bwc/st-env",
        "BWC_TIMEZONE": "UTC",
        "BWC_VERIFY_WORKERS": "3",
        "BWC_IGNORE": "Thumbs.db::._*:",
        "UNRELATED": "x",
    }
    s = load_settings(home, env=env)
    assert s.station_id == "st-env"
    assert s.catalog == "postgresql+psycopg://bwc@db/bwc"
    assert s.store == "s3://evidence/station-07"
    assert s.log_origin == "city.example/bwc/st-env"
    assert s.timezone == "UTC"
    assert s.verify_workers == 3
    assert s.ignore == ("Thumbs.db", "._*")


def test_env_wins_over_file(home: Path) -> None:
    write_config(home, 'station_id = "st-file"\ntimezone = "Europe/Berlin"\nverify_workers = 2\n')
    assert load_settings(home, env={}).timezone == "Europe/Berlin"
    assert load_settings(home, env={}).verify_workers == 2
    s = load_settings(home, env={"BWC_TIMEZONE": "UTC", "BWC_VERIFY_WORKERS": "5"})
    assert s.timezone == "UTC"
    assert s.verify_workers == 5


def test_default_log_origin_follows_station_id_override(home: Path) -> None:
    write_config(home, 'station_id = "st-file"\n')
    assert load_settings(home, env={"BWC_STATION_ID": "st-env"}).log_origin == "bwc/st-env"


def test_process_environment_is_the_default(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(home, 'station_id = "st-file"\n')
    monkeypatch.setenv("BWC_TIMEZONE", "UTC")
    assert load_settings(home).timezone == "UTC"


@pytest.mark.parametrize(
    ("var", "value", "name"),
    [
        ("BWC_VERIFY_WORKERS", "-1", "verify_workers"),
        ("BWC_VERIFY_WORKERS", "four", "verify_workers"),
        ("BWC_VERIFY_WORKERS", "", "verify_workers"),
        ("BWC_TIMEZONE", "Mars/Base", "timezone"),
        ("BWC_STORE", "ftp://x/y", "store"),
        ("BWC_CATALOG", "mysql://db", "catalog"),
        ("BWC_STATION_ID", "two words", "station_id"),
        ("BWC_LOG_ORIGIN", "a\nb", "log_origin"),
    ],
)
def test_invalid_env_value_is_named(home: Path, var: str, value: str, name: str) -> None:
    write_config(home, 'station_id = "st-file"\n')
    with pytest.raises(HomeError) as info:
        load_settings(home, env={var: value})
    assert f"{name}:" in str(info.value)
    assert "BWC_" in str(info.value)  # the hint says where to look


# ---------------------------------------------------------------------------- invalid values


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("station_id", ""),
        ("station_id", "has space"),
        ("station_id", "-leading-dash"),
        ("station_id", "x" * 65),
        ("station_id", "st/07"),
        ("station_id", "站点"),
        ("station_id", 7),
        ("station_id", "st-01\n"),
        ("catalog", "mysql://db/bwc"),
        ("catalog", "sqlite://relative.db"),
        ("catalog", 5),
        ("store", "ftp://host/x"),
        ("store", "file://relative/store"),
        ("store", "/var/lib/bwc/store"),
        ("store", ["s3://a"]),
        ("log_origin", ""),
        ("log_origin", "two\nlines"),
        ("log_origin", 5),
        ("timezone", "Mars/Base"),
        ("timezone", ""),
        ("timezone", "America"),
        ("timezone", "../../etc/passwd"),
        ("timezone", "/etc/localtime"),
        ("timezone", 8),
        ("ignore", "Thumbs.db"),
        ("ignore", [""]),
        ("ignore", ["ok", 3]),
        ("verify_workers", -1),
        ("verify_workers", "x"),
        ("verify_workers", None),
        ("verify_workers", 2.5),
        ("verify_workers", True),
    ],
    ids=lambda v: repr(v)[:30],
)
def test_each_invalid_field_is_named(home: Path, name: str, value: Any) -> None:
    raw: dict[str, Any] = {"station_id": "st-01", "log_origin": "bwc/st-01", name: value}
    message = invalid(home, raw)
    assert message.startswith("invalid settings: ")
    named = re.findall(r"(?:^invalid settings: |; )([a-z_]+): ", message)
    assert named == [name], message


def test_all_problems_reported_at_once(home: Path) -> None:
    message = invalid(
        home,
        {
            "station_id": "bad id",
            "timezone": "Mars/Base",
            "verify_workers": -2,
            "store": "ftp://x",
            "colour": "blue",
        },
    )
    for name in ("station_id:", "timezone:", "verify_workers:", "store:", "colour:"):
        assert name in message
    assert "Mars/Base" in message
    assert "-2" in message


def test_unknown_key_is_reported(home: Path) -> None:
    message = invalid(home, {"station_id": "st-01", "verfiy_workers": 2})
    assert "verfiy_workers: unknown setting" in message


def test_sections_of_later_features_are_tolerated(home: Path) -> None:
    raw = {"station_id": "st-01", "profiles": [], "s3": {}, "audit": {}}
    assert validate(home, raw).station_id == "st-01"


@pytest.mark.parametrize(
    ("daemon", "named"),
    [
        ({"x": 1}, "daemon.x"),
        ({"workers": 0}, "daemon.workers"),
        ({"workers": 1.5}, "daemon.workers"),
        ({"stable_seconds": -1}, "daemon.stable_seconds"),
        ({"wipe_after_verify": "yes"}, "daemon.wipe_after_verify"),
        ({"docks": "/media/bwc"}, "daemon.docks"),
    ],
)
def test_invalid_daemon_settings_are_named(home: Path, daemon: dict[str, Any], named: str) -> None:
    with pytest.raises(HomeError, match=re.escape(named)):
        validate(home, {"station_id": "st-01", "daemon": daemon})


def test_daemon_settings_parse(home: Path) -> None:
    s = validate(
        home,
        {
            "station_id": "st-01",
            "daemon": {"docks": ["/media/bwc"], "stable_seconds": 1, "workers": 3},
        },
    )
    assert s.daemon.docks == ("/media/bwc",)
    assert s.daemon.stable_seconds == 1.0
    assert s.daemon.workers == 3
    assert s.daemon.wipe_after_verify is False


def test_profiles_are_kept_as_tables_for_ingest(home: Path) -> None:
    raw = {"name": "p", "pattern": "(?P<who>x)"}  # what a profile means is ingest's business
    assert validate(home, {"station_id": "st-01", "profiles": [raw]}).profiles == (raw,)
    assert "profiles:" in invalid(home, {"station_id": "st-01", "profiles": {"name": "p"}})


@pytest.mark.parametrize("value", [0, 1, 64, "8"])
def test_valid_verify_workers(home: Path, value: Any) -> None:
    s = validate(home, {"station_id": "st-01", "verify_workers": value})
    assert s.verify_workers == (int(value) or os.cpu_count() or 1)


@pytest.mark.parametrize("sid", ["a", "st-07", "A.b_c-9", "9" * 64])
def test_valid_station_ids(home: Path, sid: str) -> None:
    assert validate(home, {"station_id": sid}).station_id == sid


def test_valid_urls(home: Path) -> None:
    s = validate(
        home,
        {
            "station_id": "st-01",
            "catalog": "postgresql+psycopg://bwc@db/bwc",
            "store": "s3://evidence/prefix",
        },
    )
    assert s.catalog.startswith("postgresql")
    assert s.store == "s3://evidence/prefix"


# ---------------------------------------------------------------------------- the file


def test_missing_config_says_run_init(home: Path) -> None:
    with pytest.raises(HomeError, match="bwc init"):
        load_settings(home, env={})


def test_missing_home_says_run_init(tmp_path: Path) -> None:
    with pytest.raises(HomeError, match="bwc init"):
        load_settings(tmp_path / "nowhere", env={})


@pytest.mark.parametrize(
    "content",
    [b'station_id = "st\n', b"station_id = \n", b"[[[", b'station_id = "\xff"\n'],
    ids=["unterminated", "no-value", "brackets", "not-utf8"],
)
def test_unreadable_config_is_a_home_error(home: Path, content: bytes) -> None:
    (home / CONFIG_NAME).write_bytes(content)
    with pytest.raises(HomeError, match="cannot read") as info:
        load_settings(home, env={})
    assert CONFIG_NAME in str(info.value)


def test_config_is_a_folder(home: Path) -> None:
    (home / CONFIG_NAME).mkdir()
    with pytest.raises(HomeError):
        load_settings(home, env={})


def test_invalid_value_in_file_is_named_with_the_file(home: Path) -> None:
    write_config(home, 'station_id = "st-01"\ntimezone = "Mars/Base"\n')
    with pytest.raises(HomeError) as info:
        load_settings(home, env={})
    assert "timezone: unknown time zone 'Mars/Base'" in str(info.value)
    assert str(home / CONFIG_NAME) in str(info.value)


# ---------------------------------------------------------------------------- home


def test_resolve_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert resolve_home("h", env={}) == tmp_path / "h"
    assert resolve_home(None, env={"BWC_HOME": "envhome"}) == tmp_path / "envhome"
    assert resolve_home("flag", env={"BWC_HOME": "envhome"}) == tmp_path / "flag"
    assert resolve_home(None, env={}) == tmp_path / "user" / ".bwc"
    assert resolve_home(None, env={"BWC_HOME": "~/x"}) == tmp_path / "user" / "x"


# ---------------------------------------------------------------------------- tables from env


def test_table_settings_from_the_environment(home: Path) -> None:
    write_config(home, render_default_config("st-file"))
    env = {
        "BWC_AUDIT_MAX_GAP_S": "2",
        "BWC_AUDIT_UPLOAD_LIMIT_H": "48.5",
        "BWC_DAEMON_WORKERS": "4",
        "BWC_DAEMON_WIPE_AFTER_VERIFY": "true",
        "BWC_DAEMON_DOCKS": "/media/bwc:/srv/dock:",
        "BWC_S3_PART_SIZE_MB": "64",
    }
    s = load_settings(home, env=env)
    assert (s.audit.max_gap_s, s.audit.upload_limit_h, s.audit.start_grace_s) == (2.0, 48.5, 60.0)
    assert s.daemon.workers == 4 and s.daemon.wipe_after_verify is True
    assert s.daemon.docks == ("/media/bwc", "/srv/dock")
    assert s.daemon.stable_seconds == 5.0  # the file's value, where the environment is silent
    assert s.s3.part_size_mb == 64


@pytest.mark.parametrize(
    ("var", "value", "name"),
    [
        ("BWC_AUDIT_MAX_GAP_S", "soon", "audit.max_gap_s"),
        ("BWC_AUDIT_MAX_GAP_S", "-1", "audit.max_gap_s"),
        ("BWC_AUDIT_END_GRACE_S", "nan", "audit.end_grace_s"),
        ("BWC_DAEMON_WORKERS", "0", "daemon.workers"),
        ("BWC_DAEMON_WIPE_AFTER_VERIFY", "perhaps", "daemon.wipe_after_verify"),
        ("BWC_S3_CONCURRENCY", "1000", "s3.concurrency"),
    ],
)
def test_invalid_table_env_value_is_named(home: Path, var: str, value: str, name: str) -> None:
    write_config(home, 'station_id = "st-file"\n')
    with pytest.raises(HomeError) as info:
        load_settings(home, env={var: value})
    assert f"{name}:" in str(info.value)


def test_home_is_not_a_setting(home: Path) -> None:
    assert "home: unknown setting" in invalid(home, {"station_id": "st-01", "home": "/x"})
    write_config(home, 'station_id = "st-01"\n')
    other = home.parent / "elsewhere"
    assert load_settings(home, env={"BWC_HOME": str(other)}).home == home


def test_audit_table(home: Path) -> None:
    s = validate(home, {"station_id": "st-01", "audit": {"max_gap_s": 2, "end_grace_s": 30.5}})
    assert (s.audit.max_gap_s, s.audit.end_grace_s, s.audit.start_grace_s) == (2.0, 30.5, 60.0)
    message = invalid(home, {"station_id": "st-01", "audit": {"max_gap_s": True, "x": 1}})
    assert (
        "audit.max_gap_s: must be a number of seconds from 0 to 31622400 (366 days) (got True)"
        in message
    )
    assert "audit.x: unknown setting" in message
