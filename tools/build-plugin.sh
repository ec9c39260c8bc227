#!/usr/bin/env bash
# Builds the Lua module (cargo build --release) and assembles the Prosody plugin folder:
#   build/plugin/mod_muc_rs.lua   the shim (and its .lib.lua files)
#   build/plugin/muc_rs.so        target/release/libmuc_rs_prosody.so (the crate prosody/),
#                                 renamed for require "muc_rs"
# Point Prosody's plugin_paths at build/plugin. An argument names another folder (the
# benchmark and soak assemble their own, so a run never sees the .so change under it).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$ROOT/build/plugin}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

cd "$ROOT"
cargo build --release --lib -p muc_rs_prosody

mkdir -p "$OUT"
# Copy to a temporary name and rename: a running Prosody that has the old .so mapped keeps
# its (unlinked) copy instead of seeing the file change under it.
cp "$TARGET_DIR/release/libmuc_rs_prosody.so" "$OUT/.muc_rs.so.tmp"
mv -f "$OUT/.muc_rs.so.tmp" "$OUT/muc_rs.so"
cp "$ROOT"/lua/*.lua "$OUT/"
echo "build-plugin: $OUT/mod_muc_rs.lua $OUT/muc_rs.so"
