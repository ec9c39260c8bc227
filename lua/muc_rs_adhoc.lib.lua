-- Ad-hoc commands for service admins (XEP-0050), as stock mod_muc offers them: destroy
-- rooms, and set an affiliation in a room. The forms are Prosody's; the work is the core's,
-- driven by the shim's loop (`call`, muc_rs_events.lib.lua), where storage may wait.
local adhoc_new = module:require "adhoc".new;
local adhoc_util = require "util.adhoc";
local dataforms = require "util.dataforms";

return function (call)
	local function errors_text(errors)
		local lines = {};
		for field, err in pairs(errors) do lines[#lines + 1] = field..": "..err; end
		return table.concat(lines, "\n");
	end

	local destroy_layout = dataforms.new {
		title = "Destroy rooms";
		instructions = "Select the rooms to destroy";
		{ name = "FORM_TYPE", type = "hidden", value = "http://prosody.im/protocol/muc#destroy" };
		{ name = "rooms", type = "list-multi", required = true, label = "Rooms to destroy:" };
	};
	local destroy = adhoc_util.new_initial_data_form(destroy_layout, function ()
		return { rooms = call("room_jids") };
	end, function (fields, errors)
		if errors then return { status = "completed", error = { message = errors_text(errors) } }; end
		local destroyed = {};
		for _, jid in ipairs(fields.rooms) do
			if call("admin_destroy", jid) then destroyed[#destroyed + 1] = jid; end
		end
		return { status = "completed", info = "The following rooms were destroyed:\n"..table.concat(destroyed, "\n") };
	end);
	module:provides("adhoc", adhoc_new("Destroy Rooms", "http://prosody.im/protocol/muc#destroy", destroy, "admin"));

	local affiliation_layout = dataforms.new {
		title = "Set affiliation";
		{ name = "FORM_TYPE", type = "hidden", value = "http://prosody.im/protocol/muc#set-affiliation" };
		{ name = "room", type = "jid-single", required = true, label = "Room" };
		{ name = "jid", type = "jid-single", required = true, label = "JID" };
		{ name = "affiliation", type = "list-single", required = true, label = "Affiliation",
			options = { "owner", "admin", "member", "none", "outcast" } };
		{ name = "reason", type = "text-single" }; -- stock's form has no label here
	};
	local set_affiliation = adhoc_util.new_simple_form(affiliation_layout, function (fields, errors)
		if errors then return { status = "completed", error = { message = errors_text(errors) } }; end
		local ok, err = call("admin_set_affiliation", fields.room, fields.jid, fields.affiliation, fields.reason);
		if not ok then
			local message = err == "No such room" and err or "Affiliation change failed: "..tostring(err);
			return { status = "canceled", error = { message = message } };
		end
		return { status = "completed", info = "Affiliation updated" };
	end);
	module:provides("adhoc", adhoc_new("Set affiliation in room", "http://prosody.im/protocol/muc#set-affiliation",
		set_affiliation, "admin"));
end
