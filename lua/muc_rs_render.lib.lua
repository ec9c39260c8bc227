-- Prosody serializes a stanza once per recipient (util.stanza's __tostring walks the whole
-- table) and renders its opening tag for a debug line on every delivery, even with debug
-- logs off (top_tag clones the root first). Deliveries from muc_rs carry their XML rendered
-- once by the core: `muc_rs_rendered` holds it cut around the value of `to`, with the root's
-- attributes and children as they were then. Both only splice in the recipient; a stanza
-- that someone changed since (Prosody's modules copy before they change) is rendered the
-- usual way.
local st = require "util.stanza";
local stanza_mt, xml_escape = st.stanza_mt, st.xml_escape;

-- The rendering up to and including the recipient, and the rest; nil if there is none or
-- it no longer matches the stanza.
local function rendered(stanza)
	local r = rawget(stanza, "muc_rs_rendered");
	if r == nil then return nil; end
	local attr, n = stanza.attr, #r;
	local to = attr.to;
	if to == nil or rawlen(stanza) ~= n then return nil; end
	local seen, was = 0, r.attr;
	for k, v in pairs(attr) do
		if k ~= "to" then
			if was[k] ~= v then return nil; end
			seen = seen + 1;
		end
	end
	if seen ~= r.attrs then return nil; end
	for i = 1, n do
		if rawget(stanza, i) ~= r[i] then return nil; end
	end
	return r.head..xml_escape(to), r.tail;
end

local function top_tag(stanza)
	local head = rendered(stanza);
	if head == nil then return stanza_mt.top_tag(stanza); end
	return head.."'>";
end

local prosody_tostring = stanza_mt.__tostring;
local function render_stanza(stanza)
	local head, tail = rendered(stanza);
	if head == nil then return prosody_tostring(stanza); end
	return head..tail;
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
