%%% The muc_rs core as a NIF (ejabberd/nif, libmuc_rs_nif.so in the module's priv/).
%%% The functions below are replaced when the library loads.
-module(muc_rs_nif).
-export([new_host/2, handle/5]).
-on_load(init/0).

init() ->
    Priv = filename:join([filename:dirname(code:which(?MODULE)), "..", "priv"]),
    erlang:load_nif(filename:join(Priv, "libmuc_rs_nif"), 0).

%% A core for the MUC service Host (a binary): {ok, Service}. TestPanic arms the test hook
%% that makes the core panic on a stanza with <panic xmlns='urn:xmpp:muc-rs:test:0'/>.
new_host(_Host, _TestPanic) ->
    erlang:nif_error(not_loaded).

%% One stanza (XML, a binary) with the clock (seconds), the admins among the JIDs it
%% concerns ([binary()]) and the stored records read so far ([{RoomJid, Record | none}]):
%% {load, RoomJid} (read that room's record and call again), or
%% {ok, [{Xml, [To]}], [{RoomJid, Record | none}], [{Level, Line}]}.
handle(_Service, _Xml, _Now, _Admins, _Rooms) ->
    erlang:nif_error(not_loaded).
