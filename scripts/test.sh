#!/usr/bin/env bash
# The test command (README, "Quick start"): installs and starts the test
# services (MariaDB :13306, Tansu :19092 with SQLite storage, emptied for
# every run; the Elasticsearch API :19200) if needed, runs
# every test of the workspace against them, then the format and lint gates.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tweetlambda/target}"

TL_HOME="${TL_HOME:-$HOME/.cache/tweetlambda}"
# A fresh broker for every run: each test creates its own topics, and those
# of earlier runs would pile up in the broker's SQLite file (gigabytes after
# a day of runs) and slow it down until consumer-group heartbeats time out.
scripts/services.sh --profile test down >/dev/null 2>&1 || true
rm -rf "$TL_HOME/test/tansu"
scripts/services.sh --profile test up
eval "$(scripts/services.sh --profile test env | sed 's/^TWEETLAMBDA_/export TWEETLAMBDA_TEST_/')"

# Databases left by earlier runs.
sock="$TL_HOME/test/run/mariadb.sock"
for db in $(mariadb --no-defaults --socket="$sock" -uroot -N -e "SHOW DATABASES LIKE 'tl\_test\_%'"); do
  mariadb --no-defaults --socket="$sock" -uroot -e "DROP DATABASE \`$db\`"
done

cargo test --workspace --locked
# The Compose file: docker-compose accepts it, every tweetlambda command and
# flag it runs exists (checked against the binary the tests just built), and
# the check itself fails on a file broken on purpose.
scripts/check-compose.sh
scripts/check-compose.sh --self-test
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
