-- A test module for the scansion scripts: what muc-occupant-left tells its handlers, read
-- the way Jitsi Meet's modules read it (jid.bare(event.occupant.jid) as a key), and
-- room:build_item_list and room:route_to_occupant. On each leave it sends every occupant
-- still in the room, through room:route_to_occupant, a headline
--   <left xmlns='urn:xmpp:muc-rs:test:left' user='<bare JID of occupant.jid>'
--         role='<occupant.role or none>' stanza='<event.stanza's type, or none>'
--         origin='<yes if event.origin>'/>
-- with an <x xmlns='…muc#user'/> that room:build_item_list filled for the occupant.
local st = require "util.stanza";
local jid_bare = require "util.jid".bare;

module:hook("muc-occupant-left", function (event)
	local room, occupant = event.room, event.occupant;
	local x = st.stanza("x", { xmlns = "http://jabber.org/protocol/muc#user" });
	room:build_item_list(occupant, x, false);
	local stanza = event.stanza;
	local message = st.message({ from = room.jid; type = "headline" })
		:tag("left", {
			xmlns = "urn:xmpp:muc-rs:test:left";
			user = jid_bare(occupant.jid);
			role = occupant.role or "none";
			stanza = stanza and (stanza.attr.type or "available") or "none";
			origin = event.origin and "yes" or "no";
		}):up()
		:add_child(x);
	for _, other in room:each_occupant() do
		room:route_to_occupant(other, message);
	end
end);
