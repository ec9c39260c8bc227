-- Benchmark floor: groupchat fan-out that only changes `to` in place on one stanza and sends
-- it to each recipient (what stock mod_muc does per recipient, minus all MUC logic).
-- Load it as a component module in place of muc:  Component "conference.localhost" "bench_floor_inplace"
local setup = module:require("floor_common");

setup(module, function (stanza, from, recipients)
	stanza.attr.from = from;
	for i = 1, #recipients do
		stanza.attr.to = recipients[i];
		module:send(stanza);
	end
end);
