#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a developer's: installs and starts the real
# components the tests use, then runs `cargo test --workspace`.
#
#   - promtool (Debian package `prometheus`): `promtool check metrics` on the daemon's /metrics
#   - oauth2-mock-server (npm, pinned in tests/support/oauth2): a real OAuth2 server on
#     loopback for the client-credentials test (POSTURED_TEST_OAUTH2_URL)
#   - Prometheus Alertmanager (Debian package `prometheus-alertmanager`): a real Alertmanager on
#     loopback for the alert delivery tests (POSTURED_TEST_ALERTMANAGER_URL, tests/alerts.rs)
#   - PostgreSQL 15 (`pg_virtualenv`): a throw-away cluster for the store conformance suite
#     (POSTURED_TEST_POSTGRES_URL)
#   - moto (PyPI `moto[server]`, installed with pip when `moto_server` is missing): a real AWS
#     API emulator on loopback for the aws_iam connector tests (POSTURED_TEST_MOTO_URL,
#     tests/aws_iam.rs)
#   - openapi-spec-validator (PyPI, pinned in tests/support/openapi/requirements.txt, installed
#     into a venv under target/): validates the served /api/v1/openapi.json against the OpenAPI
#     3.1 specification (POSTURED_TEST_OPENAPI_VALIDATOR, tests/api_v1.rs)
#   - @grafana/grafana-foundation-sdk + TypeScript (npm, pinned in deploy/grafana/check): the
#     dashboard in deploy/grafana is type-checked before the Rust tests; promtool also runs the
#     alerting-rule unit tests (tests/deploy_assets.rs)
#   - Chromium (Debian package `chromium`) + playwright-core and axe-core (npm, pinned in
#     tests/browser): the dashboard's end-to-end test in a real headless browser
#     (tests/dashboard.rs runs tests/browser/dashboard.mjs)
#
# Extra arguments are passed to `cargo test` (e.g. `scripts/test.sh -- --nocapture`).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v pg_virtualenv >/dev/null 2>&1 || need_apt+=(postgresql-common postgresql)
command -v prometheus-alertmanager >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]} (Debian)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
command -v promtool >/dev/null && promtool --version 2>&1 | head -1

echo "== installing the OAuth2 test server (npm)"
(cd tests/support/oauth2 && npm ci --no-audit --no-fund --loglevel=error)

echo "== installing the dashboard's browser test (npm: playwright-core, axe-core)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

echo "== Grafana dashboard: type check against @grafana/grafana-foundation-sdk (npm, tsc --strict)"
(cd deploy/grafana/check && npm ci --no-audit --no-fund --loglevel=error && npm run -s check)

echo "== installing the OpenAPI validator (PyPI, pinned, in a venv)"
openapi_venv="$PWD/target/openapi-venv"
[ -x "$openapi_venv/bin/pip" ] || python3 -m venv "$openapi_venv"
# Pinned versions already installed are not fetched again (works offline after the first run).
"$openapi_venv/bin/pip" install -q --disable-pip-version-check -r tests/support/openapi/requirements.txt
export POSTURED_TEST_OPENAPI_VALIDATOR="$openapi_venv/bin/openapi-spec-validator"
"$POSTURED_TEST_OPENAPI_VALIDATOR" --help >/dev/null

workdir=$(mktemp -d)
cleanup() {
  [ -n "${oauth2_pid:-}" ] && kill "$oauth2_pid" 2>/dev/null || true
  [ -n "${alertmanager_pid:-}" ] && kill "$alertmanager_pid" 2>/dev/null || true
  [ -n "${moto_pid:-}" ] && kill "$moto_pid" 2>/dev/null || true
  rm -rf "$workdir"
}
trap cleanup EXIT

node tests/support/oauth2/server.mjs 0 >"$workdir/oauth2.url" 2>"$workdir/oauth2.log" &
oauth2_pid=$!
for _ in $(seq 1 100); do
  [ -s "$workdir/oauth2.url" ] && break
  sleep 0.1
done
if ! [ -s "$workdir/oauth2.url" ]; then
  echo "OAuth2 test server did not start:"; cat "$workdir/oauth2.log"; exit 1
fi
POSTURED_TEST_OAUTH2_URL=$(head -1 "$workdir/oauth2.url")
export POSTURED_TEST_OAUTH2_URL
echo "== OAuth2 test server at $POSTURED_TEST_OAUTH2_URL"

# moto (AWS API emulator) on a free loopback port; the tests use one AWS account each (it
# also defines port_in_use).
. scripts/moto.sh

# Prometheus Alertmanager on a free loopback port (no gossip cluster), storage in the temp dir.
am_ready() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET /-/ready HTTP/1.0\r\n\r\n' >&3 && head -1 <&3 | grep -q ' 200') 2>/dev/null
}
for _ in $(seq 1 50); do
  am_port=$((20000 + RANDOM % 40000))
  port_in_use "$am_port" || break
done
mkdir -p "$workdir/alertmanager"
prometheus-alertmanager --config.file=tests/support/alertmanager.yml \
  --storage.path="$workdir/alertmanager" --web.listen-address="127.0.0.1:$am_port" \
  --cluster.listen-address= >"$workdir/alertmanager.log" 2>&1 &
alertmanager_pid=$!
for _ in $(seq 1 100); do
  am_ready "$am_port" && break
  sleep 0.1
done
if ! am_ready "$am_port"; then
  echo "Alertmanager did not start:"; cat "$workdir/alertmanager.log"; exit 1
fi
export POSTURED_TEST_ALERTMANAGER_URL="http://127.0.0.1:$am_port"
echo "== Alertmanager at $POSTURED_TEST_ALERTMANAGER_URL"

export POSTURED_REQUIRE_TEST_SERVERS=1
echo "== cargo test --workspace (inside a throw-away PostgreSQL cluster)"
# pg_virtualenv exports PGHOST/PGPORT/PGUSER/PGPASSWORD for the throw-away cluster; -t keeps
# it in a temporary directory even as root, so concurrent runs do not collide.
pg_virtualenv -t sh -c '
  export POSTURED_TEST_POSTGRES_URL="postgres://${PGUSER}:${PGPASSWORD}@localhost:${PGPORT}/postgres"
  exec cargo test --workspace "$@"
' postured-tests "$@"
