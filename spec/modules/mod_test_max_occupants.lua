-- A test module for the scansion scripts, working as Jitsi Meet's mod_muc_max_occupants
-- does: a room holds at most `muc_max_occupants` occupants, but users listed in
-- `muc_access_whitelist` (Jitsi's focus, recorders) join whatever its size.
local jid_bare = require "util.jid".bare;
local st = require "util.stanza";

local max_occupants = module:get_option_number("muc_max_occupants", -1);
local whitelist = module:get_option_set("muc_access_whitelist", {});

module:hook("muc-occupant-pre-join", function (event)
	local room, stanza = event.room, event.stanza;
	if max_occupants < 0 or whitelist:contains(jid_bare(stanza.attr.from)) then return; end
	local count = 0;
	for _ in room:each_occupant() do count = count + 1; end
	if count >= max_occupants then
		event.origin.send(st.error_reply(stanza, "cancel", "service-unavailable",
			"The room has reached its maximum number of occupants."));
		return true;
	end
end, 10);
