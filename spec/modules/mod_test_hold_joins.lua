-- A test module for the scansion scripts: joins held in muc-occupant-pre-join and handed
-- back later with room:handle_normal_presence, as Jitsi Meet's meeting-id lock (joins wait
-- for the focus) and its join rate limit (joins replayed by a timer) do.
--  - A room is locked once made (muc-room-created): muc-occupant-pre-join (priority 8)
--    holds every join to a locked room but the nick focus's, queued on the room object,
--    and answers nothing; when focus asks to join, the room is unlocked and the held joins
--    are handed back, in order, from focus's own muc-occupant-pre-join (before focus is
--    in), as the meeting-id lock does.
--  - A join as Later is held the same way and handed back by a timer 0.2 s on.
--  - A held stanza is marked with a Lua field (held_once) that lets its replay through:
--    a replay without the field would be held again, and again.
local jid_split = require "util.jid".split;
local function jid_resource(j) return select(3, jid_split(j)); end

module:hook("muc-room-created", function (event)
	event.room.test_locked = true;
end);

module:hook("muc-occupant-pre-join", function (event)
	local room, stanza = event.room, event.stanza;
	if stanza.held_once then return; end
	local nick = jid_resource(event.occupant.nick);
	if nick == "Later" then
		stanza.held_once = true;
		local origin = event.origin;
		module:add_timer(0.2, function ()
			room:handle_normal_presence(origin, stanza);
		end);
		return true;
	end
	if room.test_locked and nick == "focus" then
		room.test_locked = nil;
		local held = room.test_held or {};
		room.test_held = nil;
		for _, join in ipairs(held) do
			room:handle_normal_presence(join.origin, join.stanza);
		end
		return;
	end
	if room.test_locked then
		stanza.held_once = true;
		room.test_held = room.test_held or {};
		table.insert(room.test_held, { origin = event.origin, stanza = stanza });
		return true;
	end
end, 8);

