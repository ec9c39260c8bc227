#!/usr/bin/env bash
# Sets up what muc_rs builds and tests need on a fresh Debian 12 machine (run as root).
# Idempotent: a second run only checks and exits.
#   - Prosody 0.12 (system /usr/bin/prosody), Lua 5.4, busted, pkg-config, lua-dbi-sqlite3,
#     sqlite3 (the persistence tests read the store with it)
#   - prosody-modules (community modules) for 0.12: Debian puts them beside Prosody's own, in
#     /usr/lib/prosody/modules/mod_*/
#   - PostgreSQL and lua-dbi-postgresql, for the persistence tests (which start their own
#     server on loopback; the packaged cluster is left stopped)
#   - Prosody 13 from bookworm-backports, unpacked into <repo>/.deps/prosody-13 with its own
#     launchers bin/prosody and bin/prosodyctl (the packaged ones hard-code /usr/lib/prosody).
#   - prosody-modules from bookworm-backports (the build for Prosody 13), unpacked into
#     <repo>/.deps/prosody-13-modules: the modules are in its usr/lib/prosody/modules/mod_*/
#   - for the web client and its browser test: Chromium (Debian's, /usr/bin/chromium), and
#     Node.js (Debian's nodejs, 18 on bookworm) where `node` is missing; the two npm
#     packages (web/package-lock.json) are fetched by tools/web-setup.sh, without npm
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/.deps/prosody-13"
MODULES_DEST="$ROOT/.deps/prosody-13-modules"
PACKAGES=(prosody prosody-modules lua5.4 liblua5.4-dev lua-busted pkg-config lua-dbi-sqlite3 sqlite3 postgresql lua-dbi-postgresql chromium)
# Node.js: a node already on PATH (any install, 18 or later) is used as it is; otherwise
# Debian's.
if ! command -v node >/dev/null 2>&1; then
	PACKAGES+=(nodejs)
fi
BACKPORTS_LINE="deb http://deb.debian.org/debian bookworm-backports main"
export DEBIAN_FRONTEND=noninteractive

log() { echo "install-deps: $*"; }

updated=0
apt_update() {
	if [ "$updated" = 0 ]; then
		apt-get update -qq
		updated=1
	fi
}

# Downloads a package from bookworm-backports into a temp folder; prints the .deb's path.
tmp=""
download_backport() {
	if [ -z "$tmp" ]; then
		tmp="$(mktemp -d)"
		chmod 755 "$tmp" # apt downloads as _apt
		trap 'rm -rf "$tmp"' EXIT
	fi
	(cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$1/bookworm-backports" >&2)
	ls "$tmp/$1"_*.deb
}

is_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# apt-get install, keeping maintainer scripts from starting services (no systemd here;
# init.d would start one).
install_packages() {
	apt_update
	local policy=/usr/sbin/policy-rc.d own_policy=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod +x "$policy"
		own_policy=1
	fi
	apt-get install -y -qq "$@" || { [ "$own_policy" = 1 ] && rm -f "$policy"; exit 1; }
	[ "$own_policy" = 1 ] && rm -f "$policy"
	return 0
}

# Stop a Prosody daemon that Debian's package may have started: tests start their own.
stop_system_prosody() {
	local pidfile pid
	for pidfile in /run/prosody/prosody.pid /var/run/prosody/prosody.pid; do
		[ -f "$pidfile" ] || continue
		pid="$(cat "$pidfile" 2>/dev/null || true)"
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			log "stopping the system Prosody daemon (pid $pid)"
			kill -TERM "$pid" 2>/dev/null || true
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -KILL "$pid" 2>/dev/null || true
		fi
		rm -f "$pidfile"
	done
}

# 1. Debian packages (Prosody 0.12 and friends).
missing=()
for p in "${PACKAGES[@]}"; do
	is_installed "$p" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	log "installing ${missing[*]}"
	install_packages "${missing[@]}"
else
	log "Debian packages present: ${PACKAGES[*]}"
fi
stop_system_prosody

node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 18 ]; then
	log "Node.js 18 or later is needed (found: $(node --version 2>/dev/null || echo none))"; exit 1
fi

# 2. Prosody 13 from bookworm-backports, unpacked beside the repo.
if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
	log "adding bookworm-backports to apt sources"
	echo "$BACKPORTS_LINE" >/etc/apt/sources.list.d/bookworm-backports.list
	updated=0
fi

version_file="$DEST/usr/lib/prosody/prosody.version"
if [ -x "$DEST/bin/prosody" ] && [ -x "$DEST/bin/prosodyctl" ] && grep -qs '^13\.' "$version_file"; then
	log "Prosody $(cat "$version_file") present in $DEST"
else
	apt_update
	deb="$(download_backport prosody)"
	rm -rf "$DEST"
	mkdir -p "$DEST/bin"
	dpkg -x "$deb" "$DEST"
	mkdir -p "$DEST/etc/prosody/conf.d" # the packaged prosody.cfg.lua includes it
	# Launchers: the packaged scripts with their paths pointed into the unpacked tree.
	for tool in prosody prosodyctl; do
		sed -e "s|^CFG_SOURCEDIR=.*|CFG_SOURCEDIR='$DEST/usr/lib/prosody';|" \
			-e "s|^CFG_PLUGINDIR=.*|CFG_PLUGINDIR='$DEST/usr/lib/prosody/modules/';|" \
			-e "s|^CFG_CONFIGDIR=.*|CFG_CONFIGDIR='$DEST/etc/prosody';|" \
			"$DEST/usr/bin/$tool" >"$DEST/bin/$tool"
		chmod +x "$DEST/bin/$tool"
	done
	grep -qs '^13\.' "$version_file" || { log "unexpected Prosody version in $deb"; exit 1; }
	log "Prosody $(cat "$version_file") unpacked into $DEST"
fi

# 3. Community modules for Prosody 13 (prosody-modules from bookworm-backports), unpacked
# beside it; the version unpacked is kept in prosody-modules.version.
modules_version_file="$MODULES_DEST/prosody-modules.version"
if [ -d "$MODULES_DEST/usr/lib/prosody/modules" ] && grep -qs 'bpo' "$modules_version_file"; then
	log "prosody-modules $(cat "$modules_version_file") present in $MODULES_DEST"
else
	apt_update
	deb="$(download_backport prosody-modules)"
	rm -rf "$MODULES_DEST"
	mkdir -p "$MODULES_DEST"
	dpkg -x "$deb" "$MODULES_DEST"
	dpkg-deb -f "$deb" Version >"$modules_version_file"
	grep -qs 'bpo' "$modules_version_file" || { log "unexpected prosody-modules version in $deb"; exit 1; }
	log "prosody-modules $(cat "$modules_version_file") unpacked into $MODULES_DEST"
fi

# 4. ejabberd 24.12 and Erlang/OTP 25's compiler and headers, from bookworm-backports, for
# muc_rs's ejabberd module (make install-ejabberd) and its tests; the service is not started.
# erlang-p1-pgsql, erlang-p1-sqlite3: ejabberd's PostgreSQL and SQLite drivers (rooms in
# mod_muc's SQL tables).
if is_installed ejabberd && is_installed erlang-dev && is_installed erlang-p1-pgsql \
	&& is_installed erlang-p1-sqlite3 \
	&& dpkg-query -W -f '${Version}' ejabberd | grep -q '^24\.12'; then
	log "ejabberd $(dpkg-query -W -f '${Version}' ejabberd) present"
else
	log "installing ejabberd, erlang-dev and its SQL drivers from bookworm-backports"
	install_packages -t bookworm-backports ejabberd erlang-dev erlang-p1-pgsql erlang-p1-sqlite3
fi

log "done"
