-- The muc-* events of stock mod_muc, fired for the steps the Rust core leaves to
-- Prosody's modules (src/hooks.rs). Glue only: each rule stays in the core, which says
-- what a step would do (the message is historic, the room's own history); here the
-- events are fired with stock's payloads, at stock's priorities, and what the handlers
-- leave is handed back.
--
-- Stock's own steps inside these events are handlers at the priorities stock gives them,
-- so modules fall before or after them as on stock: the history step of
-- muc-broadcast-message (0), muc-message-is-historic (-1), muc-add-history (-1) and
-- muc-get-history (-1). `listens` counts only the modules' handlers.

return function (host, rooms, storage, avatar_hash)
	-- The stanza event being handled, by coroutine (handlers may wait while another
	-- stanza is handled): its origin and stanza go into some events' payloads.
	local handling = setmetatable({}, { __mode = "k" });
	local function current() return handling[coroutine.running()]; end

	local events = prosody.hosts[module.host].events;

	-- Handlers muc_rs itself adds, by event name, so that they do not count as listeners.
	local own = {};
	local function hook_own(name, handler, priority)
		own[name] = (own[name] or 0) + 1;
		module:hook(name, handler, priority);
	end

	-- Item lists modules add to (module:add_item) that stock's MUC reads.
	local item_lists = { ["muc-registration-field"] = true };

	-- Where the modules listen is asked once and kept by the core's host until handlers
	-- change: it is told of every handler added or removed on this host (module:hook,
	-- module:unhook, a module unloaded) and of every change to the item lists it reads.
	local add_handler, remove_handler = events.add_handler, events.remove_handler;
	function events.add_handler(...) host:hooks_changed(); return add_handler(...); end
	function events.remove_handler(...) host:hooks_changed(); return remove_handler(...); end
	for name in pairs(item_lists) do
		module:hook("item-added/"..name, function () host:hooks_changed(); end);
		module:hook("item-removed/"..name, function () host:hooks_changed(); end);
	end
	local function uninstall()
		events.add_handler, events.remove_handler = add_handler, remove_handler;
	end

	-- muc-occupant-groupchat is two extension points of the core (src/hooks.rs,
	-- GroupchatFirst): its handlers above stock's role check (priority 50), which see every
	-- message to the room before the room's checks, and the others, after them.
	-- A subject change is the room's at 20 (stock's subject step): handlers above it see it
	-- first, those below never do.
	local GROUPCHAT, GROUPCHAT_FIRST = "muc-occupant-groupchat", "muc-occupant-groupchat>50";
	local ROLE_CHECK, SUBJECT_STEP = 50, 20;
	-- The handlers with a priority in (lowest, highest], in util.events' order.
	local function groupchat_handlers(lowest, highest)
		local handlers, priorities = events.get_handlers(GROUPCHAT), events._event_map[GROUPCHAT];
		local part = {};
		if handlers == nil or priorities == nil then return part; end
		for _, handler in ipairs(handlers) do
			local priority = priorities[handler];
			if priority > lowest and priority <= highest then part[#part + 1] = handler; end
		end
		return part;
	end
	-- As util.events fires them: in order, until one returns something.
	local function fire_handlers(handlers, payload)
		for _, handler in ipairs(handlers) do
			local ret = handler(payload);
			if ret ~= nil then return ret; end
		end
	end

	-- Whether a module handles one of these events (asked once per extension point).
	local function listens(...)
		for i = 1, select("#", ...) do
			local name = select(i, ...);
			if item_lists[name] then
				if #module:get_host_items(name) > 0 then return true; end
			elseif name == GROUPCHAT then
				if #groupchat_handlers(-math.huge, ROLE_CHECK) > 0 then return true; end
			elseif name == GROUPCHAT_FIRST then
				if #groupchat_handlers(ROLE_CHECK, math.huge) > 0 then return true; end
			else
				local handlers = events.get_handlers(name);
				if handlers ~= nil and #handlers > (own[name] or 0) then return true; end
			end
		end
		return false;
	end

	-- Stock's history step (history.lib.lua): ask whether the message is worth keeping,
	-- then let the archive and the room's own history keep it.
	hook_own("muc-broadcast-message", function (event)
		if module:fire_event("muc-message-is-historic", event) then
			module:fire_event("muc-add-history", event);
		end
	end, 0);
	hook_own("muc-message-is-historic", function (event)
		return event.muc_rs_historic;
	end, -1);
	hook_own("muc-add-history", function (event)
		rooms.flush();
		host:room("add_history", event.room.jid, event.stanza);
	end, -1);
	hook_own("muc-get-history", function (event)
		local default, i = event.muc_rs_default, 0;
		if default == nil then -- fired by a module (Jitsi's visitors): the room's history
			rooms.flush();
			default = host:room("history_for", event.room.jid, event.to, event.maxchars, event.maxstanzas,
				event.since) or {};
		end
		function event.next_stanza()
			i = i + 1;
			return default[i];
		end
		return true;
	end, -1);

	-- The origin and stanza of the stanza being handled, for the payloads that carry them.
	local function stanza_fields(event)
		local handling = current();
		if handling then
			event.origin, event.stanza = handling.origin, handling.stanza;
		end
		return event;
	end

	local fire = {};
	local jid_resource = require "util.jid".resource;
	local stanza_presence = require "util.stanza".presence;

	function fire.broadcast_message(room_jid, stanza, historic)
		local event = { room = rooms.get(room_jid), stanza = stanza, muc_rs_historic = historic };
		if module:fire_event("muc-broadcast-message", event) then
			return nil; -- a handler delivered it
		end
		return event.stanza;
	end

	local dataforms = require "util.dataforms";

	-- A reply whose query ends with the room's own form (rendered by the core): lets the
	-- event's handlers add to the reply and to the form's layout (a util.dataforms form
	-- whose first fields are the room's), then adds their fields to the rendered form.
	local function with_form(reply, core_fields, form_type, fire_with)
		local query = reply.tags[1];
		local x = query.tags[#query.tags];
		query.tags[#query.tags] = nil;
		for i = #query, 1, -1 do
			if query[i] == x then table.remove(query, i); break; end
		end
		reply.last_add = { query }; -- handlers add to the query with reply:tag(), as on stock
		local layout = {};
		for i, field in ipairs(core_fields) do layout[i] = field; end
		local form, formdata = dataforms.new(layout), {};
		fire_with(form, formdata);
		if #form > #core_fields then
			local added = {};
			for i = #core_fields + 1, #form do added[#added + 1] = form[i]; end
			for _, field in ipairs(dataforms.new(added):form(formdata, form_type).tags) do
				x:add_direct_child(field);
			end
		end
		query:add_direct_child(x);
		reply.last_add = nil;
		return reply;
	end

	function fire.disco_info(room_jid, reply, core_fields)
		return with_form(reply, core_fields, "result", function (form, formdata)
			module:fire_event("muc-disco#info", stanza_fields {
				room = rooms.get(room_jid); reply = reply; form = form; formdata = formdata;
			});
		end);
	end

	function fire.config_form(room_jid, actor, reply, core_fields)
		return with_form(reply, core_fields, "form", function (form)
			module:fire_event("muc-config-form", { room = rooms.get(room_jid); actor = actor; form = form });
		end);
	end

	function fire.get_history(room_jid, to, maxchars, maxstanzas, since, default)
		local event = {
			room = rooms.get(room_jid); to = to;
			maxchars = maxchars; maxstanzas = maxstanzas; since = since;
			muc_rs_default = default;
		};
		stanza_fields(event);
		event.to = to;
		module:fire_event("muc-get-history", event);
		local stanzas = {};
		if event.next_stanza then
			for stanza in event.next_stanza do
				stanzas[#stanzas + 1] = stanza;
			end
		end
		return stanzas;
	end

	function fire.occupant_joined(room_jid, nick, jid)
		local room = rooms.get(room_jid);
		module:fire_event("muc-occupant-joined", stanza_fields {
			room = room; nick = nick; occupant = room:get_occupant_by_nick(nick);
		});
	end

	function fire.occupant_session_new(room_jid, nick, jid)
		local room = rooms.get(room_jid);
		module:fire_event("muc-occupant-session-new", stanza_fields {
			room = room; nick = nick; occupant = room:get_occupant_by_nick(nick); jid = jid;
		});
	end

	local left_by_core = setmetatable({}, { __mode = "k" }); -- the room's own muc-occupant-left events
	-- As stock's: the occupant that left (no role, its JID the session others last saw),
	-- with the origin and stanza of the leave where the session's own presence made it
	-- (not a kick, nor a bounce).
	function fire.occupant_left(room_jid, nick, bare_jid, real_jid)
		local room = rooms.get(room_jid);
		local occupant = rooms.new_occupant(room, bare_jid, nick);
		occupant.role, occupant.jid = nil, real_jid;
		local event = { room = room; nick = nick; occupant = occupant };
		local handling = current();
		local stanza = handling and handling.stanza;
		if stanza and stanza.name == "presence" and stanza.attr.type ~= "error" and stanza.attr.from == real_jid then
			event.origin, event.stanza = handling.origin, stanza;
		end
		if real_jid then -- the session, with its last word
			occupant.sessions = { [real_jid] = stanza_presence({ from = nick; to = real_jid; type = "unavailable" }) };
		end
		left_by_core[event] = true;
		module:fire_event("muc-occupant-left", event);
	end

	function fire.affiliation_changed(room_jid, actor, jid, affiliation, previous, reason, in_room)
		local room = rooms.get(room_jid);
		module:fire_event("muc-set-affiliation", {
			room = room; actor = actor; jid = jid; affiliation = affiliation;
			previous_affiliation = previous; reason = reason; in_room = in_room;
			data = room:get_affiliation_data(jid);
		});
	end

	-- The room's own invitation events, whose steps the core took already.
	local invite_by_core = setmetatable({}, { __mode = "k" });

	-- An invitation or a decline the room passes on: nil if a handler sent it.
	local function pass_on(event_name, room_jid, stanza)
		local handling = current();
		local event = stanza_fields { room = rooms.get(room_jid) };
		event.stanza, event.incoming = stanza, handling and handling.stanza;
		invite_by_core[event] = true;
		if module:fire_event(event_name, event) then return nil; end
		return event.stanza;
	end
	function fire.invite(room_jid, invite) return pass_on("muc-invite", room_jid, invite); end
	function fire.decline(room_jid, decline) return pass_on("muc-decline", room_jid, decline); end

	-- The occupant an event names: the room's, or as it was when it left.
	local function occupant_named(room, nick, bare_jid, role)
		local occupant = room:get_occupant_by_nick(nick);
		if occupant and occupant.bare_jid == bare_jid then return occupant; end
		occupant = rooms.new_occupant(room, bare_jid, nick);
		occupant.role = role;
		return occupant;
	end

	-- An occupant's presence before it goes out: the handlers change the presence and the
	-- <x/> template in place, and the nick, actor and reason the items name.
	function fire.occupant_presence(room_jid, stanza, x, occupant_nick, bare_jid, role, nick, actor, reason,
			broadcast, sessions)
		local room = rooms.get(room_jid);
		local occupant = occupant_named(room, occupant_nick, bare_jid, role);
		local event = {
			room = room; stanza = stanza; x = x; occupant = occupant;
			nick = nick; actor = actor; reason = reason;
		};
		module:fire_event("muc-build-occupant-presence", event);
		if broadcast then module:fire_event("muc-broadcast-presence", event); end
		for _, presence in ipairs(sessions) do
			module:fire_event("muc-build-occupant-presence", { room = room; occupant = occupant; stanza = presence });
		end
		return event.nick, event.actor, event.reason;
	end

	function fire.build_presence(room_jid, stanza, nick, bare_jid, is_occupant)
		local room = rooms.get(room_jid);
		local event = { room = room; stanza = stanza };
		if is_occupant then
			event.occupant = occupant_named(room, nick, bare_jid, nil);
		else -- an absent registered user, named by the nick only
			event.bare_jid, event.nick = bare_jid, jid_resource(nick);
		end
		module:fire_event("muc-build-occupant-presence", event);
	end

	-- The registration form with the fields modules add (muc-registration-field items),
	-- showing what is kept for the user in a "result".
	function fire.registration_form(room_jid, user, reply, core_fields, form_type)
		return with_form(reply, core_fields, form_type, function (form, formdata)
			for _, field in ipairs(module:get_host_items("muc-registration-field")) do
				form[#form + 1] = field;
			end
			if form_type == "result" then
				for k, v in pairs(rooms.get(room_jid):get_affiliation_data(user) or {}) do formdata[k] = v; end
			end
		end);
	end

	function fire.room_created(room_jid)
		module:fire_event("muc-room-created", stanza_fields { room = rooms.get(room_jid) });
	end

	function fire.room_destroyed(room_jid)
		local room = rooms[room_jid]; -- modules' timers look (stock sets it in destroy)
		if room ~= nil then room.destroying = true; end
		if listens("muc-room-destroyed") then
			module:fire_event("muc-room-destroyed", { room = rooms.get(room_jid) });
		end
		rooms.forget(room_jid);
	end

	function fire.room_evicted(room_jid)
		rooms.forget(room_jid);
	end

	-- The events of an outcome (a stanza's, or a call's), fired here, in the caller's
	-- coroutine, where their handlers may wait (util.async): the binding sends the
	-- deliveries up to each event and hands it over; what the handlers leave, or the error
	-- of one that failed, goes back to finish it (send the stanza as they left it, …).
	local function event_done(carrying, ...)
		rooms.flush(); -- what the handlers changed in room._data and room._history
		host:event_done(carrying, ...);
	end
	local function carry_out(carrying)
		local function fire_next(kind, ...)
			if kind == nil then return false; end
			event_done(carrying, pcall(fire[kind], ...));
			return true;
		end
		while fire_next(host:next_event(carrying)) do end
	end

	-- The questions the core asks before a step modules may refuse or change (see
	-- src/hooks.rs): the event is fired on the stanza being handled, and the answer says
	-- whether a handler refused, and what it changed of a joining occupant.
	local jid_split = require "util.jid".split;
	local st = require "util.stanza";
	local ask = {};

	function ask.pre_create(_, payload)
		if module:fire_event("muc-room-pre-create", payload) then return false; end
		return {};
	end

	function ask.pre_join(question, payload)
		local occupant = rooms.new_occupant(payload.room, question.bare_jid, question.nick);
		occupant.role = question.role;
		payload.occupant = occupant;
		if module:fire_event("muc-occupant-pre-join", payload) then return false; end
		local nick = occupant.nick ~= question.nick and select(3, jid_split(occupant.nick)) or nil;
		return { nick = nick, role = occupant.role, role_changed = occupant.role ~= question.role };
	end

	function ask.pre_change(question, payload)
		payload.orig_occupant = payload.room:get_occupant_by_nick(question.orig_nick);
		payload.dest_occupant = payload.room:get_occupant_by_nick(question.nick)
			or rooms.new_occupant(payload.room, question.bare_jid, question.nick);
		if module:fire_event("muc-occupant-pre-change", payload) then return false; end
		return {};
	end

	function ask.pre_leave(question, payload)
		payload.occupant = payload.room:get_occupant_by_nick(question.nick);
		if module:fire_event("muc-occupant-pre-leave", payload) then return false; end
		return {};
	end

	function ask.groupchat(question, payload)
		payload.from = payload.stanza.attr.from;
		payload.occupant = payload.room:get_occupant_by_nick(question.nick);
		local refused;
		if question.subject_change then
			refused = fire_handlers(groupchat_handlers(SUBJECT_STEP, ROLE_CHECK), payload);
		elseif #groupchat_handlers(ROLE_CHECK, math.huge) == 0 then
			refused = module:fire_event(GROUPCHAT, payload);
		else -- those above 50 were asked before the room's checks
			refused = fire_handlers(groupchat_handlers(-math.huge, ROLE_CHECK), payload);
		end
		if refused then return false; end
		return {};
	end

	-- Before the room's checks: the sender may be no occupant, or a visitor.
	function ask.groupchat_first(question, payload)
		payload.from = payload.stanza.attr.from;
		payload.occupant = question.nick and payload.room:get_occupant_by_nick(question.nick) or nil;
		if fire_handlers(groupchat_handlers(ROLE_CHECK, math.huge), payload) then return false; end
		return {};
	end

	-- Stock gives handlers a copy of the message from and to the occupants' nicks; a handler
	-- blocks it with false (and answers the sender itself).
	function ask.private_message(question, payload)
		local pm = st.clone(payload.stanza);
		pm.attr.from, pm.attr.to = question.nick, question.to;
		payload.stanza = pm;
		if module:fire_event("muc-private-message", payload) == false then return false; end
		return {};
	end

	function ask.pre_invite(_, payload)
		invite_by_core[payload] = true;
		if module:fire_event("muc-pre-invite", payload) then return false; end
		return {};
	end

	-- Stock's muc-pre-set-affiliation, before an affiliation changes: a handler refuses
	-- with event.allowed = false (and event.error), or gives the data to keep where none
	-- was given.
	function ask.pre_set_affiliation(question, payload)
		local event = {
			room = payload.room; actor = question.actor; jid = question.jid;
			affiliation = question.affiliation; reason = question.reason;
			previous_affiliation = question.previous_affiliation;
			data = question.data; previous_data = payload.room:get_affiliation_data(question.jid);
		};
		module:fire_event("muc-pre-set-affiliation", event);
		if event.allowed == false then
			local err = event.error or { type = "cancel"; condition = "not-allowed" };
			return { refused = { err.type, err.condition } };
		end
		if question.data then return { data = question.data }; end
		if question.affiliation ~= "none" then return { data = event.data }; end
		return {};
	end

	function ask.pre_decline(_, payload)
		if module:fire_event("muc-pre-decline", payload) then return false; end
		return {};
	end

	-- The submitted registration, read with the modules' fields; what the handlers leave
	-- in affiliation_data is kept with the affiliation.
	function ask.registration_submitted(question, payload)
		local fields = module:get_host_items("muc-registration-field");
		local query = payload.stanza.tags[1];
		local form = query and query:get_child("x", "jabber:x:data");
		local submitted = form and dataforms.new(fields):data(form) or {};
		submitted.FORM_TYPE = "http://jabber.org/protocol/muc#register";
		submitted["muc#register_roomnick"] = question.nick;
		payload.submitted_data = submitted;
		payload.affiliation_data = { reserved_nickname = question.nick };
		module:fire_event("muc-registration-submitted", payload);
		return payload.affiliation_data;
	end

	-- A submitted configuration, before the room takes it: the whole form read with the
	-- modules' fields, muc-config-submitted, then the event of each field submitted, as
	-- stock fires them. Of the room's own fields, those whose event reaches the room's step
	-- (priority 0, where stock's own handlers are) go back with the value they have then;
	-- a field whose event a handler stopped is left out.
	local taking; -- the values the room's steps took, for the form being answered
	for _, name in ipairs(host:config_field_events()) do
		hook_own(name, function (event)
			if taking and taking.event == event then taking.values[event.field] = { event.value }; end
		end, 0);
	end
	function ask.config_submitted(question, payload)
		local room, stanza = payload.room, payload.stanza;
		local form = stanza.tags[1] and stanza.tags[1]:get_child("x", "jabber:x:data");
		local layout = {};
		for i, field in ipairs(question.fields) do
			layout[i] = { name = field.name, type = field.type };
		end
		layout = dataforms.new(layout);
		module:fire_event("muc-config-form", { room = room; actor = question.actor; form = layout });
		local fields, present = {}, {}; -- an instant room's empty form, as stock reads it
		if form and form.tags[1] then
			local _;
			fields, _, present = layout:data(form);
		end
		local event = {
			room = room; origin = payload.origin; stanza = stanza;
			fields = fields; status_codes = {}; actor = question.actor;
		};
		function event.update_option(name, field, allowed)
			local new = fields[field];
			if new == nil then return; end
			if allowed and not allowed[new] then return; end
			if new == room["get_"..name](room) then return; end
			event.status_codes["104"] = true;
			room["set_"..name](room, new);
			return true;
		end
		local outer = taking;
		taking = { event = event, values = {} };
		module:fire_event("muc-config-submitted", event);
		for name in pairs(present) do
			event.field, event.value = name, fields[name];
			module:fire_event("muc-config-submitted/"..name, event);
		end
		event.field, event.value = nil, nil;
		local values = taking.values;
		taking = outer;
		local answer = { fields = {}, codes = {} };
		for _, field in ipairs(question.fields) do
			local took = values[field.name];
			if took then
				local rendered = dataforms.new({ { name = field.name, type = field.type } })
					:form({ [field.name] = took[1] }, "submit");
				local texts = {};
				for value in rendered.tags[1]:childtags("value") do texts[#texts + 1] = value:get_text(); end
				answer.fields[#answer.fields + 1] = { field.name, texts };
			end
		end
		for code in pairs(event.status_codes) do
			if tonumber(code) then answer.codes[#answer.codes + 1] = tonumber(code); end
		end
		table.sort(answer.codes);
		return answer;
	end

	local function answer(question, handling)
		local payload = {
			room = rooms.get(question.room); origin = handling.origin; stanza = handling.stanza;
			is_first_session = question.is_first_session; is_last_session = question.is_last_session;
		};
		return ask[question.hook](question, payload);
	end

	-- What the core asked for, answered in `answers`; false if it was asked before (a
	-- bug: the core would ask forever).
	local function answer_step(step, answers, stanza_event)
		if step.load_room or step.avatar_hash then -- a room's records and its avatar: one step
			if step.load_room then
				answers.rooms = answers.rooms or {};
				if answers.rooms[step.load_room] ~= nil then return false; end
				answers.rooms[step.load_room] = storage.read_room(step.load_room);
			end
			if step.avatar_hash then
				answers.avatar_hashes = answers.avatar_hashes or {};
				if answers.avatar_hashes[step.avatar_hash] ~= nil then return false; end
				local ok, hash = pcall(avatar_hash, step.avatar_hash);
				if not ok then
					module:log("error", "could not read the avatar of %s: %s", step.avatar_hash, hash);
				end
				answers.avatar_hashes[step.avatar_hash] = ok and hash or false;
			end
		elseif step.stored_rooms then
			if answers.stored_rooms ~= nil then return false; end
			answers.stored_rooms = storage.read_stored_rooms();
		else
			local kept, key = answers, step.hook;
			if key == "pre_set_affiliation" then -- one answer per user (a muc#admin set changes several)
				answers[key] = answers[key] or {};
				kept, key = answers[key], step.jid;
			end
			if kept[key] ~= nil then return false; end
			-- pcall lets handlers wait (Lua 5.4); a failing one is logged and refuses.
			local ok, verdict = pcall(answer, step, stanza_event);
			if not ok then
				module:log("error", "a module's muc-* handler failed on %s: %s", step.hook, verdict);
				verdict = false;
			end
			kept[key] = verdict;
		end
		return true;
	end

	-- One outcome's writes at a time: while they are written (a storage driver may wait),
	-- the core holds that outcome and what undoes it, so stanzas that arrive meanwhile wait
	-- their turn, in order, and so do calls that may store (the binding says so), where
	-- they may wait; all are taken once the write is confirmed and its outcome carried out.
	local writing, turns = false, {};
	local depth = setmetatable({}, { __mode = "k" }); -- runs under way, by coroutine
	local handle;
	local function take_turns()
		while turns[1] ~= nil and not writing do
			local turn = table.remove(turns, 1);
			if type(turn) == "function" then turn(); else handle(turn); end
		end
	end
	local waiter = require "util.async".waiter;
	local function wait_turn()
		local can_wait, wait, done = pcall(waiter);
		if not can_wait then return false; end
		turns[#turns + 1] = done;
		wait();
		return true;
	end

	local no_stanza = {};

	-- The steps the core leaves to the shim, for a stanza (`stanza_event`) or for a call
	-- (the steps carry it: prosody/src/calls.rs), until it is done: its questions answered
	-- (each once) and the core asked again, its stores written before host:confirm, which
	-- sends what was held back or the error instead, an outcome with events carried out.
	-- Returns the last step: a call's values are its `result`.
	local function run(step, stanza_event, answers)
		if type(step) ~= "table" then return step; end -- most stanzas: done at once
		local thread = coroutine.running();
		depth[thread] = (depth[thread] or 0) + 1;
		while type(step) == "table" do
			if step.carry_out then
				carry_out(step.carry_out);
				break;
			elseif step.stores then
				for _, store in ipairs(step.stores) do rooms.stored(store[1], store[2]); end
				writing = true;
				local err = storage.write(step.stores);
				writing = false;
				step = host:confirm(err, step.call);
			elseif step.wait_turn then -- then the call again, or its refusal (`result`)
				if not wait_turn() then
					module:log("error", "a call that may store came while a write waits, where it cannot wait");
					break;
				end
				rooms.flush();
				step = host:resume(step.call, answers);
			elseif step.result then
				break;
			else
				answers = answers or {};
				if not answer_step(step, answers, stanza_event or no_stanza) then
					module:log("error", "asked twice about %s; dropping the %s",
						step.hook or step.load_room or step.avatar_hash or "the stored rooms",
						step.call and "call" or "stanza");
					break;
				end
				rooms.flush();
				if step.call then
					step = host:resume(step.call, answers);
				else
					step = host:handle(stanza_event.stanza, answers);
				end
			end
		end
		depth[thread] = depth[thread] - 1;
		if depth[thread] == 0 then -- those that waited for this run's write
			depth[thread] = nil;
			take_turns();
		end
		return step;
	end

	-- The handler of the stanza events: the core may ask first, and ask again (each
	-- question once) until it can act; what it stores is written before anything it sends
	-- goes out; an outcome with events is carried out here (run).
	function handle(stanza_event)
		if writing then
			turns[#turns + 1] = stanza_event;
			return true;
		end
		local thread = coroutine.running();
		local outer = handling[thread];
		handling[thread] = stanza_event;
		rooms.flush();
		local patched = rooms.patched_facts(stanza_event.stanza);
		if patched then
			local answers = { patched = patched };
			run(host:handle(stanza_event.stanza, answers), stanza_event, answers);
		else
			run(host:handle(stanza_event.stanza), stanza_event);
		end
		handling[thread] = outer;
		return true;
	end

	-- What modules do with rooms (lua/muc_rs_api.lib.lua) and the admins' commands, as
	-- host:call(method, ...) names them: the binding answers with the call's values, or
	-- with a step first, driven as a stanza's; then the values are the last step's.
	local unpack = table.unpack or unpack;
	local function call_values(step, ...)
		if type(step) ~= "table" then return step, ...; end
		local result = run(step);
		result = type(result) == "table" and result.result;
		if result then return unpack(result, 1, result.n); end
	end
	local function call(...)
		rooms.flush();
		return call_values(host:call(...));
	end

	-- A module that held a leave back fires muc-occupant-left itself once it lets it go:
	-- the room is told, and goes if it is empty and temporary (stock's mod_muc, at -1).
	hook_own("muc-occupant-left", function (event)
		if left_by_core[event] or type(event.room) ~= "table" or event.room.jid == nil then return; end
		call("occupant_left", event.room.jid);
	end, -1);

	-- A module that handles invitations itself (Jitsi Meet's lobby) fires muc-pre-invite
	-- and muc-invite on its own: the room's steps of those events, which stock's handlers
	-- take, run here at stock's priorities, on the event's room and stanza.
	local function fired_by_module(event)
		return not invite_by_core[event] and type(event.room) == "table" and event.room.jid ~= nil
			and type(event.stanza) == "table";
	end
	hook_own("muc-pre-invite", function (event)
		if fired_by_module(event) and call("pre_invite", event.room.jid, event.stanza) then return true; end
	end, 0);
	local function invite_steps(whois)
		return function (event)
			if not fired_by_module(event) then return; end
			local invite = call("invite", event.room.jid, event.stanza, whois);
			if invite then -- the event's stanza, changed in place as stock's handlers do
				local stanza = event.stanza;
				for i = #stanza, 1, -1 do stanza[i] = nil; end
				for i, child in ipairs(invite) do stanza[i] = child; end
				stanza.attr, stanza.tags = invite.attr, invite.tags;
			end
		end
	end
	hook_own("muc-invite", invite_steps("whois"), 50);
	hook_own("muc-invite", invite_steps(nil), 0);

	return { listens = listens, handle = handle, call = call, uninstall = uninstall };
end
