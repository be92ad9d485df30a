"""A dock receipt as one printable HTML page (self-contained: inline CSS, no script, nothing
fetched; printed to PDF by headless Chromium, bwc/evidence/bundle/pdf.py). Pure: a receipt
and what the log holds of it in, text out. Times in the configured zone, with the offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from html import escape

from bwc.evidence.timefmt import zone_label
from bwc.ingest.receipt import Lang, Receipt, fields, word

_CSP = "default-src 'none'; style-src 'unsafe-inline'"
# no ligatures: in the PDF, "files" stays five letters a search finds, not "ﬁles"
_CSS = """
body{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:1.5rem;
color:#222;max-width:800px;font-variant-ligatures:none}
h1{font-size:1.4rem}table{border-collapse:collapse;font-size:.95rem;width:100%}
th,td{padding:.35rem .6rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{width:11rem;color:#555;font-weight:normal}
.verdict{font-size:1.15rem;font-weight:bold;padding:.6rem .8rem;border-radius:6px;margin:1rem 0}
.safe{background:#e3f4e8;color:#1e7045;border:1px solid #2e8b57}
.unsafe{background:#fbe5e1;color:#a5281b;border:1px solid #c0392b}
ul{margin:.2rem 0 0 1rem;padding:0;font-weight:normal;font-size:.95rem}
.muted{color:#777;font-size:.85rem}
.sign{margin-top:2.5rem;display:flex;gap:3rem}.sign div{flex:1;border-top:1px solid #333;
padding-top:.3rem;font-size:.9rem}
"""
_SIGN: dict[str, dict[Lang, str]] = {
    "clerk": {"en": "Evidence clerk (signature, date)", "zh": "管理员（签名、日期）"},
    "officer": {"en": "Officer (signature, date)", "zh": "移交人员（签名、日期）"},
    "zone": {"en": "Times in ", "zh": "时区："},
}


def render(
    r: Receipt,
    tz: tzinfo,
    lang: Lang = "en",
    *,
    logged: str | None = None,
    differences: Sequence[str] = (),
) -> str:
    """The page. ``logged``: one line on where the logged receipt is (the caller's words);
    ``differences``: how it differs from ``r``."""
    rows = fields(r, tz, lang)
    body = []
    for label, value in rows[:-1]:
        body.append(f"<tr><th>{escape(label)}</th><td>{escape(value)}</td></tr>")
    cls = "safe" if r.safe else "unsafe"
    verdict = escape(r.verdict(lang) if r.safe or not r.not_safe else _head(r, lang))
    items = "".join(f"<li>{escape(x.path)}: {escape(x.why)}</li>" for x in r.not_safe)
    out = [
        "<!DOCTYPE html>",
        f'<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f"<title>{escape(word('title', lang))} {r.session}</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<h1 id="title">{escape(word("title", lang))} · {escape(word("session", lang))} '
        f"{r.session}</h1>",
        f'<div id="verdict" class="verdict {cls}">{verdict}'
        + (f"<ul>{items}</ul>" if items else "")
        + "</div>",
        f'<table id="fields">{"".join(body)}</table>',
        # the terminal's words, a sentence each on the page
        f'<p class="muted" id="logged">{escape(word("logged", lang).capitalize())}'
        f"{'：' if lang == 'zh' else ': '}"
        f"{escape(logged or word('not_logged', lang))}</p>",
    ]
    if differences:
        differs = escape(word("differs", lang).capitalize())
        out.append(
            f'<p id="differs" class="unsafe verdict">{differs}<ul>'
            + "".join(f"<li>{escape(d)}</li>" for d in differences)
            + "</ul></p>"
        )
    out.append(
        f'<p class="muted" id="zone">{escape(_SIGN["zone"][lang])}'
        f"{escape(zone_label(tz, r.docked_at))}</p>"
        f'<div class="sign"><div>{escape(_SIGN["officer"][lang])}</div>'
        f"<div>{escape(_SIGN['clerk'][lang])}</div></div></body></html>"
    )
    return "\n".join(out)


def _head(r: Receipt, lang: Lang) -> str:
    """The verdict's first part (the files are listed below it on the page)."""
    text = r.verdict(lang)
    return text.split("：" if lang == "zh" else ":", 1)[0]
