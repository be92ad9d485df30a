"""The human chain-of-custody report of a court bundle (``custody-report.html``, docs/bundle.md).

Pure: plain values in (``ReportData``, filled by the exporter), one self-contained HTML page
out. Nothing is fetched: inline CSS, no script (a Content-Security-Policy forbids any), system
fonts with a CJK-capable fallback list, so the page renders the same offline and prints to an
A4 PDF (``bwc.evidence.bundle.pdf``). Every value from outside bwc (officer and device ids,
file names, actors, the recipient, event details) is untrusted: escaped for HTML, and its
control and bidi characters shown as visible escapes (``bwc.printable``), so a name can
neither inject markup nor make a line read backwards.

Times are shown in the bundle's zone with their UTC offset ("2026-10-15 09:31:00 +08:00").
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from html import escape
from typing import Any, Literal

from bwc.evidence.events import decode_leaf
from bwc.evidence.timefmt import format_local, format_offset, parse_utc, to_local
from bwc.printable import printable

Lang = Literal["zh", "en"]

__all__ = [
    "EVENT_WORDS",
    "Lang",
    "ReportData",
    "ReportEvent",
    "ReportItem",
    "event_words",
    "render_html",
]


@dataclass(frozen=True)
class ReportEvent:
    """One custody event of an item, as logged (``details`` as in the leaf)."""

    index: int
    kind: str
    at: datetime  # UTC (aware)
    actor: str
    station: str
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_leaf(cls, leaf: bytes) -> ReportEvent:
        """The event of one of ``custody.json``'s leaves (the exact logged bytes), so the
        report shows what the bundle proves. ValueError when it is not an event leaf."""
        ev = decode_leaf(leaf)
        return cls(ev.index, ev.kind, ev.at, ev.actor, ev.station_id, ev.details)


@dataclass(frozen=True)
class ReportItem:
    """One exported item: what its manifest says, its verification at export, its events."""

    sha256: str
    file: str  # path in the bundle (items/<sha256>/<name>)
    original_path: str
    size: int
    device_id: str | None
    officer_id: str | None
    recorded_start: datetime | None
    recorded_end: datetime | None
    ingested_at: datetime
    station_id: str
    key_id: str
    media: Mapping[str, Any] | None
    verified: bool
    failures: Sequence[str]
    events: Sequence[ReportEvent]  # ascending by index


@dataclass(frozen=True)
class ReportData:
    """The export as a whole (the fields of bundle.json, plus what people need to read it)."""

    bundle_id: str
    created_at: datetime  # UTC
    station: str
    actor: str
    recipient: str
    lang: Lang
    tz: tzinfo
    timezone_name: str  # the IANA name, e.g. "Asia/Shanghai"
    selection: Mapping[str, Any]
    checkpoint_size: int
    checkpoint_root_b64: str
    keys: Mapping[str, str]  # key id -> SHA-256 fingerprint of its DER SubjectPublicKeyInfo
    timestamp_gen_time: datetime | None
    tsa_url: str | None
    items: Sequence[ReportItem]


# Each custody event kind in words (bwc/evidence/events.py, and the case links of `bwc case`).
# A kind not listed here is shown as it is logged.
EVENT_WORDS: dict[str, dict[Lang, str]] = {
    "ingested": {"zh": "入库", "en": "ingested"},
    "seen-again": {"zh": "重复导入", "en": "seen again (same bytes docked again)"},
    "verified": {"zh": "校验", "en": "verified"},
    "verification-run": {"zh": "批量校验", "en": "verification run"},
    "log-verified": {"zh": "日志校验", "en": "custody log verified"},
    "viewed": {"zh": "查看", "en": "viewed"},
    "exported": {"zh": "导出", "en": "exported"},
    "hold-placed": {"zh": "冻结（法律保留）", "en": "legal hold placed"},
    "hold-released": {"zh": "解除冻结", "en": "legal hold released"},
    "retention-changed": {"zh": "保存期限变更", "en": "retention changed"},
    "deleted-by-policy": {"zh": "按保存策略删除", "en": "deleted by retention policy"},
    "attributed": {"zh": "归属人员变更", "en": "attributed to an officer"},
    "key-rotated": {"zh": "签名密钥轮换", "en": "signing key rotated"},
    "checkpoint": {"zh": "日志检查点", "en": "log checkpoint"},
    "docked": {"zh": "记录仪接入", "en": "camera docked"},
    "undocked": {"zh": "记录仪拔出", "en": "camera undocked"},
    "receipt": {"zh": "数据交接单（全部入库）", "en": "dock receipt (all files in)"},
    "source-wiped": {"zh": "记录仪原文件清除", "en": "source file wiped from the camera"},
    "explained": {"zh": "中断情况说明", "en": "interruption explained"},
    "explanation-reviewed": {"zh": "情况说明审核", "en": "explanation approved or rejected"},
    "audit-input": {"zh": "审计数据导入", "en": "audit input recorded"},
    "case-linked": {"zh": "关联案件", "en": "linked to a case"},
    "case-unlinked": {"zh": "解除案件关联", "en": "unlinked from a case"},
    "ingest-retried": {"zh": "导入失败后重试", "en": "failed file retried"},
    "failure-acknowledged": {"zh": "导入失败已确认", "en": "failed file acknowledged"},
}

# Event detail keys in words; other keys are shown by their logged name.
_DETAIL_WORDS: dict[str, dict[Lang, str]] = {
    "path": {"zh": "路径", "en": "path"},
    "size": {"zh": "大小", "en": "size"},
    "device_id": {"zh": "记录仪", "en": "camera"},
    "officer_id": {"zh": "警号", "en": "officer"},
    "previous_officer_id": {"zh": "原警号", "en": "previous officer"},
    "key_id": {"zh": "签名密钥", "en": "signing key"},
    "manifest_sha256": {"zh": "清单SHA-256", "en": "manifest SHA-256"},
    "store": {"zh": "存储", "en": "store"},
    "dock_session": {"zh": "接入会话", "en": "dock session"},
    "reason": {"zh": "原因", "en": "reason"},
    "failure": {"zh": "失败原因", "en": "failure"},
    "job": {"zh": "导入任务", "en": "ingest job"},
    "bundle": {"zh": "导出包", "en": "bundle"},
    "recipient": {"zh": "接收方", "en": "recipient"},
    "verified": {"zh": "校验通过", "en": "verified"},
    "ok": {"zh": "校验通过", "en": "passed"},
    "run": {"zh": "校验批次", "en": "run"},
    "failed": {"zh": "失败项", "en": "failed"},
    "case": {"zh": "案件", "en": "case"},
    "from": {"zh": "原类别", "en": "from class"},
    "to": {"zh": "新类别", "en": "to class"},
    "class": {"zh": "类别", "en": "class"},
    "forced": {"zh": "强制", "en": "forced"},
    "retain_until": {"zh": "保存至", "en": "kept until"},
    "previous_retain_until": {"zh": "原保存至", "en": "previously kept until"},
    "store_lock_until": {"zh": "对象锁定至", "en": "Object Lock until"},
    "items": {"zh": "条目数", "en": "items"},
    "sums_sha256": {"zh": "SHA256SUMS摘要", "en": "SHA256SUMS digest"},
    "checkpoint_size": {"zh": "检查点大小", "en": "checkpoint size"},
}

_LABELS: dict[str, dict[Lang, str]] = {
    "title": {"zh": "执法记录证据保管链报告", "en": "Chain of custody report"},
    "subtitle": {
        "zh": "执法记录仪视音频证据 · 导出包",
        "en": "Body-worn camera evidence · export bundle",
    },
    "summary": {"zh": "概况", "en": "Summary"},
    "selection": {"zh": "导出范围", "en": "Selection"},
    "sel_case": {"zh": "案件", "en": "case"},
    "sel_officer": {"zh": "警号", "en": "officer"},
    "sel_recorded_from": {"zh": "录制时间自", "en": "recorded from"},
    "sel_recorded_to": {"zh": "录制时间至", "en": "recorded to"},
    "sel_ids": {"zh": "指定证据", "en": "items"},
    "count": {"zh": "证据数量", "en": "Items"},
    "all_ok": {
        "zh": "全部证据在导出时校验通过",
        "en": "Every item passed verification at export",
    },
    "some_failed": {
        "zh": "{n} 项证据在导出时校验失败（见下文）",
        "en": "{n} item(s) FAILED verification at export (see below)",
    },
    "no_items": {"zh": "（无证据）", "en": "(no items)"},
    "timezone": {"zh": "时区", "en": "Time zone"},
    "times_note": {
        "zh": "本报告中的时间均为当地时间，并注明与UTC的时差。",
        "en": "All times are local times, shown with their offset from UTC.",
    },
    "no": {"zh": "序号", "en": "No."},
    "file": {"zh": "文件", "en": "File"},
    "officer": {"zh": "警号", "en": "Officer"},
    "device": {"zh": "记录仪", "en": "Camera"},
    "recorded": {"zh": "录制时间", "en": "Recorded"},
    "result": {"zh": "校验结果", "en": "Verification"},
    "ok": {"zh": "通过", "en": "ok"},
    "failed": {"zh": "失败", "en": "FAILED"},
    "export": {"zh": "本次导出", "en": "This export"},
    "bundle_id": {"zh": "导出包编号", "en": "Bundle id"},
    "created_at": {"zh": "导出时间", "en": "Exported at"},
    "actor": {"zh": "导出人", "en": "Exported by"},
    "recipient": {"zh": "接收方", "en": "For"},
    "station": {"zh": "工作站", "en": "Station"},
    "checkpoint": {"zh": "日志检查点", "en": "Log checkpoint"},
    "checkpoint_text": {
        "zh": "大小 {size}，根哈希 {root}",
        "en": "size {size}, root hash {root}",
    },
    "keys": {"zh": "公钥指纹（SHA-256）", "en": "Public key fingerprints (SHA-256)"},
    "keys_note": {
        "zh": "请与本单位另行公布的公钥指纹核对。",
        "en": "Compare them with the fingerprints the bureau publishes separately.",
    },
    "timestamp": {"zh": "可信时间戳", "en": "Trusted timestamp"},
    "no_timestamp": {"zh": "无（未配置时间戳服务）", "en": "none (no timestamp authority set)"},
    "ts_text": {"zh": "{time}，由 {tsa} 签发", "en": "{time}, by {tsa}"},
    "item": {"zh": "证据 {i} / {n}", "en": "Item {i} of {n}"},
    "sha256": {"zh": "SHA-256", "en": "SHA-256"},
    "bundle_file": {"zh": "包内文件", "en": "File in the bundle"},
    "original_path": {"zh": "原始路径", "en": "Original path"},
    "size": {"zh": "大小", "en": "Size"},
    "bytes": {"zh": "字节", "en": "bytes"},
    "length": {"zh": "时长", "en": "length"},
    "media": {"zh": "媒体信息", "en": "Media"},
    "ingested": {"zh": "入库", "en": "Ingested"},
    "ingested_text": {
        "zh": "{time}；操作人 {actor}，工作站 {station}",
        "en": "{time}, by {actor} at station {station}",
    },
    "manifest_key": {"zh": "清单签名密钥", "en": "Manifest signed by key"},
    "at_export": {"zh": "导出时校验", "en": "Verification at export"},
    "at_export_ok": {
        "zh": "通过：文件重新计算哈希、签名、保管日志均一致",
        "en": "passed: file re-hashed, signature and custody log checked",
    },
    "events": {"zh": "保管记录", "en": "Custody events"},
    "idx": {"zh": "序号", "en": "#"},
    "time": {"zh": "时间", "en": "Time"},
    "what": {"zh": "事项", "en": "What"},
    "by": {"zh": "操作人", "en": "By"},
    "where": {"zh": "工作站", "en": "Where"},
    "details": {"zh": "详情", "en": "Details"},
    "no_events": {"zh": "（无保管记录）", "en": "(no custody events)"},
    "unknown": {"zh": "未知", "en": "unknown"},
    "yes": {"zh": "是", "en": "yes"},
    "no_": {"zh": "否", "en": "no"},
    "how": {"zh": "如何核验本导出包", "en": "How to check this bundle"},
    "footer": {"zh": "导出包", "en": "Bundle"},
}

# The last section: bwc's own text with <code> markup (README.txt has the long form).
_HOW_STEPS: dict[Lang, tuple[str, ...]] = {
    "zh": (
        "在导出包目录中执行 <code>sha256sum -c SHA256SUMS</code>：每个文件均应显示“成功”/OK。",
        "执行 <code>python3 verify.py</code>（只需Python 3.8及以上版本，无需安装bwc）："
        "逐项核验文件、签名、保管日志证明和检查点，最后一行为结论。",
        "将 <code>keys/fingerprints.txt</code> 中的公钥指纹与本单位公布的指纹核对。",
        "可用 <code>openssl</code> 单独核验签名和时间戳，详细步骤见 <code>README.txt</code>。",
    ),
    "en": (
        "In the bundle's folder run <code>sha256sum -c SHA256SUMS</code>: every file must say OK.",
        "Run <code>python3 verify.py</code> (Python 3.8 or later, no bwc needed): it checks "
        "every file, signature, custody proof and the checkpoint, and ends with a verdict.",
        "Compare the fingerprints in <code>keys/fingerprints.txt</code> with the ones the "
        "bureau publishes.",
        "The signatures and the timestamp can also be checked with <code>openssl</code> "
        "alone: <code>README.txt</code> says how, step by step.",
    ),
}

# Print: A4 with margins; each item starts a page; the bundle id and page numbers in the page
# margins (Chromium draws @page margin boxes since version 131; older ones leave them out).
# System fonts only (nothing may be fetched), with CJK-capable ones in the list: Noto/Source
# Han (most Linux desktops), WenQuanYi (Debian's small one), YaHei (Windows), PingFang (macOS).
_SANS = (
    '"Noto Sans CJK SC","Source Han Sans SC","WenQuanYi Micro Hei","Microsoft YaHei",'
    '"PingFang SC","DejaVu Sans",sans-serif'
)
_MONO = '"DejaVu Sans Mono","Liberation Mono","WenQuanYi Micro Hei Mono",monospace'
_CSS = f"""
@page{{size:A4;margin:16mm 14mm 18mm 14mm;
@bottom-right{{content:counter(page) " / " counter(pages);font:8pt {_SANS};color:#666}}}}
body{{font-family:{_SANS};font-size:10pt;line-height:1.4;color:#111;margin:0 auto;
max-width:190mm;padding:8mm 4mm}}
@media print{{body{{padding:0;max-width:none}}}}
h1{{font-size:17pt;margin:0 0 1mm}}.sub{{color:#555;margin:0 0 4mm}}
h2{{font-size:12.5pt;margin:7mm 0 2mm;padding-bottom:1mm;border-bottom:1.5px solid #333;
break-after:avoid}}
h3{{font-size:10.5pt;margin:4mm 0 1.5mm;break-after:avoid}}
table{{border-collapse:collapse;width:100%;margin:1mm 0 2mm}}
th,td{{text-align:left;vertical-align:top;padding:1.2mm 1.6mm;border:1px solid #bbb;
overflow-wrap:anywhere}}
thead{{display:table-header-group}}thead th{{background:#eee}}
tr{{break-inside:avoid}}
table.kv th{{width:30%;background:#f4f4f4;font-weight:600}}
.h{{font-family:{_MONO};font-size:8.5pt;overflow-wrap:anywhere;word-break:break-all}}
.n{{text-align:right;white-space:nowrap}}.nw{{white-space:nowrap}}
.wrap{{overflow-wrap:anywhere}}
.ok{{color:#14622e;font-weight:700}}.bad{{color:#b00020;font-weight:700}}
.verdict{{border:2px solid;padding:2mm 3mm;margin:3mm 0;font-size:11.5pt;font-weight:700}}
.verdict.ok{{border-color:#14622e;background:#eaf6ee}}
.verdict.bad{{border-color:#b00020;background:#fdecee}}
.item{{break-before:page}}
.item.failed h2{{color:#b00020}}
.ev{{table-layout:fixed}}.ev td{{font-size:8.8pt}}.ev .d{{overflow-wrap:anywhere}}
.list{{table-layout:fixed}}.c-no{{width:7%}}.c-file{{width:35%}}.c-officer,.c-device{{width:14%}}
.c-recorded{{width:18%}}.c-result{{width:12%}}
.c-idx{{width:9%}}.c-time{{width:16%}}.c-what{{width:14%}}.c-by{{width:14%}}.c-where{{width:13%}}
.d>span{{display:block}}.d b{{font-weight:600;color:#444}}
.muted{{color:#666}}ul.fail{{margin:0;padding-left:5mm;color:#b00020}}
ol.how li{{margin:1mm 0}}code{{font-family:{_MONO};font-size:9pt;background:#f2f2f2;
padding:0 1mm}}
"""

# Nothing but the inline style may load or run, whatever a value smuggled past the escaping.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def event_words(kind: str, lang: Lang) -> str:
    """A custody event kind in words ('ingested' -> '入库'); an unknown kind as logged."""
    words = EVENT_WORDS.get(kind)
    return words[lang] if words else kind


def _v(text: object) -> str:
    """An untrusted value as HTML text: controls and bidi characters visible, then escaped."""
    return escape(printable(str(text)))


def _size(n: int, lang: Lang) -> str:
    """'12.3 MB (12,345,678 bytes)': decimal units, and the exact count."""
    exact = f"{n:,} {_LABELS['bytes'][lang]}"
    if n < 1000:
        return exact
    value, unit = float(n), "B"
    for bigger in ("kB", "MB", "GB", "TB", "PB"):
        value, unit = value / 1000, bigger
        if value < 999.5:
            break
    return f"{value:.1f} {unit} ({exact})"


def _length(delta: timedelta) -> str:
    """'0:03:07' (h:mm:ss)."""
    s = max(round(delta.total_seconds()), 0)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


class _Page:
    """One rendering: the language and zone, and the helpers that use them."""

    def __init__(self, data: ReportData) -> None:
        self.d = data
        self.lang: Lang = data.lang

    def t(self, key: str, **kw: str) -> str:
        """A label (bwc's own text; values passed in ``kw`` must already be HTML)."""
        text = _LABELS[key][self.lang]
        if not kw:
            return escape(text)
        return escape(text).format(**kw)

    def when(self, dt: datetime | None) -> str:
        """Local time with its offset; the line may break between the date and the time."""
        if dt is None:
            return self.t("unknown")
        day, _, rest = format_local(dt, self.d.tz).partition(" ")
        return f'<span class="nw">{escape(day)}</span> <span class="nw">{escape(rest)}</span>'

    def opt(self, value: str | None) -> str:
        return self.t("unknown") if value in (None, "") else _v(value)

    def selection(self) -> str:
        parts = []
        for key, value in self.d.selection.items():
            label = _LABELS.get(f"sel_{key}", {}).get(self.lang, key)
            if isinstance(value, list | tuple):
                shown = ", ".join(_v(x) for x in value)
                shown = f'<span class="h">{shown}</span>'
            elif isinstance(value, str) and key.startswith("recorded_"):
                shown = self._maybe_time(value)
            else:
                shown = _v(value)
            parts.append(f"{escape(label)}: {shown}")
        return "; ".join(parts) or "-"

    def _maybe_time(self, text: str) -> str:
        try:
            return self.when(parse_utc(text))
        except ValueError:
            return _v(text)

    def detail(self, key: str, value: object) -> str:
        label = _DETAIL_WORDS.get(key, {}).get(self.lang, key)
        if isinstance(value, bool):
            shown = self.t("yes") if value else self.t("no_")
            if key in ("ok", "verified") and not value:
                shown = f'<span class="bad">{shown}</span>'
        elif isinstance(value, list | tuple):
            shown = "; ".join(_v(x) for x in value)
        elif isinstance(value, dict):
            shown = _v(json.dumps(value, ensure_ascii=False, sort_keys=True))
        elif key == "size" and isinstance(value, int):
            shown = escape(_size(value, self.lang))
        elif isinstance(value, str) and len(value) >= 32 and " " not in value:
            shown = f'<span class="h">{_v(value)}</span>'  # a hash or id: wrap anywhere
        else:
            shown = _v(value)
        return f"<span><b>{_v(label)}:</b> {shown}</span>"


def _media(media: Mapping[str, Any] | None, lang: Lang) -> str | None:
    """'mov,mp4 · video h264 1920×1080 30/1 fps · audio aac 48000 Hz', escaped."""
    if not media:
        return None
    parts: list[str] = []
    if media.get("format"):
        parts.append(str(media["format"]))
    for s in media.get("streams") or []:
        if not isinstance(s, Mapping):
            continue
        bits = [str(s.get("type", "")), str(s.get("codec", ""))]
        if "width" in s and "height" in s:
            bits.append(f"{s['width']}×{s['height']}")
        if s.get("fps"):
            bits.append(f"{s['fps']} fps")
        if s.get("sample_rate"):
            bits.append(f"{s['sample_rate']} Hz")
        parts.append(" ".join(b for b in bits if b))
    if isinstance(media.get("duration_ms"), int):
        parts.append(_length(timedelta(milliseconds=media["duration_ms"])))
    return _v(" · ".join(parts)) if parts else None


def _kv(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def _summary(p: _Page) -> list[str]:
    d = p.d
    failed = [i for i in d.items if not i.verified]
    out = [f'<h2 id="summary">{p.t("summary")}</h2>']
    if not d.items:
        verdict = f'<div class="verdict bad">{p.t("no_items")}</div>'
    elif failed:
        verdict = f'<div class="verdict bad">{p.t("some_failed", n=str(len(failed)))}</div>'
    else:
        verdict = f'<div class="verdict ok">{p.t("all_ok")}</div>'
    out.append(verdict)
    zone = (
        f"{_v(d.timezone_name)} (UTC{format_offset(to_local(d.created_at, d.tz).utcoffset())})"
        f' <span class="muted">{p.t("times_note")}</span>'
    )
    out.append(
        _kv(
            [
                (p.t("selection"), p.selection()),
                (p.t("count"), str(len(d.items))),
                (p.t("recipient"), _v(d.recipient)),
                (p.t("created_at"), p.when(d.created_at)),
                (p.t("timezone"), zone),
            ]
        )
    )
    if d.items:
        head = ("no", "file", "officer", "device", "recorded", "result")
        out.append(
            '<table id="items" class="list"><thead><tr>'
            + "".join(f'<th class="c-{h}">{p.t(h)}</th>' for h in head)
            + "</tr></thead><tbody>"
        )
        for i, it in enumerate(d.items, 1):
            res = (
                f'<span class="ok">{p.t("ok")}</span>'
                if it.verified
                else f'<span class="bad">{p.t("failed")}</span>'
            )
            out.append(
                f'<tr><td class="n">{i}</td>'
                f'<td class="wrap">{_v(_name(it))}<br>'
                f'<span class="h muted">{escape(it.sha256[:16])}…</span></td>'
                f"<td>{p.opt(it.officer_id)}</td><td>{p.opt(it.device_id)}</td>"
                f"<td>{p.when(it.recorded_start)}</td><td>{res}</td></tr>"
            )
        out.append("</tbody></table>")
    return out


def _name(it: ReportItem) -> str:
    """The footage's file name: its path in the bundle without ``items/<sha256>/``."""
    prefix = f"items/{it.sha256}/"
    return it.file[len(prefix) :] if it.file.startswith(prefix) else it.file.rsplit("/", 1)[-1]


def _export(p: _Page) -> list[str]:
    d = p.d
    keys = "".join(
        f'<span class="h">{_v(k)}: {_v(fp)}</span><br>' for k, fp in sorted(d.keys.items())
    )
    keys += f'<span class="muted">{p.t("keys_note")}</span>'
    if d.timestamp_gen_time is not None:
        ts = p.t("ts_text", time=p.when(d.timestamp_gen_time), tsa=p.opt(d.tsa_url))
    else:
        ts = p.t("no_timestamp")
    cp = p.t(
        "checkpoint_text",
        size=str(d.checkpoint_size),
        root=f'<span class="h">{_v(d.checkpoint_root_b64)}</span>',
    )
    return [
        f'<h2 id="export">{p.t("export")}</h2>',
        _kv(
            [
                (p.t("bundle_id"), f'<span class="h">{_v(d.bundle_id)}</span>'),
                (p.t("created_at"), p.when(d.created_at)),
                (p.t("actor"), _v(d.actor)),
                (p.t("recipient"), _v(d.recipient)),
                (p.t("station"), _v(d.station)),
                (p.t("checkpoint"), cp),
                (p.t("keys"), keys),
                (p.t("timestamp"), ts),
            ]
        ),
    ]


def _detail_order(details: Mapping[str, Any]) -> list[str]:
    """The keys worth showing (not None): the known ones in the table's order, then the rest."""
    known = [k for k in _DETAIL_WORDS if details.get(k) is not None]
    rest = sorted(k for k, v in details.items() if k not in _DETAIL_WORDS and v is not None)
    return known + rest


def _item(p: _Page, i: int, it: ReportItem) -> list[str]:
    d = p.d
    n = len(d.items)
    ingest = next((e for e in it.events if e.kind == "ingested"), None)
    who = (
        p.t(
            "ingested_text",
            time=p.when(it.ingested_at),
            actor=_v(ingest.actor),
            station=_v(ingest.station),
        )
        if ingest is not None
        else f"{p.when(it.ingested_at)} · {_v(it.station_id)}"
    )
    recorded = p.when(it.recorded_start)
    if it.recorded_end is not None:
        recorded += f" – {p.when(it.recorded_end)}"
        if it.recorded_start is not None:
            length = _length(it.recorded_end - it.recorded_start)
            recorded += f" ({p.t('length')} {length})"
    fp = d.keys.get(it.key_id)
    key = f'<span class="h">{_v(it.key_id)}</span>'
    if fp:
        key += f'<br><span class="h muted">SHA-256 {_v(fp)}</span>'
    if it.verified:
        check = f'<span class="ok">{p.t("at_export_ok")}</span>'
    else:
        fails = "".join(f"<li>{_v(f)}</li>" for f in it.failures) or f"<li>{p.t('failed')}</li>"
        check = f'<span class="bad">{p.t("failed")}</span><ul class="fail">{fails}</ul>'
    rows = [
        (p.t("sha256"), f'<span class="h">{escape(it.sha256)}</span>'),
        (p.t("bundle_file"), f'<span class="h">{_v(it.file)}</span>'),
        (p.t("original_path"), f'<span class="wrap">{_v(it.original_path)}</span>'),
        (p.t("size"), escape(_size(it.size, p.lang))),
        (p.t("device"), p.opt(it.device_id)),
        (p.t("officer"), p.opt(it.officer_id)),
        (p.t("recorded"), recorded),
    ]
    media = _media(it.media, p.lang)
    if media:
        rows.append((p.t("media"), media))
    rows += [
        (p.t("ingested"), who),
        (p.t("manifest_key"), key),
        (p.t("at_export"), check),
    ]
    state = "item" if it.verified else "item failed"
    title = p.t("item", i=str(i), n=str(n))
    out = [
        f'<section class="{state}" id="item-{escape(it.sha256)}">',
        f'<h2>{title}: <span class="wrap">{_v(_name(it))}</span></h2>',
        _kv(rows),
        f"<h3>{p.t('events')}</h3>",
    ]
    if not it.events:
        out.append(f'<p class="muted">{p.t("no_events")}</p>')
    else:
        head = ("idx", "time", "what", "by", "where", "details")
        out.append(
            '<table class="ev"><thead><tr>'
            + "".join(f'<th class="c-{h}">{p.t(h)}</th>' for h in head)
            + "</tr></thead><tbody>"
        )
        for e in it.events:
            details = "".join(p.detail(k, e.details[k]) for k in _detail_order(e.details))
            out.append(
                f'<tr><td class="n">{e.index}</td><td>{p.when(e.at)}</td>'
                f'<td class="kind-{escape(e.kind)}">{_v(event_words(e.kind, p.lang))}</td>'
                f'<td class="wrap">{_v(e.actor)}</td><td class="wrap">{_v(e.station)}</td>'
                f'<td class="d">{details}</td></tr>'
            )
        out.append("</tbody></table>")
    out.append("</section>")
    return out


def _how(p: _Page) -> list[str]:
    # the steps are bwc's own text with <code> markup, not values: not escaped again
    steps = "".join(f"<li>{s}</li>" for s in _HOW_STEPS[p.lang])
    return [
        f'<section class="how"><h2 id="how">{p.t("how")}</h2>',
        f'<ol class="how">{steps}</ol></section>',
    ]


def render_html(data: ReportData) -> str:
    """The whole report as one HTML document (UTF-8 text). ValueError for a language other
    than "zh" or "en" or a time without a zone."""
    if data.lang not in ("zh", "en"):
        raise ValueError(f"the custody report speaks zh or en, not {data.lang!r}")
    p = _Page(data)
    # the bundle id on every printed page; only its letters and digits go into the CSS string
    # (it is 32 hex digits; anything else could end the string or the style element)
    safe_id = "".join(c for c in data.bundle_id if c.isascii() and c.isalnum())[:64]
    foot = f'@page{{@bottom-left{{content:"{_LABELS["footer"][p.lang]} {safe_id}";'
    foot += f"font:8pt {_SANS};color:#666}}}}"
    out = [
        "<!DOCTYPE html>",
        f'<html lang="{"zh-CN" if p.lang == "zh" else "en"}"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f"<title>{p.t('title')} {_v(data.bundle_id)}</title>",
        f"<style>{_CSS}{foot}</style></head><body>",
        f'<h1 id="title">{p.t("title")}</h1>',
        f'<p class="sub">{p.t("subtitle")} <span class="h">{_v(data.bundle_id)}</span></p>',
    ]
    out += _summary(p)
    out += _export(p)
    for i, it in enumerate(data.items, 1):
        out += _item(p, i, it)
    out += _how(p)
    out.append("</body></html>\n")
    return "\n".join(out)
