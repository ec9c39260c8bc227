# muc_rs — build, install, run and test.
#   make build    the Lua module and shim in build/plugin/
#   make install  copy them into PLUGIN_DIR (a folder listed in Prosody's plugin_paths)
#   make run      a Prosody on localhost with muc_rs on conference.localhost, and the web
#                 client (Converse.js) on http://localhost:5280/
#   make test     every test: Rust, busted, the scansion suite and the browser test on
#                 Prosody 0.12 and 13.0

PLUGIN_DIR ?= /usr/local/lib/prosody/modules
CARGO ?= cargo
PLUGIN := build/plugin
DEPS_STAMP := .deps/installed

.PHONY: all build install deps web run test test-rust test-busted test-core-scansion test-scansion test-selftest test-browser lint clean

all: build

$(DEPS_STAMP): tools/install-deps.sh
	bash tools/install-deps.sh
	mkdir -p .deps && touch $@

deps: $(DEPS_STAMP)

build:
	bash tools/build-plugin.sh

install: build
	install -d $(PLUGIN_DIR)
	install -m 644 $(PLUGIN)/*.lua $(PLUGIN_DIR)/
	install -m 755 $(PLUGIN)/muc_rs.so $(PLUGIN_DIR)/muc_rs.so

# The web client's npm packages (web/package-lock.json) and build/web, which Prosody serves.
web: deps
	bash tools/web-setup.sh

run: deps build web
	bash tools/run-dev.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: deps build web
	bash tools/test-all.sh

test-rust: deps install-ejabberd ejabberd-contrib
	$(CARGO) test -p muc_rs
	$(CARGO) test -p muc_harness

test-busted: deps build
	bash spec/run-busted.sh

# Converse.js in headless Chromium against muc_rs and stock, 0.12 and 13 (web/browser-test.mjs);
# BROWSER_ARGS="--runs 13:muc_rs --keep", or "--expect-fail" for the broken-plugin check.
test-browser: deps build web
	node web/browser-test.mjs $(BROWSER_ARGS)

# The scansion scripts in process against the core: no Prosody, no plugin, under a second.
test-core-scansion:
	$(CARGO) run -q --release -p muc_harness --bin scansion -- --core --known-failures spec/scansion/core-tier.known-gaps spec/scansion/
	$(CARGO) run -q --release -p muc_harness --bin scansion -- --core --expect-fail spec/scansion-selftest/

test-scansion: deps build
	$(CARGO) run -q --release -p muc_harness --bin scansion -- --plugin-dir $(CURDIR)/$(PLUGIN) spec/scansion/*.scs

clean:
	$(CARGO) clean
	rm -rf build

# ----- fuzzing (tests/support/mod.rs has the generator and the invariants) -----
# Built with plain cargo and cargo-fuzz's instrumentation flags on the stable toolchain;
# where cargo-fuzz is installed, `cd fuzz && cargo fuzz run muc` works as well.
FUZZ_TARGET_DIR ?= $(CURDIR)/fuzz/target
FUZZ_TRIPLE := $(shell rustc -vV | sed -n 's/^host: //p')
FUZZ_BIN := $(FUZZ_TARGET_DIR)/$(FUZZ_TRIPLE)/release/muc
FUZZ_RUSTFLAGS := -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
	-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
	-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks
FUZZ_SECONDS ?= 600
FUZZ_OPTS := -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix=$(CURDIR)/fuzz/artifacts/

.PHONY: fuzz-build fuzz fuzz-quick
fuzz-build:
	cd fuzz && RUSTFLAGS="$(FUZZ_RUSTFLAGS)" $(CARGO) build -q --release --target $(FUZZ_TRIPLE) \
		--target-dir $(FUZZ_TARGET_DIR) --bin muc

# Long run (FUZZ_SECONDS, default 10 min); new inputs go to fuzz/corpus/muc.run (not kept
# in git), crashes to fuzz/artifacts/. Reproduce one with: $(FUZZ_BIN) fuzz/artifacts/crash-…
fuzz: fuzz-build
	mkdir -p fuzz/corpus/muc.run fuzz/artifacts
	$(FUZZ_BIN) $(FUZZ_OPTS) -max_total_time=$(FUZZ_SECONDS) fuzz/corpus/muc.run fuzz/corpus/muc

# Short run (30 s) from the seed corpus only, for `make test`; ends with "N passed, M failed".
fuzz-quick: fuzz-build
	@mkdir -p fuzz/artifacts; scratch=$$(mktemp -d); \
	if $(FUZZ_BIN) $(FUZZ_OPTS) -max_total_time=30 $$scratch fuzz/corpus/muc >$$scratch.log 2>&1; then \
		tail -n 12 $$scratch.log | grep -E '^(stat::|Done)' ; rm -rf $$scratch $$scratch.log; echo "1 passed, 0 failed"; \
	else tail -n 60 $$scratch.log; rm -rf $$scratch $$scratch.log; echo "0 passed, 1 failed"; exit 1; fi

# Benchmark: muc_rs against stock mod_muc on the same Prosody (harness/src/bin/muc-bench.rs).
#   make bench                      every scenario, both GC settings, 5 repetitions, Prosody 0.12
#   make bench BENCH_ARGS="--version 13 --reps 3"    (muc-bench --help lists the options)
#   make bench-quick                small sizes, 2 repetitions: a smoke run
#   make bench BENCH_ARGS="--component-modules muc_mam --no-floors"   modules enabled on the
#                                   MUC component of stock and muc_rs alike (floors skipped)
# Results: table on stdout, CSV and SVG in build/bench/. Uses the release build; the plugin
# is assembled in build/bench/plugin (build/plugin is left alone).
.PHONY: bench bench-quick
bench:
	bash tools/build-plugin.sh build/bench/plugin
	$(CARGO) build --release -p muc_harness --bin muc-bench
	"$${CARGO_TARGET_DIR:-target}/release/muc-bench" --plugin-dir build/bench/plugin $(BENCH_ARGS)

bench-quick:
	$(MAKE) --no-print-directory bench BENCH_ARGS="--quick $(BENCH_ARGS)"

# The same scenarios on ejabberd 24.12: stock mod_muc against muc_rs's mod_muc_rs on the same
# install, a fresh node per run, the node's CPU and memory (muc-bench --ejabberd).
#   make bench-ejabberd                        every scenario, 5 repetitions
#   make bench-ejabberd BENCH_ARGS="--quick"   small sizes, 2 repetitions
#   make bench-ejabberd BENCH_ARGS="--mam"     mod_mam on both sides, every room archived
# Builds the module (install-ejabberd, into build/ejabberd) and the release harness;
# results in build/bench/ejabberd/.
.PHONY: bench-ejabberd
bench-ejabberd: install-ejabberd
	$(CARGO) build --release -p muc_harness --bin muc-bench
	"$${CARGO_TARGET_DIR:-target}/release/muc-bench" --ejabberd --module-dir $(DESTDIR)/mod_muc_rs $(BENCH_ARGS)

# Soak: rounds of joins, presence updates, group and private messages, nick changes and
# leaves on a fresh Prosody per module (muc_rs, then stock mod_muc), checking that every
# stanza arrives exactly once, no error or traceback appears, every room goes away when
# empty, and RSS and Lua heap after a full GC return to their post-warm-up baseline
# (harness/src/bin/muc-soak.rs; tools/soak/mod_soak_gc.lua runs the GC). About 2 minutes.
#   make soak SOAK_ARGS="--version 13 --rounds 50 --modules muc_rs"   (muc-soak --help)
# The plugin is assembled in build/soak/plugin from the release build.
.PHONY: soak
soak:
	bash tools/build-plugin.sh build/soak/plugin
	$(CARGO) build --release -p muc_harness --bin muc-soak
	"$${CARGO_TARGET_DIR:-target}/release/muc-soak" --plugin-dir build/soak/plugin $(SOAK_ARGS)

# ejabberd: muc_rs's module, ready to load (ebin/ with the beams, priv/ with the NIF):
#   make install-ejabberd DESTDIR=DIR    -> DIR/mod_muc_rs/{ebin,priv}
# then start ejabberd with -pa DIR/mod_muc_rs/ebin and, in ejabberd.yml,
#   modules: mod_muc_rs: {host: "conference.example.org"}
# The NIF is its own crate and artifact (ejabberd/nif; a NIF and a Lua module cannot share
# one .so).
EJABBERD_INCLUDE ?= /usr/lib/x86_64-linux-gnu/ejabberd-24.12
DESTDIR ?= $(CURDIR)/build/ejabberd
.PHONY: install-ejabberd
install-ejabberd:
	$(CARGO) build --release -p muc_rs_nif
	mkdir -p $(DESTDIR)/mod_muc_rs/ebin $(DESTDIR)/mod_muc_rs/priv
	erlc -pa $(EJABBERD_INCLUDE)/ebin -I $(EJABBERD_INCLUDE)/include -o $(DESTDIR)/mod_muc_rs/ebin ejabberd/src/*.erl
	cp $${CARGO_TARGET_DIR:-target}/release/libmuc_rs_nif.so $(DESTDIR)/mod_muc_rs/priv/.libmuc_rs_nif.so.tmp
	mv -f $(DESTDIR)/mod_muc_rs/priv/.libmuc_rs_nif.so.tmp $(DESTDIR)/mod_muc_rs/priv/libmuc_rs_nif.so
	@echo "install-ejabberd: $(DESTDIR)/mod_muc_rs"

# The same module as a package for ejabberd's contrib mechanism (ext_mod), with the NIF
# prebuilt for this machine: CONTRIB_DIR is ejabberd's CONTRIB_MODULES_PATH (by default
# ~ejabberd/.ejabberd-modules); then `ejabberdctl module_install mod_muc_rs`, or
# `install_contrib_modules: [mod_muc_rs]` in ejabberd.yml, compiles and installs it.
#   make ejabberd-contrib CONTRIB_DIR=DIR  -> DIR/sources/mod_muc_rs/{mod_muc_rs.spec,src,priv,conf}
CONTRIB_DIR ?= $(CURDIR)/build/ejabberd-contrib
.PHONY: ejabberd-contrib
ejabberd-contrib: install-ejabberd
	rm -rf $(CONTRIB_DIR)/sources/mod_muc_rs
	mkdir -p $(CONTRIB_DIR)/sources/mod_muc_rs/src $(CONTRIB_DIR)/sources/mod_muc_rs/priv
	cp -r ejabberd/contrib/. $(CONTRIB_DIR)/sources/mod_muc_rs/
	cp ejabberd/src/*.erl $(CONTRIB_DIR)/sources/mod_muc_rs/src/
	cp $(DESTDIR)/mod_muc_rs/priv/libmuc_rs_nif.so $(CONTRIB_DIR)/sources/mod_muc_rs/priv/
	@echo "ejabberd-contrib: $(CONTRIB_DIR)/sources/mod_muc_rs"
