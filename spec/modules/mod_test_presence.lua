-- A test module for the scansion scripts: changes occupant presences through the two
-- mod_muc presence events, as community modules do.
--
-- muc-build-occupant-presence (fired on every presence the room builds for an occupant:
-- the broadcast, each self-presence, each entry of a newcomer's occupant list, probe
-- replies) adds
--   <badge xmlns='urn:xmpp:muc-rs:test:presence' of='<the occupant's nick>'/>
-- to event.stanza. If the stanza already has a badge (the event fired twice on the same
-- stanza, or on a copy of one it already changed), the badge gets again='true' instead,
-- which the scripts would notice.
--
-- muc-broadcast-presence (fired once per broadcast of an occupant's presence to the
-- room, after muc-build-occupant-presence on the same event):
--  - first (priority 10), records what the event carried by adding
--      <broadcast xmlns='urn:xmpp:muc-rs:test:presence' of='<nick>' nick='<event.nick>'
--                 actor='<bare JID of event.actor>'/>
--    to event.x, the muc#user <x/> template (nick and actor only when set);
--  - then (priority 0), as mod_muc_anonymize_moderation_actions does, removes the actor
--    (event.actor = nil, so no <actor/> is shown) and prefixes a reason with
--    "Moderated: ".
local st = require "util.stanza";
local jid_resource = require "util.jid".resource;
local jid_bare = require "util.jid".bare;

local xmlns_test = "urn:xmpp:muc-rs:test:presence";

module:hook("muc-build-occupant-presence", function (event)
	local occupant = event.occupant;
	-- Probe replies for an absent registered nick have no occupant, only the nick
	local nick = occupant and jid_resource(occupant.nick) or event.nick;
	local badge = event.stanza:get_child("badge", xmlns_test);
	if badge then
		badge.attr.again = "true";
	else
		event.stanza:add_direct_child(st.stanza("badge", { xmlns = xmlns_test, of = nick }));
	end
end);

module:hook("muc-broadcast-presence", function (event)
	event.x:add_direct_child(st.stanza("broadcast", {
		xmlns = xmlns_test;
		of = jid_resource(event.occupant.nick);
		nick = event.nick;
		actor = event.actor and jid_bare(event.actor) or nil;
	}));
end, 10);

module:hook("muc-broadcast-presence", function (event)
	event.actor = nil;
	if event.reason then
		event.reason = "Moderated: " .. event.reason;
	end
end);
