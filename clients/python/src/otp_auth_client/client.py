"""The client: sign-in with email codes, two-factor, sessions with rotating refresh tokens."""

import base64
import binascii
import http.client
import json as _json
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Union
from urllib.parse import quote, unquote, urlsplit

from . import __version__
from .errors import ErrorCode, OtpAuthError, parse_retry_after
from .models import (
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
from .storage import MemoryTokenStorage, TokenStorage

__all__ = ["OtpAuthClient"]

# Server messages that tell 401s apart (nestjs-otp-auth's constants). A 401 not listed here is a
# token problem on an authenticated route, or a wrong code on the code routes.
_INVALID_SECOND_FACTOR_MESSAGE = "Invalid two-factor code"
_INVALID_MFA_TOKEN_MESSAGE = "Invalid or expired two-factor challenge"
_STEP_UP_ERROR = "insufficient_user_authentication"
# The resend-cooldown 429 of `request-otp` ("Please wait N seconds before requesting another code.").
_COOLDOWN_MARKER = "before requesting another code"
# The 403 of MfaGuard / `totp.required` ("Two-factor authentication required").
_MFA_REQUIRED_MARKER = "two-factor authentication required"


class _Raw(NamedTuple):
    status: int
    headers: Dict[str, str]
    body: bytes


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects are answered as errors: following one would resend the bearer token elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


def _www_authenticate_param(header: str, name: str) -> Optional[str]:
    """A parameter of a ``WWW-Authenticate: Bearer a="b", c=1`` value (simple, for our server's form)."""
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if sep and key.split() and key.split()[-1].lower() == name:
            return value.strip().strip('"')
    return None


class OtpAuthClient:
    """A client for one nestjs-otp-auth server in body mode (``REFRESH_TOKEN_DELIVERY=body`` or ``both``).

    :param base_url: where the app is served, e.g. ``https://auth.example.com`` (a path such as
        ``https://example.com/api`` is kept: routes and :meth:`request` paths go below it).
    :param route_prefix: where the module's routes are mounted under ``base_url`` (``routePrefix``
        and any global prefix), default ``/auth``.
    :param storage: where tokens are kept; :class:`MemoryTokenStorage` by default.
    :param timeout: seconds to wait for each HTTP exchange (connect and each read).
    :param ssl_context: for ``https://`` with your own CA bundle or client certificates.
    :param user_agent: the ``User-Agent`` header.

    Thread-safe: one client may be shared by threads. When several of them get a 401 at once,
    one refresh runs and the others wait for it and retry with its token.
    """

    def __init__(
        self,
        base_url: str,
        *,
        route_prefix: str = "/auth",
        storage: Optional[TokenStorage] = None,
        timeout: float = 10.0,
        ssl_context: Optional[ssl.SSLContext] = None,
        user_agent: Optional[str] = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("base_url must be an http:// or https:// URL, e.g. https://auth.example.com")
        if parts.query or parts.fragment:
            raise ValueError("base_url may not have a query or fragment")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.base_url = base_url.rstrip("/")
        prefix = route_prefix.strip("/")
        self.route_prefix = "/" + prefix if prefix else ""
        self.storage: TokenStorage = storage if storage is not None else MemoryTokenStorage()
        self.timeout = float(timeout)
        self.user_agent = user_agent or "nestjs-otp-auth-client-python/%s" % __version__
        handlers = [_NoRedirects()]  # type: List[urllib.request.BaseHandler]
        if ssl_context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=ssl_context))
        self._opener = urllib.request.build_opener(*handlers)
        # Held while refreshing, and for every save/clear, so a refresh is single-flight and a
        # refused refresh cannot wipe tokens saved by a sign-in that finished meanwhile.
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ state

    @property
    def tokens(self) -> Optional[Tokens]:
        """The stored tokens, or ``None`` when signed out."""
        return self.storage.load()

    @property
    def signed_in(self) -> bool:
        return self.storage.load() is not None

    # ------------------------------------------------------------------ sign-in

    def request_otp(self, email: str, locale: Optional[str] = None) -> OtpRequestResult:
        """Send a sign-in code to ``email`` (``locale``: a BCP 47 tag for the message, e.g. ``de-CH``).

        The answer is the same for every address. Raises ``cooldown`` (429, ``retry_after``) when
        asked again too soon, ``rate_limited``, or ``service_unavailable`` when delivery failed.
        """
        body = {"email": email}  # type: Dict[str, Any]
        if locale is not None:
            body["locale"] = locale
        data = self._call("POST", self._auth_url("request-otp"), body, "request_otp")
        dev_code = data.get("dev_code")
        return OtpRequestResult(
            message=str(data.get("message", "")),
            expires_in=self._int(data, "expires_in"),
            dev_code=None if dev_code is None else str(dev_code),
        )

    def verify_otp(self, email: str, code: str) -> Union[Tokens, MfaChallenge]:
        """Exchange the emailed code for tokens (stored), or an :class:`MfaChallenge` for users
        with two-factor on (then call :meth:`verify_mfa`). Raises ``invalid_code`` (401) for a
        wrong, expired, used or locked code."""
        data = self._call("POST", self._auth_url("verify-otp"), {"email": email, "code": code}, "verify_otp")
        if data.get("mfa_required") is True:
            token = data.get("mfa_token")
            if not isinstance(token, str):
                raise self._invalid_response("verify-otp", "mfa_token missing")
            return MfaChallenge(mfa_token=token, expires_in=self._int(data, "expires_in"))
        return self._store(self._tokens_from(data, "verify-otp"))

    def verify_mfa(
        self,
        mfa_token: Union[str, MfaChallenge],
        code: Optional[str] = None,
        backup_code: Optional[str] = None,
    ) -> Tokens:
        """Complete a two-factor sign-in with an authenticator ``code`` or a ``backup_code``
        (exactly one). Raises ``invalid_code`` for a wrong one (the challenge allows a few
        guesses), ``invalid_mfa_token`` when the challenge is used up or expired."""
        token = mfa_token.mfa_token if isinstance(mfa_token, MfaChallenge) else mfa_token
        body = self._second_factor(code, backup_code)
        body["mfa_token"] = token
        data = self._call("POST", self._auth_url("totp/verify"), body, "verify_mfa")
        return self._store(self._tokens_from(data, "totp/verify"))

    # ------------------------------------------------------------------ sessions

    def refresh(self) -> Tokens:
        """Rotate the refresh token now. A refused refresh (401) clears the stored tokens and
        raises ``unauthorized``; a network failure or 503 keeps them (retry soon: the server
        answers a repeat within its grace period with the same successor)."""
        with self._lock:
            current = self.storage.load()
            if current is None or not current.refresh_token:
                what = "not signed in" if current is None else "no refresh token stored (is the server in body mode?)"
                raise OtpAuthError(0, ErrorCode.NOT_SIGNED_IN, what)
            return self._refresh_locked(current)

    def logout(self) -> None:
        """End this session on the server (refresh token and access token) and forget the tokens.

        The tokens are forgotten even when the call fails; the error is raised after.
        """
        current = self.storage.load()
        if current is None:
            return
        try:
            body = {"refresh_token": current.refresh_token} if current.refresh_token else {}
            raw = self._send("POST", self._auth_url("logout"), body, bearer=current.access_token)
            if not 200 <= raw.status < 300:
                raise self._error(raw, "logout")
        finally:
            with self._lock:
                self.storage.clear()

    def logout_all(self) -> int:
        """End every session of the user, this one included; returns how many ended."""
        raw = self._authed("POST", self._auth_url("logout-all"), {}, "authed")
        data = self._json_ok(raw, "logout-all", "authed")
        with self._lock:
            self.storage.clear()
        return self._int(data, "revoked_sessions")

    # ------------------------------------------------------------------ two-factor (TOTP)

    def totp_setup(self) -> TotpSetup:
        """Start enrolling an authenticator app (needs a recent sign-in; ``conflict`` when 2FA is on)."""
        data = self._json_ok(self._authed("POST", self._auth_url("totp/setup"), {}, "authed"), "totp/setup", "authed")
        return TotpSetup(
            secret=self._str(data, "secret", "totp/setup"),
            otpauth_url=self._str(data, "otpauth_url", "totp/setup"),
            qr_code=self._str(data, "qr_code", "totp/setup"),
        )

    def totp_qr_code(self) -> bytes:
        """The pending enrolment's QR code as PNG bytes."""
        raw = self._authed("GET", self._auth_url("totp/qr"), None, "authed")
        if not 200 <= raw.status < 300:
            raise self._error(raw, "authed")
        return raw.body

    def totp_confirm(self, code: str) -> TotpConfirmation:
        """Activate two-factor with a current code. Every earlier session ends, this one too: the
        new two-factor session's tokens are stored and returned with the backup codes."""
        raw = self._authed("POST", self._auth_url("totp/confirm"), {"code": code}, "second_factor")
        data = self._json_ok(raw, "totp/confirm", "second_factor")
        codes = data.get("backup_codes")
        if not isinstance(codes, list):
            raise self._invalid_response("totp/confirm", "backup_codes missing")
        tokens = self._store(self._tokens_from(data, "totp/confirm"))
        return TotpConfirmation(backup_codes=tuple(str(c) for c in codes), tokens=tokens)

    def totp_disable(
        self,
        code: Optional[str] = None,
        backup_code: Optional[str] = None,
        *,
        end_other_sessions: Optional[bool] = None,
    ) -> TotpDisabled:
        """Turn two-factor off with a current ``code`` or a ``backup_code`` (exactly one).

        Needs a recent sign-in: otherwise ``insufficient_user_authentication`` (sign in again).
        ``end_other_sessions=True`` also ends every other session of the user.
        """
        body = self._management_body(code, backup_code, end_other_sessions)
        raw = self._authed("POST", self._auth_url("totp/disable"), body, "second_factor")
        data = self._json_ok(raw, "totp/disable", "second_factor")
        return TotpDisabled(message=str(data.get("message", "")), revoked_sessions=self._int(data, "revoked_sessions", 0))

    def regenerate_backup_codes(
        self,
        code: Optional[str] = None,
        backup_code: Optional[str] = None,
        *,
        end_other_sessions: Optional[bool] = None,
    ) -> BackupCodes:
        """Replace the backup codes (the old set stops working); same rules as :meth:`totp_disable`."""
        body = self._management_body(code, backup_code, end_other_sessions)
        raw = self._authed("POST", self._auth_url("totp/backup-codes"), body, "second_factor")
        data = self._json_ok(raw, "totp/backup-codes", "second_factor")
        codes = data.get("backup_codes")
        if not isinstance(codes, list):
            raise self._invalid_response("totp/backup-codes", "backup_codes missing")
        return BackupCodes(backup_codes=tuple(str(c) for c in codes), revoked_sessions=self._int(data, "revoked_sessions", 0))

    # ------------------------------------------------------------------ for servers

    def introspect(self, token: str, api_key: str, *, token_type_hint: Optional[str] = None) -> Introspection:
        """RFC 7662 introspection of an access token, with an API key from the server's
        ``OTP_INTROSPECTION_API_KEYS``. Uses neither the stored tokens nor a refresh.

        ``active`` is False for expired, revoked, refresh, mfa and malformed tokens. Raises
        ``unauthorized`` for a wrong key, ``not_found`` when introspection is off.
        """
        body = {"token": token}  # type: Dict[str, Any]
        if token_type_hint is not None:
            body["token_type_hint"] = token_type_hint
        data = self._call("POST", self._auth_url("introspect"), body, "introspect", bearer=api_key)
        active = data.get("active")
        if not isinstance(active, bool):
            raise self._invalid_response("introspect", "no active field", 200)
        if not active:
            return Introspection(active=False, claims={})
        if not isinstance(data.get("sub"), str):
            raise self._invalid_response("introspect", "no sub", 200)
        return Introspection(active=True, claims={k: v for k, v in data.items() if k != "active"})

    def verify_token(self, access_token: str) -> Optional[VerifiedToken]:
        """``GET /verify`` (the gateway endpoint): the user id and claims of a valid access token,
        or ``None`` for an invalid, expired or revoked one. Needs no API key; uses neither the
        stored tokens nor a refresh. Raises ``not_found`` when the server has it turned off."""
        raw = self._send("GET", self._auth_url("verify"), None, bearer=access_token)
        if raw.status == 401:
            return None
        if not 200 <= raw.status < 300:
            raise self._error(raw, "verify_token")
        user = raw.headers.get("x-auth-user")
        encoded = raw.headers.get("x-auth-claims", "")
        try:
            claims = _json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8"))
        except (ValueError, UnicodeDecodeError, binascii.Error):
            claims = None
        if user is None or not isinstance(claims, dict):
            raise self._invalid_response("verify", "no X-Auth-User / X-Auth-Claims headers", raw.status)
        return VerifiedToken(user_id=unquote(user), claims=claims)

    # ------------------------------------------------------------------ your own routes

    def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> Response:
        """An authenticated request to ``base_url + path`` (e.g. ``/protected``) with the access token.

        On a 401 it refreshes once (single-flight across threads) and retries once; a refused
        refresh clears the tokens and raises ``unauthorized``. A step-up 401
        (``insufficient_user_authentication``) is raised without a refresh. Non-2xx answers raise
        :class:`OtpAuthError`. ``json`` is sent as a JSON body when not ``None``.
        """
        if not path.startswith("/") or path.startswith("//"):
            # An absolute URL here would send the access token to another host.
            raise ValueError("path must start with a single '/', relative to base_url")
        raw = self._authed(
            method.upper(),
            self.base_url + path,
            json,
            "authed",
            extra_headers=headers,
            timeout=timeout,
        )
        if not 200 <= raw.status < 300:
            raise self._error(raw, "authed")
        return Response(status=raw.status, headers=raw.headers, body=raw.body)

    # ------------------------------------------------------------------ internals

    def _auth_url(self, route: str) -> str:
        return "%s%s/%s" % (self.base_url, self.route_prefix, route)

    def _store(self, tokens: Tokens) -> Tokens:
        with self._lock:
            self.storage.save(tokens)
        return tokens

    @staticmethod
    def _second_factor(code: Optional[str], backup_code: Optional[str]) -> Dict[str, Any]:
        if (code is None) == (backup_code is None):
            raise ValueError("give exactly one of code and backup_code")
        return {"code": code} if code is not None else {"backup_code": backup_code}

    def _management_body(
        self, code: Optional[str], backup_code: Optional[str], end_other_sessions: Optional[bool]
    ) -> Dict[str, Any]:
        body = self._second_factor(code, backup_code)
        if end_other_sessions is not None:
            if not isinstance(end_other_sessions, bool):
                raise TypeError("end_other_sessions must be a bool")
            body["end_other_sessions"] = end_other_sessions
        return body

    def _authed(
        self,
        method: str,
        url: str,
        payload: Any,
        operation: str,
        *,
        extra_headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> _Raw:
        """Send with the access token; on a token 401, refresh (single-flight) and retry once."""
        current = self.storage.load()
        if current is None:
            raise OtpAuthError(0, ErrorCode.NOT_SIGNED_IN, "not signed in: call verify_otp first")
        raw = self._send(method, url, payload, bearer=current.access_token, extra_headers=extra_headers, timeout=timeout)
        if raw.status != 401 or self._error(raw, operation).code != ErrorCode.UNAUTHORIZED:
            return raw
        fresh = self._refresh_after_401(current.access_token)
        return self._send(method, url, payload, bearer=fresh.access_token, extra_headers=extra_headers, timeout=timeout)

    def _refresh_after_401(self, used_access_token: str) -> Tokens:
        """The tokens to retry with: another thread's refresh when it already happened, else a new one."""
        with self._lock:
            current = self.storage.load()
            if current is None:
                raise OtpAuthError(401, ErrorCode.UNAUTHORIZED, "signed out: the session has ended")
            if current.access_token != used_access_token:
                return current  # refreshed (or signed in again) while this request was out
            if not current.refresh_token:
                self.storage.clear()
                raise OtpAuthError(
                    401,
                    ErrorCode.UNAUTHORIZED,
                    "the access token was refused and there is no refresh token "
                    "(the server must deliver refresh tokens in the body: REFRESH_TOKEN_DELIVERY=body or both)",
                )
            return self._refresh_locked(current)

    def _refresh_locked(self, current: Tokens) -> Tokens:
        """One refresh; the caller holds ``self._lock``."""
        raw = self._send("POST", self._auth_url("refresh"), {"refresh_token": current.refresh_token})
        if 200 <= raw.status < 300:
            return self._store(self._tokens_from(self._parse_json(raw, "refresh"), "refresh"))
        error = self._error(raw, "refresh")
        if raw.status in (400, 401):
            # The refresh token is dead (expired, revoked, reused, session over): sign in again.
            self.storage.clear()
        raise error

    def _call(
        self, method: str, url: str, payload: Any, operation: str, *, bearer: Optional[str] = None
    ) -> Dict[str, Any]:
        raw = self._send(method, url, payload, bearer=bearer)
        return self._json_ok(raw, url.rsplit("/", 1)[-1], operation)

    def _json_ok(self, raw: _Raw, route: str, operation: str) -> Dict[str, Any]:
        if not 200 <= raw.status < 300:
            raise self._error(raw, operation)
        return self._parse_json(raw, route)

    def _parse_json(self, raw: _Raw, route: str) -> Dict[str, Any]:
        try:
            data = _json.loads(raw.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise self._invalid_response(route, "the body is not JSON", raw.status) from None
        if not isinstance(data, dict):
            raise self._invalid_response(route, "the body is not a JSON object", raw.status)
        return data

    def _tokens_from(self, data: Mapping[str, Any], route: str) -> Tokens:
        access = data.get("access_token")
        if not isinstance(access, str) or not access:
            raise self._invalid_response(route, "access_token missing")
        refresh = data.get("refresh_token")
        expires_in = self._int(data, "expires_in")
        return Tokens(
            access_token=access,
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            expires_in=expires_in,
            expires_at=time.time() + expires_in,
            token_type=str(data.get("token_type", "bearer")),
        )

    @staticmethod
    def _int(data: Mapping[str, Any], key: str, default: Optional[int] = None) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            if default is not None:
                return default
            raise OtpAuthError(0, ErrorCode.INVALID_RESPONSE, "the answer has no integer %r" % key)
        return value

    def _str(self, data: Mapping[str, Any], key: str, route: str) -> str:
        value = data.get(key)
        if not isinstance(value, str):
            raise self._invalid_response(route, "%s missing" % key)
        return value

    @staticmethod
    def _invalid_response(route: str, what: str, status: int = 0) -> OtpAuthError:
        return OtpAuthError(status, ErrorCode.INVALID_RESPONSE, "unexpected answer from %s: %s" % (route, what))

    # ------------------------------------------------------------------ HTTP

    def _send(
        self,
        method: str,
        url: str,
        payload: Any,
        *,
        bearer: Optional[str] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> _Raw:
        """One HTTP exchange. Any status is returned; transport failures raise OtpAuthError."""
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        data = None  # type: Optional[bytes]
        if payload is not None:
            data = _json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if extra_headers:
            headers.update(extra_headers)
        if bearer is not None:
            headers["Authorization"] = "Bearer " + bearer
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        wait = self.timeout if timeout is None else timeout
        try:
            try:
                with self._opener.open(request, timeout=wait) as answer:
                    return _Raw(answer.status, self._headers(answer.headers), answer.read())
            except urllib.error.HTTPError as error:
                try:
                    body = error.read()
                finally:
                    error.close()
                return _Raw(error.code, self._headers(error.headers), body)
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, socket.timeout):
                raise self._timeout(method, url, wait) from None
            raise OtpAuthError(0, ErrorCode.NETWORK_ERROR, "%s %s failed: %s" % (method, self._shown(url), reason)) from None
        except socket.timeout:
            raise self._timeout(method, url, wait) from None
        except (http.client.HTTPException, OSError) as error:
            raise OtpAuthError(
                0, ErrorCode.NETWORK_ERROR, "%s %s failed: %s" % (method, self._shown(url), error or type(error).__name__)
            ) from None

    @staticmethod
    def _headers(message: Any) -> Dict[str, str]:
        result = {}  # type: Dict[str, str]
        if message is None:
            return result
        for name, value in message.items():
            key = name.lower()
            result[key] = result[key] + ", " + value if key in result else value
        return result

    @staticmethod
    def _shown(url: str) -> str:
        parts = urlsplit(url)
        return "%s://%s%s" % (parts.scheme, parts.hostname or "", quote(parts.path))

    def _timeout(self, method: str, url: str, wait: float) -> OtpAuthError:
        return OtpAuthError(0, ErrorCode.TIMEOUT, "%s %s: no answer within %gs" % (method, self._shown(url), wait))

    @staticmethod
    def _error(raw: _Raw, operation: str) -> OtpAuthError:
        """The OtpAuthError for a non-2xx answer, by status, route and (where statuses are shared)
        the server's message; the same rules as the TypeScript SDK's ``errorFromResponse``."""
        body = None  # type: Any
        try:
            body = _json.loads(raw.body.decode("utf-8")) if raw.body else None
        except (UnicodeDecodeError, ValueError):
            body = None
        fields = body if isinstance(body, dict) else {}
        message_value = fields.get("message")
        if isinstance(message_value, list):
            details = tuple(str(m) for m in message_value)
        elif isinstance(message_value, str) and message_value:
            details = (message_value,)
        else:
            details = ()
        message = "; ".join(details) or "%s failed with HTTP %d %s" % (
            operation,
            raw.status,
            http.client.responses.get(raw.status, ""),
        )
        text = message.lower()
        retry_after = parse_retry_after(raw.headers.get("retry-after"))
        if retry_after is None and isinstance(fields.get("retry_after"), int):
            retry_after = fields["retry_after"]
        status = raw.status
        max_age = None  # type: Optional[int]
        challenge = raw.headers.get("www-authenticate", "")
        if status == 401:
            if fields.get("error") == _STEP_UP_ERROR or _STEP_UP_ERROR in challenge:
                age = _www_authenticate_param(challenge, "max_age")
                max_age = int(age) if age is not None and age.isdigit() else None
                code = ErrorCode.REAUTHENTICATION_REQUIRED
            elif operation == "verify_otp":
                code = ErrorCode.INVALID_CODE
            elif operation == "verify_mfa":
                code = ErrorCode.INVALID_MFA_TOKEN if message == _INVALID_MFA_TOKEN_MESSAGE else ErrorCode.INVALID_CODE
            elif operation == "second_factor" and message == _INVALID_SECOND_FACTOR_MESSAGE:
                code = ErrorCode.INVALID_CODE
            else:
                code = ErrorCode.UNAUTHORIZED
        elif status == 429:
            is_cooldown = operation == "request_otp" and _COOLDOWN_MARKER in text
            code = ErrorCode.COOLDOWN if is_cooldown else ErrorCode.RATE_LIMITED
        elif status == 400:
            code = ErrorCode.VALIDATION_FAILED
        elif status == 403:
            code = ErrorCode.MFA_REQUIRED if _MFA_REQUIRED_MARKER in text else ErrorCode.FORBIDDEN
        elif status == 404:
            code = ErrorCode.NOT_FOUND
        elif status == 409:
            code = ErrorCode.CONFLICT
        elif status == 503:
            code = ErrorCode.SERVICE_UNAVAILABLE
        elif status >= 500:
            code = ErrorCode.SERVER_ERROR
        else:
            code = ErrorCode.HTTP_ERROR
        return OtpAuthError(status, code, message, retry_after, details=details, body=body, max_age=max_age)
