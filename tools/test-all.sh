#!/usr/bin/env bash
# Runs every suite and ends with one line over all of them: "N passed, M failed".
# Each suite's own output is shown as it runs; a suite that cannot run counts as failed.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# add_counts FILE: adds the counts found in a suite's output.
add_counts() {
  local p f
  # cargo: "test result: ok. 19 passed; 0 failed; ..."
  while read -r p f; do
    passed=$((passed + p)); failed=$((failed + f))
  done < <(sed -nE 's/^test result: [a-zA-Z]+\. ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/p' "$1")
  # our runners: "N passed, M failed" alone on a line
  while read -r p f; do
    passed=$((passed + p)); failed=$((failed + f))
  done < <(sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$1")
}

# suite NAME CMD...: runs one suite; a non-zero exit with no failure counted is one failure.
suite() {
  local name=$1; shift
  echo "=== $name"
  local before=$failed
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  add_counts "$log"
  if [ "$rc" -ne 0 ] && [ "$failed" -eq "$before" ]; then
    echo "$name: exited $rc"
    failed=$((failed + 1))
  fi
}

suite "core (cargo test)" cargo test -p muc_rs
# The scansion scripts in process against the core, no server (milliseconds a script): the
# first behaviour tier. Scripts needing Prosody's modules or config are left to the server
# tier; those in core-tier.known-gaps must fail, and so must the self-test's.
suite "scansion in process (core)" cargo run -q --release -p muc_harness --bin scansion -- \
  --core --known-failures spec/scansion/core-tier.known-gaps spec/scansion/
suite "scansion in process self-test (must fail)" cargo run -q --release -p muc_harness --bin scansion -- \
  --core --expect-fail spec/scansion-selftest/
# (harness/tests/ejabberd.rs loads the ejabberd module and installs its contrib package: built first)
suite "harness (cargo test)" bash -c 'make -s install-ejabberd ejabberd-contrib >/dev/null && cargo test -p muc_harness'
suite "lint" bash -c 'cargo fmt --all -- --check && cargo clippy --workspace --all-targets -q -- -D warnings && echo "1 passed, 0 failed"'
suite "busted" bash spec/run-busted.sh
suite "fuzz (30 s, make fuzz-quick)" make -s fuzz-quick
suite "differential permissions" cargo run -q --release -p muc_harness --bin muc-diff -- --plugin-dir "$PWD/build/plugin"
suite "scansion self-test (must fail)" cargo run -q --release -p muc_harness --bin scansion -- \
  --expect-fail --timeout 1 --plugin-dir "$PWD/build/plugin" spec/scansion-selftest/
suite "scansion" cargo run -q --release -p muc_harness --bin scansion -- \
  --plugin-dir "$PWD/build/plugin" spec/scansion/
# Prosody's own test config runs its MUC scripts with muc_mam on the component: so do we
# (scripts that set modules_enabled themselves keep their own list).
suite "scansion with muc_mam" cargo run -q --release -p muc_harness --bin scansion -- \
  --plugin-dir "$PWD/build/plugin" --component-config 'modules_enabled = { "muc_mam" }' spec/scansion/
# The same scripts on ejabberd 24.12 with muc_rs's ejabberd module (the NIF), but those whose
# tags are Prosody config or that check the server rather than the MUC (## not-on-ejabberd);
# component options are translated to the module's.
suite "scansion on ejabberd" bash -c 'cargo run -q --release -p muc_harness --bin scansion -- --ejabberd spec/scansion/'
# The side-by-side: ejabberd's own mod_muc fails the scripts listed, and only those.
suite "scansion on ejabberd's mod_muc" cargo run -q --release -p muc_harness --bin scansion -- \
  --ejabberd-stock --known-failures spec/scansion/ejabberd-stock.known-failures spec/scansion/
# Converse.js in headless Chromium (web/browser-test.mjs): first with a copy of the plugin
# that drops groupchat messages, which must fail, then the session on {0.12, 13} x {muc_rs, muc}.
suite "browser self-test (must fail)" bash -c 'bash tools/web-setup.sh && node web/browser-test.mjs --expect-fail'
suite "browser (Converse.js)" node web/browser-test.mjs

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
