-- For the test modules whose handlers wait (mod_test_wait, mod_test_wait_events): waits
-- 0.2 s through util.async, as a handler waiting on I/O does (module:require'd, so the
-- timer is the requiring module's).
local async = require "util.async";
local promise = require "util.promise";

return function ()
	async.wait_for(promise.new(function (resolve)
		module:add_timer(0.2, function () resolve(true); end);
	end));
end
