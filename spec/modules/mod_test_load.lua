-- A test module for the scansion scripts: loads a module on this host when asked, as
-- an admin would from the admin shell (module:load("name", "host")), so that a script
-- can load a module once what it needs at load time is there (e.g. mod_muc_rtbl, which
-- subscribes to its block list on another component of the server the moment it loads:
-- at startup, hosts are activated in no fixed order, so that component may not exist yet).
--   <iq type='set' to='conference.localhost'>
--     <load xmlns='urn:xmpp:muc-rs:test:load' module='muc_rtbl'/>
--   </iq>
-- Answers result once the module is loaded, or internal-server-error with the reason.
local st = require "util.stanza";
local modulemanager = require "core.modulemanager";

module:hook("iq-set/host/urn:xmpp:muc-rs:test:load:load", function (event)
	local origin, stanza = event.origin, event.stanza;
	local name = stanza.tags[1].attr.module;
	local ok, err = modulemanager.load(module.host, name);
	if ok then
		origin.send(st.reply(stanza));
	else
		origin.send(st.error_reply(stanza, "cancel", "internal-server-error", tostring(err)));
	end
	return true;
end);
