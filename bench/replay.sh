#!/usr/bin/env bash
# Replay benchmark: records per second of `audetect replay` (detection on)
# on a log of RECORDS records built from real captures, next to `wc -l`.
# Twice: with the built-in rule as shipped (max_signals 100 per 5 minutes, as
# on a real host), and with max_signals raised so that every one of the
# corpus's ~40,000 matches becomes an alert, to measure the alert path too.
#   bench/replay.sh [RECORDS]       (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
corpus=target/bench/corpus-$n.log
mkdir -p target/bench
[[ -f $corpus ]] || python3 bench/make-corpus.py "$n" "$corpus"
cargo build --release --locked -q
mkdir -p target/bench/rules
sed 's/^max_signals = 100$/max_signals = 100000000/' rules/suspicious_network_connection_attempt_by_root.toml \
  > target/bench/rules/seed.toml
printf '[detection]\nrule_paths = ["%s"]\n' "$PWD/target/bench/rules" > target/bench/audetect.toml
echo "corpus: $corpus ($(du -h "$corpus" | cut -f1)), load $(cut -d' ' -f1 /proc/loadavg)"
cat "$corpus" >/dev/null
for config in "" target/bench/audetect.toml; do
  echo "== ${config:+every match an alert (}${config:-the built-in rule as shipped}${config:+)}"
  for i in 1 2 3; do
    /usr/bin/time -f "   %e s wall, %M KiB max RSS" \
      target/release/audetect replay ${config:+--config "$config"} "$corpus" 2>&1 >/dev/null |
      grep -E "replayed|wall" | sed 's/^audetect: info: //'
  done
done
/usr/bin/time -f "wc -l: %e s wall" wc -l "$corpus"
