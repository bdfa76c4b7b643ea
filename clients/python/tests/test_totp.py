"""RFC 4226 / RFC 6238 vectors through otp_auth_client.totp (the codes the sample-app tests use)."""

import json
import unittest

import support
from otp_auth_client.totp import decode_base32, hotp, parse_otpauth_url, time_step, totp

SHARED_VECTORS = support.REPO_ROOT.parent / "shared" / "rfc-vectors.json"

# RFC 4226 Appendix D (secret "12345678901234567890").
HOTP = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]
# RFC 6238 Appendix B, 8 digits, with the errata's per-algorithm seeds.
SEEDS = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
TOTP = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


class VectorTest(unittest.TestCase):
    def test_rfc4226(self) -> None:
        for counter, code in enumerate(HOTP):
            self.assertEqual(hotp(SEEDS["SHA1"], counter), code)
            self.assertEqual(hotp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", counter), code)

    def test_rfc6238(self) -> None:
        for row in TOTP:
            at = row[0]
            for algorithm, code in zip(("SHA1", "SHA256", "SHA512"), row[1:]):
                self.assertEqual(totp(SEEDS[algorithm], at, digits=8, algorithm=algorithm), code, (at, algorithm))

    @unittest.skipUnless(SHARED_VECTORS.is_file(), "../shared/rfc-vectors.json is not present")
    def test_shared_vectors(self) -> None:
        vectors = json.loads(SHARED_VECTORS.read_text())
        h = vectors["hotp"]
        for value in h["values"]:
            self.assertEqual(hotp(h["secret_base32"], value["counter"], digits=h["digits"], algorithm=h["algorithm"]), value["code"])
        t = vectors["totp"]
        checked = 0
        for value in t["values"]:
            seed = t["seeds"][value["algorithm"]]
            self.assertEqual(seed["secret_base32"], _b32(seed["secret_ascii"].encode()))
            step = time_step(value["time"], t["period"], t["t0"])
            self.assertEqual(step, int(value["step_hex"], 16))
            code = totp(seed["secret_base32"], value["time"], period=t["period"], digits=t["digits"], algorithm=value["algorithm"], t0=t["t0"])
            self.assertEqual(code, value["code"], value)
            checked += 1
        self.assertGreaterEqual(checked, 18)

    def test_base32_forms(self) -> None:
        key = decode_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
        self.assertEqual(key, b"12345678901234567890")
        self.assertEqual(decode_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq"), key)
        self.assertEqual(decode_base32("MZXW6==="), b"foo")
        self.assertEqual(decode_base32("MZXW6"), b"foo")
        for bad in ("", "1111", "not base32!"):
            with self.assertRaises(ValueError):
                decode_base32(bad)

    def test_arguments(self) -> None:
        with self.assertRaises(ValueError):
            hotp(b"k", 0, digits=11)
        with self.assertRaises(ValueError):
            hotp(b"k", -1)
        with self.assertRaises(ValueError):
            hotp(b"k", 0, algorithm="MD5")
        self.assertEqual(totp(SEEDS["SHA1"], step=1, digits=8), "94287082")

    def test_otpauth_url(self) -> None:
        url = "otpauth://totp/OTP%20sample:ada%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=OTP%20sample"
        parts = parse_otpauth_url(url)
        self.assertEqual(parts, {"label": "OTP sample:ada@example.com", "secret": "JBSWY3DPEHPK3PXP", "issuer": "OTP sample"})
        for bad in ("https://x", "otpauth://hotp/x?secret=A", "otpauth://totp/x?issuer=A"):
            with self.assertRaises(ValueError):
                parse_otpauth_url(bad)


def _b32(raw: bytes) -> str:
    import base64

    return base64.b32encode(raw).decode().rstrip("=")


if __name__ == "__main__":
    unittest.main()
