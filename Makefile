# muc_rs — build, install, run and test.
#   make build    the Lua module and shim in build/plugin/
#   make install  copy them into PLUGIN_DIR (a folder listed in Prosody's plugin_paths)
#   make run      a Prosody on localhost with muc_rs on conference.localhost
#   make test     every test: Rust, busted and the scansion suite on Prosody 0.12 and 13.0

PLUGIN_DIR ?= /usr/local/lib/prosody/modules
CARGO ?= cargo
PLUGIN := build/plugin
DEPS_STAMP := .deps/installed

.PHONY: all build install deps run test test-rust test-busted test-scansion test-selftest lint clean

all: build

$(DEPS_STAMP): tools/install-deps.sh
	bash tools/install-deps.sh
	mkdir -p .deps && touch $@

deps: $(DEPS_STAMP)

build:
	bash tools/build-plugin.sh

install: build
	install -d $(PLUGIN_DIR)
	install -m 644 $(PLUGIN)/mod_muc_rs.lua $(PLUGIN_DIR)/mod_muc_rs.lua
	install -m 755 $(PLUGIN)/muc_rs.so $(PLUGIN_DIR)/muc_rs.so

run: deps build
	bash tools/run-dev.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --no-default-features --all-targets -- -D warnings

test: deps build
	bash tools/test-all.sh

test-rust:
	$(CARGO) test --no-default-features
	$(CARGO) test -p muc_harness

test-busted: deps build
	bash spec/run-busted.sh

test-scansion: deps build
	$(CARGO) run -q --release -p muc_harness --bin scansion -- --plugin-dir $(CURDIR)/$(PLUGIN) spec/scansion/*.scs

clean:
	$(CARGO) clean
	rm -rf build
