%%% Benchmark floor for ejabberd (see floor_common.lib.lua for Prosody's): a "MUC" that only
%%% knows its rooms' occupants and sends what a MUC sends for the benchmark's traffic, with
%%% no rule checked and nothing stored:
%%%   join: every occupant's presence to the newcomer, the newcomer's to everyone else, then
%%%         its self-presence (status 110);
%%%   leave: an unavailable presence to everyone, status 110 for the one leaving;
%%%   groupchat message: to every occupant.
%%% Shaped as ejabberd's own mod_muc is (a process per room, found in a table by the
%%% sender's process, which routes to it), so what it costs is ejabberd's routing and c2s
%%% work plus that shape, which no MUC on ejabberd can do without.
%%%
%%%   modules:
%%%     mod_bench_floor: {host: "conference.localhost"}
-module(mod_bench_floor).
-behaviour(gen_mod).

-export([start/2, stop/1, reload/3, depends/2, mod_options/1, mod_opt_type/1, mod_doc/0]).
-export([route/1]).

-include_lib("xmpp/include/xmpp.hrl").

-define(ROOMS, bench_floor_rooms).

start(ServerHost, Opts) ->
    Host = gen_mod:get_opt(host, Opts),
    Owner = spawn(fun() ->
                          ets:new(?ROOMS, [named_table, public, {read_concurrency, true}]),
                          receive stop -> ok end
                  end),
    register(bench_floor_tables, Owner),
    wait_for_table(),
    %% Routed in the sender's process, as mod_muc's stanzas are.
    ejabberd_router:register_route(Host, ServerHost, {apply, ?MODULE, route}),
    ok.

wait_for_table() ->
    case ets:info(?ROOMS) of
        undefined -> timer:sleep(1), wait_for_table();
        _ -> ok
    end.

stop(ServerHost) ->
    ejabberd_router:unregister_route(gen_mod:get_module_opt(ServerHost, ?MODULE, host)),
    [exit(Pid, kill) || {_, Pid} <- ets:tab2list(?ROOMS)],
    bench_floor_tables ! stop,
    ok.

reload(_ServerHost, _NewOpts, _OldOpts) -> ok.
depends(_ServerHost, _Opts) -> [].
mod_opt_type(host) -> econf:host().
mod_options(Host) -> [{host, <<"conference.", Host/binary>>}].
mod_doc() -> #{desc => <<"muc_rs's benchmark floor: MUC traffic without MUC logic">>}.

%% A stanza for the service, in the sender's process: to its room's process.
route(Packet) ->
    #jid{luser = Name, lserver = Host} = xmpp:get_to(Packet),
    room_pid({Name, Host}) ! {route, Packet},
    ok.

room_pid(Room) ->
    case ets:lookup(?ROOMS, Room) of
        [{_, Pid}] -> Pid;
        [] ->
            Pid = spawn(fun() -> room(Room, #{}) end),
            case ets:insert_new(?ROOMS, {Room, Pid}) of
                true -> Pid;
                false -> exit(Pid, kill), room_pid(Room)   % another sender made it first
            end
    end.

%% Occupants: #{LJid => {RealJid, Nick}}.
room({Name, Host} = Room, Occupants) ->
    RoomJid = jid:make(Name, Host),
    receive
        {route, #presence{type = available, from = From, to = #jid{resource = Nick}}} ->
            Key = jid:tolower(From),
            Next = case maps:is_key(Key, Occupants) of
                       true -> Occupants;
                       false ->
                           maps:foreach(
                             fun(_, {_, Other}) ->
                                     send(presence(available, false), nick(RoomJid, Other), From)
                             end, Occupants),
                           fan_out(presence(available, false), nick(RoomJid, Nick), Occupants),
                           Occupants#{Key => {From, Nick}}
                   end,
            send(presence(available, true), nick(RoomJid, Nick), From),
            room(Room, Next);
        {route, #presence{type = unavailable, from = From, to = #jid{resource = Nick}}} ->
            Next = maps:remove(jid:tolower(From), Occupants),
            case map_size(Next) < map_size(Occupants) of
                true -> fan_out(presence(unavailable, false), nick(RoomJid, Nick), Next);
                false -> ok
            end,
            send(presence(unavailable, true), nick(RoomJid, Nick), From),
            room(Room, Next);
        {route, #message{type = groupchat, from = From} = Message} ->
            case maps:find(jid:tolower(From), Occupants) of
                {ok, {_, Nick}} -> fan_out(Message, nick(RoomJid, Nick), Occupants);
                error -> ok
            end,
            room(Room, Occupants);
        {route, _} ->
            room(Room, Occupants)
    end.

nick(RoomJid, Nick) ->
    jid:replace_resource(RoomJid, Nick).

presence(Type, Self) ->
    Role = case Type of
               available -> participant;
               unavailable -> none
           end,
    #presence{type = Type,
              sub_els = [#muc_user{items = [#muc_item{affiliation = none, role = Role}],
                                   status_codes = [110 || Self]}]}.

fan_out(Stanza, From, Occupants) ->
    maps:foreach(fun(_, {To, _}) -> send(Stanza, From, To) end, Occupants).

send(Stanza, From, To) ->
    ejabberd_router:route(xmpp:set_from_to(Stanza, From, To)).
