#!/usr/bin/env bash
# Runs the fuzz targets (see README.md).
#
#   fuzz/run.sh [--seconds N] [TARGET...]   build with cargo-afl, fuzz each target N seconds
#                                           (default 60), print executions, fail on a crash
#   fuzz/run.sh --replay [TARGET...]        run every input of fuzz/regressions/<target>/ and
#                                           fuzz/corpus/<target>/ through the plain (non-AFL)
#                                           build of each target; fail if one panics
#
# Without TARGET, every target. Findings go to fuzz/out/<target>/ (not committed); a crash is
# copied to fuzz/out/crashes/<target>/ and named in the output, to be fixed and then kept under
# fuzz/regressions/<target>/.
set -euo pipefail
cd "$(dirname "$0")"

all_targets=(layer image manifest decoders yaml detector admission events)
seconds=60
replay=""
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --replay) replay=yes; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || targets=("${all_targets[@]}")

if [ -n "$replay" ]; then
  # The plain build: no instrumentation, `cfg(fuzzing)` unset, so each binary replays files.
  # CARGO_TARGET_DIR is honoured: pointed at the root's target directory, the replay build
  # reuses most of what the root's `cargo test` built.
  cargo build --locked --bins
  failed=0
  for target in "${targets[@]}"; do
    "${CARGO_TARGET_DIR:-target}/debug/$target" "regressions/$target" "corpus/$target" || failed=1
  done
  exit "$failed"
fi

# The instrumented build. cargo-afl compiles every crate with -C codegen-units=1 at
# AFL_OPT_LEVEL (its default is 3); 1 makes the cold build much shorter (README.md has the
# figures) for fewer executions per second. Set AFL_OPT_LEVEL=3 for long runs.
export AFL_OPT_LEVEL="${AFL_OPT_LEVEL:-1}"
cargo afl build --locked --release --bins

# One core or two are shared with other work: no CPU binding (AFL++ refuses to start when it
# finds no free core), no governor check. A crash is a finding, whatever the core dump setup.
# The targets build the detector before the forkserver starts, which takes seconds.
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_FORKSRV_INIT_TMOUT=120000

status=0
summary=()
for target in "${targets[@]}"; do
  out="out/$target"
  rm -rf "$out"
  mkdir -p "$out"
  # The seeds are the corpus and the regressions together (AFL++ takes one input directory).
  seeds="$out/seeds"
  mkdir -p "$seeds"
  cp corpus/"$target"/* "$seeds"/
  if [ -d "regressions/$target" ]; then
    for file in regressions/"$target"/*; do
      [ -f "$file" ] && cp "$file" "$seeds/regression-$(basename "$file")"
    done
  fi
  echo "run.sh: fuzzing $target for ${seconds}s"
  # -t: a generous per-input time limit (the detector runs hundreds of rules); inputs over it
  # are hangs, kept in out/, not failures. -V: stop after this many seconds.
  cargo afl fuzz -i "$seeds" -o "$out" -t 2000 -V "$seconds" -- \
    "${CARGO_TARGET_DIR:-target}/release/$target" \
    >"$out/afl.log" 2>&1 || {
    echo "run.sh: afl-fuzz failed on $target; the end of its log:" >&2
    tail -n 30 "$out/afl.log" >&2
    status=1
    continue
  }
  stats="$out/default/fuzzer_stats"
  value() { sed -n "s/^$1 *: *//p" "$stats"; }
  execs=$(value execs_done)
  crashes=$(find "$out/default/crashes" -type f -name 'id:*' | wc -l)
  hangs=$(find "$out/default/hangs" -type f -name 'id:*' | wc -l)
  summary+=("$(printf '%-10s %10s execs  %6s/s  %3s paths  %s crashes  %s hangs  %ss' \
    "$target" "$execs" "$(value execs_per_sec)" "$(value corpus_count)" "$crashes" "$hangs" \
    "$(value run_time)")")
  if ((crashes)); then
    mkdir -p "out/crashes/$target"
    cp "$out"/default/crashes/id:* "out/crashes/$target/"
    echo "run.sh: $target CRASHED on $crashes input(s), copied to fuzz/out/crashes/$target/" >&2
    status=1
  fi
done
printf '%s\n' "${summary[@]}"
exit "$status"
