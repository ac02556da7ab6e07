#!/usr/bin/env bash
# CI checks of the packaging (issue 14): the Kubernetes manifests validated offline, the Debian
# package built, installed with dpkg on this machine and exercised, the installed systemd unit
# verified and its sandbox rated. Prints the package size and the security rating.
#
#   packaging/check.sh        (as root: it installs the package)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "packaging/check.sh installs a package: run it as root" >&2
  exit 1
fi

echo "== Kubernetes manifests (kubernetes-validate --strict, Kubernetes schemas, offline)"
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  python3 -m pip install --quiet kubernetes-validate
fi
(cd packaging/kubernetes && kubernetes-validate --strict --quiet \
  namespace.yaml configmap.yaml secret.yaml pvc.yaml deployment.yaml service.yaml)
echo "== ServiceMonitor (Prometheus Operator schema, npm, pinned)"
(cd packaging/kubernetes/check && npm ci --no-audit --no-fund --loglevel=error && npm run -s check)

echo "== Debian package"
deb=$(packaging/build-deb.sh | tail -1)
echo "package: $deb ($(du -h "$deb" | cut -f1), $(stat -c %s "$deb") bytes)"
if ! command -v systemd-analyze >/dev/null 2>&1; then
  apt-get install -y -qq systemd >/dev/null
fi
dpkg -i "$deb"
echo "== the installed package"
/usr/bin/postured --version
test -f /usr/share/man/man1/postured.1.gz
test -f /usr/share/bash-completion/completions/postured
getent passwd postured >/dev/null
test "$(stat -c %U /var/lib/postured)" = postured
# The example configuration names one tenant's secret by an environment variable.
POSTURED_CONTOSO_CLIENT_SECRET=not-a-real-secret \
  /usr/bin/postured check-config /etc/postured/postured.toml
echo "== systemd-analyze verify"
systemd-analyze verify /lib/systemd/system/postured.service
echo "== systemd-analyze security"
systemd-analyze security --offline=true /lib/systemd/system/postured.service | tail -1
echo "== dpkg --purge"
dpkg --purge postured >/dev/null
test ! -e /usr/bin/postured
