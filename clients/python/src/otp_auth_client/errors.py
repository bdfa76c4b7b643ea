"""The one exception the client raises for HTTP and transport failures, with stable codes."""

import email.utils
import math
import re
import time
from typing import Any, Optional, Sequence, Tuple

__all__ = [
    "OtpAuthError",
    "ErrorCode",
    "ERROR_CODES",
    "parse_retry_after",
]


class ErrorCode:
    """The stable values of :attr:`OtpAuthError.code`. Compare with these, not with messages."""

    #: A wrong, expired, used or locked email code (`verify-otp`), or a wrong authenticator or
    #: backup code (`totp/verify`, `totp/confirm`, `totp/disable`, `totp/backup-codes`).
    INVALID_CODE = "invalid_code"
    #: The `mfa_token` is invalid, expired, used up or already consumed: sign in again.
    INVALID_MFA_TOKEN = "invalid_mfa_token"
    #: No valid session: a missing, invalid, expired or revoked access or refresh token, a
    #: refresh refused (the client has then forgotten its tokens), or a wrong API key.
    UNAUTHORIZED = "unauthorized"
    #: 401 with ``WWW-Authenticate: Bearer error="insufficient_user_authentication"`` (RFC 9470
    #: step-up): the action needs a more recent sign-in (``max_age``). Sign in again; refreshing
    #: cannot help, so the client never answers this with a refresh.
    REAUTHENTICATION_REQUIRED = "reauthentication_required"
    #: 403: the route needs a two-factor session (``@RequireMfa()``, or ``totp.required``).
    MFA_REQUIRED = "mfa_required"
    #: Any other 403.
    FORBIDDEN = "forbidden"
    #: 404: e.g. introspection while the server has no API keys configured.
    NOT_FOUND = "not_found"
    #: 409: e.g. `totp/setup` while two-factor is already on.
    CONFLICT = "conflict"
    #: 400: the body was refused; ``details`` holds the server's field messages.
    VALIDATION_FAILED = "validation_failed"
    #: 429 from `request-otp` inside the resend cooldown; wait ``retry_after`` seconds.
    COOLDOWN = "cooldown"
    #: 429 from a request limit; wait ``retry_after`` seconds.
    RATE_LIMITED = "rate_limited"
    #: 503: database or delivery down; try again after ``retry_after`` seconds when given.
    SERVICE_UNAVAILABLE = "service_unavailable"
    #: Any other 5xx.
    SERVER_ERROR = "server_error"
    #: Any other non-2xx status (3xx included: redirects are never followed).
    HTTP_ERROR = "http_error"
    #: The server could not be reached or the connection broke (``status`` is 0).
    NETWORK_ERROR = "network_error"
    #: No answer within the timeout (``status`` is 0). A POST may still have been handled.
    #: (Python only: the TypeScript SDK has ``aborted`` for its AbortSignal instead.)
    TIMEOUT = "timeout"
    #: A 2xx answer that is not the JSON the route documents.
    INVALID_RESPONSE = "invalid_response"
    #: The client holds no tokens (or no refresh token) for a call that needs them; no request sent.
    NOT_SIGNED_IN = "not_signed_in"


ERROR_CODES = frozenset(value for name, value in vars(ErrorCode).items() if name.isupper())


class OtpAuthError(Exception):
    """A failed call.

    :param status: the HTTP status; 0 when no answer arrived (network, timeout) or no request
        was sent (``not_signed_in``).
    :param code: one of :class:`ErrorCode`.
    :param message: the server's message, or a description of the local failure.
    :param retry_after: seconds to wait, from ``Retry-After`` (or the body's ``retry_after``).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        retry_after: Optional[int] = None,
        *,
        details: Sequence[str] = (),
        body: Any = None,
        max_age: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        #: The server's messages: the field errors for ``validation_failed``, else its message.
        self.details = tuple(details)  # type: Tuple[str, ...]
        #: The parsed JSON error body, when there was one.
        self.body = body
        #: For ``reauthentication_required``: how recent (seconds) the sign-in must be.
        self.max_age = max_age

    def __str__(self) -> str:
        where = "HTTP %d" % self.status if self.status else "no HTTP answer"
        text = "%s (%s): %s" % (self.code, where, self.message)
        if self.retry_after is not None:
            text += " [retry after %ds]" % self.retry_after
        return text

    def __repr__(self) -> str:
        return "OtpAuthError(status=%r, code=%r, message=%r, retry_after=%r)" % (
            self.status,
            self.code,
            self.message,
            self.retry_after,
        )


_DELTA_SECONDS = re.compile(r"^\s*(\d{1,10})\s*$")


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[int]:
    """``Retry-After`` as whole seconds from now: delta-seconds or an HTTP-date (RFC 9110 10.2.3).

    Returns ``None`` when absent or unparseable; a date in the past gives ``0``.
    """
    if value is None:
        return None
    match = _DELTA_SECONDS.match(value)
    if match:
        return int(match.group(1))
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0, int(math.ceil(seconds)))
