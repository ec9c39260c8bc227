-- A test module for the scansion scripts: handlers that wait (util.async) in the events a
-- room fires while it carries out a stanza, as a module that keeps messages in a database
-- or asks a service over HTTP does. After a short wait:
--  - every message the room broadcasts gets <waited xmlns='urn:example:wait'/>, which its
--    occupants receive;
--  - the module serves a joining session's history itself: one message saying so;
--  - the room's disco#info gets the feature urn:example:wait.
local st = require "util.stanza";
local pause = module:require("test_pause");

module:hook("muc-broadcast-message", function (event)
	pause();
	event.stanza:tag("waited", { xmlns = "urn:example:wait" }):up();
end, 10);

module:hook("muc-get-history", function (event)
	pause();
	local to, room_jid, served = event.to, event.room.jid, false;
	event.next_stanza = function ()
		if served then return nil; end
		served = true;
		return st.message({ type = "groupchat", from = room_jid, to = to })
			:tag("body"):text("Served after a wait"):up();
	end;
	return true;
end, 10);

module:hook("muc-disco#info", function (event)
	pause();
	event.reply:tag("feature", { var = "urn:example:wait" }):up();
end);
