-- Shared helpers for the muc_rs specs: a host with recording callbacks, realistic stanzas,
-- and a canonical form to compare stanzas by meaning (effective namespaces, sorted attrs).
local st = require "util.stanza";
local muc_rs = require "muc_rs";

local H = {
	st = st;
	muc_rs = muc_rs;
	stanza_mt = getmetatable(st.stanza("x"));
	lib = os.getenv("PROSODY_LIB") or "/usr/lib/prosody";
	plugin = os.getenv("MUC_RS_PLUGIN") or "build/plugin";
	domain = "conference.localhost";
};

do
	local f = assert(io.open(H.lib.."/prosody.version"));
	H.server_version = f:read("*a"):gsub("%s+$", "");
	f:close();
	H.is13 = tonumber(H.server_version:match("^(%d+)")) >= 13;
end

-- A host whose callbacks record what they are given. `rec.sent[i]` keeps the `to` at the
-- time of the call, the XML and a clone (the table itself is reused between recipients).
function H.new_host(opts, callbacks)
	local rec = { sent = {}, logs = {}, admin_calls = {} };
	opts = opts or {};
	if opts.server_version == nil then opts.server_version = H.server_version; end
	local cb = {
		send = function (s)
			rec.sent[#rec.sent + 1] = { to = s.attr.to, xml = tostring(s), stanza = st.clone(s), raw = s };
		end;
		log = function (level, message)
			rec.logs[#rec.logs + 1] = { level = level, message = message };
		end;
		is_admin = function (jid)
			rec.admin_calls[#rec.admin_calls + 1] = jid;
			return false;
		end;
		stanza_mt = H.stanza_mt;
	};
	for k, v in pairs(callbacks or {}) do cb[k] = v; end
	return muc_rs.new_host(H.domain, opts, cb), rec;
end

-- The first log line at `level` whose message contains `text` (plain match).
-- host:handle driven as the shim drives it (muc_rs_events.lib.lua), for a host with nothing
-- stored and no vCards: the core's storage questions answered "no records", its avatar
-- questions "none", what it stores confirmed as written. A module question comes back to
-- the caller.
function H.handle(host, stanza)
	local answers = { rooms = {} };
	local step = host:handle(stanza);
	while type(step) == "table" do
		if step.stores then host:confirm(nil); return true; end
		if step.load_room then answers.rooms[step.load_room] = false;
		elseif step.stored_rooms then answers.stored_rooms = {};
		elseif step.avatar_hash then
			answers.avatar_hashes = answers.avatar_hashes or {};
			answers.avatar_hashes[step.avatar_hash] = false;
		else return step; end
		step = host:handle(stanza, answers);
	end
	return step;
end

function H.find_log(rec, level, text)
	for _, line in ipairs(rec.logs) do
		if line.level == level and line.message:find(text, 1, true) then
			return line;
		end
	end
end

-- A stanza as a string that two stanzas share exactly when they mean the same XML.
function H.canon(s, parent_ns)
	local ns = s.attr.xmlns or parent_ns or "jabber:client";
	local keys = {};
	for k in pairs(s.attr) do
		if k ~= "xmlns" then keys[#keys + 1] = k; end
	end
	table.sort(keys);
	local out = { "<", s.name, " {", ns, "}" };
	for _, k in ipairs(keys) do
		out[#out + 1] = " "..k:gsub("\1", "|").."="..("%q"):format(s.attr[k]);
	end
	out[#out + 1] = ">";
	for _, child in ipairs(s) do
		if type(child) == "table" then
			out[#out + 1] = H.canon(child, ns);
		else
			out[#out + 1] = ("%q"):format(child);
		end
	end
	out[#out + 1] = "</"..s.name..">";
	return table.concat(out);
end

-- Errors (as a list of strings) in the shape of a stanza table built by the binding.
function H.shape_errors(s, parent_ns, path, errors)
	errors = errors or {};
	path = (path or "").."/"..tostring(s.name);
	parent_ns = parent_ns or "jabber:client";
	if getmetatable(s) ~= H.stanza_mt then errors[#errors + 1] = path..": no stanza_mt"; end
	if s.attr.xmlns == parent_ns then errors[#errors + 1] = path..": redundant xmlns"; end
	local ns = s.attr.xmlns or parent_ns;
	local t = 0;
	for _, child in ipairs(s) do
		if type(child) == "table" then
			t = t + 1;
			if s.tags[t] ~= child then errors[#errors + 1] = path..": tags["..t.."] is not the child"; end
			H.shape_errors(child, ns, path, errors);
		elseif type(child) ~= "string" then
			errors[#errors + 1] = path..": child of type "..type(child);
		end
	end
	if #s.tags ~= t then errors[#errors + 1] = path..": "..#s.tags.." tags for "..t.." element children"; end
	return errors;
end

-- A MUC join as a client sends it (442 bytes serialized, as in the platform notes).
function H.join_presence()
	return st.presence({ from = "juliet@capulet.lit/balcony", to = "coven@"..H.domain.."/thirdwitch",
			id = "n13mt3", ["xml:lang"] = "en" })
		:tag("x", { xmlns = "http://jabber.org/protocol/muc" })
			:tag("history", { maxstanzas = "20" }):up()
			:tag("password"):text("cauldronburn"):up()
		:up()
		:tag("c", { xmlns = "http://jabber.org/protocol/caps", hash = "sha-1",
			node = "https://example.org/client", ver = "QgayPKawpkPSDYmwT/WM94uAlu0=" }):up()
		:tag("status"):text("Double, double toil and trouble"):up()
		:tag("priority"):text("5"):up()
		:tag("show"):text("chat"):up();
end

-- An owner submitting a room configuration form.
function H.config_iq()
	local iq = st.iq({ from = "crone1@shakespeare.lit/desktop", to = "coven@"..H.domain, id = "create2", type = "set" })
		:tag("query", { xmlns = "http://jabber.org/protocol/muc#owner" })
			:tag("x", { xmlns = "jabber:x:data", type = "submit" })
				:tag("field", { var = "FORM_TYPE" })
					:tag("value"):text("http://jabber.org/protocol/muc#roomconfig"):up()
				:up()
				:tag("field", { var = "muc#roomconfig_roomname" })
					:tag("value"):text("A Dark Cave & <friends>"):up()
				:up()
				:tag("field", { var = "muc#roomconfig_roomadmins" })
					:tag("value"):text("wiccarocks@shakespeare.lit"):up()
					:tag("value"):text("hecate@shakespeare.lit"):up()
				:up();
	return iq;
end

-- A groupchat message with mixed text, xml:lang, nested namespaces and a namespaced attr.
function H.rich_message()
	local m = st.message({ from = "hag66@shakespeare.lit/pda", to = "coven@"..H.domain, type = "groupchat",
			id = "lh2bs617", ["xml:lang"] = "de" })
		:tag("body"):text("Hallo "):text("Welt"):up()
		:tag("body", { ["xml:lang"] = "en" }):text("Hello world"):up()
		:tag("html", { xmlns = "http://jabber.org/protocol/xhtml-im" })
			:tag("body", { xmlns = "http://www.w3.org/1999/xhtml" })
				:tag("p", { style = "font-weight:bold" }):text("Hello "):tag("em"):text("world"):up():text("!"):up()
			:up()
		:up()
		:tag("active", { xmlns = "http://jabber.org/protocol/chatstates" }):up()
		:tag("origin-id", { xmlns = "urn:xmpp:sid:0", id = "de305d54" }):up();
	m.tags[#m.tags].attr["urn:example:attr\1flag"] = "yes";
	return m;
end

-- The same kinds of stanzas as the wire parser hands them over: every element in a
-- non-default namespace carries attr.xmlns, including the children that inherit it.
function H.parsed(xml)
	return assert(require "util.xml".parse(xml));
end

return H;
