-- A test module for the scansion scripts: a muc-occupant-groupchat handler above stock's
-- role check (priority 50), as Jitsi Meet's visitors (55) has. It sees the messages of
-- visitors and of senders who are not in the room before the MUC refuses them, and
-- handles them itself: the sender is told what it saw, and the room refuses nothing.
local st = require "util.stanza";

module:hook("muc-occupant-groupchat", function (event)
	local occupant = event.occupant;
	if occupant ~= nil and occupant.role ~= "visitor" then return; end
	local body = event.stanza:get_child_text("body") or "";
	local who = occupant == nil and "a non-occupant" or "a visitor";
	event.origin.send(st.message({ to = event.stanza.attr.from, from = event.room.jid, type = "chat" },
		"Seen from "..who..": "..body));
	return true;
end, 55);

-- Between stock's role check (50) and its subject step (20): a subject change is seen
-- before the room takes it, and this one is refused.
module:hook("muc-occupant-groupchat", function (event)
	local subject = event.stanza:get_child_text("subject");
	if subject == "Secret" and not event.stanza:get_child("body") then
		event.origin.send(st.error_reply(event.stanza, "modify", "policy-violation", "No secrets"));
		return true;
	end
end, 30);
