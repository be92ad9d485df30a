"""Print the custody report to PDF with headless Chromium (``--print-to-pdf``).

Chromium is what renders the HTML report anyway, its PDFs embed the fonts with ToUnicode maps
(the Chinese text stays text: searchable, and extractable by a court's tools), and it is a
Debian package, not a Python dependency. Each run gets a fresh temporary profile (nothing of
the user's browser is read or left behind) and no network: the report needs none (it loads
nothing, and its Content-Security-Policy forbids loading anything), so every host name
resolves to nothing and every connection goes to a closed loopback port (tested with a page
that does try to load something).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from bwc.errors import ToolError

logger = logging.getLogger(__name__)

__all__ = ["CHROMIUM_NAMES", "DEFAULT_TIMEOUT", "MIN_PDF_SIZE", "find_chromium", "print_pdf"]

# what Debian, Ubuntu and Google name the browser, in the order tried
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DEFAULT_TIMEOUT = 120.0  # seconds: a cold start plus a report of a few hundred items
# a PDF of one printed page with text is several kB; less is an empty or cut-off file
MIN_PDF_SIZE = 1000
_FALLBACK = "export with --no-pdf"


def _hint(fallback: str) -> str:
    return f"install chromium (Debian: apt-get install chromium), or {fallback}"


_FLAGS = (
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--disable-crash-reporter",
    "--mute-audio",
    # no network: no name resolves, and every connection, loopback's too (which Chromium
    # otherwise never sends to a proxy), goes to the discard port on loopback, where nothing
    # listens (the report is a local file; this only stops a stray request)
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--no-pdf-header-footer",
)


def find_chromium() -> str | None:
    """The first of ``CHROMIUM_NAMES`` on PATH, or None."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(
    html_path: Path,
    pdf_path: Path,
    *,
    chromium: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    what: str = "the custody report",
    fallback: str = _FALLBACK,
) -> None:
    """Print ``html_path`` to ``pdf_path`` (A4, as the report's CSS says).

    ``what`` names the document in errors, ``fallback`` what the user can do without a PDF.

    ``chromium``: the browser to run (default: ``find_chromium()``). The PDF is written next
    to ``pdf_path`` under a temporary name, checked (a PDF header, a plausible size) and then
    renamed into place, so ``pdf_path`` is never a partial file. Raises ``ToolError`` when
    there is no browser, it fails, it runs longer than ``timeout`` seconds (it is killed,
    with every process it started), or what it wrote is not a PDF."""
    exe = chromium or find_chromium()
    if exe is None:
        raise ToolError(f"cannot print {what} to PDF: chromium not found", hint=_hint(fallback))
    src = Path(html_path).resolve()
    if not src.is_file():
        raise ToolError(f"cannot print {what} to PDF: {src} is not a file")
    target = Path(pdf_path)
    with tempfile.TemporaryDirectory(prefix="bwc-chromium-") as profile:
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        args = [exe, *_FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={tmp}"]
        if os.geteuid() == 0:
            # Chromium refuses to start as root with its sandbox on (the sandbox drops
            # privileges it cannot drop from root). The page it opens is our own escaped,
            # script-free report, so the sandbox protects nothing here that matters.
            args.append("--no-sandbox")
        args.append(src.as_uri())
        try:
            _run(args, Path(profile), timeout, what, fallback)
            _check_pdf(tmp, fallback)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _run(args: list[str], profile: Path, timeout: float, what: str, fallback: str) -> None:
    """Run Chromium in its own process group; on timeout kill the whole group (the browser
    starts a zygote, renderers and a GPU process, which would outlive a killed parent)."""
    log = profile / "chromium-stderr.txt"
    try:
        with log.open("wb") as err:
            proc = subprocess.Popen(  # a fixed argument list, no shell
                args,
                env=_env(profile),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
    except OSError as e:
        raise ToolError(f"cannot start {args[0]}: {e.strerror or e}", hint=_hint(fallback)) from e
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise ToolError(
            f"chromium did not print {what} within {timeout:g} s (killed)",
            hint=f"try again, or {fallback}",
        ) from None
    finally:
        _kill_group(proc)  # helpers still running after the browser left
    if code != 0:
        tail = _tail(log)
        hint = _hint(fallback)
        if "No usable sandbox" in tail:
            hint = f"chromium's sandbox is unavailable here (user namespaces off); or {fallback}"
        raise ToolError(
            f"chromium failed to print {what} (exit {code})" + (f": {tail}" if tail else ""),
            hint=hint,
        )


def _env(profile: Path) -> dict[str, str]:
    """The environment, with the per-user folders Chromium writes to besides its profile
    (crash reports in ~/.config, dconf's cache in ~/.cache) moved into the temporary one;
    HOME stays, so fonts a user installed are still found."""
    env = dict(os.environ)
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_CACHE_HOME", "cache")):
        env[var] = str(profile / sub)
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _tail(log: Path) -> str:
    """The last line of Chromium's stderr that says something, for the error message."""
    try:
        lines = log.read_bytes().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        line = line.strip()
        if line and "DevTools" not in line:
            return line[-300:]
    return ""


def _check_pdf(path: Path, fallback: str) -> None:
    try:
        with path.open("rb") as f:
            head = f.read(5)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        raise ToolError("chromium exited without writing the PDF", hint=_hint(fallback)) from None
    if head != b"%PDF-" or size < MIN_PDF_SIZE:
        raise ToolError(
            f"chromium wrote no valid PDF ({size} bytes, starts with {head!r})",
            hint=_hint(fallback),
        )
    # durable before it is renamed into place (a bundle is checked by its SHA256SUMS later)
    with path.open("rb") as f:
        os.fsync(f.fileno())
