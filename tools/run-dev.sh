#!/usr/bin/env bash
# Starts a Prosody (the system one, 0.12) on localhost with muc_rs serving
# conference.localhost and two accounts, in the foreground. Ctrl-C stops it.
# The same Prosody serves the web client on http://localhost:$HTTP_PORT/ (Prosody's mod_http,
# mod_websocket and mod_http_files, loopback only, no TLS): Converse.js from build/web, which
# tools/web-setup.sh assembles (make run runs it first).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD/build/run"
port="${C2S_PORT:-5222}"
http_port="${HTTP_PORT:-5280}"
prosody="${PROSODY:-/usr/bin/prosody}"
prosodyctl="${PROSODYCTL:-/usr/bin/prosodyctl}"
mkdir -p "$root/data" "$root/certs"
cat > "$root/prosody.cfg.lua" <<CFG
run_as_root = true
daemonize = false
pidfile = "$root/prosody.pid"
data_path = "$root/data"
certificates = "$root/certs"
plugin_paths = { "$PWD/build/plugin" }
interfaces = { "127.0.0.1", "::1" }
c2s_ports = { $port }
s2s_ports = {}
http_ports = { $http_port }
http_interfaces = { "127.0.0.1", "::1" }
https_ports = {}
component_ports = {}
log = { info = "*console" }
authentication = "internal_hashed"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
modules_enabled = { "roster", "saslauth", "disco", "ping", "carbons", "http", "websocket", "http_files" }
-- The web client: build/web at http://localhost:$http_port/, the XMPP websocket at /xmpp-websocket.
http_files_dir = "$PWD/build/web"
http_paths = { files = "/" }
http_default_host = "localhost"
-- Converse.js connects over plain ws:// (no TLS on loopback), as plain c2s is allowed here
-- (c2s_require_encryption = false): no consider_websocket_secure needed; the page comes from
-- the websocket's own origin, so no cross-origin setting either.
admins = { "admin@localhost" }

VirtualHost "localhost"

Component "conference.localhost" "muc_rs"
	-- As Prosody's example config: rooms keep an archive (XEP-0313) for clients to catch up.
	modules_enabled = { "muc_mam" }
CFG
for user in user user2; do
  "$prosodyctl" --config "$root/prosody.cfg.lua" register "$user" localhost password >/dev/null 2>&1 || true
done
[ -f build/web/index.html ] || bash tools/web-setup.sh
cat <<MSG
Prosody with muc_rs on 127.0.0.1:$port (no TLS; allow plain authentication in your client).
  web client: http://localhost:$http_port/  (Converse.js, served by this Prosody over plain
              HTTP on loopback, no TLS; log in as user or user2, password "password";
              it joins lobby@conference.localhost, ?room=NAME joins another)
  accounts: user@localhost / password, user2@localhost / password
  rooms:    anything@conference.localhost (join to create), archived by muc_mam
MSG
exec "$prosody" --config "$root/prosody.cfg.lua" -F
