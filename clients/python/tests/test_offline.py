"""Client behaviour that needs no sample app: transport failures, redirects, error mapping of
answers the sample app cannot be made to give, argument checks, storage and models."""

import json
import socket
import threading
import time
import unittest
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Tuple

import support
from otp_auth_client import (
    ERROR_CODES,
    ErrorCode,
    MemoryTokenStorage,
    MfaChallenge,
    OtpAuthClient,
    OtpAuthError,
    TokenStorage,
    Tokens,
    parse_retry_after,
)

Canned = Tuple[int, Dict[str, str], bytes]


class FakeServer:
    """Answers each path with a canned (status, headers, body) and records the requests."""

    def __init__(self, routes: Dict[str, Canned]) -> None:
        self.routes = routes
        self.requests = []  # type: List[Tuple[str, str, Dict[str, str], bytes]]
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status, headers, payload = server.routes.get(self.path, (404, {}, b'{"statusCode":404,"message":"nope"}'))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self._server.server_address[1]

    def paths(self) -> List[str]:
        return [path for _, path, _, _ in self.requests]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def json_answer(status: int, body: object, headers: Optional[Dict[str, str]] = None) -> Canned:
    merged = {"content-type": "application/json"}
    merged.update(headers or {})
    return status, merged, json.dumps(body).encode()


def tokens(access: str = "access-1", refresh: Optional[str] = "refresh-1") -> Tokens:
    return Tokens(access_token=access, refresh_token=refresh, expires_in=60, expires_at=time.time() + 60)


class FakeServerCase(unittest.TestCase):
    def serve(self, routes: Dict[str, Canned]) -> FakeServer:
        server = FakeServer(routes)
        self.addCleanup(server.close)
        return server


class TransportTest(FakeServerCase):
    def test_connection_refused_is_network_error(self) -> None:
        c = OtpAuthClient("http://127.0.0.1:%d" % support.free_port(), timeout=2)
        with self.assertRaises(OtpAuthError) as caught:
            c.request_otp("ada@example.com")
        self.assertEqual((caught.exception.status, caught.exception.code), (0, ErrorCode.NETWORK_ERROR))

    def test_no_answer_is_timeout(self) -> None:
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections (the kernel does) but never answers
        self.addCleanup(silent.close)
        c = OtpAuthClient("http://127.0.0.1:%d" % silent.getsockname()[1], timeout=0.3)
        started = time.monotonic()
        with self.assertRaises(OtpAuthError) as caught:
            c.request_otp("ada@example.com")
        self.assertEqual((caught.exception.status, caught.exception.code), (0, ErrorCode.TIMEOUT))
        self.assertLess(time.monotonic() - started, 5)

    def test_per_request_timeout(self) -> None:
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        self.addCleanup(silent.close)
        c = OtpAuthClient("http://127.0.0.1:%d" % silent.getsockname()[1], storage=MemoryTokenStorage(tokens()), timeout=30)
        started = time.monotonic()
        with self.assertRaises(OtpAuthError) as caught:
            c.request("GET", "/slow", timeout=0.3)
        self.assertEqual(caught.exception.code, ErrorCode.TIMEOUT)
        self.assertLess(time.monotonic() - started, 5)
        self.assertIsNotNone(c.tokens)  # a transport failure keeps the session

    def test_redirects_are_not_followed(self) -> None:
        elsewhere = self.serve({"/steal": json_answer(200, {})})
        server = self.serve({"/protected": (302, {"location": elsewhere.url + "/steal"}, b"")})
        c = OtpAuthClient(server.url, storage=MemoryTokenStorage(tokens()))
        with self.assertRaises(OtpAuthError) as caught:
            c.request("GET", "/protected")
        self.assertEqual((caught.exception.status, caught.exception.code), (302, ErrorCode.HTTP_ERROR))
        self.assertEqual(elsewhere.requests, [])  # the bearer token went nowhere else

    def test_request_sends_json_and_the_bearer_token(self) -> None:
        server = self.serve({"/api/items": json_answer(201, {"id": 7}, {"x-extra": "1"})})
        c = OtpAuthClient(server.url + "/", storage=MemoryTokenStorage(tokens()))
        answer = c.request("post", "/api/items", {"name": "ü"}, headers={"X-Trace": "t"})
        self.assertEqual((answer.status, answer.json(), answer.headers["x-extra"]), (201, {"id": 7}, "1"))
        method, path, headers, body = server.requests[0]
        self.assertEqual((method, path), ("POST", "/api/items"))
        self.assertEqual(headers["authorization"], "Bearer access-1")
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual(headers["x-trace"], "t")
        self.assertTrue(headers["user-agent"].startswith("nestjs-otp-auth-client-python/"))
        self.assertEqual(json.loads(body), {"name": "ü"})


class RouteTest(FakeServerCase):
    def test_route_prefix_and_base_path(self) -> None:
        answer = json_answer(200, {"message": "ok", "expires_in": 600})
        server = self.serve({"/api/v1/login/request-otp": answer})
        OtpAuthClient(server.url + "/api", route_prefix="v1/login/").request_otp("ada@example.com")
        self.assertEqual(server.paths(), ["/api/v1/login/request-otp"])
        self.assertEqual(json.loads(server.requests[0][3]), {"email": "ada@example.com"})

    def test_management_bodies(self) -> None:
        ok = json_answer(200, {"backup_codes": ["AAAAA-BBBBB"], "revoked_sessions": 3})
        server = self.serve({"/auth/totp/backup-codes": ok, "/auth/totp/disable": json_answer(200, {"message": "off", "revoked_sessions": 0})})
        c = OtpAuthClient(server.url, storage=MemoryTokenStorage(tokens()))
        result = c.regenerate_backup_codes(code="123456", end_other_sessions=True)
        self.assertEqual((result.backup_codes, result.revoked_sessions), (("AAAAA-BBBBB",), 3))
        c.totp_disable(backup_code="AAAAA-BBBBB")
        bodies = [json.loads(body) for _, _, _, body in server.requests]
        self.assertEqual(bodies, [{"code": "123456", "end_other_sessions": True}, {"backup_code": "AAAAA-BBBBB"}])

    def test_mfa_challenge(self) -> None:
        server = self.serve({"/auth/verify-otp": json_answer(200, {"mfa_required": True, "mfa_token": "m.f.a", "expires_in": 300})})
        c = OtpAuthClient(server.url)
        challenge = c.verify_otp("ada@example.com", "123456")
        assert isinstance(challenge, MfaChallenge)
        self.assertEqual((challenge.mfa_token, challenge.expires_in), ("m.f.a", 300))
        self.assertNotIn("m.f.a", repr(challenge))
        self.assertIsNone(c.tokens)


class ErrorMappingTest(FakeServerCase):
    def test_service_unavailable_with_retry_after(self) -> None:
        body = {"statusCode": 503, "error": "Service Unavailable", "retry_after": 5, "message": "Sign-in is briefly unavailable"}
        server = self.serve({"/auth/request-otp": json_answer(503, body, {"retry-after": "5"})})
        with self.assertRaises(OtpAuthError) as caught:
            OtpAuthClient(server.url).request_otp("ada@example.com")
        error = caught.exception
        self.assertEqual((error.status, error.code, error.retry_after), (503, ErrorCode.SERVICE_UNAVAILABLE, 5))
        self.assertEqual(error.body, body)
        self.assertEqual(error.details, ("Sign-in is briefly unavailable",))
        self.assertIn("service_unavailable (HTTP 503)", str(error))

    def test_mfa_required_and_details(self) -> None:
        mfa = {"statusCode": 403, "message": "Two-factor authentication required", "error": "Forbidden"}
        invalid = {"statusCode": 400, "message": ["email must be a string", "code must be 4 to 10 digits"]}
        server = self.serve({"/billing": json_answer(403, mfa), "/auth/verify-otp": json_answer(400, invalid)})
        c = OtpAuthClient(server.url, storage=MemoryTokenStorage(tokens()))
        with self.assertRaises(OtpAuthError) as caught:
            c.request("GET", "/billing")
        self.assertEqual((caught.exception.status, caught.exception.code), (403, ErrorCode.MFA_REQUIRED))
        with self.assertRaises(OtpAuthError) as caught:
            c.verify_otp("ada@example.com", "x")
        self.assertEqual(caught.exception.code, ErrorCode.VALIDATION_FAILED)
        self.assertEqual(caught.exception.details, tuple(invalid["message"]))  # type: ignore[arg-type]
        self.assertEqual(caught.exception.message, "email must be a string; code must be 4 to 10 digits")

    def test_a_429_elsewhere_is_never_cooldown(self) -> None:
        answer = json_answer(429, {"message": "Please wait 5 seconds before requesting another code."}, {"retry-after": "5"})
        server = self.serve({"/auth/verify-otp": answer})
        with self.assertRaises(OtpAuthError) as caught:
            OtpAuthClient(server.url).verify_otp("ada@example.com", "123456")
        self.assertEqual((caught.exception.code, caught.exception.retry_after), (ErrorCode.RATE_LIMITED, 5))

    def test_statuses(self) -> None:
        cases = {
            "/403": (403, ErrorCode.FORBIDDEN),
            "/409": (409, ErrorCode.CONFLICT),
            "/415": (415, ErrorCode.HTTP_ERROR),
            "/500": (500, ErrorCode.SERVER_ERROR),
            "/502": (502, ErrorCode.SERVER_ERROR),
            "/418": (418, ErrorCode.HTTP_ERROR),
        }
        server = self.serve({path: (status, {}, b"<html>not json</html>") for path, (status, _) in cases.items()})
        c = OtpAuthClient(server.url, storage=MemoryTokenStorage(tokens()))
        for path, (status, code) in cases.items():
            with self.assertRaises(OtpAuthError) as caught:
                c.request("GET", path)
            self.assertEqual((caught.exception.status, caught.exception.code), (status, code), path)
        self.assertTrue(all(code in ERROR_CODES for _, code in cases.values()))

    def test_non_json_success_is_invalid_response(self) -> None:
        server = self.serve({"/auth/request-otp": (200, {"content-type": "text/html"}, b"<html>portal</html>")})
        with self.assertRaises(OtpAuthError) as caught:
            OtpAuthClient(server.url).request_otp("ada@example.com")
        self.assertEqual(caught.exception.code, ErrorCode.INVALID_RESPONSE)

    def test_step_up_on_an_app_route_is_not_refreshed(self) -> None:
        challenge = 'Bearer error="insufficient_user_authentication", error_description="A more recent sign-in is required", max_age=300'
        body = {"statusCode": 401, "error": "insufficient_user_authentication", "message": "Sign in again"}
        server = self.serve({"/account/delete": json_answer(401, body, {"www-authenticate": challenge})})
        stored = tokens()
        c = OtpAuthClient(server.url, storage=MemoryTokenStorage(stored))
        with self.assertRaises(OtpAuthError) as caught:
            c.request("POST", "/account/delete")
        self.assertEqual(caught.exception.code, ErrorCode.REAUTHENTICATION_REQUIRED)
        self.assertEqual(caught.exception.max_age, 300)
        self.assertEqual(server.paths(), ["/account/delete"])  # no refresh, no retry
        self.assertIs(c.tokens, stored)

    def test_refresh_then_one_retry_only(self) -> None:
        fresh = {"access_token": "access-2", "refresh_token": "refresh-2", "token_type": "bearer", "expires_in": 60}
        server = self.serve({
            "/auth/refresh": json_answer(200, fresh),
            "/always-401": json_answer(401, {"statusCode": 401, "message": "Invalid or expired access token"}),
        })
        c = OtpAuthClient(server.url, storage=MemoryTokenStorage(tokens()))
        with self.assertRaises(OtpAuthError) as caught:
            c.request("GET", "/always-401")
        self.assertEqual(caught.exception.code, ErrorCode.UNAUTHORIZED)
        self.assertEqual(server.paths(), ["/always-401", "/auth/refresh", "/always-401"])
        self.assertEqual([h["authorization"] for _, p, h, _ in server.requests if p == "/always-401"], ["Bearer access-1", "Bearer access-2"])
        self.assertEqual(json.loads(server.requests[1][3]), {"refresh_token": "refresh-1"})
        current = c.tokens
        assert current is not None
        self.assertEqual((current.access_token, current.refresh_token), ("access-2", "refresh-2"))

    def test_refresh_failing_with_503_keeps_the_tokens(self) -> None:
        server = self.serve({
            "/auth/refresh": json_answer(503, {"message": "down"}, {"retry-after": "5"}),
            "/x": json_answer(401, {"message": "Invalid or expired access token"}),
        })
        stored = tokens()
        c = OtpAuthClient(server.url, storage=MemoryTokenStorage(stored))
        with self.assertRaises(OtpAuthError) as caught:
            c.request("GET", "/x")
        self.assertEqual((caught.exception.code, caught.exception.retry_after), (ErrorCode.SERVICE_UNAVAILABLE, 5))
        self.assertIs(c.tokens, stored)

    def test_no_refresh_token(self) -> None:
        server = self.serve({"/x": json_answer(401, {"message": "Invalid or expired access token"})})
        c = OtpAuthClient(server.url, storage=MemoryTokenStorage(tokens(refresh=None)))
        with self.assertRaises(OtpAuthError) as caught:
            c.refresh()
        self.assertEqual(caught.exception.code, ErrorCode.NOT_SIGNED_IN)
        with self.assertRaises(OtpAuthError) as caught:
            c.request("GET", "/x")
        self.assertEqual(caught.exception.code, ErrorCode.UNAUTHORIZED)
        self.assertIn("REFRESH_TOKEN_DELIVERY", caught.exception.message)
        self.assertIsNone(c.tokens)

    def test_logout_forgets_the_tokens_even_when_the_server_is_down(self) -> None:
        c = OtpAuthClient("http://127.0.0.1:%d" % support.free_port(), storage=MemoryTokenStorage(tokens()), timeout=2)
        with self.assertRaises(OtpAuthError) as caught:
            c.logout()
        self.assertEqual(caught.exception.code, ErrorCode.NETWORK_ERROR)
        self.assertIsNone(c.tokens)


class ArgumentTest(unittest.TestCase):
    def test_base_url(self) -> None:
        for bad in ("ftp://x", "localhost:3000", "http://", "http://x/?a=1"):
            with self.assertRaises(ValueError, msg=bad):
                OtpAuthClient(bad)
        with self.assertRaises(ValueError):
            OtpAuthClient("http://x", timeout=0)

    def test_request_paths_stay_on_the_base_url(self) -> None:
        c = OtpAuthClient("http://127.0.0.1:1", storage=MemoryTokenStorage(tokens()))
        for bad in ("https://evil.example/x", "//evil.example/x", "protected"):
            with self.assertRaises(ValueError, msg=bad):
                c.request("GET", bad)

    def test_not_signed_in_sends_nothing(self) -> None:
        c = OtpAuthClient("http://127.0.0.1:%d" % support.free_port())
        for call in (lambda: c.request("GET", "/protected"), c.totp_setup, c.logout_all, c.refresh):
            with self.assertRaises(OtpAuthError) as caught:
                call()
            self.assertEqual((caught.exception.status, caught.exception.code), (0, ErrorCode.NOT_SIGNED_IN))
        c.logout()  # nothing to end

    def test_exactly_one_second_factor(self) -> None:
        c = OtpAuthClient("http://127.0.0.1:1", storage=MemoryTokenStorage(tokens()))
        with self.assertRaises(ValueError):
            c.verify_mfa("t")
        with self.assertRaises(ValueError):
            c.verify_mfa("t", code="123456", backup_code="AAAAA-BBBBB")
        with self.assertRaises(ValueError):
            c.totp_disable()
        with self.assertRaises(TypeError):
            c.regenerate_backup_codes(code="123456", end_other_sessions="yes")  # type: ignore[arg-type]


class ModelTest(unittest.TestCase):
    def test_retry_after(self) -> None:
        now = time.time()
        self.assertEqual(parse_retry_after("120"), 120)
        self.assertEqual(parse_retry_after(" 0 "), 0)
        self.assertIsNone(parse_retry_after(None))
        self.assertIsNone(parse_retry_after("soon"))
        self.assertIsNone(parse_retry_after("-5"))
        self.assertEqual(parse_retry_after(formatdate(now + 90, usegmt=True), now=now), 90)
        self.assertEqual(parse_retry_after(formatdate(now - 90, usegmt=True), now=now), 0)

    def test_tokens(self) -> None:
        t = tokens()
        self.assertEqual(Tokens.from_dict(json.loads(json.dumps(t.to_dict()))), t)
        self.assertNotIn("access-1", repr(t))
        self.assertNotIn("refresh-1", repr(t))
        self.assertFalse(t.is_expired())
        self.assertTrue(t.is_expired(leeway=120))

    def test_storage_protocol(self) -> None:
        self.assertIsInstance(MemoryTokenStorage(), TokenStorage)

        class Custom:
            def __init__(self) -> None:
                self.saved = []  # type: List[Optional[Tokens]]

            def load(self) -> Optional[Tokens]:
                return self.saved[-1] if self.saved else None

            def save(self, value: Tokens) -> None:
                self.saved.append(value)

            def clear(self) -> None:
                self.saved.append(None)

        custom = Custom()
        self.assertIsInstance(custom, TokenStorage)
        server = FakeServer({"/auth/refresh": json_answer(200, {"access_token": "a2", "refresh_token": "r2", "expires_in": 60})})
        self.addCleanup(server.close)
        custom.save(tokens())
        c = OtpAuthClient(server.url, storage=custom)
        self.assertEqual(c.refresh().access_token, "a2")
        self.assertEqual(len(custom.saved), 2)


if __name__ == "__main__":
    unittest.main()
