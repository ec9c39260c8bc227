-- Benchmark floor: the cheapest MUC traffic (see floor_common.lib.lua) that still gives every
-- recipient its own stanza: one st.clone per recipient, `from`/`to` set on the copy,
-- module:send. Prosody's own per-delivery cost (routing, serialization, GC) as a module that
-- clones pays it.
-- Load it as a component module in place of muc:  Component "conference.localhost" "bench_floor_clone"
local st = require "util.stanza";
local setup = module:require("floor_common");

setup(module, function (stanza, from, recipients)
	for i = 1, #recipients do
		local copy = st.clone(stanza);
		copy.attr.from = from;
		copy.attr.to = recipients[i];
		module:send(copy);
	end
end);
