"""The client against the real sample app (`node dist/apps/sample/src/main.js`), codes delivered
by signed webhook to a local receiver: no developer mode."""

import dataclasses
import secrets
import threading
import time
import unittest
from typing import Any, Callable, List, Optional, Union

import support
from otp_auth_client import (
    ErrorCode,
    MemoryTokenStorage,
    MfaChallenge,
    OtpAuthClient,
    OtpAuthError,
    Tokens,
)
from otp_auth_client.totp import parse_otpauth_url, time_step, totp

API_KEY = secrets.token_hex(32)
ACCESS_TOKEN_TTL = 10  # the sample's minimum: the expiry test waits it out
MANAGEMENT_MAX_AUTH_AGE = 5  # seconds a sign-in stays fresh enough for totp/disable and backup-codes
TOTP_WINDOW = 4  # steps either side: lets the test use several codes without waiting for new steps

receiver = None  # type: Optional[support.WebhookReceiver]
app = None  # type: Optional[support.SampleApp]


def setUpModule() -> None:
    global receiver, app
    receiver = support.WebhookReceiver().start()
    app = support.SampleApp(
        {
            "DATABASE_URL": "sqlite::memory:",
            "OTP_AUTH_SECRET": secrets.token_hex(32),
            "OTP_DELIVERY": "webhook",
            "OTP_WEBHOOK_URL": receiver.url,
            "OTP_WEBHOOK_SECRET": receiver.secret,
            "REFRESH_TOKEN_DELIVERY": "body",
            "COOKIE_SECURE": "false",
            "LOG_LEVEL": "warn",
            "ACCESS_TOKEN_TTL": str(ACCESS_TOKEN_TTL),
            "OTP_RESEND_COOLDOWN": "1",
            "OTP_TOTP_WINDOW": str(TOTP_WINDOW),
            "OTP_TOTP_MANAGEMENT_MAX_AUTH_AGE": str(MANAGEMENT_MAX_AUTH_AGE),
            "OTP_INTROSPECTION_API_KEYS": API_KEY,
            # Every test signs in from 127.0.0.1: lift the per-client and per-address send limits,
            # keep the per-address verify limit the rate-limit test runs into.
            "RATE_LIMIT_SEND_PER_IP": "1000/600",
            "RATE_LIMIT_VERIFY_PER_IP": "1000/600",
            "RATE_LIMIT_SEND_PER_EMAIL": "100/600",
            "RATE_LIMIT_SEND_PER_EMAIL_TOTAL": "100/600",
            "RATE_LIMIT_VERIFY_PER_EMAIL": "10/600",
        }
    )
    try:
        app.start()
    except BaseException:
        receiver.stop()
        raise


def tearDownModule() -> None:
    if app is not None:
        app.stop()
    if receiver is not None:
        receiver.stop()


def new_email() -> str:
    return "py-%s@example.com" % secrets.token_hex(6)


class CountingClient(OtpAuthClient):
    """Counts 401s that led to the refresh path, and refreshes actually sent."""

    def __init__(self, *args: Any, refresh_delay: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refresh_delay = refresh_delay
        self.after_401 = 0
        self.refreshes = 0
        self._count_lock = threading.Lock()

    def _refresh_after_401(self, used_access_token: str) -> Tokens:
        with self._count_lock:
            self.after_401 += 1
        return super()._refresh_after_401(used_access_token)

    def _refresh_locked(self, current: Tokens) -> Tokens:
        self.refreshes += 1  # under the client's lock
        if self.refresh_delay:
            time.sleep(self.refresh_delay)  # so that every thread's 401 arrives during it
        return super()._refresh_locked(current)


def client(storage: Optional[MemoryTokenStorage] = None, **kwargs: Any) -> CountingClient:
    assert app is not None
    return CountingClient(app.base_url, storage=storage, timeout=15, **kwargs)


def sign_in(c: OtpAuthClient, email: str) -> Union[Tokens, MfaChallenge]:
    """request-otp (waiting out the resend cooldown), the code from the webhook, verify-otp."""
    assert receiver is not None
    before = receiver.count(email)
    for _ in range(5):
        try:
            c.request_otp(email)
            break
        except OtpAuthError as error:
            if error.code != ErrorCode.COOLDOWN:
                raise
            time.sleep((error.retry_after or 1) + 0.05)
    code = receiver.wait_for_code(email, after=before)
    return c.verify_otp(email, code)


def signed_in(c: OtpAuthClient, email: Optional[str] = None) -> Tokens:
    result = sign_in(c, email or new_email())
    assert isinstance(result, Tokens), result
    return result


def run_in_threads(count: int, target: Callable[[], Any]) -> List[Any]:
    """`target` in `count` threads released together; returns results or the exceptions raised."""
    barrier = threading.Barrier(count)
    results = [None] * count  # type: List[Any]

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = target()
        except BaseException as error:  # noqa: B902 - collected for the assertions
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


class Authenticator:
    """An authenticator app for the test: RFC 6238 codes, each for a later step than the last.

    The server accepts a code only for a step after the last one it accepted (replay
    protection), within OTP_TOTP_WINDOW steps of now; handing out successive steps lets the test
    use several codes in a row without waiting 30 s for each.
    """

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.last_step = time_step() - TOTP_WINDOW + 1

    def next_code(self) -> str:
        self.last_step = max(self.last_step + 1, time_step() - TOTP_WINDOW + 1)
        assert self.last_step <= time_step() + TOTP_WINDOW - 1, "ran out of TOTP steps"
        return totp(self.secret, step=self.last_step)

    def wrong_code(self) -> str:
        now = time_step()
        valid = {totp(self.secret, step=s) for s in range(now - TOTP_WINDOW - 2, now + TOTP_WINDOW + 3)}
        while True:
            candidate = "%06d" % secrets.randbelow(10**6)
            if candidate not in valid:
                return candidate


class SignInTest(unittest.TestCase):
    def test_webhook_signature_is_checked(self) -> None:
        signed_in(client())
        assert receiver is not None
        self.assertEqual(receiver.rejected, 0)
        # A forged delivery (no signature) is refused by the receiver.
        import urllib.error
        import urllib.request

        forged = urllib.request.Request(
            receiver.url, data=b'{"email":"x@example.com","code":"1"}', method="POST",
            headers={"content-type": "application/json"},
        )
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(forged, timeout=5)
        self.assertEqual(caught.exception.code, 401)
        self.assertEqual(receiver.count("x@example.com"), 0)

    def test_sign_in_stores_tokens_and_calls_a_protected_route(self) -> None:
        c = client()
        email = new_email()
        result = c.request_otp(email, locale="de-CH")
        self.assertEqual(result.expires_in, 600)
        self.assertIsNone(result.dev_code)
        assert receiver is not None
        tokens = c.verify_otp(email, receiver.wait_for_code(email))
        self.assertIsInstance(tokens, Tokens)
        assert isinstance(tokens, Tokens)
        self.assertEqual(tokens.token_type, "bearer")
        self.assertEqual(tokens.expires_in, ACCESS_TOKEN_TTL)
        self.assertTrue(tokens.refresh_token)
        self.assertIs(c.tokens, tokens)
        self.assertNotIn(tokens.access_token, repr(tokens))
        answer = c.request("GET", "/protected")
        self.assertEqual(answer.status, 200)
        body = answer.json()
        self.assertEqual(c.introspect(tokens.access_token, API_KEY).sub, body["user_id"])
        self.assertEqual(c.request("GET", "/verified-only").json()["email"], email)
        self.assertEqual(c.refreshes, 0)

    def test_refresh_rotates_both_tokens(self) -> None:
        c = client()
        first = signed_in(c)
        second = c.refresh()
        self.assertNotEqual(second.refresh_token, first.refresh_token)
        self.assertNotEqual(second.access_token, first.access_token)
        self.assertEqual(c.tokens, second)
        third = c.refresh()
        self.assertNotEqual(third.refresh_token, second.refresh_token)
        info = c.introspect(third.access_token, API_KEY)
        self.assertTrue(info.active)
        self.assertEqual(info.sid, c.introspect(first.access_token, API_KEY).sid)  # same session

    def test_a_refused_refresh_clears_the_tokens(self) -> None:
        c = client()
        tokens = signed_in(c)
        c.storage.save(dataclasses.replace(tokens, refresh_token="r" * 43))
        with self.assertRaises(OtpAuthError) as caught:
            c.refresh()
        self.assertEqual((caught.exception.status, caught.exception.code), (401, ErrorCode.UNAUTHORIZED))
        self.assertIsNone(c.tokens)
        with self.assertRaises(OtpAuthError) as again:
            c.refresh()
        self.assertEqual(again.exception.code, ErrorCode.NOT_SIGNED_IN)

    def test_an_expired_access_token_is_refreshed_once_and_step_up_is_not(self) -> None:
        c = client()
        tokens = signed_in(c)
        time.sleep(max(0.0, tokens.expires_at - time.time()) + 1.0)
        self.assertFalse(c.introspect(tokens.access_token, API_KEY).active, "the access token should have expired")
        answer = c.request("GET", "/protected")
        self.assertEqual(answer.status, 200)
        self.assertEqual((c.after_401, c.refreshes), (1, 1))
        refreshed = c.tokens
        assert refreshed is not None
        self.assertNotEqual(refreshed.refresh_token, tokens.refresh_token)
        self.assertTrue(c.introspect(refreshed.access_token, API_KEY).active)

        # The sign-in is now older than OTP_TOTP_MANAGEMENT_MAX_AUTH_AGE: RFC 9470 step-up, which
        # a refresh cannot fix (it keeps auth_time), so none is attempted and nothing is cleared.
        with self.assertRaises(OtpAuthError) as caught:
            c.regenerate_backup_codes(code="123456")
        error = caught.exception
        self.assertEqual((error.status, error.code), (401, ErrorCode.REAUTHENTICATION_REQUIRED))
        self.assertEqual(error.max_age, MANAGEMENT_MAX_AUTH_AGE)
        self.assertEqual(c.refreshes, 1)
        self.assertEqual(c.tokens, refreshed)

    def test_parallel_401s_share_one_refresh(self) -> None:
        c = client(refresh_delay=0.3)
        tokens = signed_in(c)
        c.storage.save(dataclasses.replace(tokens, access_token="not-a-valid-token"))
        results = run_in_threads(8, lambda: c.request("GET", "/protected").status)
        self.assertEqual(results, [200] * 8)
        self.assertEqual(c.refreshes, 1)
        self.assertGreaterEqual(c.after_401, 2, "the threads should have met the 401 together")
        current = c.tokens
        assert current is not None
        self.assertNotEqual(current.refresh_token, tokens.refresh_token)

    def test_parallel_401s_with_a_dead_refresh_token_refresh_once_and_all_fail(self) -> None:
        c = client(refresh_delay=0.3)
        tokens = signed_in(c)
        c.storage.save(dataclasses.replace(tokens, access_token="not-a-valid-token", refresh_token="r" * 43))
        results = run_in_threads(6, lambda: c.request("GET", "/protected"))
        for result in results:
            self.assertIsInstance(result, OtpAuthError)
            self.assertEqual((result.status, result.code), (401, ErrorCode.UNAUTHORIZED))
        self.assertEqual(c.refreshes, 1)
        self.assertIsNone(c.tokens)

    def test_logout_ends_the_session_for_every_holder_of_its_tokens(self) -> None:
        a = client()
        tokens = signed_in(a)
        b = client(storage=MemoryTokenStorage(tokens))  # another process with the same session
        self.assertEqual(b.request("GET", "/protected").status, 200)
        a.logout()
        self.assertIsNone(a.tokens)
        self.assertFalse(a.introspect(tokens.access_token, API_KEY).active)
        self.assertIsNone(a.verify_token(tokens.access_token))  # revoked at once
        with self.assertRaises(OtpAuthError) as caught:
            b.request("GET", "/protected")
        self.assertEqual(caught.exception.code, ErrorCode.UNAUTHORIZED)
        self.assertEqual(b.refreshes, 1)  # the access token was refused, then its refresh
        self.assertIsNone(b.tokens)
        a.logout()  # signed out already: nothing to do

    def test_logout_all_ends_every_session_of_the_user(self) -> None:
        email = new_email()
        a, b = client(), client()
        signed_in(a, email)
        signed_in(b, email)
        self.assertEqual(a.logout_all(), 2)
        self.assertIsNone(a.tokens)
        with self.assertRaises(OtpAuthError) as caught:
            b.request("GET", "/protected")
        self.assertEqual(caught.exception.code, ErrorCode.UNAUTHORIZED)
        self.assertIsNone(b.tokens)

    def test_introspection(self) -> None:
        c = client()
        tokens = signed_in(c)
        info = c.introspect(tokens.access_token, API_KEY)
        self.assertTrue(info.active)
        self.assertEqual(info.token_type, "access_token")
        self.assertEqual(info.amr, ("otp",))
        self.assertIsNotNone(info.sid)
        self.assertIsNotNone(info.exp)
        self.assertIsNotNone(info.auth_time)
        self.assertIn("display_name", info.claims)  # the sample's custom claim
        assert tokens.refresh_token is not None
        self.assertEqual(c.introspect(tokens.refresh_token, API_KEY).claims, {})
        self.assertFalse(c.introspect(tokens.refresh_token, API_KEY).active)
        self.assertFalse(c.introspect("garbage", API_KEY).active)
        verified = c.verify_token(tokens.access_token)  # GET /auth/verify, the gateway endpoint
        assert verified is not None
        self.assertEqual(verified.user_id, info.sub)
        self.assertEqual(verified.claims["sid"], info.sid)
        self.assertIsNone(c.verify_token("garbage"))
        with self.assertRaises(OtpAuthError) as caught:
            c.introspect(tokens.access_token, "x" * 64)
        self.assertEqual((caught.exception.status, caught.exception.code), (401, ErrorCode.UNAUTHORIZED))
        self.assertEqual(c.tokens, tokens)  # introspection never touches the client's own session
        self.assertEqual(c.refreshes, 0)


class ErrorMappingTest(unittest.TestCase):
    def test_wrong_code_is_invalid_code(self) -> None:
        c = client()
        email = new_email()
        c.request_otp(email)
        with self.assertRaises(OtpAuthError) as caught:
            c.verify_otp(email, "12345678")
        error = caught.exception
        self.assertEqual((error.status, error.code, error.retry_after), (401, ErrorCode.INVALID_CODE, None))
        self.assertEqual(error.message, "Invalid or expired code")
        self.assertIsNone(c.tokens)

    def test_resend_cooldown_has_retry_after(self) -> None:
        c = client()
        email = new_email()
        c.request_otp(email)
        with self.assertRaises(OtpAuthError) as caught:
            c.request_otp(email)
        error = caught.exception
        self.assertEqual((error.status, error.code), (429, ErrorCode.COOLDOWN))
        self.assertEqual(error.retry_after, 1)
        time.sleep(1.1)
        c.request_otp(email)  # after the wait it goes through

    def test_rate_limit_has_retry_after(self) -> None:
        c = client()
        email = new_email()
        c.request_otp(email)
        for _ in range(10):  # RATE_LIMIT_VERIFY_PER_EMAIL=10/600
            with self.assertRaises(OtpAuthError) as caught:
                c.verify_otp(email, "00000000")
            self.assertEqual(caught.exception.code, ErrorCode.INVALID_CODE)
        with self.assertRaises(OtpAuthError) as caught:
            c.verify_otp(email, "00000000")
        error = caught.exception
        self.assertEqual((error.status, error.code), (429, ErrorCode.RATE_LIMITED))
        assert error.retry_after is not None
        self.assertTrue(0 < error.retry_after <= 600, error.retry_after)

    def test_validation_not_found_and_mfa_token(self) -> None:
        c = client()
        with self.assertRaises(OtpAuthError) as caught:
            c.request_otp("not-an-address")
        self.assertEqual((caught.exception.status, caught.exception.code), (400, ErrorCode.VALIDATION_FAILED))
        self.assertEqual(caught.exception.details, ("email must be a valid email address",))
        with self.assertRaises(OtpAuthError) as caught:
            c.request_otp(new_email(), locale="not a locale")
        self.assertEqual(caught.exception.code, ErrorCode.VALIDATION_FAILED)
        with self.assertRaises(OtpAuthError) as caught:
            c.verify_mfa("a.b.c", code="123456")
        self.assertEqual((caught.exception.status, caught.exception.code), (401, ErrorCode.INVALID_MFA_TOKEN))
        signed_in(c)
        with self.assertRaises(OtpAuthError) as caught:
            c.request("GET", "/no-such-route")
        self.assertEqual((caught.exception.status, caught.exception.code), (404, ErrorCode.NOT_FOUND))
        with self.assertRaises(OtpAuthError) as caught:
            c.totp_disable(code="123456")  # 2FA is not on
        self.assertEqual((caught.exception.status, caught.exception.code), (400, ErrorCode.VALIDATION_FAILED))
        self.assertEqual(c.refreshes, 0)


class TwoFactorTest(unittest.TestCase):
    def test_enrolment_mfa_sign_in_backup_codes_and_management(self) -> None:
        email = new_email()
        a = client()
        first = signed_in(a, email)

        # Enrolment.
        setup = a.totp_setup()
        self.assertEqual(parse_otpauth_url(setup.otpauth_url)["secret"], setup.secret)
        self.assertTrue(setup.qr_code.startswith("data:image/png;base64,"))
        self.assertEqual(a.totp_qr_code()[:8], b"\x89PNG\r\n\x1a\n")
        authenticator = Authenticator(setup.secret)
        with self.assertRaises(OtpAuthError) as caught:
            a.totp_confirm(authenticator.wrong_code())
        self.assertEqual((caught.exception.status, caught.exception.code), (401, ErrorCode.INVALID_CODE))
        self.assertEqual(a.tokens, first)  # a wrong code is not answered with a refresh
        confirmation = a.totp_confirm(authenticator.next_code())
        self.assertEqual(len(confirmation.backup_codes), 10)
        self.assertEqual(a.tokens, confirmation.tokens)
        # Every earlier session ended (this one too); the new one has two factors.
        self.assertFalse(a.introspect(first.access_token, API_KEY).active)
        self.assertEqual(a.introspect(confirmation.tokens.access_token, API_KEY).amr, ("otp", "totp"))
        with self.assertRaises(OtpAuthError) as caught:
            a.totp_setup()
        self.assertEqual((caught.exception.status, caught.exception.code), (409, ErrorCode.CONFLICT))
        a.logout()

        # Sign-in with the second factor: a challenge, a wrong code, then the right one.
        challenge = sign_in(a, email)
        self.assertIsInstance(challenge, MfaChallenge)
        assert isinstance(challenge, MfaChallenge)
        self.assertIsNone(a.tokens)
        with self.assertRaises(OtpAuthError) as caught:
            a.verify_mfa(challenge, code=authenticator.wrong_code())
        self.assertEqual((caught.exception.status, caught.exception.code), (401, ErrorCode.INVALID_CODE))
        tokens = a.verify_mfa(challenge, code=authenticator.next_code())
        self.assertEqual(a.introspect(tokens.access_token, API_KEY).amr, ("otp", "totp"))
        with self.assertRaises(OtpAuthError) as caught:
            a.verify_mfa(challenge, code=authenticator.next_code())  # a challenge works once
        self.assertEqual(caught.exception.code, ErrorCode.INVALID_MFA_TOKEN)

        # A second session, signed in with a backup code, which then works no more.
        b = client()
        challenge_b = sign_in(b, email)
        assert isinstance(challenge_b, MfaChallenge)
        b_tokens = b.verify_mfa(challenge_b.mfa_token, backup_code=confirmation.backup_codes[0])
        self.assertIn("backup", a.introspect(b_tokens.access_token, API_KEY).amr)
        a.logout()
        challenge = sign_in(a, email)
        assert isinstance(challenge, MfaChallenge)
        with self.assertRaises(OtpAuthError) as caught:
            a.verify_mfa(challenge, backup_code=confirmation.backup_codes[0])
        self.assertEqual(caught.exception.code, ErrorCode.INVALID_CODE)
        a.verify_mfa(challenge, code=authenticator.next_code())

        # Recent sign-in: new backup codes, ending the other session (b).
        regenerated = a.regenerate_backup_codes(code=authenticator.next_code(), end_other_sessions=True)
        self.assertEqual(len(regenerated.backup_codes), 10)
        self.assertEqual(regenerated.revoked_sessions, 1)
        self.assertEqual(a.request("GET", "/protected").status, 200)  # this session stays
        with self.assertRaises(OtpAuthError) as caught:
            b.request("GET", "/protected")
        self.assertEqual(caught.exception.code, ErrorCode.UNAUTHORIZED)
        self.assertIsNone(b.tokens)

        # The old set is dead; a code of the new set turns 2FA off.
        with self.assertRaises(OtpAuthError) as caught:
            a.totp_disable(backup_code=confirmation.backup_codes[1])
        self.assertEqual(caught.exception.code, ErrorCode.INVALID_CODE)
        disabled = a.totp_disable(backup_code=regenerated.backup_codes[0], end_other_sessions=False)
        self.assertEqual(disabled.revoked_sessions, 0)
        self.assertTrue(disabled.message)
        a.logout()

        # One factor again.
        self.assertIsInstance(sign_in(a, email), Tokens)
        self.assertEqual(a.refreshes, 0)


if __name__ == "__main__":
    unittest.main()
