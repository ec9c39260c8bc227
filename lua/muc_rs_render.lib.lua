-- Prosody serializes a stanza once per recipient (util.stanza's __tostring walks the whole
-- table) and renders its opening tag for a debug line on every delivery, even with debug
-- logs off (top_tag clones the root first). Deliveries from muc_rs carry their XML rendered
-- once by the core: `muc_rs_rendered` holds it cut around the value of `to`, with the root's
-- attributes and children as they were then. Both only splice in the recipient; a stanza
-- that someone changed since (Prosody's modules copy before they change) is rendered the
-- usual way.
local st = require "util.stanza";
local stanza_mt, xml_escape = st.stanza_mt, st.xml_escape;

-- The rendering, if the stanza has one and its root attributes are still the ones rendered
-- (all but `to`, which is spliced in). This runs twice per delivery: kept lean.
local function rendered_root(stanza)
	local r = rawget(stanza, "muc_rs_rendered");
	if r == nil then return nil; end
	local attr = stanza.attr;
	if attr.to == nil then return nil; end
	local was, seen = r.attr, 0;
	for k, v in next, attr do
		if was[k] ~= v and k ~= "to" then return nil; end
		seen = seen + 1;
	end
	if seen ~= r.attrs + 1 then return nil; end
	return r;
end

-- The opening tag depends on the root's attributes only.
local function top_tag(stanza)
	local r = rendered_root(stanza);
	if r == nil then return stanza_mt.top_tag(stanza); end
	return r.head..xml_escape(stanza.attr.to).."'>";
end

-- The whole stanza also on its children: still the same ones.
local prosody_tostring = stanza_mt.__tostring;
local function render_stanza(stanza)
	local r = rendered_root(stanza);
	if r == nil then return prosody_tostring(stanza); end
	local n = #r;
	if rawlen(stanza) ~= n then return prosody_tostring(stanza); end
	for i = 1, n do
		if rawget(stanza, i) ~= r[i] then return prosody_tostring(stanza); end
	end
	return r.head..xml_escape(stanza.attr.to)..r.tail;
end
stanza_mt.__tostring = render_stanza;

return {
	-- The method deliveries carry in place of the metatable's.
	top_tag = top_tag;
	-- Puts Prosody's __tostring back (unless another module has replaced ours since).
	uninstall = function ()
		if stanza_mt.__tostring == render_stanza then stanza_mt.__tostring = prosody_tostring; end
	end;
};
