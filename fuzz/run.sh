#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time, one after another, and fails if any of them
# finds a crash (docs/testing.md, "Fuzzing").
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]      # default: 600 s each, every target
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); the nightly flags libFuzzer needs run
# on the stable toolchain through RUSTC_BOOTSTRAP=1. The build takes the lock file
# $ZEROAPP_BUILD_LOCK (default /tmp/zeroapp-build.lock) shared with the other builds of this
# machine; the runs themselves do not, and run under `nice`.
#
# Seeds are read from fuzz/corpus/TARGET (committed, small); what the fuzzer adds goes to
# fuzz/work/TARGET (not committed). Crash inputs go to fuzz/artifacts/TARGET; keep each one as
# a regression input under fuzz/regressions/TARGET/ (replayed by `cargo test --workspace`).
# Logs: fuzz/logs/TARGET.log.
set -euo pipefail

seconds="${1:-600}"
shift || true
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    targets=(journal_decode replay log_recovery ingress datastar_signals)
fi
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -eq 0 ]]; then
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi

cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
# No sanitizer: our code has no unsafe, and ASan would halve the executions. Debug assertions
# (and so overflow checks) on.
flags=(--sanitizer none --debug-assertions)
lock="${ZEROAPP_BUILD_LOCK:-/tmp/zeroapp-build.lock}"

flock "$lock" cargo fuzz build "${flags[@]}"

mkdir -p logs
failed=()
for target in "${targets[@]}"; do
    mkdir -p "work/$target" "corpus/$target" "artifacts/$target"
    args=(
        "-max_total_time=$seconds"
        "-timeout=30"
        "-rss_limit_mb=2048"
        "-print_final_stats=1"
        "-artifact_prefix=artifacts/$target/"
    )
    if [[ -f "dictionaries/$target.dict" ]]; then
        args+=("-dict=dictionaries/$target.dict")
    fi
    echo "== $target: ${seconds} s"
    if nice -n 10 cargo fuzz run "${flags[@]}" "$target" "work/$target" "corpus/$target" \
        -- "${args[@]}" >"logs/$target.log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$target")
    fi
    executions=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$target.log" | tail -1 | grep -o '[0-9]*$' || true)
    per_second=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "logs/$target.log" | tail -1 | grep -o '[0-9]*$' || true)
    corpus=$(find "work/$target" "corpus/$target" -type f | wc -l)
    echo "   $status: ${executions:-?} executions, ${per_second:-?} exec/s, corpus $corpus files (logs/$target.log)"
    if [[ "$status" == FAILED ]]; then
        grep -E '^(thread|==[0-9]+==|SUMMARY|artifact_prefix|Test unit written)' "logs/$target.log" | head -20 || true
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "crashes found in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "no crash in ${targets[*]}"
