-- mod_bench_heap: benchmark helper for `make bench` (harness/src/bench/scenario.rs); never
-- load it on a real server. On SIGUSR2 it runs two full Lua garbage collections (the second
-- frees what finalizers of the first let go) and writes to data/bench_heap.txt a sequence
-- number, the bytes malloc holds in use (Lua's and any loaded library's: mallinfo's used +
-- mmapped) and the Lua heap's bytes. The many-rooms scenario reads it before and after, so
-- that memory per room counts what rooms keep, not garbage the GC had yet to collect.

local pposix = require "util.pposix";

local path = prosody.paths.data .. "/bench_heap.txt";
local seq = 0;

module:hook_global("signal/SIGUSR2", function ()
	collectgarbage("collect");
	collectgarbage("collect");
	local mem = pposix.meminfo();
	seq = seq + 1;
	local tmp = assert(io.open(path .. ".tmp", "w"));
	tmp:write(string.format("%d %d %d\n", seq, mem.used + mem.allocated_mmap,
		math.floor(collectgarbage("count") * 1024)));
	tmp:close();
	assert(os.rename(path .. ".tmp", path));
end);
