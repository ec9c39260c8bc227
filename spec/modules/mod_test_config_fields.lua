-- A test module for the scansion scripts: the configuration events as Jitsi Meet's
-- meeting-id and lobby modules use them, on the room's own fields.
--  - muc-config-submitted/muc#roomconfig_moderatedroom is stopped at priority 99 (the
--    meeting-id module keeps owners from changing it): the room keeps its setting.
--  - muc-config-submitted/muc#roomconfig_roomname (priority 10) changes the value before
--    the room takes it: the name gets " (checked)" after it.
--  - muc-config-submitted reads the room's own members-only field in event.fields (as the
--    lobby module does): when it is on, the room is given a lobby, whose JID its
--    disco#info form shows (muc#roominfo_lobbyroom), with status code 104.
module:hook("muc-config-submitted/muc#roomconfig_moderatedroom", function ()
	return true;
end, 99);

module:hook("muc-config-submitted/muc#roomconfig_roomname", function (event)
	if event.value then event.value = event.value.." (checked)"; end
end, 10);

module:hook("muc-config-submitted", function (event)
	if event.fields["muc#roomconfig_membersonly"] and not event.room._data.test_lobby then
		event.room._data.test_lobby = (event.room.jid:gsub("@", "-lobby@", 1));
		event.status_codes["104"] = true;
	end
end);

module:hook("muc-disco#info", function (event)
	table.insert(event.form, { name = "muc#roominfo_lobbyroom"; type = "text-single"; label = "Lobby room" });
	event.formdata["muc#roominfo_lobbyroom"] = event.room._data.test_lobby;
end);
