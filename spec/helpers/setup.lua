-- busted --helper: puts one Prosody library tree and the built muc_rs.so on the Lua paths,
-- once, before any spec file runs. spec/run-busted.sh sets:
--   PROSODY_LIB     Prosody's library tree (/usr/lib/prosody for 0.12, .deps/… for 13)
--   MUC_RS_PLUGIN   the assembled plugin folder (mod_muc_rs.lua + muc_rs.so)
local lib = os.getenv("PROSODY_LIB") or "/usr/lib/prosody";
local plugin = os.getenv("MUC_RS_PLUGIN") or "build/plugin";

package.path = lib.."/?.lua;"..package.path;
package.cpath = plugin.."/?.so;"..lib.."/?.so;"..package.cpath;

-- Prosody 13 names its libraries prosody.util.*; its loader makes util.* work too.
local loader = io.open(lib.."/loader.lua");
if loader then
	loader:close();
	require "loader";
end
