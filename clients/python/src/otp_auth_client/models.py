"""Typed answers of the nestjs-otp-auth HTTP API (body mode)."""

import json
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

__all__ = [
    "Tokens",
    "MfaChallenge",
    "OtpRequestResult",
    "TotpSetup",
    "TotpConfirmation",
    "TotpDisabled",
    "BackupCodes",
    "Introspection",
    "VerifiedToken",
    "Response",
]


@dataclass(frozen=True)
class Tokens:
    """A session's tokens, as `verify-otp`, `totp/verify`, `totp/confirm` and `refresh` return them.

    ``refresh_token`` is ``None`` only when the server does not deliver refresh tokens in the
    body (``REFRESH_TOKEN_DELIVERY=cookie``); such a session cannot be refreshed by this client.
    ``expires_at`` is the access token's expiry on this machine's clock (epoch seconds), computed
    from ``expires_in`` when the answer arrived.
    """

    access_token: str
    refresh_token: Optional[str]
    expires_in: int
    expires_at: float
    token_type: str = "bearer"

    def is_expired(self, leeway: float = 0.0, now: Optional[float] = None) -> bool:
        """Whether the access token has expired (or will within ``leeway`` seconds)."""
        return (time.time() if now is None else now) + leeway >= self.expires_at

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serialisable form, for storages that persist tokens."""
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_in": self.expires_in,
            "expires_at": self.expires_at,
            "token_type": self.token_type,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Tokens":
        """The inverse of :meth:`to_dict`."""
        return cls(
            access_token=str(data["access_token"]),
            refresh_token=None if data.get("refresh_token") is None else str(data["refresh_token"]),
            expires_in=int(data.get("expires_in", 0)),
            expires_at=float(data.get("expires_at", 0.0)),
            token_type=str(data.get("token_type", "bearer")),
        )

    def __repr__(self) -> str:  # never print the credentials themselves
        return "Tokens(access_token=<redacted>, refresh_token=%s, expires_in=%d, expires_at=%.0f)" % (
            "<redacted>" if self.refresh_token is not None else "None",
            self.expires_in,
            self.expires_at,
        )


@dataclass(frozen=True)
class MfaChallenge:
    """`verify-otp` for a user with two-factor on: finish with :meth:`OtpAuthClient.verify_mfa`."""

    mfa_token: str = field(repr=False)
    expires_in: int

    @property
    def mfa_required(self) -> bool:
        return True


@dataclass(frozen=True)
class OtpRequestResult:
    """Answer of `request-otp`: the same for every address. ``dev_code`` only in developer mode."""

    message: str
    expires_in: int
    dev_code: Optional[str] = None


@dataclass(frozen=True)
class TotpSetup:
    """Answer of `totp/setup`: the pending secret (base32), its key URI and a PNG data-URL QR code."""

    secret: str = field(repr=False)
    otpauth_url: str = field(repr=False)
    qr_code: str = field(repr=False)


@dataclass(frozen=True)
class TotpConfirmation:
    """Answer of `totp/confirm`: backup codes (shown once) and the new two-factor session's tokens.

    Every earlier session of the user has ended, the one that confirmed included; the client has
    already stored ``tokens``.
    """

    backup_codes: Tuple[str, ...] = field(repr=False)
    tokens: Tokens


@dataclass(frozen=True)
class TotpDisabled:
    """Answer of `totp/disable`."""

    message: str
    revoked_sessions: int


@dataclass(frozen=True)
class BackupCodes:
    """Answer of `totp/backup-codes`: the new set (the old one no longer works)."""

    backup_codes: Tuple[str, ...] = field(repr=False)
    revoked_sessions: int


@dataclass(frozen=True)
class Introspection:
    """RFC 7662 answer of `introspect`. ``claims`` holds every member but ``active``."""

    active: bool
    claims: Dict[str, Any] = field(default_factory=dict)

    @property
    def sub(self) -> Optional[str]:
        value = self.claims.get("sub")
        return None if value is None else str(value)

    @property
    def sid(self) -> Optional[str]:
        value = self.claims.get("sid")
        return None if value is None else str(value)

    @property
    def jti(self) -> Optional[str]:
        value = self.claims.get("jti")
        return None if value is None else str(value)

    @property
    def exp(self) -> Optional[int]:
        value = self.claims.get("exp")
        return value if isinstance(value, int) else None

    @property
    def auth_time(self) -> Optional[int]:
        value = self.claims.get("auth_time")
        return value if isinstance(value, int) else None

    @property
    def amr(self) -> Tuple[str, ...]:
        value = self.claims.get("amr")
        return tuple(str(v) for v in value) if isinstance(value, list) else ()

    @property
    def token_type(self) -> Optional[str]:
        value = self.claims.get("token_type")
        return None if value is None else str(value)


@dataclass(frozen=True)
class VerifiedToken:
    """Answer of `GET verify` for a valid access token: ``X-Auth-User`` and ``X-Auth-Claims``."""

    user_id: str
    claims: Dict[str, Any]


@dataclass(frozen=True)
class Response:
    """Answer of :meth:`OtpAuthClient.request`. Header names are lower-case."""

    status: int
    headers: Dict[str, str]
    body: bytes = field(repr=False)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; ``None`` for an empty body."""
        if not self.body:
            return None
        return json.loads(self.body.decode("utf-8"))
