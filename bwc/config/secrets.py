"""Where the signing key's passphrase comes from: ``BWC_KEY_PASSPHRASE``, or a systemd
credential file (``$CREDENTIALS_DIRECTORY/bwc-key-passphrase``, `LoadCredential=`). It is
never logged or stored; the key files themselves are handled by ``bwc.evidence.keys``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CREDENTIAL_NAME = "bwc-key-passphrase"


def passphrase_from_env(env: Mapping[str, str] | None = None) -> bytes | None:
    env = os.environ if env is None else env
    if env.get("BWC_KEY_PASSPHRASE"):
        return env["BWC_KEY_PASSPHRASE"].encode("utf-8")
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        path = Path(cred_dir) / CREDENTIAL_NAME
        if path.is_file():
            return path.read_bytes().rstrip(b"\r\n")
    return None
