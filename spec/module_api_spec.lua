-- The mod_muc API on a muc_rs host (lua/muc_rs_api.lib.lua, lua/muc_rs_events.lib.lua):
-- the name "muc" and its lifecycle, room objects, and muc-* events with stock's payloads
-- and veto rules, as another module on the host sees them. The shim is loaded into a
-- component with Prosody's real module API (spec/helpers/prosody.lua).
local H = require "helpers.muc";
local P = require "helpers.prosody";
local st = H.st;
P.modules_dir = H.lib.."/modules";

local shim_path = H.plugin.."/mod_muc_rs.lua";
local room_jid = "room@"..H.domain;
local romeo, juliet = "romeo@localhost/r", "juliet@localhost/j";

local shim, env;
local function load_component()
	P.stores = {}; -- each test starts with no stored rooms
	local host = P.host(H.domain, "component", { muc_room_locking = false });
	prosody.version = H.server_version;
	local announced = {};
	for _, what in ipairs { "module-loaded", "module-unloaded", "module-reloaded" } do
		host.events.add_handler(what, function (event)
			announced[#announced + 1] = what..":"..event.module;
		end);
	end
	shim, env = P.load(H.domain, "muc_rs", shim_path);
	return host, announced;
end

local function join(from, nick)
	return P.fire(H.domain, "presence/full",
		st.presence({ from = from, to = room_jid.."/"..nick }):tag("x", { xmlns = "http://jabber.org/protocol/muc" }):up());
end

local function say(from, text)
	return P.fire(H.domain, "message/bare", st.message({ from = from, to = room_jid, type = "groupchat", id = "m" }):tag("body"):text(text):up());
end

local function received(jid, name)
	local list = {};
	for _, sent in ipairs(P.sent) do
		if sent.to == jid and (name == nil or sent.stanza.name == name) then list[#list + 1] = sent.stanza; end
	end
	return list;
end

describe("the mod_muc API", function ()
	it("is what the name muc finds on the host, with mod_muc's functions as raw fields", function ()
		local host, announced = load_component();
		local muc = host.modules.muc;
		assert.is_table(muc);
		for _, name in ipairs { "get_room_from_jid", "each_room", "all_rooms", "live_rooms" } do
			assert.is_function(rawget(muc, name), name);
		end
		assert.equal("muc", muc.module.name);
		assert.same({ "module-loaded:muc" }, announced);
		-- Its items are muc_rs's, not counted a second time.
		assert.same({}, muc.module.items);
	end);

	it("refuses a reload of muc, which would bring stock mod_muc in", function ()
		local host = load_component();
		assert.is_false(pcall(host.modules.muc.module.save));
	end);

	it("goes with muc_rs: unloaded, or reloaded with it", function ()
		local host, announced = load_component();
		shim.reloading = true;
		env.module.unload();
		assert.is_nil(host.modules.muc);
		env.module.restore(env.module.save());
		assert.same({ "module-loaded:muc", "module-reloaded:muc" }, announced);
		shim.reloading = nil;
		load_component();
		env.module.unload();
		assert.is_nil(host.modules.muc);
	end);

	it("gives one room object per room, which keeps modules' fields", function ()
		local host = load_component();
		join(romeo, "romeo");
		local muc = host.modules.muc;
		local room = muc.get_room_from_jid(room_jid);
		assert.equal(room_jid, room.jid);
		room.throttle = 42;
		assert.equal(room, muc.get_room_from_jid(room_jid));
		assert.equal(42, muc.get_room_from_jid(room_jid).throttle);
		assert.is_nil(muc.get_room_from_jid("nowhere@"..H.domain));
		assert.equal("owner", room:get_affiliation("romeo@localhost"));
		assert.equal("moderator", room:get_role(room_jid.."/romeo"));
		assert.equal(room_jid.."/romeo", room:get_occupant_jid(romeo));
		assert.equal("romeo@localhost", room:get_occupant_by_real_jid(romeo).bare_jid);
		assert.is_nil(room:get_members_only()); -- as stock keeps it: true or nothing
		assert.equal("moderators", room:get_whois());
		local n = 0;
		for r in muc.live_rooms() do n = n + 1; assert.equal(room, r); end
		assert.equal(1, n);
	end);

	it("creates rooms for modules, once, and destroys them telling the occupants", function ()
		local host = load_component();
		local muc = host.modules.muc;
		local created = {};
		host.events.add_handler("muc-room-created", function (event) created[#created + 1] = event.room; end);
		local destroyed = {};
		host.events.add_handler("muc-room-destroyed", function (event) destroyed[#destroyed + 1] = event.room.jid; end);
		local room = muc.create_room("made@"..H.domain, { name = "Made" });
		assert.equal("Made", room:get_name());
		assert.same({ room }, created);
		assert.same({ nil, "room-exists" }, { muc.create_room("made@"..H.domain) });
		P.fire(H.domain, "presence/full", st.presence({ from = romeo, to = "made@"..H.domain.."/romeo" })
			:tag("x", { xmlns = "http://jabber.org/protocol/muc" }):up());
		P.sent = {};
		assert.is_true(room:destroy("elsewhere@"..H.domain, "closing"));
		local gone = received(romeo, "presence")[1];
		local destroy = gone:get_child("x", "http://jabber.org/protocol/muc#user"):get_child("destroy");
		assert.equal("elsewhere@"..H.domain, destroy.attr.jid);
		assert.equal("closing", destroy:get_child_text("reason"));
		assert.same({ "made@"..H.domain }, destroyed);
		assert.is_nil(muc.get_room_from_jid("made@"..H.domain));
	end);

	it("drops a room's object when the room goes, with nobody listening to muc-room-destroyed", function ()
		local host = load_component();
		local muc = host.modules.muc;
		join(romeo, "romeo");
		local room = muc.get_room_from_jid(room_jid);
		room.mark = "old";
		assert.equal(0, #room._history);
		assert.is_nil(room._data.archiving);
		assert.is_nil(room.destroying);
		P.fire(H.domain, "presence/full", st.presence({ from = romeo, to = room_jid.."/romeo", type = "unavailable" }));
		assert.is_nil(muc.get_room_from_jid(room_jid), "a temporary room goes with its last occupant");
		assert.is_true(room.destroying, "modules' timers holding the old object see it is gone");
		join(romeo, "romeo");
		local again = muc.get_room_from_jid(room_jid);
		assert.is_nil(again.mark, "a new room, a new object");
		again._data.archiving = true;
		assert.is_true(again._data.archiving);
		local keys = {};
		for key in pairs(again._data) do keys[key] = true; end
		assert.is_true(keys.archiving);
	end);

	it("gives room._occupants, _jid_nick and _affiliations as real tables, kept until an occupant changes", function ()
		local host = load_component();
		join(romeo, "romeo");
		local room = host.modules.muc.get_room_from_jid(room_jid);
		local nick, occupant = next(room._occupants);
		assert.equal(room_jid.."/romeo", nick);
		assert.equal("romeo@localhost", occupant.bare_jid);
		assert.equal("presence", occupant:get_presence().name);
		assert.equal(room._occupants, room._occupants);
		assert.equal(room_jid.."/romeo", room._jid_nick[romeo]);
		assert.equal("owner", room._affiliations["romeo@localhost"]);
		join(juliet, "juliet");
		local nicks = {};
		for n in pairs(room._occupants) do nicks[#nicks + 1] = n; end
		table.sort(nicks);
		assert.same({ room_jid.."/juliet", room_jid.."/romeo" }, nicks);
		assert.equal(room_jid.."/juliet", room._jid_nick[juliet]);
	end);

	it("lets modules change rooms with stock's setters, set_affiliation (with data), set_role and set_subject", function ()
		local host = load_component();
		join(romeo, "romeo");
		join(juliet, "juliet");
		local room = host.modules.muc.get_room_from_jid(room_jid);
		assert.is_true(room:set_name("Verona"));
		assert.is_false(room:set_name("Verona"));
		assert.equal("Verona", room:get_name());
		assert.is_true(room:set_persistent(true));
		assert.is_true(room:get_persistent());
		assert.is_true(room:set_moderated(true));
		P.sent = {};
		assert.is_true(room:set_affiliation(true, "juliet@localhost", "member", "welcome", { hats = { ["urn:example:hat"] = { active = true, title = "Nurse" } } }));
		assert.equal("member", room:get_affiliation("juliet@localhost"));
		assert.equal("Nurse", room:get_affiliation_data("juliet@localhost", "hats")["urn:example:hat"].title);
		local told = received(romeo, "presence")[1];
		assert.equal("member", told:get_child("x", "http://jabber.org/protocol/muc#user"):get_child("item").attr.affiliation);
		-- A user actor is held to the rules: a member may not make owners.
		assert.same({ nil, "cancel", "not-allowed" }, { room:set_affiliation("juliet@localhost/j", "mercutio@localhost", "owner") });
		assert.is_true(room:set_role(true, room_jid.."/juliet", "visitor", "hush"));
		assert.equal("visitor", room:get_role(room_jid.."/juliet"));
		P.sent = {};
		assert.is_true(room:set_subject(room_jid.."/romeo", "Balcony"));
		assert.equal("Balcony", received(juliet, "message")[1]:get_child_text("subject"));
		assert.same({ room_jid.."/romeo", "Balcony" }, { room:get_subject() });
		-- Stored as stock stores it: the record a reload finds.
		local stored = P.stores[H.domain.."/config"]["room"]._data;
		assert.equal("Verona", stored.name);
		assert.is_true(stored.moderated);
	end);

	it("handle_normal_presence takes back a join a handler held, the same stanza with its fields", function ()
		local host = load_component();
		join(romeo, "romeo");
		local held, seen;
		host.events.add_handler("muc-occupant-pre-join", function (event)
			if event.stanza.replayed then
				seen = event.stanza;
				return;
			end
			held = event;
			return true;
		end, 8);
		join(juliet, "juliet");
		local room = host.modules.muc.get_room_from_jid(room_jid);
		assert.is_nil(room:get_occupant_jid(juliet), "held");
		held.stanza.replayed = true;
		P.sent = {};
		assert.is_true(room:handle_normal_presence(held.origin, held.stanza)); -- outside any stanza
		assert.equal(held.stanza, seen);
		assert.equal(room_jid.."/juliet", room:get_occupant_jid(juliet));
		assert.equal(1, #received(romeo, "presence"));
	end);

	it("save_occupant keeps a copy, or drops an occupant without a role, telling nobody", function ()
		local host = load_component();
		join(romeo, "romeo");
		join(juliet, "juliet");
		local room = host.modules.muc.get_room_from_jid(room_jid);
		local occupant = room:get_occupant_by_nick(room_jid.."/juliet");
		occupant.role = "visitor";
		local copy = room:save_occupant(occupant);
		assert.are_not.equal(occupant, copy);
		assert.equal("visitor", copy.role);
		assert.equal(juliet, next(copy.sessions));
		copy.role = "moderator"; -- a change to the copy is not the room's
		assert.equal("visitor", room:get_role(room_jid.."/juliet"));
		P.sent = {};
		occupant.role = nil;
		assert.is_nil(room:save_occupant(occupant));
		assert.is_nil(room:get_occupant_jid(juliet));
		assert.same({}, P.sent);
		room:publicise_occupant_status(occupant, st.stanza("x", { xmlns = "http://jabber.org/protocol/muc#user" }),
			nil, nil, nil, "visitor");
		local told = received(romeo, "presence")[1];
		assert.equal("unavailable", told.attr.type);
		assert.equal("none", told:get_child("x", "http://jabber.org/protocol/muc#user"):get_child("item").attr.role);
		assert.equal("unavailable", received(juliet, "presence")[1].attr.type);
	end);

	it("keeps modules' keys in room._data with the room", function ()
		local host = load_component();
		join(romeo, "romeo");
		local room = host.modules.muc.get_room_from_jid(room_jid);
		room._data.archiving = false;
		assert.is_false(room._data.archiving);
		room._data.name = "Verona";
		assert.equal("Verona", room:get_name());
		local keys = {};
		for k in pairs(room._data) do keys[k] = true; end
		assert.is_true(keys.archiving and keys.name);
	end);

	it("keeps room._data's tables live at every depth, and stores what modules wrote into them", function ()
		local host = load_component();
		join(romeo, "romeo");
		local room = host.modules.muc.get_room_from_jid(room_jid);
		room:set_persistent(true);
		room._data.rooms = { by_jid = {} };
		room._data.rooms.by_jid["a@"..H.domain] = "Alpha";
		room._data.rooms.count = 1;
		assert.equal(room._data.rooms, room._data.rooms);
		assert.equal("Alpha", room._data.rooms.by_jid["a@"..H.domain]);
		local kept = room._data.rooms; -- kept by a module, and changed after the core ran
		say(romeo, "hello");
		kept.by_jid["b@"..H.domain] = "Beta";
		assert.equal(kept, room._data.rooms);
		for key, value in pairs(room._data) do
			if key == "rooms" then assert.equal(kept, value); end
		end
		assert.is_true(room:save());
		local stored = P.stores[H.domain.."/config"]["room"]._data.rooms;
		assert.same({ ["a@"..H.domain] = "Alpha", ["b@"..H.domain] = "Beta" }, stored.by_jid);
		assert.equal(1, stored.count);
		-- The room's own keys: a table changed in place is what the room reads.
		room:set_presence_broadcast({ moderator = true });
		room._data.presence_broadcast.participant = true;
		assert.same({ moderator = true, participant = true }, room:get_presence_broadcast());
	end);
end);

describe("room._history", function ()
	-- A room where Romeo said each of `...`, and its object.
	local function room_where_romeo_said(...)
		local host = load_component();
		join(romeo, "romeo");
		for i = 1, select("#", ...) do say(romeo, (select(i, ...))); end
		return host, host.modules.muc.get_room_from_jid(room_jid);
	end

	it("gives stock's entries, which a module may replace, change in place and remove for the next joiner", function ()
		local _, room = room_where_romeo_said("one", "two", "three");
		local history = room._history;
		assert.equal(3, #history);
		assert.equal("two", history[2].stanza:get_child_text("body"));
		assert.is_number(history[2].timestamp);
		local edited = st.clone(history[2].stanza);
		edited:remove_children("body");
		edited:text_tag("body", "deux");
		history[2].stanza = edited;
		history[3].stanza:get_child("body")[1] = "trois"; -- changed in place
		table.remove(history, 1);
		P.sent = {};
		join(juliet, "juliet");
		local bodies = {};
		for _, message in ipairs(received(juliet, "message")) do bodies[#bodies + 1] = message:get_child_text("body"); end
		assert.same({ "deux", "trois" }, bodies);
		assert.equal(2, #room._history);
	end);

	it("is left as it was by a module that only reads it", function ()
		local _, room = room_where_romeo_said("one");
		assert.equal(1, #room._history);
		say(romeo, "two");
		assert.equal(2, #room._history, "read anew after the room kept another message");
	end);

	it("is replayed by a muc-get-history a module fires itself", function ()
		local host, room = room_where_romeo_said("one", "two", "three");
		local event = { room = room, to = juliet, maxstanzas = 2, next_stanza = function () end };
		host.events.fire_event("muc-get-history", event);
		local replayed = {};
		for message in event.next_stanza, event do
			replayed[#replayed + 1] = message:get_child_text("body");
			assert.equal(juliet, message.attr.to);
		end
		assert.same({ "two", "three" }, replayed);
	end);
end);

describe("muc-* events", function ()
	it("let a handler refuse a message, with the sender answered by the handler", function ()
		local host = load_component();
		join(romeo, "romeo");
		local seen;
		host.events.add_handler("muc-occupant-groupchat", function (event)
			seen = event;
			if event.stanza:get_child_text("body") == "spam" then return true; end
		end);
		P.sent = {};
		say(romeo, "spam");
		assert.same({}, received(romeo, "message"));
		assert.equal(romeo, seen.from);
		assert.equal(room_jid.."/romeo", seen.occupant.nick);
		say(romeo, "ham");
		assert.equal(1, #received(romeo, "message"));
	end);

	it("are heard from a handler added between two stanzas, and no more once it is removed", function ()
		local host = load_component();
		join(romeo, "romeo");
		say(romeo, "before");
		local function refuse() return true; end
		host.events.add_handler("muc-occupant-groupchat", refuse);
		P.sent = {};
		say(romeo, "while hooked");
		assert.same({}, received(romeo, "message"));
		host.events.remove_handler("muc-occupant-groupchat", refuse);
		say(romeo, "after");
		assert.equal(1, #received(romeo, "message"));
	end);

	it("deliver and keep in history the stanza as muc-broadcast-message's handlers left it", function ()
		local host = load_component();
		join(romeo, "romeo");
		host.events.add_handler("muc-add-history", function (event)
			event.stanza:tag("stanza-id", { xmlns = "urn:xmpp:sid:0", by = room_jid, id = "1" }):up();
		end, 0);
		local historic;
		host.events.add_handler("muc-message-is-historic", function (event)
			historic = true;
		end, 1);
		P.sent = {};
		say(romeo, "hello");
		assert.is_true(historic);
		local msg = received(romeo, "message")[1];
		assert.equal("1", msg:get_child("stanza-id", "urn:xmpp:sid:0").attr.id);
		P.sent = {};
		join(juliet, "juliet");
		local history = received(juliet, "message")[1];
		assert.equal("hello", history:get_child_text("body"));
		assert.equal("1", history:get_child("stanza-id", "urn:xmpp:sid:0").attr.id);
	end);

	it("let a pre-join handler force a nick, and refuse a join", function ()
		local host = load_component();
		join(romeo, "romeo");
		host.events.add_handler("muc-occupant-pre-join", function (event)
			if event.occupant.bare_jid == "juliet@localhost" then
				event.occupant.nick = room_jid.."/Juliet";
			else
				event.origin.send(st.error_reply(event.stanza, "cancel", "not-allowed"));
				return true;
			end
		end);
		P.sent = {};
		join(juliet, "jules");
		local own = received(juliet, "presence");
		assert.equal(room_jid.."/Juliet", own[#own].attr.from);
		P.sent = {};
		join("mercutio@localhost/m", "mercutio");
		local refused = received("mercutio@localhost/m", "presence");
		assert.equal("error", refused[1].attr.type);
		assert.is_nil(host.modules.muc.get_room_from_jid(room_jid):get_occupant_jid("mercutio@localhost/m"));
	end);

	it("let muc-private-message handlers block a PM with false, seeing it from and to nicks", function ()
		local host = load_component();
		join(romeo, "romeo");
		join(juliet, "juliet");
		local seen;
		host.events.add_handler("muc-private-message", function (event)
			seen = { from = event.stanza.attr.from, to = event.stanza.attr.to };
			if event.stanza:get_child_text("body") == "psst" then return false; end
		end);
		local function pm(text)
			P.sent = {};
			P.fire(H.domain, "message/full", st.message({ from = romeo, to = room_jid.."/juliet", type = "chat" }):tag("body"):text(text):up());
			return received(juliet, "message");
		end
		assert.same({}, pm("psst"));
		assert.same({ from = room_jid.."/romeo", to = room_jid.."/juliet" }, seen);
		assert.equal("hello", pm("hello")[1]:get_child_text("body"));
	end);

	it("tell muc-set-affiliation handlers of a change, with its data", function ()
		local host = load_component();
		join(romeo, "romeo");
		join(juliet, "juliet");
		local seen;
		host.events.add_handler("muc-set-affiliation", function (event) seen = event; end);
		P.fire(H.domain, "iq/bare", st.iq({ from = romeo, to = room_jid, type = "set", id = "a" })
			:query("http://jabber.org/protocol/muc#admin")
			:tag("item", { jid = "juliet@localhost", affiliation = "member", nick = "Jules" }):up());
		assert.equal("juliet@localhost", seen.jid);
		assert.equal("member", seen.affiliation);
		assert.is_nil(seen.previous_affiliation);
		assert.equal(romeo, seen.actor);
		assert.is_true(seen.in_room);
		assert.equal("Jules", seen.data.reserved_nickname);
	end);

	it("let a muc-occupant-pre-leave handler hold a leave back", function ()
		local host = load_component();
		join(romeo, "romeo");
		join(juliet, "juliet");
		local held;
		host.events.add_handler("muc-occupant-pre-leave", function (event)
			held = event.occupant.nick;
			return true;
		end);
		P.fire(H.domain, "presence/full", st.presence({ from = juliet, to = room_jid.."/juliet", type = "unavailable" }));
		assert.equal(room_jid.."/juliet", held);
		assert.equal(room_jid.."/juliet", host.modules.muc.get_room_from_jid(room_jid):get_occupant_jid(juliet));
	end);

	it("let muc-pre-invite handlers refuse an invitation and muc-invite handlers change it", function ()
		local host = load_component();
		join(romeo, "romeo");
		host.events.add_handler("muc-pre-invite", function (event)
			local invite = event.stanza:get_child("x", "http://jabber.org/protocol/muc#user"):get_child("invite");
			if invite.attr.to == "iago@localhost" then
				event.origin.send(st.error_reply(event.stanza, "auth", "forbidden"));
				return true;
			end
		end);
		host.events.add_handler("muc-invite", function (event)
			event.stanza:tag("note", { xmlns = "urn:example" }):up();
		end);
		local function invite(who)
			P.sent = {};
			P.fire(H.domain, "message/bare", st.message({ from = romeo, to = room_jid })
				:tag("x", { xmlns = "http://jabber.org/protocol/muc#user" }):tag("invite", { to = who }):up():up());
		end
		invite("iago@localhost");
		assert.same({}, received("iago@localhost"));
		assert.equal("error", received(romeo, "message")[1].attr.type);
		invite("juliet@localhost");
		local got = received("juliet@localhost", "message")[1];
		assert.is_table(got:get_child("note", "urn:example"));
		assert.is_table(got:get_child("x", "jabber:x:conference"));
	end);

	it("log a failing handler and go on", function ()
		local host = load_component();
		join(romeo, "romeo");
		host.events.add_handler("muc-occupant-groupchat", function () error("boom"); end);
		assert.has_no.errors(function () say(romeo, "hi"); end);
		local logged = false;
		for _, line in ipairs(P.logs) do
			if line.level == "error" and line.message:find("boom", 1, true) then logged = true; end
		end
		assert.is_true(logged);
		assert.is_table(host.modules.muc.get_room_from_jid(room_jid));
	end);

	it("add modules' features and fields to a room's disco#info", function ()
		local host = load_component();
		join(romeo, "romeo");
		host.events.add_handler("muc-disco#info", function (event)
			event.reply:tag("feature", { var = "urn:example:feature" }):up();
			table.insert(event.form, { name = "urn:example#field", type = "text-single" });
			event.formdata["urn:example#field"] = "value";
		end);
		P.sent = {};
		P.fire(H.domain, "iq/bare", st.iq({ from = romeo, to = room_jid, type = "get", id = "d" })
			:query("http://jabber.org/protocol/disco#info"));
		local query = received(romeo, "iq")[1].tags[1];
		local features = {};
		for feature in query:childtags("feature") do features[feature.attr.var] = true; end
		assert.is_true(features["urn:example:feature"]);
		assert.is_true(features["http://jabber.org/protocol/muc"]);
		local form = query:get_child("x", "jabber:x:data");
		assert.equal(query.tags[#query.tags], form);
		local values = {};
		for field in form:childtags("field") do values[field.attr.var] = field:get_child_text("value"); end
		assert.equal("value", values["urn:example#field"]);
		assert.equal("1", values["muc#roominfo_occupants"]);
	end);
end);

-- The events of a stanza's outcome are fired from the shim's loop, in the stanza's
-- coroutine (lua/muc_rs_events.lib.lua `carry_out`), so their handlers may wait: here a
-- handler yields, as util.async's wait does, and the stanza is resumed later.
describe("muc-* events of a stanza's outcome", function ()
	local function bodies(jid)
		local list = {};
		for _, msg in ipairs(received(jid, "message")) do
			local body = msg:get_child_text("body");
			if body then list[#list + 1] = body..(msg:get_child("waited", "urn:example") and "+" or ""); end
		end
		return list;
	end

	it("let muc-broadcast-message's handlers wait, each message on its own", function ()
		local host = load_component();
		join(romeo, "romeo");
		join(juliet, "juliet");
		host.events.add_handler("muc-broadcast-message", function (event)
			if event.stanza:get_child_text("body"):match("^wait") then
				coroutine.yield();
				event.stanza:tag("waited", { xmlns = "urn:example" }):up();
			end
		end, 10);
		P.sent = {};
		local first = coroutine.create(function () say(romeo, "wait 1"); end);
		assert.is_true(coroutine.resume(first));
		assert.same({}, bodies(juliet));
		-- Another stanza goes through while the first waits, and another waits too.
		say(juliet, "now");
		local second = coroutine.create(function () say(juliet, "wait 2"); end);
		assert.is_true(coroutine.resume(second));
		assert.same({ "now" }, bodies(juliet));
		assert.is_true(coroutine.resume(second));
		assert.is_true(coroutine.resume(first));
		assert.equal("dead", coroutine.status(first));
		assert.same({ "now", "wait 2+", "wait 1+" }, bodies(romeo));
		assert.same({ "now", "wait 2+", "wait 1+" }, bodies(juliet));
		-- The room's history keeps them as the handlers left them, in the order they went out.
		P.sent = {};
		join("nurse@localhost/n", "nurse");
		assert.same({ "now", "wait 2+", "wait 1+" }, bodies("nurse@localhost/n"));
	end);

	it("let muc-get-history's handlers wait, and send what comes after the history after them", function ()
		local host = load_component();
		join(romeo, "romeo");
		say(romeo, "hello");
		host.events.add_handler("muc-get-history", function (event)
			coroutine.yield();
			local to, served = event.to, false;
			event.next_stanza = function ()
				if served then return nil; end
				served = true;
				return st.message({ type = "groupchat", from = room_jid, to = to }):tag("body"):text("served"):up();
			end;
			return true;
		end, 10);
		P.sent = {};
		local joining = coroutine.create(function () join(juliet, "juliet"); end);
		assert.is_true(coroutine.resume(joining));
		assert.equal(2, #received(juliet, "presence"));
		assert.same({}, received(juliet, "message"));
		assert.is_true(coroutine.resume(joining));
		local messages = received(juliet, "message");
		assert.equal("served", messages[1]:get_child_text("body"));
		assert.is_table(messages[2]:get_child("subject")); -- the subject comes after the history
		assert.equal(2, #messages);
	end);

	it("carry out a stanza a handler routes back into the host on its own", function ()
		local host = load_component();
		join(romeo, "romeo");
		host.events.add_handler("muc-broadcast-message", function (event)
			if event.stanza:get_child_text("body") == "outer" then say(romeo, "inner"); end
		end, 10);
		P.sent = {};
		say(romeo, "outer");
		assert.same({ "inner", "outer" }, bodies(romeo));
	end);

	it("log a failing handler and carry out the rest", function ()
		local host = load_component();
		join(romeo, "romeo");
		say(romeo, "hello");
		host.events.add_handler("muc-occupant-joined", function () error("boom"); end);
		P.sent = {};
		join(juliet, "juliet");
		local logged = false;
		for _, line in ipairs(P.logs) do
			if line.level == "error" and line.message:find("a module's handler failed", 1, true)
				and line.message:find("boom", 1, true) then logged = true; end
		end
		assert.is_true(logged);
		assert.same({ "hello" }, bodies(juliet));
		assert.equal(1, #received(romeo, "presence"));
	end);
end);

-- The calls modules make on room objects are driven by the shim's loop as a stanza is
-- (lua/muc_rs_events.lib.lua `run`, prosody/src/calls.rs): the room's writes and the
-- events' handlers run in the caller's coroutine, where they may wait. Here a store and a
-- handler yield, as util.async's wait does, and the caller is resumed later.
describe("calls on room objects", function ()
	local config_store = H.domain.."/config";
	local function persistent_room()
		local host = load_component();
		P.failing_stores, P.waiting_stores = {}, {};
		join(romeo, "romeo");
		local room = host.modules.muc.get_room_from_jid(room_jid);
		assert.is_true(room:set_persistent(true));
		return host, room;
	end
	-- Runs `f` in a coroutine until it waits: `finish()` resumes it to the end and gives its
	-- values; `done.values` are those of a call the shim resumed itself.
	local function started(f)
		local done = {};
		local thread = coroutine.create(function () done.values = table.pack(f()); end);
		local ok, err = coroutine.resume(thread);
		assert(ok, err);
		assert.equal("suspended", coroutine.status(thread), "it waits");
		return function ()
			local resumed, why = coroutine.resume(thread);
			assert(resumed, why);
			assert.equal("dead", coroutine.status(thread));
			return done.values;
		end, done;
	end

	it("return set_affiliation's value once a write that waits is done", function ()
		local _, room = persistent_room();
		P.waiting_stores[config_store] = true;
		P.sent = {};
		local finish = started(function () return room:set_affiliation(true, "nurse@localhost", "member"); end);
		assert.is_nil(P.stores[config_store]["room"]["nurse@localhost"], "not written yet");
		P.waiting_stores = {};
		assert.same({ n = 1, true }, finish());
		assert.equal("member", P.stores[config_store]["room"]["nurse@localhost"]);
		assert.equal("member", room:get_affiliation("nurse@localhost"));
	end);

	it("return save's value once a write that waits is done", function ()
		local _, room = persistent_room();
		room._data.archiving = false;
		P.waiting_stores[config_store] = true;
		local finish = started(function () return room:save(); end);
		assert.is_nil(P.stores[config_store]["room"]._data.archiving, "not written yet");
		P.waiting_stores = {};
		assert.same({ n = 1, true }, finish());
		assert.is_false(P.stores[config_store]["room"]._data.archiving);
	end);

	it("answer stock's error for a write that fails, with the room as it was", function ()
		local _, room = persistent_room();
		P.failing_stores[config_store] = "disk full";
		P.sent = {};
		assert.same({ nil, "wait", "internal-server-error" },
			{ room:set_affiliation(true, "nurse@localhost", "member") });
		assert.is_nil(room:get_affiliation("nurse@localhost"));
		assert.is_nil(P.stores[config_store]["room"]["nurse@localhost"]);
		assert.same({}, received(romeo), "nobody hears of a change that was undone");
		assert.same({ nil, "could not store "..room_jid }, { room:save() });
		P.failing_stores = {};
		assert.is_true(room:set_affiliation(true, "nurse@localhost", "member"));
		assert.equal("member", P.stores[config_store]["room"]["nurse@localhost"]);
	end);

	it("let muc-set-affiliation's handlers wait during a module's set_affiliation", function ()
		local host, room = persistent_room();
		join(juliet, "juliet");
		local seen = {};
		host.events.add_handler("muc-set-affiliation", function (event)
			coroutine.yield();
			seen[#seen + 1] = event.jid.." "..event.affiliation;
		end);
		P.sent = {};
		local finish = started(function () return room:set_affiliation(true, "juliet@localhost", "member"); end);
		assert.same({}, seen);
		assert.same({ n = 1, true }, finish());
		assert.same({ "juliet@localhost member" }, seen);
		local told = received(romeo, "presence")[1];
		assert.equal("member", told:get_child("x", "http://jabber.org/protocol/muc#user"):get_child("item").attr.affiliation);
	end);

	it("let muc-broadcast-message's handlers wait during a module's broadcast_message", function ()
		local host, room = persistent_room();
		host.events.add_handler("muc-broadcast-message", function (event)
			coroutine.yield();
			event.stanza:tag("waited", { xmlns = "urn:example" }):up();
		end, 10);
		P.sent = {};
		local message = st.message({ type = "groupchat", from = room_jid }):tag("body"):text("notice"):up();
		local finish = started(function () return room:broadcast_message(message); end);
		assert.same({}, received(romeo, "message"));
		assert.same({ n = 1, true }, finish());
		local got = received(romeo, "message")[1];
		assert.equal("notice", got:get_child_text("body"));
		assert.is_table(got:get_child("waited", "urn:example"));
	end);

	it("hold stanzas that arrive while a call's write waits until it is done, in order", function ()
		local _, room = persistent_room();
		P.waiting_stores[config_store] = true;
		P.sent = {};
		local finish = started(function () return room:set_affiliation(true, "nurse@localhost", "member"); end);
		say(romeo, "meanwhile");
		assert.same({}, received(romeo, "message"), "the message waits for the write");
		P.waiting_stores = {};
		assert.same({ n = 1, true }, finish());
		local messages = received(romeo, "message");
		assert.equal(2, #messages);
		assert.equal("member", messages[1]:get_child("x", "http://jabber.org/protocol/muc#user"):get_child("item").attr.affiliation,
			"the change is told first");
		assert.equal("meanwhile", messages[2]:get_child_text("body"), "then the message that waited");
	end);

	it("let the admins' commands wait for their writes", function ()
		local _, room = persistent_room();
		local commands = {};
		for _, item in ipairs(shim.items["adhoc-provider"]) do commands[item.node] = item; end
		local set_affiliation = commands["http://prosody.im/protocol/muc#set-affiliation"];
		local form = require "util.dataforms".new {
			{ name = "FORM_TYPE", type = "hidden", value = "http://prosody.im/protocol/muc#set-affiliation" };
			{ name = "room", type = "jid-single" }; { name = "jid", type = "jid-single" };
			{ name = "affiliation", type = "list-single" };
		}:form({ room = room_jid, jid = "nurse@localhost", affiliation = "member" }, "submit");
		P.waiting_stores[config_store] = true;
		local finish = started(function () return set_affiliation:handler({ form = form }, "state"); end);
		P.waiting_stores = {};
		assert.same({ status = "completed", info = "Affiliation updated" }, finish()[1]);
		assert.equal("member", P.stores[config_store]["room"]["nurse@localhost"]);
		local destroy = commands["http://prosody.im/protocol/muc#destroy"];
		local rooms = require "util.dataforms".new {
			{ name = "FORM_TYPE", type = "hidden", value = "http://prosody.im/protocol/muc#destroy" };
			{ name = "rooms", type = "list-multi" };
		}:form({ rooms = { room_jid } }, "submit");
		P.waiting_stores[config_store] = true;
		P.sent = {};
		finish = started(function () return destroy:handler({ form = rooms }, "state"); end);
		assert.is_nil(P.stores[config_store]["room"]._data.destroyed, "not written yet");
		P.waiting_stores = {};
		assert.equal("completed", finish()[1].status);
		assert.is_true(P.stores[config_store]["room"]._data.destroyed, "its tombstone");
		local gone = received(romeo, "presence");
		assert.equal(1, #gone, "the occupant is told the room is gone");
		assert.is_table(gone[1]:get_child("x", "http://jabber.org/protocol/muc#user"):get_child("destroy"));
	end);

	it("wait for the turn of a call that stores while another write waits", function ()
		local _, room = persistent_room();
		P.waiting_stores[config_store] = true;
		local first = started(function () return room:set_affiliation(true, "nurse@localhost", "member"); end);
		local _, second = started(function () return room:set_affiliation(true, "nurse@localhost", "admin"); end);
		-- Outside any coroutine nothing can wait: refused, and nothing changes.
		assert.same({ nil, "wait", "resource-constraint" }, { room:set_affiliation(true, "nurse@localhost", "owner") });
		assert.is_nil(room:save());
		assert.is_true(room:get_persistent(), "what only reads goes on");
		P.waiting_stores = {};
		assert.same({ n = 1, true }, first());
		-- The second call took its turn once the first's write was done, in the same go.
		assert.same({ n = 1, true }, second.values);
		assert.equal("admin", P.stores[config_store]["room"]["nurse@localhost"]);
		assert.equal("admin", room:get_affiliation("nurse@localhost"));
	end);
end);

describe("the room list", function ()
	it("has the live rooms and the stored ones, brought back as modules walk it", function ()
		local host = load_component();
		join(romeo, "romeo");
		local stored = "stored@"..H.domain;
		P.stores[H.domain.."/persistent"][""] = { [stored] = true };
		P.stores[H.domain.."/config"].stored = { _jid = stored, _data = { persistent = true, name = "Kept" } };
		local seen = {};
		for room in host.modules.muc.all_rooms() do seen[#seen + 1] = room.jid; end
		table.sort(seen);
		assert.same({ room_jid, stored }, seen);
		assert.equal("Kept", host.modules.muc.get_room_from_jid(stored):get_name());
	end);
end);
