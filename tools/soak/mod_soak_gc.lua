-- mod_soak_gc: test helper for `make soak` (harness/src/bin/muc-soak.rs); never load it on
-- a real server. On `<iq type='get'><gc xmlns='urn:muc-rs:soak'/></iq>` to the host it runs
-- two full Lua garbage collections (the second frees what finalizers of the first let go)
-- and answers with the Lua heap in KiB before and after.

local st = require "util.stanza";

module:hook("iq-get/host/urn:muc-rs:soak:gc", function (event)
	local before = collectgarbage("count");
	collectgarbage("collect");
	collectgarbage("collect");
	local after = collectgarbage("count");
	event.origin.send(st.reply(event.stanza):tag("gc", {
		xmlns = "urn:muc-rs:soak";
		before = string.format("%.0f", before);
		after = string.format("%.0f", after);
	}));
	return true;
end);
