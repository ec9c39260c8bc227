-- Prosody stanza table ⇄ minidom Element, through muc_rs._roundtrip (the same code the
-- host uses on the way in and out).
local H = require "helpers.muc";
local st, muc_rs = H.st, H.muc_rs;

local function roundtrip(stanza)
	local out, err = muc_rs._roundtrip(stanza, H.stanza_mt);
	assert(out, err);
	return out;
end

local function assert_same(stanza)
	local out = roundtrip(stanza);
	assert.same({}, H.shape_errors(out));
	assert.equal(H.canon(stanza), H.canon(out));
	return out;
end

describe("stanza conversion", function ()
	it("keeps a MUC join presence (muc x, caps, xml:lang)", function ()
		local out = assert_same(H.join_presence());
		assert.is_nil(out.attr.xmlns);
		assert.equal("en", out.attr["xml:lang"]);
		local x = out:get_child("x", "http://jabber.org/protocol/muc");
		assert.truthy(x);
		-- Children that inherit their namespace carry no xmlns, as in stanzas stock mod_muc
		-- builds with :tag(), so they are found by name alone (Prosody's get_child rules).
		assert.is_nil(x.tags[1].attr.xmlns);
		assert.equal("cauldronburn", x:get_child_text("password"));
	end);

	it("keeps an iq with a data form, escaping included", function ()
		local out = assert_same(H.config_iq());
		local form = out:get_child("query", "http://jabber.org/protocol/muc#owner"):get_child("x", "jabber:x:data");
		assert.equal(3, #form.tags);
		assert.equal("A Dark Cave & <friends>", form.tags[2]:get_child_text("value"));
		assert.truthy(tostring(out):find("A Dark Cave &amp; &lt;friends&gt;", 1, true));
	end);

	it("keeps text nodes in order, xml:lang, nested namespaces and namespaced attributes", function ()
		local m = H.rich_message();
		local out = assert_same(m);
		assert.equal("Hallo ", out.tags[1][1]);
		assert.equal("Welt", out.tags[1][2]);
		assert.equal("en", out.tags[2].attr["xml:lang"]);
		local p = out.tags[3].tags[1].tags[1];
		assert.equal("http://www.w3.org/1999/xhtml", out.tags[3].tags[1].attr.xmlns);
		assert.same({ "Hello ", p.tags[1], "!" }, { p[1], p[2], p[3] });
		assert.equal("yes", out.tags[5].attr["urn:example:attr\1flag"]);
		assert.equal(tostring(m):len(), tostring(out):len());
	end);

	it("takes stanzas as the wire parser builds them (xmlns on every namespaced element)", function ()
		local parsed = H.parsed([[<message xmlns='jabber:client' from='a@b/c' to='r@conference.localhost' type='groupchat'>]]
			..[[<body>hi</body><x xmlns='http://jabber.org/protocol/muc#user'><invite to='d@e'>]]
			..[[<reason>come</reason></invite></x></message>]]);
		assert.equal("http://jabber.org/protocol/muc#user", parsed.tags[2].tags[1].attr.xmlns);
		local out = assert_same(parsed);
		assert.is_nil(out.attr.xmlns); -- jabber:client root
		assert.is_nil(out.tags[2].tags[1].attr.xmlns); -- same as its parent
		assert.equal("d@e", out:get_child("x", "http://jabber.org/protocol/muc#user"):get_child("invite").attr.to);
	end);

	it("reads a root without xmlns as jabber:client and keeps other root namespaces", function ()
		local out = roundtrip(st.stanza("presence", { xmlns = "jabber:server", from = "a@b" }));
		assert.equal("jabber:server", out.attr.xmlns);
		out = roundtrip(st.stanza("presence", { xmlns = "jabber:client" }));
		assert.is_nil(out.attr.xmlns);
	end);

	it("gives real Prosody stanzas: tostring, st.clone, get_child, st.reply all work", function ()
		local out = roundtrip(H.join_presence());
		assert.equal(#tostring(H.join_presence()), #tostring(out));
		assert.equal(H.canon(out), H.canon(st.clone(out)));
		assert.equal("coven@conference.localhost/thirdwitch", st.reply(out).attr.from);
		assert.truthy(st.is_stanza(out.tags[1]));
		assert.equal("chat", out:get_child_text("show"));
	end);

	it("skips xmlns:prefix declarations and takes numbers as attribute values", function ()
		local s = st.message({ from = "a@b/c" });
		s.attr["xmlns:foo"] = "urn:foo";
		s.attr.id = 42;
		local out = roundtrip(s);
		assert.is_nil(out.attr["xmlns:foo"]);
		assert.equal("42", out.attr.id);
	end);

	describe("rejects without raising", function ()
		local function rejected(s, why)
			local out, err = muc_rs._roundtrip(s, H.stanza_mt);
			assert.is_nil(out);
			assert.truthy(err and err:find(why, 1, true), err);
		end
		it("an attribute with an invalid name", function ()
			local s = st.message({ from = "a@b/c" });
			s.attr["bad name"] = "x";
			rejected(s, "invalid attribute name");
		end);
		it("an invalid element name, deep down", function ()
			local s = st.message({ from = "a@b/c" }):tag("x", { xmlns = "urn:x" }):tag("ok"):up():up();
			s.tags[1].tags[1].name = "not<ok";
			rejected(s, "invalid element name");
		end);
		it("a garbage child (not a table nor a string)", function ()
			local s = st.message({ from = "a@b/c" });
			s[1] = 12; s[2] = st.stanza("body");
			rejected(s, "child #1");
		end);
		it("a non-string attribute value and a non-table attr", function ()
			local s = st.message({ from = "a@b/c" });
			s.attr.type = true;
			rejected(s, "attribute \"type\"");
			rejected(setmetatable({ name = "message", attr = "x", tags = {} }, H.stanza_mt), "attr is a string");
		end);
		it("invalid UTF-8 in text", function ()
			local s = st.message({ from = "a@b/c" }):tag("body"):up();
			s.tags[1][1] = "\255\254";
			rejected(s, "not UTF-8");
		end);
		it("a table that contains itself", function ()
			local s = st.message({ from = "a@b/c" });
			s[1] = s;
			rejected(s, "nested deeper");
		end);
	end);
end);
