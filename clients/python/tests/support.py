"""Test support: the client package on sys.path, the real sample app in a subprocess, and a
webhook receiver that checks the signature and keeps the delivered codes."""

import hashlib
import hmac
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
CLIENT_ROOT = HERE.parent
REPO_ROOT = CLIENT_ROOT.parent.parent
SAMPLE_MAIN = REPO_ROOT / "dist" / "apps" / "sample" / "src" / "main.js"

# Test the sources unless run_tests.sh asks for the installed package.
if os.environ.get("OTP_AUTH_CLIENT_USE_INSTALLED") != "1":
    sys.path.insert(0, str(CLIENT_ROOT / "src"))

# Webhook timestamps older or newer than this are refused, as verifyWebhookRequest does.
WEBHOOK_TOLERANCE_SECONDS = 300


class WebhookReceiver:
    """A local receiver for the sample app's `OTP_DELIVERY=webhook`.

    Checks `x-otp-signature: sha256=<hex HMAC-SHA256(secret, "<x-otp-timestamp>.<raw body>")>` in
    constant time and the timestamp (±300 s), answers 401 otherwise, de-duplicates on
    `delivery_id` (retries), and keeps the codes per address.
    """

    def __init__(self) -> None:
        self.secret = secrets.token_hex(32)
        self.codes = {}  # type: Dict[str, List[str]]
        self.rejected = 0
        self._seen = set()  # type: set
        self._condition = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                status = receiver._receive(self.headers, raw)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="webhook-receiver", daemon=True
        )

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d/otp" % self._server.server_address[1]

    def start(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _receive(self, headers: object, raw: bytes) -> int:
        timestamp = headers.get("x-otp-timestamp")  # type: ignore[attr-defined]
        signature = headers.get("x-otp-signature")  # type: ignore[attr-defined]
        valid = False
        if timestamp and signature and timestamp.isdigit():
            expected = "sha256=" + hmac.new(
                self.secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256
            ).hexdigest()
            fresh = abs(time.time() - int(timestamp)) <= WEBHOOK_TOLERANCE_SECONDS
            valid = fresh and hmac.compare_digest(expected, signature)
        if not valid:
            with self._condition:
                self.rejected += 1
            return 401
        delivery = json.loads(raw.decode("utf-8"))
        with self._condition:
            if delivery["delivery_id"] not in self._seen:
                self._seen.add(delivery["delivery_id"])
                self.codes.setdefault(delivery["email"], []).append(delivery["code"])
                self._condition.notify_all()
        return 204

    def count(self, email: str) -> int:
        with self._condition:
            return len(self.codes.get(email, []))

    def wait_for_code(self, email: str, after: int = 0, timeout: float = 10.0) -> str:
        """The first code delivered to `email` beyond the first `after` ones."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while len(self.codes.get(email, [])) <= after:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no code was delivered to %s" % email)
                self._condition.wait(left)
            return self.codes[email][after]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SampleApp:
    """`node dist/apps/sample/src/main.js` with the given environment, on a free port."""

    def __init__(self, env: Dict[str, str]) -> None:
        self.env = env
        self.port = 0
        self.process = None  # type: Optional[subprocess.Popen]
        self._log = tempfile.TemporaryFile()

    @property
    def base_url(self) -> str:
        return "http://127.0.0.1:%d" % self.port

    def start(self, timeout: float = 60.0) -> "SampleApp":
        if not SAMPLE_MAIN.is_file():
            raise RuntimeError(
                "%s is missing: build the sample app first (cd %s && npx tsc -b tsconfig.build.json)"
                % (SAMPLE_MAIN, REPO_ROOT)
            )
        node = os.environ.get("NODE") or shutil.which("node")
        if not node:
            raise RuntimeError("node is not on PATH (set NODE to the Node.js binary)")
        self.port = free_port()
        env = {name: os.environ[name] for name in ("PATH", "HOME", "TMPDIR", "LANG") if name in os.environ}
        env.update(self.env)
        env["PORT"] = str(self.port)
        self.process = subprocess.Popen(
            [node, str(SAMPLE_MAIN)],
            cwd=str(REPO_ROOT),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("the sample app exited with %s:\n%s" % (self.process.returncode, self.log()))
            try:
                with urllib.request.urlopen(self.base_url + "/health", timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the sample app did not answer /health within %ss:\n%s" % (timeout, self.log()))
            time.sleep(0.1)

    def log(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode("utf-8", errors="replace")[-6000:]

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self._log.close()
