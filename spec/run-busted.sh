#!/usr/bin/env bash
# Runs the busted specs (spec/*_spec.lua) against the built plugin, once with Prosody 0.12's
# libraries and once with Prosody 13.0's, and ends with one line: "N passed, M failed".
#
#   spec/run-busted.sh              build the plugin (tools/build-plugin.sh), then test
#   MUC_RS_SKIP_BUILD=1 spec/run-busted.sh     test the plugin already in $MUC_RS_PLUGIN
#
# Environment: MUC_RS_PLUGIN (default build/plugin), PROSODY_012_LIB (default
# /usr/lib/prosody), PROSODY_13_LIB (default .deps/prosody-13/usr/lib/prosody, else
# /tmp/p13/root/usr/lib/prosody). A missing library tree counts as a failure.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export MUC_RS_PLUGIN="${MUC_RS_PLUGIN:-$ROOT/build/plugin}"

if [ -z "${MUC_RS_SKIP_BUILD:-}" ]; then
	if ! "$ROOT/tools/build-plugin.sh" >&2; then
		echo "run-busted: build failed" >&2
		echo "0 passed, 1 failed"
		exit 1
	fi
fi

lib13="${PROSODY_13_LIB:-}"
if [ -z "$lib13" ]; then
	for candidate in "$ROOT/.deps/prosody-13/usr/lib/prosody" /tmp/p13/root/usr/lib/prosody; do
		if [ -f "$candidate/util/stanza.lua" ]; then lib13="$candidate"; break; fi
	done
fi
trees=("0.12=${PROSODY_012_LIB:-/usr/lib/prosody}" "13=${lib13:-/nonexistent/prosody-13}")

passed=0
failed=0
for tree in "${trees[@]}"; do
	label="${tree%%=*}"
	lib="${tree#*=}"
	echo "== Prosody $label ($lib)"
	if [ ! -f "$lib/util/stanza.lua" ]; then
		echo "run-busted: no Prosody $label library tree at $lib (run tools/install-deps.sh)"
		failed=$((failed + 1))
		continue
	fi
	out="$(PROSODY_LIB="$lib" busted --helper="$ROOT/spec/helpers/setup.lua" \
		--lpath="$ROOT/spec/?.lua" --pattern='_spec%.lua$' -o TAP "$ROOT/spec" 2>&1)"
	status=$?
	echo "$out"
	ok=$(grep -c '^ok ' <<<"$out")
	not_ok=$(grep -c '^not ok ' <<<"$out")
	passed=$((passed + ok))
	failed=$((failed + not_ok))
	if [ "$status" -ne 0 ] && [ "$not_ok" -eq 0 ]; then
		echo "run-busted: busted exited with status $status under Prosody $label"
		failed=$((failed + 1))
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
