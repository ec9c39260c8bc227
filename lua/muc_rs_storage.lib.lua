-- The rooms' records in the stores stock mod_muc uses, in its format: the room's config
-- and, for a room put away with people in it, its state; plus the list of persistent rooms.
--
-- They are read and written here, in Lua, where a storage driver may wait (util.async):
-- the core asks for what it reads and hands over what it writes (prosody/src/steps.rs),
-- for a stanza as for the calls modules make on room objects and the admins' commands
-- (the loop in muc_rs_events.lib.lua).
local jid_split = require "util.jid".split;

local persistent_rooms = module:open_store("persistent", "map");
local persistent_list = module:open_store("persistent");
local room_configs = module:open_store("config");
local room_state = module:open_store("state");

-- Storage calls answer nil, err on failure: raised, so that a caller's pcall sees it.
local function check(ok, err)
	if ok == nil and err ~= nil then error(tostring(err), 0); end
	return ok;
end

local storage = {};

function storage.load_room(jid)
	local node = jid_split(jid);
	local config = check(room_configs:get(node));
	if config == nil then return nil; end
	return config, (room_state:get(node));
end

function storage.store_room(jid, config, state)
	local node = jid_split(jid);
	check(persistent_rooms:set(nil, jid, config and true or nil));
	check(room_state:set(node, state));
	check(room_configs:set(node, config));
end

function storage.stored_rooms()
	local jids = {};
	for jid in pairs(check(persistent_list:get(nil)) or {}) do jids[#jids + 1] = jid; end
	return jids;
end

-- The answers the core reads back: a room's { config, state }, false if it has none, or
-- { error = why }.
function storage.read_room(jid)
	local ok, config, state = pcall(storage.load_room, jid);
	if not ok then return { error = tostring(config) }; end
	if config == nil then return false; end
	return { config, state };
end

-- Every stored room's, by JID, or { error = why }.
function storage.read_stored_rooms()
	local ok, jids = pcall(storage.stored_rooms);
	if not ok then return { error = tostring(jids) }; end
	local all = {};
	for _, jid in ipairs(jids) do
		local record = storage.read_room(jid);
		if record and record.error then return record; end
		all[jid] = record or nil;
	end
	return all;
end

-- Writes `stores` ({ jid, config, state } each) in order; the first failure stops there
-- and is returned, and the core then undoes the change it stored.
function storage.write(stores)
	for _, store in ipairs(stores) do
		local ok, err = pcall(storage.store_room, store[1], store[2], store[3]);
		if not ok then return tostring(err); end
	end
	return nil;
end

return storage;
