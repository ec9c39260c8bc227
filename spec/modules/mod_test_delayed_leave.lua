-- A test module for the scansion scripts: leaves held back and announced later, as Jitsi
-- Meet's leave rate limit does with room:save_occupant and room:publicise_occupant_status.
-- In muc-occupant-pre-leave, the leave of an occupant's last session is held: the
-- occupant, its role taken away, is saved, which drops it from the room at once without
-- anyone being told (save_occupant answers nil: no copy of an occupant that left); 1.5 s
-- later its unavailable presence is announced with the role it had, and the module fires
-- muc-occupant-left itself (the room then goes if it is empty and temporary).
local st = require "util.stanza";

module:hook("muc-occupant-pre-leave", function (event)
	local room, occupant = event.room, event.occupant;
	if not event.is_last_session then return; end
	local origin, stanza = event.origin, event.stanza;
	local orig_role = occupant.role;
	occupant.role = nil;
	assert(room:save_occupant(occupant) == nil, "save_occupant kept an occupant without a role");
	assert(room:get_occupant_by_nick(occupant.nick) == nil, "the saved occupant is still in the room");
	module:add_timer(1.5, function ()
		room:publicise_occupant_status(occupant, st.stanza("x", { xmlns = "http://jabber.org/protocol/muc#user" }),
			nil, nil, nil, orig_role);
		module:fire_event("muc-occupant-left", {
			room = room; nick = occupant.nick; occupant = occupant; origin = origin; stanza = stanza;
		});
	end);
	return true;
end);
