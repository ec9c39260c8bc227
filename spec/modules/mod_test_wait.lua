-- A test module for the scansion scripts: handlers that wait, as modules that ask an HTTP
-- service do (mod_muc_http_defaults in muc-room-pre-create, mod_muc_http_auth in
-- muc-occupant-pre-join), through util.async. After a short wait:
--  - a room whose name starts with "closed" is refused at creation (not-allowed);
--  - any other new room is named "Waited for";
--  - a join with the nick "Latecomer" is refused (forbidden), others are let in.
local st = require "util.stanza";
local pause = module:require("test_pause");

module:hook("muc-room-pre-create", function (event)
	pause();
	local room = event.room;
	if room.jid:match("^closed") then
		event.origin.send(st.error_reply(event.stanza, "cancel", "not-allowed", "Closed by policy"));
		room:destroy();
		return true;
	end
	room:set_name("Waited for");
end, -2);

module:hook("muc-occupant-pre-join", function (event)
	pause();
	if select(3, require "util.jid".split(event.stanza.attr.to)) == "Latecomer" then
		event.origin.send(st.error_reply(event.stanza, "auth", "forbidden", "Not today"));
		return true;
	end
end);
