"""The package itself: Python 3.9 syntax, standard library only, typed, consistent metadata."""

import ast
import re
import sys
import unittest
from pathlib import Path
from typing import Iterator, List

import support
import otp_auth_client

PACKAGE_DIR = Path(otp_auth_client.__file__).resolve().parent
SOURCE_DIR = support.CLIENT_ROOT / "src" / "otp_auth_client"

# Standard-library modules the package may import (all present in Python 3.9).
ALLOWED_IMPORTS = {
    "base64", "binascii", "dataclasses", "email", "hashlib", "hmac", "http", "json", "math", "re",
    "socket", "ssl", "struct", "threading", "time", "typing", "urllib",
}
# Names of typing / stdlib features newer than Python 3.9.
NEWER_THAN_39 = {"TypeAlias", "ParamSpec", "Concatenate", "TypeGuard", "Self", "LiteralString", "Never",
                 "assert_never", "reveal_type", "Required", "NotRequired", "Unpack", "TypeVarTuple", "override"}


def sources() -> Iterator[Path]:
    return iter(sorted(PACKAGE_DIR.glob("*.py")))


def annotations(tree: ast.AST) -> Iterator[ast.AST]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            for arg in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
                if arg is not None and arg.annotation is not None:
                    yield arg.annotation
            if node.returns is not None:
                yield node.returns
        elif isinstance(node, ast.AnnAssign):
            yield node.annotation


class CompatibilityTest(unittest.TestCase):
    def test_python_39_syntax(self) -> None:
        for path in sources():
            source = path.read_text(encoding="utf-8")
            # Refuses 3.10+ grammar (match, parenthesised context managers, except*).
            tree = ast.parse(source, str(path), feature_version=(3, 9))
            for node in annotations(tree):
                # `X | Y` is evaluated at definition time on 3.9 and fails there.
                for inner in ast.walk(node):
                    if isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.BitOr):
                        self.fail("%s:%d uses X | Y in an annotation" % (path.name, inner.lineno))
            for inner in ast.walk(tree):
                if isinstance(inner, ast.Call) and getattr(inner.func, "id", None) == "dataclass":
                    for keyword in inner.keywords:
                        self.assertNotIn(keyword.arg, ("slots", "kw_only", "match_args"), path.name)
                if isinstance(inner, (ast.Name, ast.Attribute)):
                    name = inner.id if isinstance(inner, ast.Name) else inner.attr
                    self.assertNotIn(name, NEWER_THAN_39, "%s:%d" % (path.name, inner.lineno))
                if isinstance(inner, ast.Call) and getattr(inner.func, "id", None) == "zip":
                    self.assertFalse(any(k.arg == "strict" for k in inner.keywords), path.name)

    def test_standard_library_only(self) -> None:
        for path in sources():
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = []  # type: List[str]
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    self.assertIn(name.split(".")[0], ALLOWED_IMPORTS, "%s imports %s" % (path.name, name))


class MetadataTest(unittest.TestCase):
    def test_typed(self) -> None:
        self.assertTrue((PACKAGE_DIR / "py.typed").is_file(), "py.typed must ship with the package")

    def test_version_matches_pyproject(self) -> None:
        text = (support.CLIENT_ROOT / "pyproject.toml").read_text(encoding="utf-8")
        match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
        assert match is not None
        self.assertEqual(match.group(1), otp_auth_client.__version__)
        self.assertIn('requires-python = ">=3.9"', text)

    def test_exports(self) -> None:
        for name in otp_auth_client.__all__:
            self.assertTrue(hasattr(otp_auth_client, name), name)

    def test_which_copy_is_tested(self) -> None:
        import os

        if os.environ.get("OTP_AUTH_CLIENT_USE_INSTALLED") == "1":
            self.assertNotEqual(PACKAGE_DIR, SOURCE_DIR.resolve(), "expected the installed package, not the sources")
            self.assertTrue(str(PACKAGE_DIR).startswith(sys.prefix), (PACKAGE_DIR, sys.prefix))
        else:
            self.assertEqual(PACKAGE_DIR, SOURCE_DIR.resolve())


if __name__ == "__main__":
    unittest.main()
