%%% A test module of muc_rs's own (harness/tests/ejabberd_hooks.rs): it listens to
%%% ejabberd's MUC hooks and makes what they see visible, so that the same session can be
%%% compared between stock mod_muc and mod_muc_rs. It writes each lifecycle hook it hears
%%% (join_room, leave_room, start_room, create_room, room_destroyed) as a line of
%%% `muc_hooks.log` in the node's working directory; refuses to make the room `refused`
%%% (check_create_room); drops the presences of the nick `Dropped` and marks the others
%%% (muc_filter_presence); and marks the invitations rooms send (muc_invite).
-module(mod_test_muc_hooks).
-behaviour(gen_mod).

-export([start/2, stop/1, depends/2, mod_options/1, mod_doc/0]).
-export([join_room/4, leave_room/4, start_room/3, create_room/3, room_destroyed/4,
         check_create_room/4, filter_presence/3, invite/7]).

-include_lib("xmpp/include/xmpp.hrl").

-define(NS, <<"urn:muc-rs:test:hooks">>).

start(_Host, _Opts) ->
    {ok, [{hook, join_room, join_room, 50},
          {hook, leave_room, leave_room, 50},
          {hook, start_room, start_room, 50},
          {hook, create_room, create_room, 50},
          {hook, room_destroyed, room_destroyed, 50},
          {hook, check_create_room, check_create_room, 50},
          {hook, muc_filter_presence, filter_presence, 50},
          {hook, muc_invite, invite, 50}]}.

stop(_Host) -> ok.

depends(_Host, _Opts) -> [].

mod_options(_Host) -> [].

mod_doc() -> #{}.

join_room(_ServerHost, Room, Host, Jid) ->
    record([<<"join_room">>, Room, Host, jid:encode(Jid)]).

leave_room(_ServerHost, Room, Host, Jid) ->
    record([<<"leave_room">>, Room, Host, jid:encode(Jid)]).

start_room(_ServerHost, Room, Host) ->
    record([<<"start_room">>, Room, Host]).

create_room(_ServerHost, Room, Host) ->
    record([<<"create_room">>, Room, Host]).

room_destroyed(_ServerHost, Room, Host, Persistent) ->
    record([<<"room_destroyed">>, Room, Host, atom_to_binary(Persistent)]).

check_create_room(Acc, _ServerHost, <<"refused">>, _Host) ->
    record([<<"check_create_room refused">>]),
    Acc andalso false;
check_create_room(Acc, _ServerHost, _Room, _Host) ->
    Acc.

filter_presence(#presence{}, _State, <<"Dropped">>) ->
    drop;
filter_presence(#presence{} = Presence, _State, _Nick) ->
    xmpp:append_subtags(Presence, [mark(<<"presence">>)]);
filter_presence(Acc, _State, _Nick) ->
    Acc.

invite(Message, RoomJid, _Config, From, To, Reason, _Invitation) ->
    Seen = <<(jid:encode(RoomJid))/binary, " ", (jid:encode(jid:remove_resource(From)))/binary, " ",
             (jid:encode(To))/binary, " ", Reason/binary>>,
    xmpp:append_subtags(Message, [(mark(<<"invite">>))#xmlel{children = [{xmlcdata, Seen}]}]).

mark(What) ->
    #xmlel{name = <<"hooked">>, attrs = [{<<"xmlns">>, ?NS}, {<<"by">>, What}]}.

record(Words) ->
    ok = file:write_file("muc_hooks.log", [lists:join(<<" ">>, Words), $\n], [append]).
