%%% muc_rs for ejabberd: a MUC service (XEP-0045) whose rooms live in the muc_rs core,
%%% loaded as a NIF (muc_rs_nif). One gen_server per service host: it receives every
%%% stanza routed to the service, hands it to the core with the facts the core needs
%%% (the clock, whether the sender is a MUC admin, the stored records of the room), writes
%%% the records the core hands back (mnesia, before anything is sent), routes the
%%% stanzas, and logs through ejabberd's logger.
%%%
%%%   modules:
%%%     mod_muc_rs:
%%%       host: "conference.@HOST@"
%%%       access_admin: admin       # as mod_muc's option: who administers every room
-module(mod_muc_rs).
-behaviour(gen_mod).
-behaviour(gen_server).

-export([start/2, stop/1, reload/3, depends/2, mod_options/1, mod_opt_type/1, mod_doc/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2, code_change/3]).

-include("logger.hrl").
-include_lib("xmpp/include/xmpp.hrl").

-record(muc_rs_room, {name_host :: binary(), record :: map()}).

%%% gen_mod

start(ServerHost, Opts) ->
    gen_mod:start_child(?MODULE, ServerHost, Opts).

stop(ServerHost) ->
    gen_mod:stop_child(?MODULE, ServerHost).

reload(_ServerHost, _NewOpts, _OldOpts) ->
    ok.

depends(_ServerHost, _Opts) ->
    [].

mod_opt_type(host) -> econf:host();
mod_opt_type(hosts) -> econf:hosts();
mod_opt_type(access_admin) -> econf:acl();
mod_opt_type(test_panic) -> econf:bool().

mod_options(_ServerHost) ->
    [{host, <<"conference.@HOST@">>}, {hosts, []}, {access_admin, none},
     %% Only for muc_rs's own tests: see muc_rs_nif:new_host/2.
     {test_panic, false}].

mod_doc() ->
    #{desc => <<"Multi-user chat (XEP-0045) with the room logic of muc_rs (Rust)">>}.

%%% gen_server

init([ServerHost, Opts]) ->
    process_flag(trap_exit, true),
    ejabberd_mnesia:create(?MODULE, muc_rs_room,
                           [{disc_copies, [node()]},
                            {attributes, record_info(fields, muc_rs_room)}]),
    [Host | _] = Hosts = gen_mod:get_opt_hosts(Opts),
    {ok, Service} = muc_rs_nif:new_host(Host, gen_mod:get_opt(test_panic, Opts)),
    lists:foreach(fun(H) -> ejabberd_router:register_route(H, ServerHost) end, Hosts),
    ?INFO_MSG("muc_rs serving ~ts", [Host]),
    {ok, #{server_host => ServerHost, hosts => Hosts, service => Service,
           access_admin => gen_mod:get_opt(access_admin, Opts)}}.

handle_info({route, Packet}, State) ->
    try route(Packet, State)
    catch Class:Reason:Stack ->
        ?ERROR_MSG("muc_rs failed on ~ts: ~p:~p~n~p",
                   [xmpp:pp(Packet), Class, Reason, Stack]),
        Err = xmpp:err_internal_server_error(),
        ejabberd_router:route_error(Packet, Err)
    end,
    {noreply, State};
handle_info(_Info, State) ->
    {noreply, State}.

handle_call(_Request, _From, State) ->
    {reply, {error, badarg}, State}.

handle_cast(_Msg, State) ->
    {noreply, State}.

terminate(_Reason, #{hosts := Hosts}) ->
    lists:foreach(fun ejabberd_router:unregister_route/1, Hosts).

code_change(_OldVsn, State, _Extra) ->
    {ok, State}.

%%% Handling a stanza

route(Packet, #{service := Service} = State) ->
    Xml = fxml:element_to_binary(xmpp:encode(Packet)),
    Admins = admins(Packet, State),
    handle(Service, Xml, Admins, []).

%% The core may first ask for a room's stored record: read it and hand the stanza back.
handle(Service, Xml, Admins, Rooms) ->
    case muc_rs_nif:handle(Service, Xml, erlang:system_time(second), Admins, Rooms) of
        {load, RoomJid} ->
            handle(Service, Xml, Admins, [{RoomJid, read_room(RoomJid)} | Rooms]);
        {ok, Deliveries, Stores, Logs} ->
            lists:foreach(fun log/1, Logs),
            ok = write_rooms(Stores),
            lists:foreach(fun deliver/1, Deliveries)
    end.

%% The sender's bare JID, if it is a MUC admin (access_admin).
admins(Packet, #{server_host := ServerHost, access_admin := Access}) ->
    From = xmpp:get_from(Packet),
    case acl:match_rule(ServerHost, Access, From) of
        allow -> [jid:encode(jid:remove_resource(From))];
        _ -> []
    end.

read_room(RoomJid) ->
    case mnesia:dirty_read(muc_rs_room, RoomJid) of
        [#muc_rs_room{record = Record}] -> Record;
        [] -> none
    end.

%% Every record of the stanza in one transaction, on disk before anything is sent.
write_rooms([]) ->
    ok;
write_rooms(Stores) ->
    Write = fun() ->
        lists:foreach(
          fun({RoomJid, none}) -> mnesia:delete({muc_rs_room, RoomJid});
             ({RoomJid, Record}) -> mnesia:write(#muc_rs_room{name_host = RoomJid, record = Record})
          end, Stores)
    end,
    {atomic, ok} = mnesia:transaction(Write),
    %% mnesia's log buffers in its own process: flushed now, the change outlives a kill -9.
    mnesia:sync_log().

deliver({Xml, Recipients}) ->
    El = fxml_stream:parse_element(Xml),
    Packet = xmpp:decode(El, ?NS_CLIENT, [ignore_els]),
    lists:foreach(fun(To) -> ejabberd_router:route(xmpp:set_to(Packet, jid:decode(To))) end,
                  Recipients).

log({debug, Line}) -> ?DEBUG("~ts", [Line]);
log({info, Line}) -> ?INFO_MSG("~ts", [Line]);
log({warning, Line}) -> ?WARNING_MSG("~ts", [Line]).
