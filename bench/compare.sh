#!/usr/bin/env bash
# The replay corpus through audetect and its peers on this machine: audetect
# replay (detection on, the built-in rule with its alert cap lifted, the
# alert count checked), ausearch (Debian's
# auditd), laurel (when installed) and wc -l, each run 3 times; the best
# wall time and records/s of each.
#   bench/compare.sh [RECORDS]      (default 1000000)
# laurel: apt-get install libclang-dev libacl1-dev; cargo install --locked
# laurel (put it on PATH, or LAUREL=/path/to/laurel).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
corpus=$PWD/target/bench/corpus-$n.log
mkdir -p target/bench
[[ -f $corpus ]] || python3 bench/make-corpus.py "$n" "$corpus"
cargo build --release --locked -q
laurel=${LAUREL:-$(command -v laurel || true)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat "$corpus" >/dev/null # every tool reads it from the page cache

# best NAME COMMAND...: the fastest of 3 runs (wall, user+sys CPU).
best() {
  local name=$1 t best_wall=
  shift
  for _ in 1 2 3; do
    /usr/bin/time -o "$work/time" -f "%e %U %S" "$@" >/dev/null 2>&1
    read -r wall user sys <"$work/time"
    if [[ -z $best_wall ]] || awk "BEGIN{exit !($wall < $best_wall)}"; then
      best_wall=$wall best_cpu=$(awk "BEGIN{print $user + $sys}")
    fi
  done
  awk -v name="$name" -v w="$best_wall" -v c="$best_cpu" -v n="$n" \
    'BEGIN { printf "%-40s %6.2f s wall %6.2f s CPU %10.0f records/s\n", name, w, c, (w > 0 ? n / w : 0) }'
}

# The built-in rule with its max_signals lifted: peers format every event,
# so audetect must not stop at the rule's alert cap (100 a window) either.
mkdir -p "$work/rules"
sed 's/^max_signals = 100$/max_signals = 100000000/' \
  rules/suspicious_network_connection_attempt_by_root.toml >"$work/rules/seed.toml"
grep -q '^max_signals = 100000000$' "$work/rules/seed.toml" || { echo "seed rule: no max_signals to lift" >&2; exit 1; }
printf '[detection]\nrule_paths = ["%s"]\n[output.syslog]\nenabled = false\n' "$work/rules" >"$work/uncapped.toml"
# alerts FILE: the alert count of an uncapped replay.
alerts() {
  target/release/audetect replay -c "$work/uncapped.toml" "$1" 2>&1 >/dev/null |
    sed -n 's/.* events, \([0-9]*\) alerts.*/\1/p'
}
records=$(grep -c . tests/fixtures/scenarios.log)
per_copy=$(alerts tests/fixtures/scenarios.log)
want=$((n / records * per_copy))
got=$(alerts "$corpus")
echo "corpus: $corpus ($n records, $(du -h "$corpus" | cut -f1)), $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
echo "audetect alerts on it: $got (at least $want: $per_copy in each whole copy of the $records captured records)"
if ((got < want)); then
  echo "FAIL: audetect stopped alerting (a cap?): the comparison would flatter it" >&2
  exit 1
fi
best "audetect replay (built-in rule, uncapped)" target/release/audetect replay -c "$work/uncapped.toml" "$corpus"
best "ausearch -if (all events, text)" ausearch -if "$corpus"
best "ausearch -if --raw" ausearch -if "$corpus" --raw
if [[ -n $laurel ]]; then
  printf 'directory = "%s"\nuser = "root"\n[auditlog]\nfile = "audit.log"\nsize = 100000000000\ngenerations = 1\n' \
    "$work" >"$work/laurel.toml"
  # A fresh output and state each run, as for a first start.
  best "laurel $("$laurel" --version | cut -d' ' -f1) (JSON of every event)" \
    sh -c 'rm -f "$1"/audit.log "$1"/state*; exec "$2" -c "$1"/laurel.toml <"$3"' sh "$work" "$laurel" "$corpus"
else
  echo "laurel: not installed (see the top of this script); skipped"
fi
best "wc -l" wc -l "$corpus"
