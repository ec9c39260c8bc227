-- lua/mod_muc_rs.lua (as assembled in the plugin folder), loaded into a component host with
-- Prosody's real module API, configuration, mod_iq and mod_disco.
local H = require "helpers.muc";
local P = require "helpers.prosody";
local st, muc_rs = H.st, H.muc_rs;
P.modules_dir = H.lib.."/modules";

local shim_path = H.plugin.."/mod_muc_rs.lua";
local juliet = "juliet@capulet.lit/balcony";

-- Records what the shim passes to new_host, and which stanzas reach host:handle.
local captured;
local real_new_host = muc_rs.new_host;
local function spy_new_host(domain, opts, callbacks)
	local host = real_new_host(domain, opts, callbacks);
	captured = { domain = domain, opts = opts, callbacks = callbacks, handled = {} };
	-- Records handle(); every other method is the real host's.
	return setmetatable({
		handle = function (_, stanza, answers)
			-- Once per stanza: the shim calls again with the answers to the core's questions.
			if answers == nil then captured.handled[#captured.handled + 1] = stanza; end
			return host:handle(stanza, answers);
		end;
	}, { __index = function (_, method)
		return function (_, ...) return host[method](host, ...); end;
	end });
end

local function load_component(config, version)
	P.failing_stores, P.waiting_stores = {}, {}; -- every test starts with storage that works
	P.host(H.domain, "component", config);
	prosody.version = version or H.server_version;
	muc_rs.new_host = spy_new_host;
	local ok, err = pcall(P.load, H.domain, "muc_rs", shim_path);
	muc_rs.new_host = real_new_host;
	assert(ok, err);
	P.load(H.domain, "iq", H.lib.."/modules/mod_iq.lua");
	P.load(H.domain, "disco", H.lib.."/modules/mod_disco.lua");
end

local function sent_to(jid)
	local list = {};
	for _, sent in ipairs(P.sent) do
		if sent.to == jid then list[#list + 1] = sent.stanza; end
	end
	return list;
end

-- Juliet (the coven's owner) makes it persistent, named `name` if given.
local function persistent_coven_config(id, name)
	local form = st.iq({ from = juliet, to = "coven@"..H.domain, id = id, type = "set" })
		:query("http://jabber.org/protocol/muc#owner")
		:tag("x", { xmlns = "jabber:x:data", type = "submit" })
			:tag("field", { var = "FORM_TYPE" }):text_tag("value", "http://jabber.org/protocol/muc#roomconfig"):up()
			:tag("field", { var = "muc#roomconfig_persistentroom" }):text_tag("value", "1"):up();
	if name then form:tag("field", { var = "muc#roomconfig_roomname" }):text_tag("value", name):up(); end
	return form;
end

describe("mod_muc_rs", function ()
	it("stays under 150 lines", function ()
		local n = 0;
		for _ in io.lines(shim_path) do n = n + 1; end
		assert.is_true(n < 150, n.." lines");
	end);

	it("refuses to load on a host that is not a component", function ()
		P.host("localhost", "local");
		local ok, err = pcall(P.load, "localhost", "muc_rs", shim_path);
		assert.is_false(ok);
		assert.truthy(tostring(err):find("component", 1, true));
	end);

	it("puts its own folder on package.cpath, once", function ()
		load_component();
		load_component();
		local entry = H.plugin.."/?.so;";
		local _, count = package.cpath:gsub(entry:gsub("%p", "%%%0"), "");
		assert.equal(1, count);
	end);

	it("reads each option with the getter for its kind, and passes the server version", function ()
		load_component({
			name = "Rooms", muc_room_locking = "false", max_history_messages = 40,
			muc_room_lock_timeout = H.is13 and "5 minutes" or 300, restrict_room_creation = "local",
			muc_room_default_language = "en",
		});
		local opts = captured.opts;
		assert.equal(H.domain, captured.domain);
		assert.equal(H.server_version, opts.server_version);
		assert.equal("Rooms", opts.name);
		assert.equal(false, opts.muc_room_locking);
		assert.equal(40, opts.max_history_messages);
		assert.equal(300, opts.muc_room_lock_timeout);
		assert.equal("local", opts.restrict_room_creation);
		assert.equal("en", opts.muc_room_default_language);
		assert.is_nil(opts.muc_room_default_public);
		assert.is_nil(H.find_log({ logs = P.logs }, "warn", "invalid"));
	end);

	it("tells 0.12 from 13 by the module API when the version is not a number (source builds)", function ()
		load_component(nil, "hg:0123456789ab");
		assert.equal(H.is13 and "13.0" or "0.12", captured.opts.server_version);
		assert.is_nil(H.find_log({ logs = P.logs }, "warn", "server version"));
	end);

	it("logs a warning naming an option with an invalid value", function ()
		load_component({ max_history_messages = -1 });
		local line = H.find_log({ logs = P.logs }, "warn", "invalid value");
		assert.truthy(line);
		assert.truthy(line.message:find("max_history_messages", 1, true));
	end);

	it("wires the callbacks to module:send, module:log and the stanza metatable", function ()
		load_component();
		local cb = captured.callbacks;
		assert.equal(H.stanza_mt, cb.stanza_mt);
		cb.log("info", "100% %s literal");
		assert.truthy(H.find_log({ logs = P.logs }, "info", "100% %s literal"));
		cb.send(st.message({ to = juliet, from = H.domain }));
		assert.equal(1, #sent_to(juliet));
	end);

	it("asks "..(H.is13 and "roles (module:could)" or "usermanager.is_admin").." who is a service admin", function ()
		P.admins["admin@localhost"] = H.domain;
		load_component();
		assert.is_true(captured.callbacks.is_admin("admin@localhost"));
		assert.is_false(captured.callbacks.is_admin("juliet@capulet.lit"));
		P.admins["admin@localhost"] = nil;
	end);

	it("hooks the stanza events at priority -2, and disco#items to the service above mod_disco", function ()
		load_component();
		local hooked = {};
		for _, hook in ipairs(P.hooks) do
			if hook.module == "muc_rs" then hooked[hook.event] = hook.priority; end
		end
		for _, kind in ipairs { "presence", "message", "iq" } do
			for _, to in ipairs { "bare", "full", "host" } do
				assert.equal(-2, hooked[kind.."/"..to], kind.."/"..to);
			end
		end
		assert.equal(1, hooked["iq-get/host/http://jabber.org/protocol/disco#items:query"]);
	end);

	it("declares the disco identity and feature, which mod_disco answers for the service", function ()
		load_component({ name = "Rooms" });
		assert.truthy(P.deps.disco);
		local iq = st.iq({ from = juliet, to = H.domain, id = "d1", type = "get" })
			:query("http://jabber.org/protocol/disco#info");
		assert.is_true(P.fire(H.domain, "iq/host", iq));
		assert.equal(0, #captured.handled);
		local reply = sent_to(juliet)[1];
		assert.equal("result", reply.attr.type);
		local query = reply:get_child("query", "http://jabber.org/protocol/disco#info");
		local identity = query:get_child("identity");
		assert.same({ "conference", "text", "Rooms" }, { identity.attr.category, identity.attr.type, identity.attr.name });
		local features = {};
		for feature in query:childtags("feature") do features[feature.attr.var] = true; end
		assert.truthy(features["http://jabber.org/protocol/muc"]);
	end);

	it("hands disco#items to the service to the core", function ()
		load_component();
		local iq = st.iq({ from = juliet, to = H.domain, id = "d2", type = "get" })
			:query("http://jabber.org/protocol/disco#items");
		assert.is_true(P.fire(H.domain, "iq/host", iq));
		assert.equal(1, #captured.handled);
		assert.equal(1, #sent_to(juliet));
		assert.equal("d2", sent_to(juliet)[1].attr.id);
	end);

	it("hands iqs of any namespace that nothing else answered to the core (bare, host)", function ()
		load_component();
		for i, event in ipairs { "iq/bare", "iq/host" } do
			local iq = st.iq({ from = juliet, to = i == 1 and "coven@"..H.domain or H.domain, id = "u"..i, type = "set" })
				:tag("query", { xmlns = "urn:example:unknown" }):up();
			assert.is_true(P.fire(H.domain, event, iq));
			local reply = sent_to(juliet)[i];
			assert.equal("error", reply.attr.type);
			assert.equal("u"..i, reply.attr.id);
		end
		assert.equal(2, #captured.handled);
	end);

	it("hands presence and messages to rooms, occupants and the service to the core", function ()
		load_component();
		local join = H.join_presence();
		assert.is_true(P.fire(H.domain, "presence/full", join));
		assert.equal(join, captured.handled[1]);
		assert.truthy(#sent_to(juliet) >= 1);
		local m = st.message({ from = juliet, to = "coven@"..H.domain, type = "groupchat" }):body("hi");
		assert.is_true(P.fire(H.domain, "message/bare", m));
		assert.is_true(P.fire(H.domain, "message/host", st.message({ from = juliet, to = H.domain }):body("hi")));
		assert.is_true(P.fire(H.domain, "presence/host", st.presence({ from = juliet, to = H.domain })));
		assert.equal(4, #captured.handled);
	end);

	describe("renders deliveries", function ()
		local body = "hi <&> 'q' \"d\"";
		-- A room with two occupants (one with a hostile resource) and a message to both.
		local function traffic()
			load_component({ muc_room_locking = false });
			P.fire(H.domain, "presence/full", H.join_presence());
			P.fire(H.domain, "presence/full", st.presence({ from = "romeo@montague.lit/o'r<&>", to = "coven@"..H.domain.."/romeo" })
				:tag("x", { xmlns = "http://jabber.org/protocol/muc" }):text_tag("password", "cauldronburn"):up());
			P.fire(H.domain, "message/bare", st.message({ from = juliet, to = "coven@"..H.domain, type = "groupchat",
				id = "a'b\"c" }):body(body));
		end
		-- The same opening tag, attributes in any order (stock's follow table order).
		local function canon_tag(tag)
			local name, rest = assert(tag:match("^<([^%s>]+)(.*)>$"));
			local attrs = {};
			for attr in rest:gmatch("%s+([^=]+='[^']*')") do attrs[#attrs + 1] = attr; end
			table.sort(attrs);
			return name.." "..table.concat(attrs, " ");
		end

		it("as Prosody would, the XML and the top tag, for each recipient", function ()
			traffic();
			local message_to = {};
			for _, sent in ipairs(P.sent) do
				assert.is_true(sent.own_top_tag);
				-- sent.stanza is a copy (st.clone keeps no rendering): Prosody's own serializing.
				assert.equal(H.canon(sent.stanza), H.canon(H.parsed(sent.xml)));
				assert.equal(canon_tag(H.stanza_mt.top_tag(sent.stanza)), canon_tag(sent.top_tag));
				if sent.stanza:get_child_text("body") == body then message_to[#message_to + 1] = sent.to; end
			end
			table.sort(message_to);
			assert.same({ juliet, "romeo@montague.lit/o'r<&>" }, message_to);
		end);

		it("that someone changed since as they are now", function ()
			traffic();
			local changes = {
				function (s) s:tag("delay", { xmlns = "urn:xmpp:delay", stamp = "2026-11-24T00:00:00Z" }):up(); end;
				function (s) s.attr.type = "chat"; end;
				function (s) s.attr.xmlns = "jabber:client"; end;
				function (s) s.attr.id = nil; end;
				function (s) s[1] = st.stanza("body"):text("replaced"); s.tags[1] = s[1]; end;
			};
			for i, change in ipairs(changes) do
				local sent = P.sent[#P.sent - (i % 2)]; -- the message, as sent to one or the other
				local s = sent.raw;
				s.attr.to = sent.to;
				change(s);
				assert.equal(H.canon(st.clone(s)), H.canon(H.parsed(tostring(s))), "change #"..i);
			end
		end);
	end);

	it("hands iq results to the service to the core (mod_iq finds no waiting handler)", function ()
		load_component();
		local result = st.iq({ from = juliet, to = H.domain, id = "r1", type = "result" });
		assert.is_true(P.fire(H.domain, "iq/host", result));
		assert.equal(1, #captured.handled);
	end);

	it("undoes a change whose write failed, and answers the owner with an error", function ()
		P.stores = {};
		load_component();
		local room = "coven@"..H.domain;
		assert.is_true(P.fire(H.domain, "presence/full", H.join_presence()));
		local configure = persistent_coven_config;
		local function room_name()
			local info = st.iq({ from = juliet, to = room, id = "i", type = "get" })
				:query("http://jabber.org/protocol/disco#info");
			P.sent = {};
			assert.is_true(P.fire(H.domain, "iq/bare", info));
			return sent_to(juliet)[1]:get_child("query", "http://jabber.org/protocol/disco#info"):get_child("identity").attr.name;
		end
		assert.is_true(P.fire(H.domain, "iq/bare", configure("c1", "The Coven")));
		assert.equal("The Coven", P.stores[H.domain.."/config"]["coven"]._data.name);

		P.failing_stores[H.domain.."/config"] = "disk full";
		P.sent = {};
		assert.is_true(P.fire(H.domain, "iq/bare", configure("c2", "New Name")));
		local replies = sent_to(juliet);
		assert.equal(1, #replies, "only the error: no configuration-change notice");
		assert.equal("error", replies[1].attr.type);
		assert.equal("c2", replies[1].attr.id);
		assert.is_truthy(replies[1]:get_child("error"):get_child("internal-server-error", "urn:ietf:params:xml:ns:xmpp-stanzas"));
		assert.equal("The Coven", room_name(), "the live room is as it was");
		assert.equal("The Coven", P.stores[H.domain.."/config"]["coven"]._data.name, "and so is storage");

		P.failing_stores = {};
		P.sent = {};
		assert.is_true(P.fire(H.domain, "iq/bare", configure("c3", "New Name")));
		assert.equal("result", sent_to(juliet)[1].attr.type);
		assert.equal("New Name", room_name());
		assert.equal("New Name", P.stores[H.domain.."/config"]["coven"]._data.name);
	end);

	it("handles stanzas that arrive while a write waits once it is confirmed, in order", function ()
		P.stores = {};
		load_component();
		local room = "coven@"..H.domain;
		assert.is_true(P.fire(H.domain, "presence/full", H.join_presence()));
		local configure = persistent_coven_config("c1");
		P.waiting_stores[H.domain.."/config"] = true;
		P.sent = {};
		local writer = coroutine.create(function () return P.fire(H.domain, "iq/bare", configure); end);
		assert.is_true(coroutine.resume(writer));
		assert.equal("suspended", coroutine.status(writer), "the write waits");
		local hello = st.message({ from = juliet, to = room, type = "groupchat", id = "m1" }):tag("body"):text("hello"):up();
		assert.is_true(P.fire(H.domain, "message/bare", hello));
		assert.same({}, sent_to(juliet), "nothing goes out before the write is confirmed");
		P.waiting_stores = {};
		assert.is_true(coroutine.resume(writer));
		assert.equal("dead", coroutine.status(writer));
		local replies = sent_to(juliet);
		assert.equal("result", replies[1].attr.type, "the owner hears back first");
		assert.equal("c1", replies[1].attr.id);
		assert.equal("hello", replies[#replies]:get_child_text("body"), "then the message that waited");
		assert.is_true(P.stores[H.domain.."/config"]["coven"]._data.persistent);
	end);

	it("keeps persistent rooms in stock's stores, where a reloaded module finds them", function ()
		P.stores = {};
		load_component();
		local room = "coven@"..H.domain;
		assert.is_true(P.fire(H.domain, "presence/full", H.join_presence()));
		local form = persistent_coven_config("c1", "The Coven");
		assert.is_true(P.fire(H.domain, "iq/bare", form));
		local config = P.stores[H.domain.."/config"]["coven"];
		assert.is_table(config, "stored under the room's node in the config store");
		assert.equal(room, config._jid);
		assert.equal("The Coven", config._data.name);
		assert.equal("owner", config["juliet@capulet.lit"]);
		assert.is_true(P.stores[H.domain.."/persistent"][""][room]);

		-- The module loaded again (a restart) answers from storage: the room is not new.
		load_component();
		local info = st.iq({ from = juliet, to = room, id = "i1", type = "get" })
			:query("http://jabber.org/protocol/disco#info");
		assert.is_true(P.fire(H.domain, "iq/bare", info));
		local reply = sent_to(juliet)[1];
		assert.equal("result", reply.attr.type);
		assert.equal("The Coven", reply:get_child("query", "http://jabber.org/protocol/disco#info"):get_child("identity").attr.name);
	end);
end);
