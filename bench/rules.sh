#!/usr/bin/env bash
# Cost per event against the number of rules loaded (issue 16): events/s of
# `audetect replay` on one corpus with 1, 10, 100 and all of a rule pack's
# rules that audetect runs (the built-in rule off), each the best of RUNS
# runs (default 3; replay's own timing: reading the rules is not counted). The rules of each
# set are spread evenly over the pack's, in file order.
#   bench/rules.sh [PACK] [CORPUS]
# PACK: a directory of rules (default /work/shared/elastic-rules). CORPUS: an
# audit log (default: target/bench/kinds-198000.log, tests/fixtures/kinds.log
# repeated by make-corpus.py: exec-heavy, every kind of event audetect makes).
# AUDETECT=/path/to/audetect measures another build (default: a release build
# of this tree). BEFORE=/path/to/audetect measures that build too, its runs
# alternating with the other's so that other load on the machine weighs on
# both alike: a before/after comparison in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
pack=${1:-/work/shared/elastic-rules}
corpus=${2:-target/bench/kinds-198000.log}
mkdir -p target/bench
if [[ ! -f $corpus && $corpus == target/bench/kinds-198000.log ]]; then
  python3 bench/make-corpus.py 198000 "$corpus" tests/fixtures/kinds.log
fi
if [[ -z ${AUDETECT:-} ]]; then
  cargo build --release --locked -q
  AUDETECT=${CARGO_TARGET_DIR:-target}/release/audetect
fi
builds=("$AUDETECT")
names=("")
if [[ -n ${BEFORE:-} ]]; then
  builds=("$BEFORE" "$AUDETECT")
  names=("before" "after ")
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The pack's rules that load, in file order.
printf '[detection]\nbuiltin_rules = false\nrule_paths = ["%s"]\n' "$pack" >"$work/all.toml"
"$AUDETECT" check-config -c "$work/all.toml" -v 2>&1 |
  sed -n 's/^rule ".*" (\(.*\)): OK$/\1/p' | sort >"$work/loads"
total=$(wc -l <"$work/loads")
[[ $total -gt 0 ]] || { echo "no rule of $pack loads" >&2; exit 1; }

echo "corpus: $corpus ($(wc -l <"$corpus") records), pack: $pack ($total rules load), $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
cat "$corpus" >/dev/null

# run BUILD: "SECONDS EVENTS", replay's own time and count for the corpus
# with $work/n.toml.
run() {
  "$1" replay -c "$work/n.toml" "$corpus" 2>&1 >/dev/null |
    sed -n 's/.* in \([0-9.]*\) s .*: \([0-9]*\) events.*/\1 \2/p'
}

declare -a first
for n in 1 10 100 "$total"; do
  [[ $n -le $total ]] || continue
  # Every (total/n)-th rule, so each set samples the whole pack.
  awk -v n="$n" -v t="$total" 'BEGIN { for (i = 0; i < n; i++) want[int(i * t / n) + 1] = 1 } want[NR]' \
    "$work/loads" | sed 's/.*/"&",/' | tr -d '\n' | sed 's/,$//' >"$work/list"
  printf '[detection]\nbuiltin_rules = false\nrule_paths = [%s]\n' "$(cat "$work/list")" >"$work/n.toml"
  loaded=$("$AUDETECT" check-config -c "$work/n.toml" 2>&1 | sed -n 's/.*rules: \([0-9]*\) loaded.*/\1/p')
  declare -a best=()
  for ((r = 0; r < ${RUNS:-3}; r++)); do
    for i in "${!builds[@]}"; do
      read -r s events < <(run "${builds[$i]}")
      if [[ -z ${best[$i]:-} ]] || awk "BEGIN{exit !($s < ${best[$i]})}"; then best[$i]=$s; fi
    done
  done
  for i in "${!builds[@]}"; do
    first[$i]=${first[$i]:-${best[$i]}}
    awk -v name="${names[$i]}" -v n="$loaded" -v s="${best[$i]}" -v f="${first[$i]}" -v e="$events" \
      'BEGIN { printf "%s%4d rules: %6.3f s for %d events, %7.0f events/s, %.2fx the time with 1 rule\n", (name == "" ? "" : name " "), n, s, e, (s > 0 ? e / s : 0), s / f }'
  done
done
