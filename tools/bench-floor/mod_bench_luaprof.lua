-- mod_bench_luaprof: benchmark helper for `make bench BENCH_ARGS="--lua-profile-dir DIR"`
-- (harness/src/bin/muc-bench.rs); never load it on a real server. A sampling profile of
-- Lua: a count hook every 1000 VM instructions notes the function running. Debian's Lua
-- has no symbols, so perf can only say "lua5.4"; this names Prosody's functions and the
-- shim's. It counts instructions, not time: what C functions and the GC cost is not in it.
-- SIGUSR1 starts sampling, the next SIGUSR1 stops it and writes `bench_luaprof_file`.

local getinfo = debug.getinfo;
local file = module:get_option_string("bench_luaprof_file");

local active, samples, total = false, {}, 0;

local function hook()
	if not active then return; end
	local info = getinfo(2, "S");
	local where = info and (info.short_src .. ":" .. info.linedefined) or "?";
	samples[where] = (samples[where] or 0) + 1;
	total = total + 1;
end

-- Hooks belong to a thread; threads take their creator's. Prosody runs stanzas in each
-- session's thread, created when the client connects (before sampling starts), so the hook
-- goes on the main thread now and stays, idle until started.
debug.sethook(debug.getregistry()[1], hook, "", 1000);
debug.sethook(hook, "", 1000);

local function write()
	local rows = {};
	for where, n in pairs(samples) do rows[#rows + 1] = { where, n }; end
	table.sort(rows, function (a, b) return a[2] > b[2]; end);
	local out = assert(io.open(file .. ".tmp", "w"));
	out:write(string.format("%d samples of 1000 Lua VM instructions\n", total));
	out:write(" samples  share  function (file:line where it is defined)\n");
	for i = 1, math.min(60, #rows) do
		out:write(string.format("%8d %5.1f%%  %s\n", rows[i][2], rows[i][2] * 100 / total, rows[i][1]));
	end
	out:close();
	assert(os.rename(file .. ".tmp", file));
end

module:hook_global("signal/SIGUSR1", function ()
	if active then
		active = false;
		write();
	else
		samples, total, active = {}, 0, true;
	end
end);
