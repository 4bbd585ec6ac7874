#!/usr/bin/env bash
# Replay benchmark: records per second of `audetect replay` (detection on)
# on a log of RECORDS records built from real captures, next to `wc -l`.
#   bench/replay.sh [RECORDS]       (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
corpus=target/bench/corpus-$n.log
mkdir -p target/bench
[[ -f $corpus ]] || python3 bench/make-corpus.py "$n" "$corpus"
cargo build --release --locked -q
# The built-in rule with max_signals raised, so every match becomes an alert
# and the alert path is measured too.
mkdir -p target/bench/rules
sed 's/^max_signals = 100$/max_signals = 100000000/' rules/suspicious_network_connection_attempt_by_root.toml \
  > target/bench/rules/seed.toml
printf '[detection]\nrule_paths = ["%s"]\n' "$PWD/target/bench/rules" > target/bench/audetect.toml
echo "corpus: $corpus ($(du -h "$corpus" | cut -f1))"
for i in 1 2 3; do
  /usr/bin/time -f "audetect replay: %e s wall, %M KiB max RSS" \
    target/release/audetect replay --config target/bench/audetect.toml "$corpus" 2>&1 >/dev/null |
    grep -E "replayed|wall"
done
/usr/bin/time -f "wc -l: %e s wall" wc -l "$corpus"
