-- Shared part of the benchmark floors (see mod_bench_floor_clone.lua): a "room" that only
-- knows its occupants and sends what a MUC sends for the benchmark's traffic, with no rule
-- checked and nothing stored but one presence per occupant:
--   join: every occupant's presence to the newcomer, the newcomer's to everyone else, then
--         its self-presence (status 110);
--   leave: an unavailable presence to everyone, status 110 for the one leaving;
--   groupchat message: to every occupant.
-- Each stanza goes out through `fan_out(stanza, from, recipients)`, which is what differs
-- between the floors (a copy per recipient, or `to` changed in place).
local st = require "util.stanza";
local jid_split = require "util.jid".split;

local MUC_USER = "http://jabber.org/protocol/muc#user";

-- room bare jid -> { list = { real full jid, ... }, nick_of = { [real jid] = nick },
--                    presence_of = { [real jid] = the occupant's presence as others see it } }
local rooms = {};

local function occupant_presence(unavailable, self)
	local p = st.presence({ type = unavailable and "unavailable" or nil })
		:tag("x", { xmlns = MUC_USER })
		:tag("item", { affiliation = "none"; role = unavailable and "none" or "participant" }):up();
	if self then p:tag("status", { code = "110" }):up(); end
	return p;
end

local function remove(list, value)
	for i, v in ipairs(list) do
		if v == value then table.remove(list, i); return; end
	end
end

return function (module, fan_out)
	module:hook("presence/full", function (event)
		local stanza = event.stanza;
		local to, from = stanza.attr.to, stanza.attr.from;
		local node, host, nick = jid_split(to);
		local room_jid = node.."@"..host;
		local room = rooms[room_jid];
		if not room then
			room = { list = {}, nick_of = {}, presence_of = {} };
			rooms[room_jid] = room;
		end
		if stanza.attr.type == "unavailable" then
			if room.nick_of[from] then
				room.nick_of[from], room.presence_of[from] = nil, nil;
				remove(room.list, from);
				fan_out(occupant_presence(true), to, room.list);
			end
			fan_out(occupant_presence(true, true), to, { from });
		elseif not stanza.attr.type then
			if not room.nick_of[from] then
				for _, jid in ipairs(room.list) do
					fan_out(room.presence_of[jid], room_jid.."/"..room.nick_of[jid], { from });
				end
				fan_out(occupant_presence(false), to, room.list);
				room.list[#room.list + 1] = from;
				room.presence_of[from] = occupant_presence(false);
			end
			room.nick_of[from] = nick;
			fan_out(occupant_presence(false, true), to, { from });
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
