#!/usr/bin/env bash
# Install q2q-registry and its development tools into .venv, then run ruff, mypy
# and the whole pytest suite on SQLite and PostgreSQL. Arguments go to pytest.
#
# Environment:
#   PYTHON                    interpreter that creates .venv (default python3, 3.11 or newer)
#   Q2Q_TEST_POSTGRESQL_URL   superuser URL of a PostgreSQL server to test on; when unset,
#                             the tests start their own server with initdb and pg_ctl
#   Q2Q_REQUIRE_POSTGRESQL    1 (the default here) fails the run if any PostgreSQL test
#                             was skipped; 0 lets them be skipped
set -euo pipefail

cd "$(dirname -- "${BASH_SOURCE[0]}")/.."

python=${PYTHON:-python3}

require_python_311() {
  if ! "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "error: q2q-registry needs Python 3.11 or newer, but $1 is $("$1" --version 2>&1)" >&2
    exit 1
  fi
}

have_initdb() {
  command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

# --- install ------------------------------------------------------------------------------

require_python_311 "$python"
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv with $python"
  "$python" -m venv .venv
fi
require_python_311 .venv/bin/python
# shellcheck disable=SC1091
. .venv/bin/activate
echo "Installing q2q-registry with the dev extra into .venv"
python -m pip install --quiet --disable-pip-version-check -e '.[dev]'

if [ -z "${Q2Q_TEST_POSTGRESQL_URL:-}" ] && ! have_initdb; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "Installing the PostgreSQL server with apt-get, because initdb was not found"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y postgresql
  else
    echo "warning: initdb was not found in PATH or /usr/lib/postgresql/*/bin and this" \
      "script is not root, so it cannot install PostgreSQL. Install the postgresql" \
      "package or set Q2Q_TEST_POSTGRESQL_URL." >&2
  fi
fi

# --- check and test -----------------------------------------------------------------------

export Q2Q_REQUIRE_POSTGRESQL="${Q2Q_REQUIRE_POSTGRESQL:-1}"
failed=()

echo "== ruff check"
ruff check . || failed+=("ruff check")

echo "== mypy"
mypy || failed+=("mypy")

echo "== pytest"
pytest_status=0
pytest "$@" || pytest_status=$?
if [ "$pytest_status" -eq 5 ]; then
  echo "error: pytest collected no tests, which counts as a failure" >&2
  failed+=("pytest (no tests collected)")
elif [ "$pytest_status" -ne 0 ]; then
  failed+=("pytest (exit code $pytest_status)")
fi

if [ "${#failed[@]}" -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "All checks passed."
