"""Evidence stores: content-addressed objects with their manifest and signature beside them.

``base.ObjectStore`` is the contract; each backend is one module (``local``: a folder,
``s3``: an S3-compatible bucket, the only module that imports the AWS SDK), found by the URL
scheme in ``bwc.config.stores.SCHEMES`` and loaded only when a store of its kind is opened.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from bwc.config.stores import SCHEMES, store_url_problem
from bwc.errors import StoreError
from bwc.evidence.stores.base import META_NAMES, ObjectStore, ReadAhead, StoreInfo

if TYPE_CHECKING:
    from bwc.config.settings import Settings
    from bwc.evidence.timefmt import Clock

__all__ = ["META_NAMES", "ObjectStore", "ReadAhead", "StoreInfo", "open_store"]


def open_store(
    url: str, settings: Settings | None = None, clock: Clock | None = None
) -> ObjectStore:
    """The store at ``url``. ``settings`` gives the upload tuning and the default retention
    class (whose Object Lock new objects get); ``clock`` dates those locks."""
    problem = store_url_problem(url)
    if problem is not None:
        raise StoreError(f"store URL {problem}")
    backend = importlib.import_module(SCHEMES[urlparse(url).scheme].module)
    store: ObjectStore = backend.open_url(url, settings, clock)
    return store
