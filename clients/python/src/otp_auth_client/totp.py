"""RFC 4226 HOTP and RFC 6238 TOTP codes, standard library only.

For tests and automation that act as an authenticator app (the secret from
:meth:`OtpAuthClient.totp_setup`). Real users keep their secret in their authenticator app.
"""

import base64
import binascii
import hashlib
import hmac
import struct
import time
from typing import Dict, Optional, Union
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["decode_base32", "hotp", "totp", "time_step", "parse_otpauth_url"]

_ALGORITHMS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}

Secret = Union[str, bytes]


def decode_base32(secret: str) -> bytes:
    """A base32 secret as authenticator apps take it: case, spaces, dashes and padding are ignored."""
    cleaned = "".join(secret.split()).replace("-", "").upper().rstrip("=")
    if not cleaned:
        raise ValueError("empty base32 secret")
    try:
        return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (binascii.Error, ValueError) as error:
        raise ValueError("not a base32 secret: %s" % error) from None


def _key(secret: Secret) -> bytes:
    return decode_base32(secret) if isinstance(secret, str) else bytes(secret)


def hotp(secret: Secret, counter: int, digits: int = 6, algorithm: str = "SHA1") -> str:
    """RFC 4226 HOTP. ``secret`` is base32 text or the raw key bytes."""
    if not 1 <= digits <= 10:
        raise ValueError("digits must be 1..10")
    if counter < 0 or counter >= 1 << 64:
        raise ValueError("counter must fit in 64 bits")
    try:
        digest = _ALGORITHMS[algorithm.upper()]
    except KeyError:
        raise ValueError("algorithm must be one of %s" % ", ".join(sorted(_ALGORITHMS))) from None
    mac = hmac.new(_key(secret), struct.pack(">Q", counter), digest).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % (10**digits)).zfill(digits)


def time_step(at: Optional[float] = None, period: int = 30, t0: int = 0) -> int:
    """The RFC 6238 time step ``T`` of a Unix time (now by default)."""
    if period <= 0:
        raise ValueError("period must be positive")
    return int(((time.time() if at is None else at) - t0) // period)


def totp(
    secret: Secret,
    at: Optional[float] = None,
    *,
    period: int = 30,
    digits: int = 6,
    algorithm: str = "SHA1",
    t0: int = 0,
    step: Optional[int] = None,
) -> str:
    """RFC 6238 TOTP at Unix time ``at`` (now by default), or at an explicit time ``step``."""
    counter = time_step(at, period, t0) if step is None else step
    return hotp(secret, counter, digits=digits, algorithm=algorithm)


def parse_otpauth_url(url: str) -> Dict[str, str]:
    """The parts of an ``otpauth://totp/Issuer:account?secret=…`` key URI.

    Returns ``label``, ``secret``, and ``issuer``, ``algorithm``, ``digits``, ``period`` when given.
    """
    parts = urlsplit(url)
    if parts.scheme != "otpauth" or parts.netloc.lower() != "totp":
        raise ValueError("not an otpauth://totp/ URI")
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    if "secret" not in query:
        raise ValueError("the key URI has no secret")
    result = {"label": unquote(parts.path.lstrip("/"))}
    result.update(query)
    return result
