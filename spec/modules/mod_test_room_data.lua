-- A test module for the scansion scripts: keeps notes in a nested table of room._data,
-- written in place as Jitsi Meet's breakout rooms module writes
-- `room._data.breakout_rooms[jid] = subject`:
--   <iq type='set' to='room@conference.localhost'>
--     <note xmlns='urn:xmpp:muc-rs:test:data' key='…' value='…'/>
--   </iq>
-- sets room._data.notes.by_key[key] = value (two levels down), adds one to
-- room._data.notes.count (one level down) and makes the room persistent; and
--   <iq type='get' to='room@conference.localhost'><notes xmlns='urn:xmpp:muc-rs:test:data'/></iq>
-- answers <notes count='…' same='true|false'><note key='…' value='…'/>…</notes>, the notes
-- sorted by key; `same` says whether reading room._data.notes (and its by_key) twice gives
-- the same table.
local st = require "util.stanza";
local hook_room_iq = module:require("test_room_iq");

local xmlns_test = "urn:xmpp:muc-rs:test:data";

hook_room_iq("iq-set/bare/"..xmlns_test..":note", function (room, event)
	local note = event.stanza.tags[1];
	if room._data.notes == nil then
		room._data.notes = { by_key = {}, count = 0 };
	end
	room._data.notes.by_key[note.attr.key] = note.attr.value;
	room._data.notes.count = room._data.notes.count + 1;
	room:set_persistent(true);
	event.origin.send(st.reply(event.stanza));
end);

hook_room_iq("iq-get/bare/"..xmlns_test..":notes", function (room, event)
	local notes = room._data.notes or { by_key = {}, count = 0 };
	local same = room._data.notes == room._data.notes
		and (notes.by_key == nil or room._data.notes.by_key == room._data.notes.by_key);
	local reply = st.reply(event.stanza)
		:tag("notes", { xmlns = xmlns_test, count = tostring(notes.count), same = tostring(same) });
	local keys = {};
	for key in pairs(notes.by_key or {}) do keys[#keys + 1] = key; end
	table.sort(keys);
	for _, key in ipairs(keys) do reply:tag("note", { key = key, value = notes.by_key[key] }):up(); end
	event.origin.send(reply);
end);
