-- A test module for the scansion scripts: it replaces room_mt.get_affiliation, as Jitsi
-- Meet's lobby (a main-room moderator owns the lobby room) and breakout rooms do. The
-- users listed in `test_patched_owners` count as owners of every room: stock asks the
-- room's method for every decision (the role on joining, kicks, configuration, the
-- affiliation presences show), so the MUC must answer as if they were owners.
local jid_bare = require "util.jid".bare;

local owners = module:get_option_set("test_patched_owners", {});
local room_mt = module:depends("muc").room_mt;
local original = room_mt.get_affiliation;

function room_mt:get_affiliation(jid)
	if jid ~= nil and owners:contains(jid_bare(jid)) then return "owner"; end
	return original(self, jid);
end

function module.unload()
	room_mt.get_affiliation = original;
end
