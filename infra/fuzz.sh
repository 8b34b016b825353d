#!/usr/bin/env bash
# Fuzzes the decoders for a bounded time: Snapshot::decode and
# Change::decode (adcast-shared) must never panic, and what they accept must
# round-trip; the edge's index image decoder (adcast-edge's image::decode)
# must never panic, and what it accepts must be usable as a serving state.
# The targets live in shared/fuzz and edge/fuzz (standalone cargo-fuzz
# projects, not members of the root workspace).
#
#   bash infra/fuzz.sh                      # every target, 60 s each
#   FUZZ_SECONDS=300 bash infra/fuzz.sh     # longer
#   bash infra/fuzz.sh event_decode         # only the targets named
#
# Environment:
#   FUZZ_SECONDS    fuzzing time per target, not counting the build (60)
#   FUZZ_SANITIZER  none (default) or address. The stable toolchain builds
#                   coverage-instrumented targets with `--sanitizer none`: no
#                   -Z flag is needed. `address` needs -Zsanitizer, which
#                   stable rustc refuses ("the option `Z` is only accepted on
#                   the nightly compiler"), so this script then sets
#                   RUSTC_BOOTSTRAP=1 to let stable rustc take the nightly
#                   flag, and builds into its own target dir. adcast-shared
#                   forbids unsafe code, so `none` loses little; zstd's C
#                   code is not instrumented by ASan either way.
#
# Each target starts from a seed corpus of valid files written by its
# project's examples/seed.rs (with the crate's own encoders), plus what
# earlier runs found, kept in <project>/corpus/<target>/ (git-ignored).
# A crash, panic, timeout or out-of-memory input is saved under
# <project>/artifacts/<target>/ and printed in hex; the script then exits 1
# (after running the remaining targets). Reproduce one with
#   cd shared/fuzz && cargo fuzz run --sanitizer none <target> <artifact file>
# (edge/fuzz for image_decode).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# The project each target belongs to.
project_of() {
  case "$1" in
    image_decode) echo "$root/edge/fuzz" ;;
    *) echo "$root/shared/fuzz" ;;
  esac
}

seconds=${FUZZ_SECONDS:-60}
sanitizer=${FUZZ_SANITIZER:-none}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(snapshot_decode event_decode image_decode)
fi

case "$sanitizer" in
  none) fuzz_flags=(--sanitizer none) ;;
  address)
    export RUSTC_BOOTSTRAP=1
    fuzz_flags=(--sanitizer address --target-dir target/asan)
    ;;
  *) echo "fuzz.sh: FUZZ_SANITIZER must be none or address, not '$sanitizer'" >&2; exit 2 ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# Seeds: an ordinary (uninstrumented) build of each project's
# examples/seed.rs. Then build before the clock starts, so FUZZ_SECONDS is
# all fuzzing.
for target in "${targets[@]}"; do
  (cd "$(project_of "$target")" &&
    cargo run --locked --release --quiet --example seed -- corpus &&
    cargo fuzz build "${fuzz_flags[@]}" "$target")
done

log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT
failed=()
summary=()
for target in "${targets[@]}"; do
  cd "$(project_of "$target")"
  mkdir -p "corpus/$target" "artifacts/$target"
  echo "=== $target: fuzzing for ${seconds}s"
  log="$log_dir/$target.log"
  status=0
  # -timeout: one input taking over 10 s counts as a failure (a hang).
  # Full libFuzzer output goes to the log; progress lines are shown.
  cargo fuzz run "${fuzz_flags[@]}" "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  grep -E '^#[0-9]+[[:space:]]+(INITED|pulse|DONE)|^Done [0-9]+ runs' "$log" || true
  runs=$(sed -nE 's/^Done ([0-9]+) runs in ([0-9]+) second.*/\1 runs in \2 s/p' "$log" | tail -1)
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    summary+=("$target: FAILED (exit $status)")
    echo "--- $target failed (exit $status); what libFuzzer reported:"
    grep -E -A3 "panicked at|ERROR: libFuzzer|^SUMMARY|^==[0-9]+== ?ERROR|^Error:" "$log" || tail -40 "$log"
    sed -nE 's/.*Test unit written to (.*)$/\1/p' "$log" | while read -r artifact; do
      echo "--- input $artifact ($(wc -c <"$artifact") bytes), hex:"
      od -An -v -tx1 "$artifact" | tr -d ' \n' | fold -w 64
      echo
    done
  else
    summary+=("$target: ok, ${runs:-? runs}, no crash")
  fi
done

echo "=== fuzz summary (${seconds}s per target, sanitizer $sanitizer)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz.sh: crash found in: ${failed[*]}" >&2
  exit 1
fi
