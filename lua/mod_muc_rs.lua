-- mod_muc_rs: multi-user chat (XEP-0045) with the room logic in Rust (muc_rs.so).
--
-- This file is glue only: it reads the options, hands every stanza addressed to this
-- component to the Rust host, and routes the stanzas the host produces. No MUC rule lives
-- here. Use it in place of stock mod_muc:
--     Component "conference.example.com" "muc_rs"

if module:get_host_type() ~= "component" then
	error("MUC should be loaded as a component, please see https://prosody.im/doc/components", 0);
end

-- muc_rs.so sits beside this file; Prosody keeps no relative entries in package.cpath.
local so_path = module:get_directory().."/?.so;";
if not package.cpath:find(so_path, 1, true) then
	package.cpath = so_path..package.cpath;
end
local muc_rs = require "muc_rs";
local st = require "util.stanza";

-- Options: every option the core knows, read with the getter matching its kind. Prosody
-- 0.12 has no get_option_integer/_period; get_option_number reads both there.
local getters = {
	boolean = module.get_option_boolean;
	integer = module.get_option_integer or module.get_option_number;
	period = module.get_option_period or module.get_option_number;
	string = module.get_option_string;
	any = module.get_option;
};
-- A source build says "hg:…" or "unknown": tell the versions apart by their API then.
local version = prosody.version;
if not tostring(version):match("^%d+%.%d+") then
	version = module.could and "13.0" or "0.12";
end
local opts = { server_version = version };
for _, option in ipairs(muc_rs.options()) do
	opts[option.name] = (getters[option.kind] or module.get_option)(module, option.name);
end

-- Who is a service admin: roles on Prosody 13, the admins list on 0.12.
local is_admin;
if module.could then
	module:default_permission("prosody:admin", ":automatic-ownership");
	function is_admin(jid)
		return module:could(":automatic-ownership", jid);
	end
else
	local um_is_admin = require "core.usermanager".is_admin;
	function is_admin(jid)
		return um_is_admin(jid, module.host);
	end
end

-- Rooms live in the stores stock mod_muc uses, in its record format, so an admin can
-- switch between the two modules and keep every room (muc_rs_storage.lib.lua).
local storage = module:require("muc_rs_storage");

-- Deliveries carry their XML rendered once; Prosody's serializing uses it (see the lib).
local render = module:require("muc_rs_render");

-- The modules' events, and on 13 room avatars, wired once the host exists.
local events, avatar_hash;
local function room_avatar_hash(jid) return avatar_hash and avatar_hash(jid); end

local host = muc_rs.new_host(module.host, opts, {
	send = function (stanza) module:send(stanza); end;
	is_admin = is_admin;
	log = function (level, message) module:log(level, "%s", message); end;
	stanza_mt = st.stanza_mt;
	top_tag = render.top_tag;
	carries_out = true; -- outcomes with events: carried out by the shim's loop (events lib)
	listens = function (...) return events.listens(...); end;
});

-- The mod_muc API: `module:depends("muc")` and `prosody.hosts[host].modules.muc` find
-- muc_rs's, so no module loads stock mod_muc beside it (muc_rs_api.lib.lua).
local api, rooms = module:require("muc_rs_api")(host, function (...) return events.call(...); end,
	function (event) return events.handle(event); end);
events = module:require("muc_rs_events")(host, rooms, storage, room_avatar_hash);
if host:room_vcards() then avatar_hash = module:require("muc_rs_vcard")(host, events.call); end
local handle = events.handle;
api.install();

-- Service discovery of the service itself is answered by mod_disco (at priority 0, before
-- our iq/host hook), from the identity and the core's features declared here.
module:depends("disco");
module:add_identity("conference", "text", host:service_name());
for _, feature in ipairs(host:service_features()) do module:add_feature(feature); end

-- Admins' ad-hoc commands (adds the commands feature, as stock's do).
module:depends("adhoc");
module:require("muc_rs_adhoc")(events.call);

-- Everything addressed to the service, a room or an occupant. mod_iq (inherited by
-- components) runs first on iq/bare and iq/host and fires the per-namespace events; what
-- nobody else answered falls through to us, as with stock mod_muc.
for _, event_name in ipairs {
	"presence/bare", "presence/full", "presence/host";
	"message/bare", "message/full", "message/host";
	"iq/bare", "iq/full", "iq/host";
} do
	module:hook(event_name, handle, -2);
end

-- The room list (disco#items to the service) comes from the core, not from mod_disco.
module:hook("iq-get/host/http://jabber.org/protocol/disco#items:query", handle, 1);

-- The core keeps who is an admin while they stay in a room: asked again after a change.
for _, event_name in ipairs { "config-reloaded", "user-role-changed", "user-role-added",
	"user-role-removed", "user-roles-changed" } do
	module:hook_global(event_name, function () host:forget_service_admins(); end);
end

-- Live rooms, occupants included, are stored when the server stops or the module unloads.
module:hook_global("server-stopping", function () events.call("save_all"); end, -300);
function module.unload()
	events.call("save_all");
	render.uninstall();
	events.uninstall();
	api.uninstall(module.reloading);
end
function module.save() return { muc_rs_reloaded = true }; end -- "muc" reloads with it
function module.restore(state) api.restored(state.muc_rs_reloaded); end
