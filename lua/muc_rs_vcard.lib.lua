-- Room vCards on Prosody 13, as its own MUC has them: Prosody's mod_vcard keeps a room's
-- vCard on the room's JID (where stock keeps it, so it moves with the room); the core
-- says who may set it, asks its avatar's hash once, and announces a new one
-- (src/room/vcard.rs). Glue only.
local jid_split = require "util.jid".split;

return function (host, call)
	-- mod_vcard keeps rooms' vCards in the store stock's MUC has it use ("vcard_muc", the
	-- community vcard_muc's too), which it picks only for a component named "muc".
	local configmanager = require "core.configmanager";
	if module:get_option_string("vcard_store_name") == nil then
		configmanager.set(module.host, "vcard_store_name", "vcard_muc");
	end
	local mod_vcard = module:depends("vcard");

	-- mod_vcard answers at priority 0: say first whether this sender may set the vCard.
	module:hook("iq/bare/vcard-temp:vCard", function (event)
		local stanza = event.stanza;
		if stanza.attr.type == "set" and call("find", stanza.attr.to)
			and host:room("may_set_vcard", stanza.attr.to, stanza.attr.from) then
			event.allow_vcard_modification = true;
		end
	end, 10);

	local function avatar_hash(room_jid)
		return mod_vcard.get_avatar_hash((jid_split(room_jid)));
	end

	module:hook("vcard-updated", function (event)
		local room_jid = event.stanza.attr.to;
		if call("find", room_jid) then call("avatar_updated", room_jid, avatar_hash(room_jid)); end
	end);

	return avatar_hash;
end
