-- The Lua-facing API of muc_rs.so: module table, host creation and options, handle(),
-- the per-recipient fan-out, the panic guard and callback failures.
-- Behaviour asserted here is what the core always does (e.g. an iq of an unknown namespace
-- to the service is answered with an error to its sender), so it holds for the stub core
-- and for the real one.
local H = require "helpers.muc";
local st, muc_rs = H.st, H.muc_rs;

local function unknown_iq(id)
	return st.iq({ from = "juliet@capulet.lit/balcony", to = H.domain, id = id or "u1", type = "get" })
		:tag("query", { xmlns = "urn:example:unknown" }):up();
end

describe("muc_rs module", function ()
	it("has a version and lists its options with their kinds", function ()
		assert.matches("^%d+%.%d+%.%d+", muc_rs.version);
		local kinds = {};
		for _, option in ipairs(muc_rs.options()) do kinds[option.name] = option.kind; end
		assert.equal("boolean", kinds.muc_room_locking);
		assert.equal("period", kinds.muc_room_lock_timeout);
		assert.equal("integer", kinds.max_history_messages);
		assert.equal("string", kinds.name);
		assert.equal("any", kinds.restrict_room_creation);
	end);

	it("creates a host from options without complaint", function ()
		local host, rec = H.new_host({ name = "Chatrooms", muc_room_locking = false, muc_room_lock_timeout = 600,
			max_history_messages = 50, restrict_room_creation = "local" });
		assert.truthy(host);
		assert.same({}, rec.logs);
		assert.same({}, rec.admin_calls); -- is_admin is only asked when the core needs it
	end);

	it("takes what Prosody's getters return: math.huge periods, whole floats", function ()
		local _, rec = H.new_host({ muc_room_lock_timeout = math.huge, max_history_messages = 20.0 });
		assert.same({}, rec.logs);
	end);

	it("warns, naming them, about options with invalid values, and still works", function ()
		local host, rec = H.new_host({ muc_room_locking = "yes", max_history_messages = -3,
			muc_room_default_history_length = 2.5, restrict_room_creation = { "x" } });
		local line = H.find_log(rec, "warn", "invalid value");
		assert.truthy(line);
		for _, name in ipairs { "muc_room_locking", "max_history_messages", "muc_room_default_history_length",
				"restrict_room_creation" } do
			assert.truthy(line.message:find(name, 1, true), name);
		end
		assert.is_true(H.handle(host, unknown_iq()));
		assert.equal(1, #rec.sent);
	end);

	it("warns when the server version cannot be read", function ()
		local _, rec = H.new_host({ server_version = "hg:0123456789ab" });
		assert.truthy(H.find_log(rec, "warn", "server version"));
	end);

	it("raises for an invalid domain or missing callbacks (a configuration error)", function ()
		assert.has_error(function () muc_rs.new_host("not a@domain@", {}, { send = print, log = print, stanza_mt = H.stanza_mt }) end);
		assert.has_error(function () muc_rs.new_host(H.domain, {}, { log = print, stanza_mt = H.stanza_mt }) end);
		assert.has_error(function () muc_rs.new_host(H.domain, {}, { send = print, log = print }) end);
	end);
end);

describe("host:handle", function ()
	it("answers an iq of an unknown namespace to the service with an error to its sender", function ()
		local host, rec = H.new_host();
		assert.is_true(H.handle(host, unknown_iq("q1")));
		assert.equal(1, #rec.sent);
		local reply = rec.sent[1].stanza;
		assert.equal("juliet@capulet.lit/balcony", rec.sent[1].to);
		assert.equal("error", reply.attr.type);
		assert.equal("q1", reply.attr.id);
		assert.equal(H.domain, reply.attr.from);
		assert.equal("iq", reply.name);
		assert.equal("cancel", (reply:get_error()));
		assert.same({}, H.shape_errors(rec.sent[1].raw));
	end);

	it("never answers an error with an error", function ()
		local host, rec = H.new_host();
		local err = st.error_reply(st.message({ from = H.domain, to = "juliet@capulet.lit/balcony" }), "cancel", "gone");
		err.attr.from, err.attr.to = "juliet@capulet.lit/balcony", "coven@"..H.domain;
		assert.is_true(H.handle(host, err));
		assert.equal(0, #rec.sent);
	end);

	it("drops a stanza without a from address, with a log line", function ()
		local host, rec = H.new_host();
		assert.is_true(H.handle(host, st.iq({ to = H.domain, id = "x", type = "get" }):tag("query", { xmlns = "urn:x" })));
		assert.equal(0, #rec.sent);
		assert.truthy(H.find_log(rec, "debug", "without a from"));
	end);

	it("answers a malformed stanza with bad-request, never raising", function ()
		local host, rec = H.new_host();
		local iq = unknown_iq("m1");
		iq.tags[1].attr["bad name"] = "x";
		assert.is_true(H.handle(host, iq));
		assert.truthy(H.find_log(rec, "warn", "malformed"));
		assert.equal(1, #rec.sent);
		local _, condition = rec.sent[1].stanza:get_error();
		assert.equal("bad-request", condition);
		assert.equal("m1", rec.sent[1].stanza.attr.id);

		local m = st.message({ from = "juliet@capulet.lit/balcony", to = "coven@"..H.domain, type = "groupchat" });
		m[1] = function () end;
		assert.is_true(H.handle(host, m));
		assert.equal(2, #rec.sent);
	end);

	it("drops what cannot be answered: garbage roots and non-tables", function ()
		local host, rec = H.new_host();
		assert.is_true(H.handle(host, setmetatable({ name = 5, attr = { from = "a@b/c" }, tags = {} }, H.stanza_mt)));
		assert.is_true(H.handle(host, { attr = { from = "a@b/c" } }));
		assert.is_false(H.handle(host, "presence"));
		assert.equal(0, #rec.sent);
		assert.truthy(H.find_log(rec, "warn", "stanza table"));
	end);

	it("logs a failing send callback and carries on", function ()
		local calls = 0;
		local host, rec = H.new_host(nil, { send = function () calls = calls + 1; error("route failed"); end });
		assert.is_true(H.handle(host, unknown_iq()));
		assert.equal(1, calls);
		local line = H.find_log(rec, "error", "route failed");
		assert.truthy(line);
		assert.falsy(line.message:find("traceback", 1, true));
		assert.is_true(H.handle(host, unknown_iq()));
		assert.equal(2, calls);
	end);

	it("survives a failing log callback", function ()
		local host = H.new_host({ muc_room_locking = "bad" }, { log = function () error("no log today") end });
		assert.is_true(H.handle(host, unknown_iq()));
	end);

	it("can be re-entered from send (a reply routed back to the same host)", function ()
		local host, rec;
		local depth = 0;
		host, rec = H.new_host(nil, {
			send = function (s)
				rec.sent[#rec.sent + 1] = { to = s.attr.to, stanza = st.clone(s) };
				if depth == 0 then
					depth = 1;
					assert.is_true(H.handle(host, unknown_iq("inner")));
				end
			end;
		});
		assert.is_true(H.handle(host, unknown_iq("outer")));
		assert.equal(2, #rec.sent);
		assert.equal("outer", rec.sent[1].stanza.attr.id);
		assert.equal("inner", rec.sent[2].stanza.attr.id);
		assert.is_nil(H.find_log(rec, "error", ""));
	end);
end);

describe("fan-out", function ()
	it("sets attr.to for each recipient in turn on one real stanza", function ()
		local host, rec = H.new_host();
		local recipients = {};
		for i = 1, 100 do recipients[i] = ("user%d@capulet.lit/r%d"):format(i, i); end
		local presence = H.join_presence();
		presence.attr.to = nil;
		assert.is_true(host:_deliver(presence, recipients));
		assert.equal(100, #rec.sent);
		for i, sent in ipairs(rec.sent) do
			assert.equal(recipients[i], sent.to);
			assert.equal(recipients[i], sent.stanza.attr.to);
			assert.truthy(sent.xml:find("to='"..recipients[i].."'", 1, true));
			assert.equal(rec.sent[1].raw, sent.raw); -- built once, reused
		end
		local out = rec.sent[100].stanza;
		assert.same({}, H.shape_errors(rec.sent[1].raw));
		assert.equal("cauldronburn", out:get_child("x", "http://jabber.org/protocol/muc"):get_child_text("password"));
		presence.attr.to = recipients[100];
		assert.equal(H.canon(presence), H.canon(out));
	end);

	describe("in a big room, an occupant's presence", function ()
		local MUC = "http://jabber.org/protocol/muc";
		local room = "coven@"..H.domain;
		local function join(host, i, nick, payload)
			local p = st.presence({ from = ("u%d@capulet.lit/r"):format(i), to = room.."/"..nick })
				:tag("x", { xmlns = MUC }):tag("history", { maxstanzas = "0" }):up():up();
			if payload then p:text_tag("status", payload); end
			H.handle(host, p);
		end
		-- What `nick`'s presence looked like when `to` got it (the raw table, and its XML then).
		local function presence_to(rec, to, nick)
			for _, sent in ipairs(rec.sent) do
				if sent.to == to and sent.stanza.attr.from == room.."/"..nick and sent.stanza.name == "presence" then
					return sent;
				end
			end
		end
		local function big_room()
			local host, rec = H.new_host({ muc_room_locking = false });
			for i = 1, 20 do join(host, i, "n"..i); end
			return host, rec;
		end

		it("is built once and sent to each newcomer, with its own to", function ()
			local host, rec = big_room();
			join(host, 21, "late1");
			join(host, 22, "late2");
			local first, second = presence_to(rec, "u21@capulet.lit/r", "n5"), presence_to(rec, "u22@capulet.lit/r", "n5");
			assert.truthy(first and second);
			assert.equal(first.raw, second.raw);
			assert.truthy(first.xml:find("to='u21@capulet.lit/r'", 1, true));
			assert.truthy(second.xml:find("to='u22@capulet.lit/r'", 1, true));
			assert.equal((first.xml:gsub("u21@", "u22@")), second.xml);
		end);

		it("is built anew once it changed, or once someone changed the table sent", function ()
			local host, rec = big_room();
			join(host, 21, "late1");
			join(host, 5, "n5", "brewing"); -- n5 changes its presence
			join(host, 22, "late2");
			local before, after = presence_to(rec, "u21@capulet.lit/r", "n5"), presence_to(rec, "u22@capulet.lit/r", "n5");
			assert.are_not.equal(before.raw, after.raw);
			assert.equal("brewing", after.stanza:get_child_text("status"));

			-- A module that adds to a stanza it was given must not leak into later ones.
			local n6 = presence_to(rec, "u22@capulet.lit/r", "n6");
			n6.raw:tag("delay", { xmlns = "urn:xmpp:delay" }):up();
			join(host, 23, "late3");
			local again = presence_to(rec, "u23@capulet.lit/r", "n6");
			assert.are_not.equal(n6.raw, again.raw);
			assert.is_nil(again.stanza:get_child("delay", "urn:xmpp:delay"));
		end);
	end);

	it("refuses invalid recipients without raising", function ()
		local host, rec = H.new_host();
		local ok, err = host:_deliver(st.message({ from = H.domain }), { "@@@" });
		assert.is_nil(ok);
		assert.truthy(err);
		assert.equal(0, #rec.sent);
	end);
end);

describe("panic guard", function ()
	local function panic_iq(kind)
		return st.iq({ from = "juliet@capulet.lit/balcony", to = "coven@"..H.domain, id = "p1", type = kind or "get" })
			:tag("panic", { xmlns = muc_rs._test_ns }):up();
	end

	it("turns a panic into an error log line and internal-server-error, and the host keeps working", function ()
		local host, rec = H.new_host({ _test_panic = true });
		assert.is_true(H.handle(host, panic_iq()));
		local line = H.find_log(rec, "error", "panic");
		assert.truthy(line);
		assert.truthy(line.message:find("forced panic", 1, true));
		assert.equal(1, #rec.sent);
		local reply = rec.sent[1].stanza;
		assert.equal("juliet@capulet.lit/balcony", rec.sent[1].to);
		assert.equal("p1", reply.attr.id);
		local kind, condition = reply:get_error();
		assert.equal("wait", kind);
		assert.equal("internal-server-error", condition);

		assert.is_true(H.handle(host, unknown_iq("after")));
		assert.equal(2, #rec.sent);
		assert.equal("after", rec.sent[2].stanza.attr.id);
	end);

	it("contains a panic while a room is in use: the room and its occupant keep working", function ()
		local host, rec = H.new_host({ _test_panic = true, muc_room_locking = false });
		local room = "coven@"..H.domain;
		local juliet = "juliet@capulet.lit/balcony";
		assert.is_true(H.handle(host, H.join_presence()));
		local joined = #rec.sent;
		assert.truthy(joined > 0);

		-- A panicking groupchat message and presence, from the occupant, to its room.
		local message = st.message({ from = juliet, to = room, id = "pm1", type = "groupchat" })
			:tag("body"):text("boom"):up()
			:tag("panic", { xmlns = muc_rs._test_ns }):up();
		assert.is_true(H.handle(host, message));
		local presence = st.presence({ from = juliet, to = room.."/thirdwitch", id = "pp1" })
			:tag("panic", { xmlns = muc_rs._test_ns }):up();
		assert.is_true(H.handle(host, presence));
		assert.equal(joined + 2, #rec.sent);
		for i, name in ipairs({ "message", "presence" }) do
			local sent = rec.sent[joined + i];
			assert.equal(juliet, sent.to);
			assert.equal(name, sent.stanza.name);
			local kind, condition = sent.stanza:get_error();
			assert.equal("wait", kind);
			assert.equal("internal-server-error", condition);
		end

		-- The room is still there, Juliet still owns it and still gets its groupchat.
		local get = st.iq({ from = juliet, to = room, id = "cfg", type = "get" })
			:tag("query", { xmlns = "http://jabber.org/protocol/muc#owner" }):up();
		assert.is_true(H.handle(host, get));
		local reply = rec.sent[#rec.sent];
		assert.equal("cfg", reply.stanza.attr.id);
		assert.equal("result", reply.stanza.attr.type);
		local before = #rec.sent;
		assert.is_true(H.handle(host, st.message({ from = juliet, to = room, id = "m2", type = "groupchat" })
			:tag("body"):text("still here"):up()));
		local echoed = rec.sent[before + 1];
		assert.truthy(echoed);
		assert.equal(juliet, echoed.to);
		assert.equal("m2", echoed.stanza.attr.id);
		assert.equal("groupchat", echoed.stanza.attr.type);
		local panics = 0;
		for _, line in ipairs(rec.logs) do
			if line.level == "error" and line.message:find("panic", 1, true) then panics = panics + 1; end
		end
		assert.equal(2, panics);
	end);

	it("sends no error reply to a result or an error", function ()
		local host, rec = H.new_host({ _test_panic = true });
		assert.is_true(H.handle(host, panic_iq("result")));
		assert.is_true(H.handle(host, panic_iq("error")));
		assert.equal(0, #rec.sent);
		assert.truthy(H.find_log(rec, "error", "panic"));
	end);

	it("is off unless the host was created with _test_panic", function ()
		local host, rec = H.new_host();
		assert.is_true(H.handle(host, panic_iq()));
		assert.is_nil(H.find_log(rec, "error", "panic"));
	end);
end);

describe("service admins", function ()
	it("are asked about once per occupant, outside the core, and again after forget_service_admins", function ()
		local admins, calls = { ["hecate@capulet.lit"] = true }, {};
		local host, rec = H.new_host({ muc_room_locking = false, component_admins_as_room_owners = true },
			{ is_admin = function (jid)
				calls[#calls + 1] = jid;
				return admins[jid] == true;
			end });
		local room = "coven@"..H.domain;
		local hecate = "hecate@capulet.lit/cave";
		assert.is_true(H.handle(host, H.join_presence()));
		calls = {};
		assert.is_true(H.handle(host, st.presence({ from = hecate, to = room.."/Hecate" })
			:tag("x", { xmlns = "http://jabber.org/protocol/muc" }):tag("password"):text("cauldronburn"):up():up()));
		assert.same({ "hecate@capulet.lit" }, calls);
		local function affiliation_seen(to, from, since)
			for i = since or 1, #rec.sent do
				local sent = rec.sent[i];
				if sent.to == to and sent.stanza.attr.from == from and sent.stanza.name == "presence" then
					return sent.stanza:get_child("x", "http://jabber.org/protocol/muc#user"):get_child("item").attr.affiliation;
				end
			end
		end
		assert.equal("owner", affiliation_seen(hecate, room.."/Hecate"));

		-- In the room, her status is known: her messages ask nothing.
		calls = {};
		assert.is_true(H.handle(host, st.message({ from = hecate, to = room, type = "groupchat", id = "g1" })
			:tag("body"):text("double, double"):up()));
		assert.same({}, calls);

		-- No longer an admin, and the host told: asked again, and she is an owner no more.
		admins["hecate@capulet.lit"] = nil;
		host:forget_service_admins();
		local before = #rec.sent;
		assert.is_true(H.handle(host, st.presence({ from = hecate, to = room.."/Hecate" }):tag("show"):text("away"):up()));
		assert.truthy(#calls > 0);
		assert.equal("none", affiliation_seen("juliet@capulet.lit/balcony", room.."/Hecate", before + 1));
		assert.same({}, rec.admin_calls);
	end);
end);
