-- For the test modules driven by iqs to a room (mod_test_room_data, mod_test_history):
-- hooks the iq event `name`; the handler gets the room the iq is addressed to (through
-- the mod_muc API, which brings a stored room back) and the event, and answers it; an iq
-- to no room is answered item-not-found. module:require'd, so hooks the requiring module's.
local st = require "util.stanza";
local mod_muc = module:depends "muc";

return function (name, handler)
	module:hook(name, function (event)
		local room = mod_muc.get_room_from_jid(event.stanza.attr.to);
		if room then
			handler(room, event);
		else
			event.origin.send(st.error_reply(event.stanza, "cancel", "item-not-found"));
		end
		return true;
	end);
end
