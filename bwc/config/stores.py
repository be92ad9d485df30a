"""The store URL schemes bwc knows, and the module that implements each.

Settings check a store URL against this table; ``bwc.evidence.stores.open_store`` loads the
backend it names, only when a station opens that store (so `file://` commands never load the
AWS SDK). A new backend is one module in ``bwc/evidence/stores/`` with an ``open_url``
function, plus one line here.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse


@dataclass(frozen=True)
class Scheme:
    name: str
    module: str  # implements ``open_url(url, settings, clock) -> ObjectStore``
    example: str
    has_host: bool  # s3://BUCKET/prefix; file:///absolute/path has none


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("file", "bwc.evidence.stores.local", "file:///var/lib/bwc/store", has_host=False),
        Scheme("s3", "bwc.evidence.stores.s3", "s3://bucket/prefix", has_host=True),
    )
}


def shown(url: object) -> str:
    """``url`` as it may be shown: without any user name or password in it."""
    if isinstance(url, str) and "@" in url:
        parsed = urlparse(url)
        return repr(parsed._replace(netloc="***@" + parsed.netloc.rpartition("@")[2]).geturl())
    return repr(url)


def store_url_problem(url: object) -> str | None:
    """Why ``url`` cannot name a store, or None. Only the shape is checked here; the
    backend checks the rest when it opens the store."""
    known = " or ".join(f"{s.name}://" for s in SCHEMES.values())
    if not isinstance(url, str):
        return f"must be a {known} URL (got {shown(url)})"
    parsed = urlparse(url)
    scheme = SCHEMES.get(parsed.scheme)
    if scheme is None or not url.startswith(f"{parsed.scheme}://"):
        return f"must be a {known} URL (got {shown(url)})"
    if scheme.has_host and not parsed.netloc:
        return f"must name the {scheme.name} location, like {scheme.example} (got {shown(url)})"
    if not scheme.has_host and (parsed.netloc or not parsed.path.startswith("/")):
        return f"must be an absolute path, like {scheme.example} (got {shown(url)})"
    return None
