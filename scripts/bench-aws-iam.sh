#!/usr/bin/env bash
# Benchmark (issue 9): wall and CPU time of one AWS IAM account poll against moto's AWS API
# emulator on loopback, release build. The account (10 users, 3 with console passwords, 6
# access keys, 2 attached customer-managed policies; 30 IAM requests per poll) is prepared
# through moto's IAM API; after a warm-up poll (connection, STS credentials, the credential
# report generated), 20 polls are timed and their mean printed: wall time, and the CPU time of
# the thread running the poll (postured's side only; moto runs in its own process).
#
#   scripts/bench-aws-iam.sh
set -euo pipefail
cd "$(dirname "$0")/.."
workdir=$(mktemp -d)
cleanup() {
  [ -n "${moto_pid:-}" ] && kill "$moto_pid" 2>/dev/null || true
  rm -rf "$workdir"
}
trap cleanup EXIT
. scripts/moto.sh
cargo test --release --test aws_iam poll_cost_against_moto -- --ignored --nocapture 2>&1 |
  grep -E '^aws_iam poll|test result'
