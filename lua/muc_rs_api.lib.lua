-- The mod_muc API on a muc_rs host: what other modules reach through
-- `module:depends("muc")` or `prosody.hosts[host].modules.muc`, and the room and occupant
-- objects they get from it. Glue only: every answer comes from the Rust core, read with
-- `host:room(method, room_jid, ...)` (prosody/src/room_api.rs), or, for what may read or
-- write storage or fire events, driven as a stanza is with `call(method, ...)`
-- (muc_rs_events.lib.lua, prosody/src/calls.rs), so storage and handlers may wait there.
--
-- One Lua object per live room, kept until the room is destroyed or put away, so that
-- modules may keep their own fields on it and compare rooms by identity.

local jid_util = require "util.jid";

return function (host, call, handle)
	local api = {};
	local rooms = {}; -- room JID -> room object

	local room_mt = {};
	function room_mt:__tostring()
		return "MUC room ("..self.jid..")";
	end

	-- An occupant's sessions (with their presences) are fetched when first read.
	local occupant_mt = {};
	function occupant_mt:__index(key)
		if key == "sessions" then
			local sessions = host:room("sessions", jid_util.bare(self.nick), self.nick) or {};
			rawset(self, "sessions", sessions);
			return sessions;
		end
		return occupant_mt[key];
	end
	function occupant_mt:get_presence(real_jid)
		return self.sessions[real_jid or self.jid];
	end
	function occupant_mt:each_session()
		return pairs(self.sessions);
	end

	local function occupant_object(fields)
		if fields == nil then return nil; end
		return setmetatable(fields, occupant_mt);
	end

	-- room._occupants, room._jid_nick and room._affiliations are real tables, as modules
	-- index them and walk them with pairs and next: copies, made when read, and kept until
	-- an occupant changes.
	local copies = setmetatable({}, { __mode = "k" }); -- room -> { version, occupants, jid_nick }
	local function occupant_copies(room)
		local version = host:room("occupants_version", room.jid);
		local kept = copies[room];
		if kept and kept.version == version then return kept; end
		kept = { version = version, occupants = {}, jid_nick = {} };
		for _, occupant in ipairs(host:room("occupants", room.jid) or {}) do
			kept.occupants[occupant.nick] = occupant_object(occupant);
		end
		copies[room] = kept;
		return kept;
	end
	local mirrors = {};
	function mirrors._occupants(room)
		return occupant_copies(room).occupants;
	end
	function mirrors._jid_nick(room)
		local kept = occupant_copies(room);
		if next(kept.jid_nick) == nil then
			for nick, occupant in pairs(kept.occupants) do
				for real_jid in pairs(occupant.sessions) do kept.jid_nick[real_jid] = nick; end
			end
		end
		return kept.jid_nick;
	end
	function mirrors._affiliations(room)
		local map = {};
		for _, entry in ipairs(host:room("affiliations", room.jid) or {}) do map[entry[1]] = entry[2]; end
		return map;
	end
	-- room._data and room._history as stock's modules use them: plain Lua tables, made when
	-- first read (a room object costs nothing more where modules never look). What a
	-- module may have changed in them since the core last ran is pushed to the core before
	-- it runs again (rooms.flush, called by the events lib before every entry).
	local pending_data, pending_history = {}, {}; -- proxy -> { key -> true }; room -> its history as read

	-- room._data: a proxy whose table values are live, kept in the proxy (so that
	-- `room._data.t == room._data.t` and writes at any depth are seen), each read of one
	-- marked to be pushed. The room's own keys (subject, presence_broadcast, …) are read
	-- anew after each push, as the room may change them itself.
	local room_jid_key, live_key, kept_key = {}, {}, {}; -- the room's JID, live tables, the modules' keys pushed
	local function mark(proxy, key)
		local keys = pending_data[proxy];
		if keys == nil then keys = {}; pending_data[proxy] = keys; end
		keys[key] = true;
	end
	local data_mt = {
		__index = function (proxy, key)
			local live = rawget(proxy, live_key);
			local value = live[key];
			if value == nil then
				value = host:room("data", rawget(proxy, room_jid_key), key);
				if type(value) ~= "table" then return value; end
				live[key] = value;
			end
			mark(proxy, key);
			return value;
		end;
		__newindex = function (proxy, key, value)
			host:room("set_data", rawget(proxy, room_jid_key), key, value);
			if type(value) == "table" then
				rawget(proxy, live_key)[key] = value;
				mark(proxy, key);
			else
				rawget(proxy, live_key)[key] = nil;
				rawget(proxy, kept_key)[key] = nil;
			end
		end;
		__pairs = function (proxy)
			local all, live = host:room("data_table", rawget(proxy, room_jid_key)) or {}, rawget(proxy, live_key);
			for key, value in pairs(all) do
				if type(value) == "table" then
					all[key] = live[key] or value;
					live[key] = all[key];
					mark(proxy, key);
				end
			end
			return next, all, nil;
		end;
	};

	-- room._history: stock's array of { stanza =, timestamp = } entries, made from the
	-- room's history when read (or set by a module), given back to the room as the module
	-- left it before the core runs again, and read anew after that. An entry's stanza is
	-- fetched when first read, so that a module that only counts the entries (muc_mam)
	-- costs no stanza; the history goes back to the room only if a module read a stanza
	-- (and may have changed it in place) or changed the array or its entries.
	function room_mt:__newindex(key, value)
		if key == "_history" then pending_history[self] = false; end
		rawset(self, key, value);
	end
	local turn = 0; -- counts the hand-overs: an entry read after its turn has no stanza to fetch
	local entry_origin = setmetatable({}, { __mode = "k" }); -- entry -> { room JID, index, turn, timestamp }
	local entry_mt = {
		__index = function (entry, key)
			local origin = key == "stanza" and entry_origin[entry];
			if not origin or origin[3] ~= turn then return nil; end
			local stanza = host:room("history_stanza", origin[1], origin[2]);
			rawset(entry, "stanza", stanza);
			return stanza;
		end;
	};
	local function history_of(room)
		local history = {};
		for i, timestamp in ipairs(host:room("history_times", room.jid) or {}) do
			local entry = setmetatable({ timestamp = timestamp }, entry_mt);
			entry_origin[entry] = { room.jid, i, turn, timestamp };
			history[i] = entry;
		end
		return history;
	end
	local function as_read(history)
		local was = {};
		for i, entry in ipairs(history) do was[i] = entry; end
		return was;
	end
	local function unchanged(history, was)
		if not was or type(history) ~= "table" or #history ~= #was then return false; end
		for i, entry in ipairs(was) do
			local now = history[i];
			if now ~= entry or rawget(now, "stanza") ~= nil or now.timestamp ~= entry_origin[now][4] then
				return false;
			end
		end
		return true;
	end

	-- A push the core cannot take now (it is busy: a module's code running inside a
	-- delivery) waits for the next flush; one it refuses (a malformed stanza) is logged.
	local function push(method, room_jid, key, value)
		local ok, own = pcall(host.room, host, method, room_jid, key, value);
		if ok then return true, own; end
		local busy = tostring(own):find("busy", 1, true) ~= nil;
		module:log(busy and "debug" or "error", "could not hand %s of %s to the room: %s",
			method == "set_history" and "the history" or tostring(key), room_jid, own);
		return false, nil, busy;
	end
	function rooms.flush()
		if next(pending_data) ~= nil then
			local pushing = pending_data;
			pending_data = {};
			for proxy, keys in pairs(pushing) do
				local room_jid, live, kept = rawget(proxy, room_jid_key), rawget(proxy, live_key), rawget(proxy, kept_key);
				for key in pairs(keys) do
					local value = live[key];
					if value ~= nil then
						local ok, own, busy = push("set_data", room_jid, key, value);
						if busy then
							mark(proxy, key);
						elseif not ok or own then
							live[key] = nil;
						else
							kept[key] = true;
						end
					end
				end
			end
		end
		if next(pending_history) ~= nil then
			local pushing = pending_history;
			pending_history = {};
			for room, was in pairs(pushing) do
				local history = rawget(room, "_history");
				if unchanged(history, was) then
					rawset(room, "_history", nil);
				else
					history = type(history) == "table" and history or {};
					for _, entry in ipairs(history) do
						if type(entry) == "table" then local _ = entry.stanza; end -- fetched while it is there
					end
					-- set_history takes the history as its first argument, in the key's place.
					local _, _, busy = push("set_history", room.jid, history);
					if busy then pending_history[room] = was; else rawset(room, "_history", nil); end
				end
			end
			turn = turn + 1;
		end
	end

	-- A room's record about to be stored: the modules' live tables as they are now (a
	-- module may have kept one and changed it since it last read it).
	function rooms.stored(room_jid, record)
		local room = rooms[room_jid];
		local proxy = room and rawget(room, "_data");
		local data = proxy and type(record) == "table" and record._data;
		if type(data) ~= "table" then return; end
		local live = rawget(proxy, live_key);
		for key in pairs(rawget(proxy, kept_key)) do data[key] = live[key]; end
	end

	function room_mt:__index(key)
		local method = room_mt[key];
		if method ~= nil then return method; end
		local mirror = mirrors[key];
		if mirror then return mirror(self); end
		if key == "_data" then
			local proxy = setmetatable({ [room_jid_key] = self.jid, [live_key] = {}, [kept_key] = {} }, data_mt);
			rawset(self, key, proxy);
			return proxy;
		elseif key == "_history" then
			local history = history_of(self);
			rawset(self, key, history);
			pending_history[self] = as_read(history);
			return history;
		end
	end

	function rooms.get(room_jid)
		local room = rooms[room_jid];
		if room == nil then
			room = setmetatable({ jid = room_jid }, room_mt);
			rooms[room_jid] = room;
		end
		return room;
	end

	function rooms.forget(room_jid)
		rooms[room_jid] = nil;
	end

	function rooms.new_occupant(room, bare_jid, nick)
		local affiliation = room:get_affiliation(bare_jid);
		return occupant_object {
			bare_jid = bare_jid; nick = nick; sessions = {};
			role = host:room("get_default_role", room.jid, affiliation or "none");
		};
	end

	-- Stock's getters, answered from the room's settings.
	for _, name in ipairs {
		"name", "description", "language", "password", "hidden", "public", "members_only",
		"allow_member_invites", "moderated", "persistent", "changesubject", "whois",
		"historylength", "defaulthistorymessages", "presence_broadcast", "allow_pm", "allow_modpm", "salt",
	} do
		room_mt["get_"..name] = function (self)
			rooms.flush(); -- a module may have just changed a table of _data in place
			return host:room("setting", self.jid, name);
		end
	end
	-- Stock's setters, answering whether the value changed.
	for _, name in ipairs {
		"name", "description", "language", "password", "hidden", "public", "members_only",
		"allow_member_invites", "moderated", "persistent", "changesubject", "whois",
		"historylength", "defaulthistorymessages", "presence_broadcast", "allow_pm", "allow_modpm",
	} do
		room_mt["set_"..name] = function (self, value)
			return call("set_option", self.jid, name, value) == true;
		end
	end
	function room_mt:set_affiliation(actor, jid, affiliation, reason, data)
		return call("set_affiliation", self.jid, actor, jid, affiliation, reason, data);
	end
	function room_mt:set_role(actor, nick, role, reason)
		return call("set_role", self.jid, actor, nick, role, reason);
	end
	function room_mt:set_subject(from, subject)
		return call("set_subject", self.jid, from, subject);
	end
	function room_mt:get_subject()
		return self._data.subject_from, self._data.subject;
	end
	room_mt.is_hidden = room_mt.get_hidden;
	room_mt.is_members_only = room_mt.get_members_only;

	function room_mt:get_affiliation(jid)
		return host:room("get_affiliation", self.jid, jid);
	end
	function room_mt:get_affiliation_data(jid, key)
		return host:room("get_affiliation_data", self.jid, jid, key);
	end
	-- Stock's iterator ignores its first argument, so `gen(nil, jid)` continues after jid.
	function room_mt:each_affiliation(with_affiliation)
		local list, by_jid = host:room("affiliations", self.jid) or {}, {};
		for i, entry in ipairs(list) do by_jid[entry[1]] = i; end
		return function (_, after)
			local i = after and (by_jid[after] or #list) + 1 or 1;
			while list[i] do
				local entry = list[i];
				if with_affiliation == nil or entry[2] == with_affiliation then
					return entry[1], entry[2], entry[3];
				end
				i = i + 1;
			end
		end, nil, nil;
	end
	function room_mt:get_role(nick)
		return host:room("get_role", self.jid, nick);
	end
	function room_mt:get_default_role(affiliation)
		return host:room("get_default_role", self.jid, affiliation or "none");
	end
	function room_mt:get_registered_nick(jid)
		return host:room("get_registered_nick", self.jid, jid);
	end
	function room_mt:get_registered_jid(nick)
		return host:room("get_registered_jid", self.jid, nick);
	end
	function room_mt:get_occupant_jid(real_jid)
		return host:room("get_occupant_jid", self.jid, real_jid);
	end
	function room_mt:get_occupant_by_nick(nick)
		return occupant_object(host:room("occupant_by_nick", self.jid, nick));
	end
	function room_mt:get_occupant_by_real_jid(real_jid)
		return occupant_object(host:room("occupant_by_real_jid", self.jid, real_jid));
	end
	function room_mt:each_occupant()
		local list, i = host:room("occupants", self.jid) or {}, 0;
		return function ()
			i = i + 1;
			local occupant = list[i];
			if occupant then return occupant.nick, occupant_object(occupant); end
		end;
	end
	function room_mt:has_occupant()
		return (host:room("occupants", self.jid) or {})[1] ~= nil;
	end
	function room_mt:new_occupant(bare_jid, nick)
		return rooms.new_occupant(self, bare_jid, nick);
	end
	function room_mt:get_occupant_id(occupant)
		return host:room("get_occupant_id", self.jid, occupant.bare_jid);
	end
	function room_mt:broadcast_message(stanza)
		call("broadcast_message", self.jid, stanza);
		return true;
	end
	-- A presence handed back by a module (a join it held in muc-occupant-pre-join, replayed
	-- from a handler or a timer): handled as if it had just arrived from `origin`, the same
	-- stanza table, so that its own Lua fields reach the handlers. The core tells a first
	-- presence (one that makes the room) from a normal one itself; unlike stock's, a first
	-- presence into a room a module made empty with create_room is a normal join.
	function room_mt:handle_normal_presence(origin, stanza)
		return handle({ origin = origin, stanza = stanza });
	end
	room_mt.handle_first_presence = room_mt.handle_normal_presence;
	-- Stock's copy-then-save: the room keeps a copy of the occupant, or, with no role or
	-- no live session, drops it without telling anyone (the module does, later); the
	-- copy, or nil, is returned, so that the occupant given may be changed further.
	function room_mt:save_occupant(occupant)
		if not call("save_occupant", self.jid, occupant) then return nil; end
		local copy, sessions = {}, {};
		for key, value in pairs(occupant) do copy[key] = value; end
		for real_jid, presence in pairs(occupant.sessions or {}) do sessions[real_jid] = presence; end
		copy.sessions = sessions;
		return setmetatable(copy, occupant_mt);
	end
	-- An occupant's presence announced as the room announces it (also after it left).
	function room_mt:publicise_occupant_status(occupant, x, nick, actor, reason, prev_role, force_unavailable,
			recipient)
		call("publicise", self.jid, occupant, x, nick, actor, reason, prev_role, force_unavailable,
			recipient and recipient.nick);
	end
	-- To each of the occupant's sessions.
	function room_mt:route_to_occupant(occupant, stanza)
		local to = stanza.attr.to;
		for real_jid in pairs(occupant.sessions or {}) do
			stanza.attr.to = real_jid;
			self:route_stanza(stanza);
		end
		stanza.attr.to = to;
	end
	-- Adds to `x` the items describing the occupant, as the room makes them.
	function room_mt:build_item_list(occupant, x, is_anonymous, nick, actor_nick, actor_jid, reason)
		local items = host:room("build_item_list", self.jid, occupant, is_anonymous, nick, actor_nick, actor_jid,
			reason) or {};
		for _, item in ipairs(items) do x:add_child(item); end
		return x;
	end
	function room_mt:route_stanza(stanza)
		module:send(stanza);
	end
	function room_mt:save()
		return call("save", self.jid);
	end
	function room_mt:destroy(newjid, reason, password)
		local destroyed, err = call("destroy", self.jid, newjid, reason, password);
		if not destroyed then return false, err; end
		return true;
	end

	-- mod_muc's functions, as plain fields (modules probe them with rawget).
	function api.get_room_from_jid(room_jid)
		room_jid = jid_util.prep(room_jid);
		if room_jid == nil or not call("find", room_jid) then
			return nil;
		end
		return rooms.get(room_jid);
	end
	-- A room made by a module: the `_data` given, or the service's defaults.
	function api.create_room(room_jid, config)
		room_jid = jid_util.prep(room_jid);
		local created, err = call("create", room_jid or "", config);
		if not created then return nil, err; end
		return rooms.get(room_jid);
	end
	function api.live_rooms()
		local list, i = host:live_rooms(), 0;
		return function ()
			i = i + 1;
			return list[i] and rooms.get(list[i]);
		end;
	end
	function api.all_rooms()
		local list, i = call("room_jids") or {}, 0;
		return function ()
			i = i + 1;
			while list[i] do
				local room = api.get_room_from_jid(list[i]);
				if room then return room; end
				i = i + 1;
			end
		end;
	end
	function api.each_room(live_only)
		if live_only then return api.live_rooms(); end
		return api.all_rooms();
	end
	-- Modules may replace room_mt.get_affiliation (Jitsi's lobby, breakout rooms) or
	-- get_members_only (breakout rooms): stock's every decision asks them through the room.
	-- The core keeps its rules; before a stanza to a room, the shim tells it what the
	-- replacements answer where that differs from the room's own answer: for the sender,
	-- the occupants for presences and iqs (their roles, kicks, the affiliations their
	-- presences show), and the JIDs a muc#admin query or an invitation names. Nothing is
	-- asked while nothing is replaced.
	local own_get_affiliation, own_get_members_only = room_mt.get_affiliation, room_mt.get_members_only;
	local NS_ADMIN, NS_USER = "http://jabber.org/protocol/muc#admin", "http://jabber.org/protocol/muc#user";
	function rooms.patched_facts(stanza)
		local get_affiliation, get_members_only = rawget(room_mt, "get_affiliation"), rawget(room_mt, "get_members_only");
		if get_affiliation == own_get_affiliation and get_members_only == own_get_members_only then return nil; end
		local room_jid = jid_util.bare(stanza.attr.to);
		if room_jid == nil or jid_util.node(room_jid) == nil then return nil; end
		local room = rooms[room_jid] or setmetatable({ jid = room_jid }, room_mt);
		local patched = { room = room_jid };
		if get_affiliation ~= own_get_affiliation then
			local affiliations, users = {}, {};
			local sender = jid_util.bare(stanza.attr.from);
			if sender then users[sender] = true; end
			local named = nil; -- the element whose children name users
			if stanza.name == "message" then -- only the sender speaks: occupants' presences are not sent
				named = stanza:get_child("x", NS_USER);
			else
				for _, occupant in ipairs(host:room("occupants", room_jid) or {}) do users[occupant.bare_jid] = true; end
				named = stanza.name == "iq" and stanza:get_child("query", NS_ADMIN);
			end
			for _, item in ipairs(named and named.tags or {}) do
				local user = (item.attr.jid or item.attr.to) and jid_util.bare(item.attr.jid or item.attr.to);
				if user then users[user] = true; end
			end
			for user in pairs(users) do
				local ok, affiliation = pcall(get_affiliation, room, user);
				if not ok then
					module:log("error", "a module's get_affiliation failed for %s in %s: %s", user, room_jid, affiliation);
				elseif (affiliation or "none") ~= (own_get_affiliation(room, user) or "none") then
					affiliations[user] = affiliation or "none";
				end
			end
			patched.affiliations = affiliations;
		end
		if get_members_only ~= own_get_members_only then
			local ok, members_only = pcall(get_members_only, room);
			if not ok then
				module:log("error", "a module's get_members_only failed in %s: %s", room_jid, members_only);
			elseif not members_only ~= not own_get_members_only(room) then
				patched.members_only = not not members_only;
			end
		end
		return patched;
	end
	api.room_mt = room_mt;
	-- No `rooms` field: modules take it for the 0.10 API (mod_muc_limits, mod_muc_log).

	-- The name "muc" on this host is this API, as a module of its own: its items are
	-- muc_rs's (counted once), and a reload of "muc" would load stock mod_muc in muc_rs's
	-- place, so it is refused.
	local host_events = prosody.hosts[module.host].events;
	local host_modules = prosody.hosts[module.host].modules;
	local function announce(what)
		host_events.fire_event(what, { module = "muc", host = module.host });
	end
	function api.install()
		api.module = setmetatable({
			name = "muc"; host = module.host; loaded = true; items = {};
			event_handlers = require "util.multitable".new();
			dependencies = {}; reverse_dependencies = {};
			save = function () error("muc is served by mod_muc_rs on this host: reload muc_rs instead", 0); end;
		}, { __index = module });
		host_modules.muc = api;
		announce("module-loaded");
	end
	-- Modules that depend on muc go with it, or reload with it.
	function api.uninstall(reloading)
		if host_modules.muc == api then host_modules.muc = nil; end
		if not reloading then announce("module-unloaded"); end
	end
	function api.restored(reloaded)
		if reloaded then announce("module-reloaded"); end
	end

	return api, rooms;
end
