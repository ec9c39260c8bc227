-- A test module for the scansion scripts: mediated invitations handled by a module, as
-- Jitsi Meet's lobby does: a stanza hook on the rooms' bare JIDs (priority 1, before
-- the room) takes invitations that carry <through-module xmlns='urn:xmpp:muc-rs:test:invites'/>,
-- fires muc-pre-invite itself (a handler that stops it has answered the inviter), builds
-- the invitation (from the room, to the invitee, <invite from=inviter><reason/>), fires
-- muc-invite on it, and, unless a handler sent it, adds <sent-by-module/> and routes it.
-- Invitations without the marker are left to the room.
-- At priority 10 it also notes, in every invitation (the room's own too), who the
-- invitation names as inviter by then: <inviter xmlns='urn:xmpp:muc-rs:test:invites' jid=…/>.
local st = require "util.stanza";
local jid_prep = require "util.jid".prep;
local mod_muc = module:depends "muc";

local xmlns_muc_user = "http://jabber.org/protocol/muc#user";
local xmlns_test = "urn:xmpp:muc-rs:test:invites";

module:hook("message/bare", function (event)
	local origin, stanza = event.origin, event.stanza;
	if not stanza:get_child("through-module", xmlns_test) then return; end
	local x = stanza:get_child("x", xmlns_muc_user);
	local invite_in = x and x:get_child("invite");
	local invitee = invite_in and jid_prep(invite_in.attr.to);
	local room = invitee and mod_muc.get_room_from_jid(stanza.attr.to);
	if not room then return; end
	if module:fire_event("muc-pre-invite", { room = room; origin = origin; stanza = stanza }) then
		return true;
	end
	local invite = st.message({ from = room.jid; to = invitee; id = stanza.attr.id })
		:tag("x", { xmlns = xmlns_muc_user })
			:tag("invite", { from = stanza.attr.from })
				:tag("reason"):text(invite_in:get_child_text("reason")):up()
			:up()
		:up();
	if not module:fire_event("muc-invite", { room = room; stanza = invite; origin = origin; incoming = stanza }) then
		invite:add_direct_child(st.stanza("sent-by-module", { xmlns = xmlns_test }));
		room:route_stanza(invite);
	end
	return true;
end, 1);

module:hook("muc-invite", function (event)
	local invite = event.stanza:get_child("x", xmlns_muc_user):get_child("invite");
	event.stanza:add_direct_child(st.stanza("inviter", { xmlns = xmlns_test; jid = invite.attr.from }));
end, 10);
