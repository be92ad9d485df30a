"""A dock receipt (交接单): what was taken off one docked camera, and whether its card may be
cleared. Pure: a dock session's files (its ingest jobs) and the catalog's facts about the
items they became in; a ``Receipt`` out, in JSON (UTC) and in words (local time, zh or en).

Counting: one line per file on the camera (its relative path); when a file was taken twice
in one session (it changed while docked), its latest job counts. A file is *safe* once its
item is in the catalog (state committed or released: stored, read back, signed, logged),
whether new or seen again (the same bytes were already evidence). Files matching an ignore
pattern are counted apart and are not files found. Every other file is *not safe*, with
why: failed (the reason), failed and acknowledged (`bwc ack`: a person accepted that it is
not taken; still not safe, the card holds its only copy), still being taken (its step), or
abandoned (the camera left before it was copied).

``Tally`` is the per-dock-session counter set (the daemon's live view can show the same).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import Any, Literal

from bwc.evidence.timefmt import format_local, format_utc

Lang = Literal["zh", "en"]

SAFE_STATES = frozenset({"committed", "released"})
# the daemon's ends that are not safe; any other state is still being taken
_NOT_SAFE_ENDS = frozenset({"failed", "abandoned", "acknowledged"})
# a logged receipt names at most this many files that are not safe (the event stays small;
# `bwc receipt` recomputes the whole list)
LOGGED_NAMES = 50
LINE_NAMES = 10  # and a line of the daemon's log, at most this many


@dataclass(frozen=True)
class FileJob:
    """One ingest job of a dock session, as the receipt needs it."""

    id: int
    path: str  # the file's path on the camera (manifest text: non-UTF-8 bytes percent-encoded)
    state: str
    outcome: str | None = None  # "ingested" or "seen-again" once verified
    size: int | None = None
    reason: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class ItemFacts:
    """What the catalog says of an item a file became (or already was)."""

    officer_id: str | None
    recorded_start: datetime | None
    recorded_end: datetime | None


@dataclass(frozen=True)
class NotSafe:
    path: str
    state: str
    why: str


@dataclass(frozen=True)
class Tally:
    """A dock session's counters. ``committed`` = ``new`` + ``seen_again`` (safe)."""

    found: int = 0
    new: int = 0
    seen_again: int = 0
    failed: int = 0
    ignored: int = 0
    in_progress: int = 0
    abandoned: int = 0
    acknowledged: int = 0  # failures accepted with `bwc ack` (not safe either)
    bytes_found: int = 0
    bytes_committed: int = 0
    last_job: int = 0  # the highest job id counted

    @property
    def committed(self) -> int:
        return self.new + self.seen_again

    @property
    def settled(self) -> bool:
        """Nothing of the session is still being taken."""
        return self.in_progress == 0


def latest_per_file(jobs: Iterable[FileJob]) -> list[FileJob]:
    """Each file's latest job (a file that changed while docked was taken again)."""
    latest: dict[str, FileJob] = {}
    for j in sorted(jobs, key=lambda j: j.id):
        latest[j.path] = j
    return sorted(latest.values(), key=lambda j: j.path)


def place(state: str, outcome: str | None) -> str:
    """Which counter a file's latest job counts in: ``ignored``, ``new``, ``seen_again``,
    ``failed``, ``abandoned``, ``acknowledged`` or ``in_progress`` (the one rule of the
    receipt and the daemon's live view)."""
    if state == "ignored":
        return "ignored"
    if state in SAFE_STATES:
        return "seen_again" if outcome == "seen-again" else "new"
    if state in _NOT_SAFE_ENDS:
        return state
    return "in_progress"


def tally(jobs: Iterable[FileJob]) -> Tally:
    """The counters of one dock session's jobs."""
    all_jobs = list(jobs)
    c: dict[str, int] = dict.fromkeys(
        (
            "found",
            "new",
            "seen_again",
            "failed",
            "ignored",
            "in_progress",
            "abandoned",
            "acknowledged",
        ),
        0,
    )
    bytes_found = bytes_committed = 0
    for j in latest_per_file(all_jobs):
        where = place(j.state, j.outcome)
        c[where] += 1
        if where == "ignored":
            continue
        c["found"] += 1
        bytes_found += j.size or 0
        if where in ("new", "seen_again"):
            bytes_committed += j.size or 0
    return Tally(
        **c,
        bytes_found=bytes_found,
        bytes_committed=bytes_committed,
        last_job=max((j.id for j in all_jobs), default=0),
    )


def not_safe(jobs: Iterable[FileJob]) -> list[NotSafe]:
    """The files found that are not safe, and why, in path order."""
    out = []
    for j in latest_per_file(jobs):
        if j.state in SAFE_STATES or j.state == "ignored":
            continue
        if j.state == "failed":
            why = f"failed: {j.reason or 'no reason recorded'}"
        elif j.state == "acknowledged":
            why = f"failed, acknowledged (bwc ack): {j.reason or 'no reason recorded'}"
        elif j.state == "abandoned":
            why = "the camera left before it was copied"
        else:
            why = f"still being taken ({j.state})"
        out.append(NotSafe(j.path, j.state, why))
    return out


Moment = Literal["committed", "undocked", "now"]


@dataclass(frozen=True)
class Receipt:
    session: int
    station_id: str
    mount: str
    device_id: str | None
    usb_serial: str | None
    docked_at: datetime
    undocked_at: datetime | None
    tally: Tally
    officers: tuple[str, ...]
    first_recorded: datetime | None
    last_recorded: datetime | None
    not_safe: tuple[NotSafe, ...] = ()
    # when it was drawn up: all files committed, the camera undocked, or on demand
    moment: Moment = "now"
    not_safe_more: int = 0  # files not safe beyond those named (a logged receipt)

    @property
    def safe(self) -> bool:
        """Every file found is in the catalog (and there was at least one)."""
        t = self.tally
        return t.found > 0 and t.committed == t.found

    def verdict(self, lang: Lang = "en") -> str:
        t = self.tally
        if t.found == 0:
            return "记录仪上没有找到文件" if lang == "zh" else "no files found on the camera"
        if self.safe:
            if lang == "zh":
                return f"全部 {t.found} 个文件已安全入库 — 可以清空存储卡"
            return f"all {t.found} file{_s(t.found)} safe — the card may be cleared"
        n = t.found - t.committed
        names = "; ".join(f"{x.path} ({x.why})" for x in self.not_safe)
        more = self.not_safe_more
        if more:
            names += f"; {more} more" if lang == "en" else f"；另有 {more} 个"
        if lang == "zh":
            return f"{n} 个文件未安全入库，不得清空存储卡：{names}"
        return f"{n} file{_s(n)} NOT safe — do not clear the card: {names}"

    def to_json(self) -> dict[str, Any]:
        return receipt_json(self)

    def for_log(self, names: int = LOGGED_NAMES) -> Receipt:
        """This receipt naming at most ``names`` files that are not safe (a custody event,
        a log line), and how many more there are."""
        if len(self.not_safe) <= names:
            return self
        return replace(
            self,
            not_safe=self.not_safe[:names],
            not_safe_more=self.not_safe_more + len(self.not_safe) - names,
        )


def receipt_json(r: Receipt) -> dict[str, Any]:
    """The receipt as data (times UTC): what `bwc receipt --json` prints and the custody
    events log (their names list cut at ``LOGGED_NAMES``)."""
    t = r.tally
    return {
        "dock_session": r.session,
        "moment": r.moment,
        "station_id": r.station_id,
        "mount": r.mount,
        "device_id": r.device_id,
        "usb_serial": r.usb_serial,
        "docked_at": format_utc(r.docked_at),
        "undocked_at": format_utc(r.undocked_at) if r.undocked_at else None,
        "officers": list(r.officers),
        "files_found": t.found,
        "committed": t.committed,
        "new": t.new,
        "seen_again": t.seen_again,
        "failed": t.failed,
        "abandoned": t.abandoned,
        "acknowledged": t.acknowledged,
        "in_progress": t.in_progress,
        "ignored": t.ignored,
        "bytes": t.bytes_committed,
        "bytes_found": t.bytes_found,
        "first_recorded": format_utc(r.first_recorded) if r.first_recorded else None,
        "last_recorded": format_utc(r.last_recorded) if r.last_recorded else None,
        "safe": r.safe,
        "not_safe": [{"path": x.path, "state": x.state, "why": x.why} for x in r.not_safe],
        "not_safe_more": r.not_safe_more,
        "verdict": r.verdict("en"),
        "last_job": t.last_job,
    }


def build(
    *,
    session: int,
    station_id: str,
    mount: str,
    device_id: str | None,
    usb_serial: str | None,
    docked_at: datetime,
    undocked_at: datetime | None,
    jobs: Sequence[FileJob],
    items: Mapping[str, ItemFacts],
    moment: Moment = "now",
) -> Receipt:
    """The receipt of a dock session from its jobs and the facts of the items its safe
    files are (``items``: sha256 -> facts; officer as the catalog holds it now, i.e. after
    any `bwc attribute`)."""
    safe = [j.sha256 for j in latest_per_file(jobs) if j.state in SAFE_STATES and j.sha256]
    facts = [items[sha] for sha in safe if sha in items]
    starts = [f.recorded_start for f in facts if f.recorded_start is not None]
    ends = [f.recorded_end or f.recorded_start for f in facts if f.recorded_start is not None]
    return Receipt(
        session=session,
        station_id=station_id,
        mount=mount,
        device_id=device_id,
        usb_serial=usb_serial,
        docked_at=docked_at,
        undocked_at=undocked_at,
        tally=tally(jobs),
        officers=tuple(sorted({f.officer_id for f in facts if f.officer_id})),
        first_recorded=min(starts) if starts else None,
        last_recorded=max(e for e in ends if e is not None) if ends else None,
        not_safe=tuple(not_safe(jobs)),
        moment=moment,
    )


# ---------------------------------------------------------------------------- words

_WORDS: dict[str, dict[Lang, str]] = {
    "title": {"en": "Dock receipt", "zh": "记录仪数据交接单"},
    "session": {"en": "dock session", "zh": "接入会话"},
    "station": {"en": "station", "zh": "采集工作站"},
    "camera": {"en": "camera", "zh": "记录仪"},
    "usb": {"en": "USB serial", "zh": "USB序列号"},
    "officers": {"en": "officer", "zh": "警号"},
    "docked": {"en": "docked", "zh": "接入时间"},
    "undocked": {"en": "undocked", "zh": "拔出时间"},
    "still": {"en": "still docked", "zh": "仍在接入"},
    "files": {"en": "files", "zh": "文件"},
    "found": {"en": "found", "zh": "发现"},
    "committed": {"en": "committed", "zh": "已入库"},
    "new": {"en": "new", "zh": "新增"},
    "seen_again": {"en": "seen again", "zh": "重复"},
    "failed": {"en": "failed", "zh": "失败"},
    "abandoned": {"en": "abandoned", "zh": "未复制"},
    "acknowledged": {"en": "acknowledged", "zh": "已确认失败"},
    "in_progress": {"en": "in progress", "zh": "处理中"},
    "ignored": {"en": "ignored", "zh": "已忽略"},
    "bytes": {"en": "bytes", "zh": "数据量"},
    "recorded": {"en": "recorded", "zh": "录制时间"},
    "verdict": {"en": "verdict", "zh": "结论"},
    "unknown": {"en": "unknown", "zh": "未知"},
    "none": {"en": "none", "zh": "无"},
    "moment_committed": {"en": "all files in", "zh": "全部处理完毕"},
    "moment_undocked": {"en": "at undock", "zh": "拔出时"},
    "moment_now": {"en": "recomputed now", "zh": "当前重新计算"},
    # the logged receipt beside the one recomputed now (terminal and page)
    "logged": {"en": "logged", "zh": "日志记录"},
    "not_logged": {
        "en": "no receipt of this session in the custody log yet",
        "zh": "保管日志中尚无此会话的交接单",
    },
    "matches": {
        "en": "the logged receipt matches the one recomputed now",
        "zh": "日志中的交接单与当前重新计算的一致",
    },
    "differs": {
        "en": "the logged receipt differs from the one recomputed now:",
        "zh": "日志中的交接单与当前重新计算的不同：",
    },
}

# a compared field's name in the differences (en: the receipt's JSON key, as logged)
_FIELD_ZH = {
    "device_id": "记录仪",
    "usb_serial": "USB序列号",
    "officers": "警号",
    "files_found": "发现文件",
    "committed": "已入库",
    "new": "新增",
    "seen_again": "重复",
    "failed": "失败",
    "abandoned": "未复制",
    "acknowledged": "已确认失败",
    "in_progress": "处理中",
    "ignored": "已忽略",
    "bytes": "数据量（字节）",
    "first_recorded": "最早录制（UTC）",
    "last_recorded": "最晚录制（UTC）",
    "safe": "可清空存储卡",
}


def word(key: str, lang: Lang) -> str:
    return _WORDS[key][lang]


def size_text(n: int) -> str:
    """Bytes for people: '12.3 MB' (and the exact count beside it where it matters)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # pragma: no cover - the loop always returns


def short_state(t: Tally) -> str:
    """A session's state in a few words, for a list: 'all 6 safe', '2 NOT safe', '3 being
    taken', 'no files'."""
    if t.in_progress:
        return f"{t.in_progress} being taken"
    if t.found == 0:
        return "no files"
    if t.committed == t.found:
        return f"all {t.found} safe"
    return f"{t.found - t.committed} NOT safe"


def counts_text(t: Tally, lang: Lang = "en") -> str:
    """'found 6, committed 6 (new 4, seen again 2), failed 0, ignored 1' (zh: '发现 6，已入库
    6（新增 4，重复 2），失败 0，已忽略 1')."""
    sep, left, right = ("，", "（", "）") if lang == "zh" else (", ", " (", ")")
    text = (
        f"{word('found', lang)} {t.found}{sep}{word('committed', lang)} {t.committed}{left}"
        f"{word('new', lang)} {t.new}{sep}{word('seen_again', lang)} {t.seen_again}{right}{sep}"
        f"{word('failed', lang)} {t.failed}"
    )
    for key, n in (
        ("acknowledged", t.acknowledged),
        ("abandoned", t.abandoned),
        ("in_progress", t.in_progress),
    ):
        if n:
            text += f"{sep}{word(key, lang)} {n}"
    return text + f"{sep}{word('ignored', lang)} {t.ignored}"


def recorded_text(r: Receipt, tz: tzinfo, lang: Lang = "en") -> str:
    if r.first_recorded and r.last_recorded:
        return f"{format_local(r.first_recorded, tz)} – {format_local(r.last_recorded, tz)}"
    return word("unknown", lang)


def fields(r: Receipt, tz: tzinfo, lang: Lang = "en") -> list[tuple[str, str]]:
    """The receipt as (label, value) pairs for people, the verdict last: local times with
    their offset. Values are raw text (ids, names): the caller escapes them for its medium."""
    t = r.tally
    unknown = word("unknown", lang)
    return [
        (word("session", lang), f"{r.session} ({r.mount})"),
        (word("station", lang), r.station_id),
        (word("camera", lang), r.device_id or unknown),
        (word("usb", lang), r.usb_serial or unknown),
        (word("officers", lang), ", ".join(r.officers) or unknown),
        (word("docked", lang), format_local(r.docked_at, tz)),
        (
            word("undocked", lang),
            format_local(r.undocked_at, tz) if r.undocked_at else word("still", lang),
        ),
        (word("files", lang), counts_text(t, lang)),
        (word("bytes", lang), f"{size_text(t.bytes_committed)} ({t.bytes_committed} B)"),
        (word("recorded", lang), recorded_text(r, tz, lang)),
        (word("verdict", lang), r.verdict(lang)),
    ]


def log_line(r: Receipt, tz: tzinfo) -> str:
    """The receipt in one line of the daemon's text log (English, local times; at most
    ``LINE_NAMES`` files not safe named)."""
    r = r.for_log(LINE_NAMES)
    moment = {"committed": "all files in", "undocked": "undocked", "now": "now"}[r.moment]
    return (
        f"receipt ({moment}): session {r.session}, camera {r.device_id or '?'}"
        + (f" (USB serial {r.usb_serial})" if r.usb_serial else "")
        + f", officer {', '.join(r.officers) or '?'}; "
        f"{counts_text(r.tally)}; {size_text(r.tally.bytes_committed)}; "
        f"recorded {recorded_text(r, tz)}; {r.verdict('en')}"
    )


# the fields a logged receipt and a recomputed one are compared by (not the names of files
# not safe: a logged receipt names at most LOGGED_NAMES)
COMPARED = (
    "device_id",
    "usb_serial",
    "officers",
    "files_found",
    "committed",
    "new",
    "seen_again",
    "failed",
    "abandoned",
    "acknowledged",
    "in_progress",
    "ignored",
    "bytes",
    "first_recorded",
    "last_recorded",
    "safe",
)


def differences(logged: Mapping[str, Any], now: Mapping[str, Any], lang: Lang = "en") -> list[str]:
    """How a logged receipt differs from the one recomputed now ('committed: logged 4,
    now 6'; zh '已入库：日志 4，现在 6'); empty when they agree."""
    return [
        f"{k}: logged {_show(logged.get(k), lang)}, now {_show(now.get(k), lang)}"
        if lang == "en"
        else f"{_FIELD_ZH[k]}：日志 {_show(logged.get(k), lang)}，现在 {_show(now.get(k), lang)}"
        for k in COMPARED
        # a receipt logged before `bwc ack` existed has no acknowledged count: none then
        if logged.get(k, 0 if k == "acknowledged" else None) != now.get(k)
    ]


def _show(v: Any, lang: Lang) -> str:
    if isinstance(v, list):
        return ",".join(str(x) for x in v) or word("none", lang)
    if isinstance(v, bool) and lang == "zh":
        return "是" if v else "否"
    return word("none", lang) if v is None else str(v)


def logged_text(
    kind: str, at: str, actor: str, idx: int, proven_in: int | None, lang: Lang = "en"
) -> str:
    """Where the logged receipt is: its event, when (``at``, local text), by whom, its log
    index and whether a signed checkpoint covers it yet."""
    if lang == "zh":
        where = (
            f"已由 {proven_in} 条事件的签名日志证明"
            if proven_in is not None
            else "尚未被签名检查点覆盖"
        )
        return f"`{kind}` 事件，{at}，记录人 {actor}（日志序号 {idx}，{where}）"
    where_en = (
        f"in the signed log of {proven_in} events"
        if proven_in is not None
        else "not yet covered by a signed checkpoint"
    )
    return f"`{kind}` event at {at} by {actor} (log index {idx}, {where_en})"


def _s(n: int) -> str:
    return "" if n == 1 else "s"
