-- Benchmark floor: every stanza (groupchat message, occupant presence) sent to each recipient
-- by changing `to` in place on one table (what stock mod_muc does per recipient, minus all
-- MUC logic); an occupant's presence is built once at its join and reused.
-- Load it as a component module in place of muc:  Component "conference.localhost" "bench_floor_inplace"
local setup = module:require("floor_common");

setup(module, function (stanza, from, recipients)
	stanza.attr.from = from;
	for i = 1, #recipients do
		stanza.attr.to = recipients[i];
		module:send(stanza);
	end
end);
