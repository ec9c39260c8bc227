-- A test module for the scansion scripts: puts a hat on a user, through the mod_muc API,
-- as the community hats modules do (mod_muc_hats_api): the hat goes into the user's
-- affiliation data and set_affiliation stores it.
--   <iq type='set' to='room@conference.localhost'>
--     <hat xmlns='urn:xmpp:muc-rs:test:hats' jid='juliet@localhost' uri='…' title='…'/>
--   </iq>
-- Only the room's owners may ask. Answers result, or the error set_affiliation gave.
local st = require "util.stanza";
local mod_muc = module:depends "muc";

module:hook("iq-set/bare/urn:xmpp:muc-rs:test:hats:hat", function (event)
	local origin, stanza = event.origin, event.stanza;
	local room = mod_muc.get_room_from_jid(stanza.attr.to);
	if not room then
		origin.send(st.error_reply(stanza, "cancel", "item-not-found"));
		return true;
	end
	if room:get_affiliation(stanza.attr.from) ~= "owner" then
		origin.send(st.error_reply(stanza, "auth", "forbidden"));
		return true;
	end
	local hat = stanza.tags[1];
	local user = hat.attr.jid;
	local data = room:get_affiliation_data(user) or {};
	data.hats = data.hats or {};
	data.hats[hat.attr.uri] = { active = hat.attr.remove == nil, title = hat.attr.title };
	local ok, err_type, err_condition = room:set_affiliation(true, user, room:get_affiliation(user) or "member", nil, data);
	if not ok then
		origin.send(st.error_reply(stanza, err_type, err_condition));
	else
		origin.send(st.reply(stanza));
	end
	return true;
end);
