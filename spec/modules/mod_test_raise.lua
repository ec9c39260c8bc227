-- A test module for the scansion scripts: handlers that raise, as a buggy module's do.
--  - muc-occupant-pre-join raises for the nick Boom;
--  - muc-occupant-pre-leave raises when the occupant's nick is Stuck.
-- Stock's event system does not catch a handler's error: what the client gets is what
-- stock's MUC sends once the error has left the room's presence handling.
module:hook("muc-occupant-pre-join", function (event)
	if select(3, require "util.jid".split(event.occupant.nick)) == "Boom" then
		error("test_raise: refusing Boom by raising");
	end
end);

module:hook("muc-occupant-pre-leave", function (event)
	if select(3, require "util.jid".split(event.occupant.nick)) == "Stuck" then
		error("test_raise: raising on Stuck's leave");
	end
end);
