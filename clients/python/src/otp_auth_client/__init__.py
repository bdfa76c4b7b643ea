"""Python client for nestjs-otp-auth servers (body mode). Standard library only.

Example::

    client = OtpAuthClient("https://auth.example.com")
    client.request_otp("ada@example.com")
    result = client.verify_otp("ada@example.com", "123456")
    if isinstance(result, MfaChallenge):
        client.verify_mfa(result, code="287082")
    client.request("GET", "/protected").json()
"""

__version__ = "0.1.0"

from .errors import ERROR_CODES, ErrorCode, OtpAuthError, parse_retry_after  # noqa: E402
from .models import (  # noqa: E402
    BackupCodes,
    Introspection,
    MfaChallenge,
    OtpRequestResult,
    Response,
    Tokens,
    TotpConfirmation,
    TotpDisabled,
    TotpSetup,
    VerifiedToken,
)
from .storage import MemoryTokenStorage, TokenStorage  # noqa: E402
from .client import OtpAuthClient  # noqa: E402

__all__ = [
    "__version__",
    "OtpAuthClient",
    "OtpAuthError",
    "ErrorCode",
    "ERROR_CODES",
    "parse_retry_after",
    "TokenStorage",
    "MemoryTokenStorage",
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
