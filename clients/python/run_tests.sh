#!/usr/bin/env bash
# The Python client's tests, offline: builds the sample app (tsc -b, incremental), installs the
# package into a throwaway virtualenv without any network, and runs the whole suite against the
# installed copy (against the sources when no offline build route exists here).
#
#   clients/python/run_tests.sh [test_*.py pattern ...]
#
# Environment:
#   PYTHON=python3                  the interpreter (3.9+)
#   OTP_PY_SKIP_BUILD=1             don't run tsc (the caller has just built, as npm test does)
#   OTP_PY_SKIP_INSTALL=1           test the sources only, skip the packaging step
#   OTP_REQUIRE_PY_PACKAGING=1      fail instead of falling back to the sources when the package
#                                   cannot be built offline on this machine
#   OTP_PY_WHEELS=/opt/pypi/files   a folder with a setuptools wheel, for the isolated build route
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
say() { echo "[python-client] $*"; }
export PYTHONDONTWRITEBYTECODE=1

"$PYTHON" - <<'EOF' || { say "Python 3.9 or later is required (PYTHON=$PYTHON)"; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 9) else 1)
EOF
say "$("$PYTHON" -c 'import sys; print("Python", sys.version.split()[0], "at", sys.executable)')"

if [ "${OTP_PY_SKIP_BUILD:-}" != "1" ]; then
  if [ ! -f "$REPO/node_modules/typescript/bin/tsc" ]; then
    say "node_modules is missing: run npm ci in $REPO first"; exit 1
  fi
  say "building the sample app (tsc -b tsconfig.build.json)"
  (cd "$REPO" && node node_modules/typescript/bin/tsc -b tsconfig.build.json)
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
RUN_PY="$PYTHON"
export OTP_AUTH_CLIENT_USE_INSTALLED=0

install_offline() {
  # Built from a copy, so the build leaves nothing (build/, *.egg-info) in the work tree.
  local src="$WORK/src"
  mkdir -p "$src"
  cp -R "$HERE/pyproject.toml" "$HERE/README.md" "$HERE/src" "$src/" || return 1
  find "$src" -name __pycache__ -prune -exec rm -rf {} +
  # A virtualenv that sees this interpreter's setuptools (and wheel, if any).
  "$PYTHON" -m venv --system-site-packages "$WORK/venv" >/dev/null 2>&1 || { say "cannot create a virtualenv"; return 1; }
  local vpy="$WORK/venv/bin/python"
  local pip=("$vpy" -m pip install --no-index --no-deps --disable-pip-version-check -q)
  # 1. No build isolation: setuptools >= 61 plus bdist_wheel (setuptools >= 70.1 has it, older needs `wheel`).
  if "$vpy" - <<'EOF'
import sys
try:
    import setuptools, setuptools.build_meta  # noqa: F401
except ImportError:
    sys.exit(1)
version = tuple(int(p) for p in setuptools.__version__.split(".")[:2] if p.isdigit())
if version < (61, 0):
    sys.exit(1)
if version >= (70, 1):
    sys.exit(0)
try:
    import wheel  # noqa: F401
except ImportError:
    sys.exit(1)
EOF
  then
    say "installing with: pip install --no-index --no-build-isolation ./clients/python"
    "${pip[@]}" --no-build-isolation "$src" && return 0
  fi
  # 2. Isolated build from a local folder of wheels (setuptools), no index.
  local wheels="${OTP_PY_WHEELS:-/opt/pypi/files}"
  if compgen -G "$wheels/setuptools-*.whl" >/dev/null; then
    say "installing with: pip install --no-index --find-links $wheels ./clients/python"
    "${pip[@]}" --find-links "$wheels" "$src" && return 0
  fi
  say "no offline build route: this interpreter's setuptools cannot build wheels (setuptools < 70.1 without wheel) and no setuptools wheel is in ${wheels}"
  return 1
}

if [ "${OTP_PY_SKIP_INSTALL:-}" = "1" ]; then
  say "packaging: SKIPPED (OTP_PY_SKIP_INSTALL=1); testing the sources"
elif install_offline; then
  RUN_PY="$WORK/venv/bin/python"
  export OTP_AUTH_CLIENT_USE_INSTALLED=1
  say "testing the installed package: $("$RUN_PY" -c 'import otp_auth_client as m; print(m.__version__, m.__file__)')"
elif [ "${OTP_REQUIRE_PY_PACKAGING:-}" = "1" ]; then
  say "packaging is required (OTP_REQUIRE_PY_PACKAGING=1) but failed"; exit 1
else
  say "packaging: SKIPPED (see above); testing the sources"
fi

# Run from the tests folder, so the sources are not importable by accident from the cwd.
cd "$HERE/tests"
"$RUN_PY" run.py "$@"
