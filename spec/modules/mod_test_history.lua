-- A test module for the scansion scripts: edits and replays a room's history through
-- room._history and muc-get-history, as Jitsi Meet's message moderation and visitors
-- modules do.
--   <iq type='set' to='room@conference.localhost'>
--     <rewrite xmlns='urn:xmpp:muc-rs:test:history' body='…' new='…'/>
--   </iq>
-- replaces the stanza of each history entry whose body is `body` with a copy whose body
-- is `new` (entry.stanza = copy), or, without `new`, removes the entry
-- (table.remove(room._history, i)); answers <rewritten count='…'/>, the entries changed.
--   <iq type='set' to='room@conference.localhost'>
--     <replay xmlns='urn:xmpp:muc-rs:test:history' maxstanzas='…'/>
--   </iq>
-- fires muc-get-history itself for the asker (to = its full JID, maxstanzas if given)
-- and sends what event.next_stanza gives, then the result.
local st = require "util.stanza";
local hook_room_iq = module:require("test_room_iq");

local xmlns_test = "urn:xmpp:muc-rs:test:history";

hook_room_iq("iq-set/bare/"..xmlns_test..":rewrite", function (room, event)
	local rewrite = event.stanza.tags[1];
	local history, count = room._history or {}, 0;
	for i = #history, 1, -1 do
		local entry = history[i];
		if entry.stanza:get_child_text("body") == rewrite.attr.body then
			count = count + 1;
			if rewrite.attr.new then
				local copy = st.clone(entry.stanza);
				copy:remove_children("body");
				copy:text_tag("body", rewrite.attr.new);
				entry.stanza = copy;
			else
				table.remove(history, i);
			end
		end
	end
	event.origin.send(st.reply(event.stanza):tag("rewritten", { xmlns = xmlns_test, count = tostring(count) }));
end);

hook_room_iq("iq-set/bare/"..xmlns_test..":replay", function (room, event)
	local replay = event.stanza.tags[1];
	local history_event = {
		room = room; to = event.stanza.attr.from;
		maxstanzas = tonumber(replay.attr.maxstanzas);
		next_stanza = function () end;
	};
	module:fire_event("muc-get-history", history_event);
	for msg in history_event.next_stanza, history_event do
		room:route_stanza(msg);
	end
	event.origin.send(st.reply(event.stanza));
end);
