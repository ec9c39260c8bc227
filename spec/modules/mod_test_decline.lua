-- A test module for the scansion scripts: hooks the mod_muc events of mediated declines
-- (XEP-0045 §7.8.2, a <decline/> sent through the room):
--  - muc-pre-decline refuses declines addressed to tybalt@localhost or to the in-room JID
--    room@conference.localhost/Romeo: it answers the decliner, through event.origin, with
--    a not-allowed error ("Declines to … are not relayed") and stops the event;
--  - muc-decline adds to the decline the room is about to relay
--      <relayed xmlns='urn:xmpp:muc-rs:test:decline' to='<event.stanza.attr.to>'
--               from='<event.incoming.attr.from>'/>
--    (the declinee as the room addressed the relayed stanza, and the decliner's JID
--    from the stanza the room received).
local st = require "util.stanza";

local xmlns_test = "urn:xmpp:muc-rs:test:decline";

local refused = {
	["tybalt@localhost"] = true;
	["room@conference.localhost/Romeo"] = true;
};

module:hook("muc-pre-decline", function (event)
	local stanza = event.stanza;
	local decline = stanza:get_child("x", "http://jabber.org/protocol/muc#user"):get_child("decline");
	local to = decline.attr.to;
	if refused[to] then
		event.origin.send(st.error_reply(stanza, "cancel", "not-allowed", "Declines to "..to.." are not relayed"));
		return true;
	end
end);

module:hook("muc-decline", function (event)
	event.stanza:add_direct_child(st.stanza("relayed", {
		xmlns = xmlns_test;
		to = event.stanza.attr.to;
		from = event.incoming.attr.from;
	}));
end);
