#!/usr/bin/env bash
# Build the Debian package: the release binary, its man pages and completions (generated from
# the command line's definition), then `cargo deb` (installs cargo-deb when missing). Prints
# the package path and size.
#
#   packaging/build-deb.sh            # -> target/debian/postured_<version>-1_<arch>.deb
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "== installing cargo-deb"
  cargo install cargo-deb --locked --version '^3'
fi
# cargo-deb maps asset paths under `target/release/` to the real target directory.
release="${CARGO_TARGET_DIR:-target}/release"
echo "== cargo build --release"
cargo build --release --locked --bin postured
echo "== man pages and completions"
rm -rf "$release/assets"
"$release/postured" generate-assets "$release/assets" >/dev/null
gzip -9n "$release"/assets/man/*.1
echo "== cargo deb"
deb=$(cargo deb --no-build --locked 2>/dev/null | tail -1)
ls -l "$deb"
echo "$deb"
