"""RFC 3161 timestamps: ask a time-stamping authority (TSA) to sign "these exact bytes existed
at this time", and check such a token later.

The ASN.1 and the CMS signature are left to ``rfc3161-client`` (Trail of Bits; what
sigstore-python uses to check timestamps): it builds requests (SHA-256 imprint, a random
nonce, certReq) and verifies a TimeStampResp's signature and certificate chain against given
roots (OpenSSL's PKCS7_verify, at the token's genTime) and the TSA certificate's critical
id-kp-timeStamping usage. Here: the HTTP exchange (stdlib urllib, a short timeout, retries
with tenacity for exports only), and the checks named one by one, so a bad token is reported
precisely (wrong bytes, a changed token, an unknown TSA) instead of as one opaque failure.

Pure functions over bytes, except :func:`post`; the catalog and store side of checkpoint
timestamps is in ``bwc.evidence.stamps``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from bwc.config.settings import Settings
from bwc.errors import HomeError, TimestampError

logger = logging.getLogger(__name__)

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
SHA256_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
MAX_REPLY = 1 << 20  # a reply with a few certificates is a few KiB; more is not a TSA
EXPORT_ATTEMPTS = 3  # an export asks this often before it gives up (a person is waiting)


class Unreachable(TimestampError):
    """The TSA did not answer (refused, timed out, HTTP error): worth asking again."""


Transport = Callable[[str, bytes, float], bytes]


@dataclass(frozen=True)
class Token:
    """A timestamp the TSA granted over some bytes: the DER TimeStampResp and its time."""

    tsr: bytes
    gen_time: datetime
    serial: int


def make_request(data: bytes) -> tuple[bytes, int]:
    """A DER TimeStampReq over SHA-256 of ``data``, with a random nonce and certReq: the TSA
    puts its certificate in the token, so the token can be checked without asking it."""
    req = (
        TimestampRequestBuilder()
        .data(data)
        .hash_algorithm(HashAlgorithm.SHA256)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    nonce = req.nonce
    if nonce is None:  # asked for above; the library always sets one
        raise TimestampError("the timestamp request was built without a nonce")
    return req.as_bytes(), nonce


def post(url: str, body: bytes, timeout: float) -> bytes:
    """POST a TimeStampReq to ``url`` (http or https only) and return the reply body."""
    if not url.startswith(("http://", "https://")):
        raise TimestampError(f"the TSA URL must be http:// or https:// (got {url!r})")
    req = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url, data=body, method="POST", headers={"Content-Type": QUERY_TYPE}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            data: bytes = resp.read(MAX_REPLY + 1)
    except urllib.error.HTTPError as e:
        raise Unreachable(f"the TSA at {url} answered HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        why = getattr(e, "reason", None) or e
        raise Unreachable(f"cannot reach the TSA at {url}: {why}") from e
    if len(data) > MAX_REPLY:
        raise TimestampError(f"the TSA at {url} sent more than {MAX_REPLY} bytes")
    return data


def load_roots(path: Path) -> bytes:
    """The PEM roots in ``path`` (``[timestamp] ca_file``); HomeError when unusable."""
    try:
        pem = path.read_bytes()
    except OSError as e:
        raise HomeError(
            f"timestamp.ca_file: cannot read {path}: {e.strerror}",
            hint="set [timestamp] ca_file to the TSA's root certificates (PEM)",
        ) from e
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as e:
        raise HomeError(
            f"timestamp.ca_file: {path} holds no PEM certificate",
            hint="set [timestamp] ca_file to the TSA's root certificates (PEM)",
        ) from e
    if not certs:
        raise HomeError(f"timestamp.ca_file: {path} holds no PEM certificate")
    return pem


def _roots(roots_pem: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(roots_pem)
    except ValueError:
        return []


def _decode(tsr: bytes) -> TimeStampResponse | str:
    try:
        return decode_timestamp_response(tsr)
    except (ValueError, TypeError) as e:
        return f"not an RFC 3161 TimeStampResp ({e})"


def _signature_problem(e: VerificationError) -> str:
    """OpenSSL's error stack, in one line that says what it means."""
    text = str(e)
    if "digest failure" in text:
        return "the token's signed content was changed (its digest does not match the signature)"
    if "signature failure" in text:
        return "the TSA's signature does not verify (the token was changed)"
    if "certificate verify error" in text or "unable to get" in text.lower():
        return "the TSA's certificate does not chain to a trusted root (an unknown TSA)"
    return f"the token does not verify against the trusted roots: {text[:200]}"


def imprint_problems(tsr: bytes, data: bytes) -> list[str]:
    """What keeps ``tsr`` from being a granted timestamp over ``data``, without its signature
    (which needs the TSA's roots: :func:`verify_token`)."""
    resp = _decode(tsr)
    if isinstance(resp, str):
        return [resp]
    if resp.status != PKIStatus.GRANTED:  # "with modifications": not what was asked
        why = "; ".join(resp.status_string) or "no reason given"
        return [f"the TSA did not grant the timestamp (status {resp.status}: {why})"]
    try:
        imprint = resp.tst_info.message_imprint
    except ValueError as e:
        return [f"the token holds no readable timestamp ({e})"]
    if imprint.hash_algorithm != SHA256_OID:
        return [f"the message imprint is not SHA-256 ({imprint.hash_algorithm.dotted_string})"]
    if not hmac.compare_digest(imprint.message, hashlib.sha256(data).digest()):
        return [
            "the message imprint is not SHA-256 of the checkpoint's bytes "
            f"({imprint.message.hex()[:16]}…): the token is for other bytes"
        ]
    return []


def verify_token(tsr: bytes, data: bytes, roots_pem: bytes) -> list[str]:
    """Every problem of the DER TimeStampResp ``tsr`` as a timestamp over ``data``, checked
    against the root certificates ``roots_pem``; empty: it is a valid timestamp. Checked:
    status granted, a SHA-256 message imprint equal to SHA-256(``data``), the TSA's CMS
    signature over the token, its certificate chain to a root (at the token's time), and its
    critical timeStamping usage."""
    problems = imprint_problems(tsr, data)
    resp = _decode(tsr)
    if isinstance(resp, str) or (problems and "imprint" not in problems[0]):
        return problems  # nothing signed to check
    roots = _roots(roots_pem)
    if not roots:
        return [*problems, "no trusted root certificate to check the TSA's signature with"]
    try:
        # against the token's own imprint: whether it is the data's is said above
        imprint = resp.tst_info.message_imprint.message
        VerifierBuilder(roots=roots).build().verify(resp, imprint)
    except VerificationError as e:
        problems.append(_signature_problem(e))
    except (ValueError, TypeError, x509.InvalidVersion, x509.DuplicateExtension) as e:
        problems.append(f"the token's certificates cannot be read: {e}")
    return problems


def read_token(tsr: bytes) -> Token:
    """The token's time and serial (nothing verified: see :func:`verify_token`)."""
    resp = _decode(tsr)
    if isinstance(resp, str):
        raise TimestampError(resp)
    try:
        return Token(tsr, resp.tst_info.gen_time, resp.tst_info.serial_number)
    except ValueError as e:  # parsed only when read
        raise TimestampError(f"the token holds no readable timestamp ({e})") from e


def check_reply(reply: bytes, data: bytes, nonce: int, roots_pem: bytes, url: str) -> Token:
    """A TSA's reply to a request with ``nonce`` over ``data``, checked as a stored token is
    checked, plus the nonce (this reply answers this request, not an earlier one)."""
    problems = verify_token(reply, data, roots_pem)
    resp = _decode(reply)
    if not isinstance(resp, TimeStampResponse):
        raise TimestampError(f"the TSA at {url} sent a bad reply: {'; '.join(problems)}")
    if not problems and resp.tst_info.nonce != nonce:
        problems.append("its nonce is not the request's (a replayed or mixed-up answer)")
    if problems:
        raise TimestampError(f"the TSA at {url} sent a bad timestamp: {'; '.join(problems)}")
    return Token(reply, resp.tst_info.gen_time, resp.tst_info.serial_number)


def request_timestamp(
    url: str, data: bytes, roots_pem: bytes, timeout: float, transport: Transport = post
) -> Token:
    """One request to the TSA at ``url`` over ``data``, the reply checked (Unreachable when it
    does not answer, TimestampError when its answer is not a valid timestamp)."""
    body, nonce = make_request(data)
    return check_reply(transport(url, body, timeout), data, nonce, roots_pem, url)


def chain_pem(tsr: bytes, roots_pem: bytes) -> bytes:
    """The TSA's chain for a bundle's ``log/tsa.pem``: the certificates in the token (the TSA's
    own, and intermediates if it sent them), then the trusted roots that issued one of them
    (all of ``roots_pem`` if none did), each once, as PEM."""
    resp = _decode(tsr)
    embedded = sorted(resp.signed_data.certificates) if not isinstance(resp, str) else []
    chain = []
    issuers = set()
    for der in embedded:
        try:
            cert = x509.load_der_x509_certificate(der)
            issuers.add(cert.issuer)  # parsed only when read
        except (ValueError, x509.InvalidVersion):
            continue  # not a certificate: verify_token says what is wrong with the token
        chain.append(cert)
    roots = _roots(roots_pem)
    roots = [r for r in roots if r.subject in issuers] or roots
    seen: set[bytes] = set()
    out: list[bytes] = []
    for cert in chain + roots:
        der = cert.public_bytes(Encoding.DER)
        if der not in seen:
            seen.add(der)
            out.append(cert.public_bytes(Encoding.PEM))
    return b"".join(out)


def root_fingerprints(pem: bytes) -> list[str]:
    """``<SHA-256 of the DER, hex, colon-separated as openssl prints it>  <subject>`` of each
    self-signed certificate in ``pem``: what a clerk compares with the TSA's published root."""
    out = []
    for cert in _roots(pem):
        if cert.subject == cert.issuer:
            fp = cert.fingerprint(hashes.SHA256()).hex().upper()
            pairs = ":".join(fp[i : i + 2] for i in range(0, len(fp), 2))
            out.append(f"{pairs}  {cert.subject.rfc4514_string()}")
    return out


def settings_roots(settings: Settings) -> bytes | None:
    """The configured TSA roots, or None when no TSA is configured."""
    if not settings.timestamp.enabled:
        return None
    return load_roots(settings.tsa_ca_file)


def timestamp_for_export(
    settings: Settings, note_bytes: bytes, transport: Transport = post
) -> tuple[bytes, bytes] | None:
    """For `bwc export`: (the DER TimeStampResp over ``note_bytes``, the TSA's chain as PEM
    for ``log/tsa.pem``), or None when no TSA is configured. Asks up to EXPORT_ATTEMPTS times
    while the TSA does not answer; then raises TimestampError (the caller says: retry, or
    export with ``--no-timestamp``)."""
    roots = settings_roots(settings)
    if roots is None:
        return None
    cfg = settings.timestamp
    retrying = Retrying(
        retry=retry_if_exception_type(Unreachable),
        stop=stop_after_attempt(EXPORT_ATTEMPTS),
        wait=wait_exponential(multiplier=0.5, max=4),
        reraise=True,
    )
    token = retrying(request_timestamp, cfg.tsa_url, note_bytes, roots, cfg.timeout, transport)
    return token.tsr, chain_pem(token.tsr, roots)
