-- Shared part of the benchmark floors (see mod_bench_floor_clone.lua): a "room" that
-- only knows its occupants. Joining (presence to room@host/nick) records the occupant and
-- answers with a minimal self-presence (status 110) so the load tool knows the join is
-- done; leaving removes it. Nothing else of XEP-0045 happens here.
local st = require "util.stanza";
local jid_split = require "util.jid".split;

local rooms = {}; -- room bare jid -> { list = { real full jid, ... }, nick_of = { [real jid] = nick } }

local function self_presence(from, to, unavailable)
	local p = st.presence({ from = from; to = to; type = unavailable and "unavailable" or nil })
		:tag("x", { xmlns = "http://jabber.org/protocol/muc#user" })
		:tag("item", { affiliation = "none"; role = unavailable and "none" or "participant" }):up()
		:tag("status", { code = "110" }):up();
	return p;
end

return function (module, fan_out)
	module:hook("presence/full", function (event)
		local stanza = event.stanza;
		local to, from = stanza.attr.to, stanza.attr.from;
		local node, host, nick = jid_split(to);
		local room_jid = node.."@"..host;
		local room = rooms[room_jid];
		if not room then
			room = { list = {}, nick_of = {} };
			rooms[room_jid] = room;
		end
		if stanza.attr.type == "unavailable" then
			if room.nick_of[from] then
				room.nick_of[from] = nil;
				for i, j in ipairs(room.list) do
					if j == from then table.remove(room.list, i); break; end
				end
			end
			module:send(self_presence(to, from, true));
		elseif not stanza.attr.type then
			if not room.nick_of[from] then
				room.list[#room.list + 1] = from;
			end
			room.nick_of[from] = nick;
			module:send(self_presence(to, from, false));
		end
		return true;
	end);

	module:hook("message/bare", function (event)
		local stanza = event.stanza;
		if stanza.attr.type ~= "groupchat" then return true; end
		local room = rooms[stanza.attr.to];
		local nick = room and room.nick_of[stanza.attr.from];
		if not nick then return true; end
		fan_out(stanza, stanza.attr.to.."/"..nick, room.list);
		return true;
	end);
end
