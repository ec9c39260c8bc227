-- A test module for the scansion scripts: extends the room registration form
-- (jabber:iq:register, XEP-0045 §7.10) as community modules do, through the mod_muc API:
--  - adds a field to the form with module:add_item("muc-registration-field", …);
--  - in muc-registration-submitted, copies the submitted value of that field into
--    event.affiliation_data, under the field's name, so that it is stored with the
--    registration (and shown in the form a registered user gets back, with
--    muc_registration_include_form = true).
local field_name = "urn:xmpp:muc-rs:test:registration#motto";

module:add_item("muc-registration-field", {
	name = field_name;
	type = "text-single";
	label = "Motto";
});

module:hook("muc-registration-submitted", function (event)
	local value = event.submitted_data[field_name];
	if value ~= nil then
		event.affiliation_data[field_name] = value;
	end
end);
