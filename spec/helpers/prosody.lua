-- Just enough of a running Prosody to load real modules: the real core.moduleapi,
-- core.configmanager, util.events and stanzas, with stubs for the network, the user
-- manager, the module manager's item lists and (on 13) authorization.
-- Load order matters: moduleapi captures prosody.hosts when it is first required.
local events = require "util.events";
local multitable = require "util.multitable";
local st = require "util.stanza";

local P = { admins = {}, loaded = {} };

_G.prosody = {
	hosts = {}, events = events.new(), paths = {}, full_sessions = {}, bare_sessions = {},
	core_post_stanza = function () end, version = "test",
};
local hosts = prosody.hosts;
P.stores = {};
-- Stores whose writes fail, by "host/store" id, with the error they answer; stores whose
-- writes wait (yield, as a storage driver under util.async may) once before writing.
P.failing_stores, P.waiting_stores = {}, {};

local function stub(name, value)
	package.loaded[name] = value;
	package.loaded["prosody."..name] = value;
end
stub("net.server", { add_task = function () end, timer = {} });
stub("core.usermanager", { is_admin = function (jid, host) return P.admins[jid] == host; end });
stub("core.hostmanager", { get_children = function () return {}; end });
stub("core.rostermanager", { is_contact_subscribed = function () return false; end });
stub("core.modulemanager", {
	get_items = function (key, host)
		local result = {};
		for _, inst in ipairs(P.loaded) do
			if inst.host == host and inst.items and inst.items[key] then
				for _, item in ipairs(inst.items[key]) do result[#result + 1] = item; end
			end
		end
		return result;
	end;
	get_module = function () end;
});

local api = require "core.moduleapi";
local configmanager = require "core.configmanager";

-- Roles as Prosody 13's authz sees them, reduced to: admins listed in P.admins, and
-- everyone else a guest. default_permission() grants to the named role.
local function new_authz(host)
	local grants = {};
	local function role(name)
		return { name = name, may = function (_, action) return grants[name] and grants[name][action] or false; end };
	end
	return {
		add_default_permission = function (role_name, permission)
			grants[role_name] = grants[role_name] or {};
			grants[role_name][permission] = true;
		end;
		get_jid_role = function (jid)
			return role(P.admins[jid] == host and "prosody:admin" or "prosody:guest");
		end;
		get_user_role = function () return role("prosody:guest"); end;
	};
end

-- A host with its own events; `config` goes to the real configmanager.
local set_keys = {};
function P.host(name, host_type, config)
	for _, k in ipairs(set_keys[name] or {}) do configmanager.set(name, k, nil); end
	set_keys[name] = {};
	configmanager.set(name, "component_module", host_type == "component" and "muc_rs" or nil);
	for k, v in pairs(config or {}) do
		configmanager.set(name, k, v);
		table.insert(set_keys[name], k);
	end
	P.loaded = {};
	hosts[name] = { host = name, type = host_type, events = events.new(), authz = new_authz(name), modules = {} };
	P.sent, P.logs, P.deps, P.hooks = {}, {}, {}, {};
	return hosts[name];
end

-- Loads a module file on a host the way modulemanager does (its own environment with
-- `module`), recording what it sends, logs and depends on.
function P.load(host, name, path)
	local inst = setmetatable({
		name = name, host = host, path = path, event_handlers = multitable.new(),
	}, { __index = api });
	function inst.log(_, level, fmt, ...)
		P.logs[#P.logs + 1] = { level = level, message = fmt:format(...), module = name };
	end
	function inst.depends(_, dep) P.deps[dep] = true; end
	function inst.hook(self, event, handler, priority)
		P.hooks[#P.hooks + 1] = { module = name, event = event, priority = priority or 0 };
		return api.hook(self, event, handler, priority);
	end
	-- Stores in memory, shared by keyval and map views of one store, as Prosody's are;
	-- P.stores survives P.host() so a module loaded anew finds what the last one kept.
	function inst.open_store(_, store_name, kind)
		local id = host.."/"..store_name;
		P.stores[id] = P.stores[id] or {};
		local data = P.stores[id];
		if kind == "map" then
			return {
				get = function (_, user, key) return (data[user or ""] or {})[key]; end;
				set = function (_, user, key, value)
					if P.failing_stores[id] then return nil, P.failing_stores[id]; end
					local u = user or "";
					data[u] = data[u] or {};
					data[u][key] = value;
					return true;
				end;
			};
		end
		return {
			get = function (_, user) return data[user or ""]; end;
			set = function (_, user, value)
				if P.failing_stores[id] then return nil, P.failing_stores[id]; end
				if P.waiting_stores[id] then coroutine.yield(); end
				data[user or ""] = value;
				return true;
			end;
		};
	end
	-- module:require as Prosody's plugin loader does it: <name>.lib.lua beside the module,
	-- then among Prosody's own modules, in the module's environment.
	function inst.require(self, lib)
		local module_dir = path:match("^(.*)/[^/]*$") or ".";
		for _, dir in ipairs { module_dir, P.modules_dir or "" } do
			local file = dir.."/"..lib..".lib.lua";
			local chunk = loadfile(file, "t", self.environment);
			if chunk then return chunk(); end
			local sub = dir.."/"..lib.."/"..lib..".lib.lua";
			chunk = loadfile(sub, "t", self.environment);
			if chunk then return chunk(); end
		end
		error("module:require: no "..lib..".lib.lua");
	end
	function inst.send(_, stanza)
		-- `top_tag`: what Prosody's session.send would log for it, as rendered at this time.
		P.sent[#P.sent + 1] = { to = stanza.attr.to, stanza = st.clone(stanza), xml = tostring(stanza),
			top_tag = stanza:top_tag(), own_top_tag = rawget(stanza, "top_tag") ~= nil, raw = stanza };
	end
	local env = setmetatable({ module = inst }, { __index = _G });
	inst.environment = env;
	local chunk = assert(loadfile(path, "t", env));
	chunk();
	P.loaded[#P.loaded + 1] = inst;
	return inst, env;
end

-- Fires a stanza event on a host as the stanza router does; returns the handler's result.
function P.fire(host, event_name, stanza)
	local origin = { type = "c2s", send = function (s) P.sent[#P.sent + 1] = { to = s.attr.to, stanza = st.clone(s), xml = tostring(s) }; end };
	return hosts[host].events.fire_event(event_name, { origin = origin, stanza = stanza });
end

return P;
