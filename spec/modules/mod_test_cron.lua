-- A test module for the scansion scripts: runs one of the host's periodic tasks
-- (module:hourly, module:daily, … on Prosody 13's mod_cron) now, so that a script can
-- see what a module does every hour without waiting for it:
--   <iq type='set' to='conference.localhost'>
--     <run xmlns='urn:xmpp:muc-rs:test:cron' task='muc_activity/muc_activity_shift'/>
--   </iq>
-- The task is named by its id, as `prosodyctl shell` lists them (cron:tasks()).
-- Answers result once the task has run, item-not-found for an unknown task. Scripts
-- using it set cron_initial_delay (a global option of mod_cron) high, so that mod_cron
-- does not also run the tasks by itself a second after startup.
local st = require "util.stanza";

module:hook("iq-set/host/urn:xmpp:muc-rs:test:cron:run", function (event)
	local origin, stanza = event.origin, event.stanza;
	local id = stanza.tags[1].attr.task;
	for _, task in ipairs(module:get_host_items("task")) do
		if task.id == id then
			task:run(os.time());
			origin.send(st.reply(stanza));
			return true;
		end
	end
	origin.send(st.error_reply(stanza, "cancel", "item-not-found", "No task " .. tostring(id)));
	return true;
end);
