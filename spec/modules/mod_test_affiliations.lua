-- A test module for the scansion scripts: muc-pre-set-affiliation, as Jitsi Meet's
-- jitsi_permissions uses it (to remember who was promoted):
--  - a change of tybalt@localhost's affiliation is refused with event.allowed = false and
--    event.error = { type = "auth", condition = "forbidden" };
--  - a change of benvolio@localhost's is refused with event.allowed = false alone (stock's
--    default error);
--  - any other change to member, admin or owner notes in the affiliation data (event.data,
--    changed in place when the change carries data, else given) who made it (the actor's
--    bare JID, or "room") and the change ("<previous_affiliation>-><affiliation>").
-- What is noted is shown by
--   <iq type='get' to='room@…'><noted xmlns='urn:xmpp:muc-rs:test:affiliations' jid='…'/></iq>
-- answered with <noted by='…' change='…'/> (no attributes if nothing was noted), and
--   <iq type='set' to='room@…'><promote xmlns='urn:xmpp:muc-rs:test:affiliations' jid='…'/></iq>
-- makes the user a member with the room's own authority (room:set_affiliation(true, …)),
-- answered with result or the error set_affiliation gave.
local st = require "util.stanza";
local jid_bare = require "util.jid".bare;
local mod_muc = module:depends "muc";

local xmlns_test = "urn:xmpp:muc-rs:test:affiliations";

local ranked = { member = true; admin = true; owner = true };

module:hook("muc-pre-set-affiliation", function (event)
	if event.jid == "tybalt@localhost" then
		event.allowed = false;
		event.error = { type = "auth"; condition = "forbidden" };
		return;
	end
	if event.jid == "benvolio@localhost" then
		event.allowed = false;
		return;
	end
	if not ranked[event.affiliation] then return; end
	local data = event.data or {};
	data.noted_by = event.actor and jid_bare(event.actor) or "room";
	data.noted_change = event.previous_affiliation.."->"..event.affiliation;
	event.data = data;
end);

module:hook("iq-get/bare/"..xmlns_test..":noted", function (event)
	local stanza = event.stanza;
	local room = mod_muc.get_room_from_jid(stanza.attr.to);
	local data = room and room:get_affiliation_data(stanza.tags[1].attr.jid) or {};
	event.origin.send(st.reply(stanza):tag("noted", { xmlns = xmlns_test; by = data.noted_by; change = data.noted_change }));
	return true;
end);

module:hook("iq-set/bare/"..xmlns_test..":promote", function (event)
	local stanza = event.stanza;
	local room = mod_muc.get_room_from_jid(stanza.attr.to);
	local ok, err_type, err_condition = room:set_affiliation(true, stanza.tags[1].attr.jid, "member");
	event.origin.send(ok and st.reply(stanza) or st.error_reply(stanza, err_type, err_condition));
	return true;
end);
