%%% muc_rs for ejabberd: a MUC service (XEP-0045) whose rooms live in the muc_rs core,
%%% loaded as a NIF (muc_rs_nif). One gen_server per virtual host, with a core for each of
%%% its MUC services (`host`, or every one of `hosts`): it receives every stanza routed to
%%% them, hands it to the service's core with the facts the core needs (the clock, what the
%%% access rules say of the sender, the stored records of the room), writes the records the
%%% core hands back (in mod_muc's own tables and format, mnesia or SQL: mod_muc_rs_rooms,
%%% before anything is sent), routes the stanzas, and logs through ejabberd's logger.
%%%
%%% In a cluster every node runs the service, and each room lives on one node at a time:
%%% the node that first handles it claims it in a cluster-wide table (muc_rs_room_node)
%%% and the others forward its stanzas there. A room whose node is gone is claimed anew
%%% by the next node that gets a stanza for it, from the records mnesia replicated.
%%%
%%% It takes every option of ejabberd's mod_muc, by the same names, types and defaults
%%% (mod_muc_options/0); those it does not honour yet are logged once at start, each with
%%% why. muc_rs's own options keep their Prosody names (muc_rs_nif:options/0):
%%%
%%%   modules:
%%%     mod_muc_rs:
%%%       host: "conference.@HOST@" # the default
%%%       access_admin: admin
%%%       access_create: local
%%%       default_room_options: {persistent: true, public: false}
%%%       muc_room_locking: false   # muc_rs's own
-module(mod_muc_rs).
-behaviour(gen_mod).
-behaviour(gen_server).

-export([start/2, stop/1, reload/3, depends/2, mod_options/1, mod_opt_type/1, mod_doc/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2, code_change/3]).
-export([local_public_rooms/1, remove_user/2, recipient/1, command/2, command_everywhere/2,
         announce_to_rooms/3]).

-include("logger.hrl").
-include("translate.hrl").
-include_lib("xmpp/include/xmpp.hrl").

%% Which node a room lives on (ram_copies on every node of the cluster).
-record(muc_rs_room_node, {name_host :: binary(), node :: node()}).

%%% gen_mod

%% The room commands of mod_muc_admin and its web admin pages come with the module
%% (mod_muc_rs_admin, mod_muc_rs_webadmin): they act on its rooms, and mod_muc_admin cannot
%% load without mod_muc.
start(ServerHost, Opts) ->
    case gen_mod:start_child(?MODULE, ServerHost, Opts) of
        {ok, _} = Started ->
            mod_muc_rs_admin:register_commands(),
            mod_muc_rs_webadmin:add_hooks(ServerHost),
            Started;
        Error -> Error
    end.

stop(ServerHost) ->
    mod_muc_rs_webadmin:remove_hooks(ServerHost),
    case gen_mod:is_loaded_elsewhere(ServerHost, ?MODULE) of
        false -> mod_muc_rs_admin:unregister_commands();
        true -> ok
    end,
    gen_mod:stop_child(?MODULE, ServerHost).

%% ejabberd calls this when the module's options changed (ejabberdctl reload_config): the
%% running services take them, as mod_muc's do.
reload(ServerHost, NewOpts, _OldOpts) ->
    gen_server:call(gen_mod:get_module_proc(ServerHost, ?MODULE), {reload, NewOpts}, 60000).

%% As mod_muc: mod_mam, when loaded, starts first (its hooks archive the rooms).
depends(_ServerHost, _Opts) ->
    [{mod_mam, soft}].

%%% Options

%% mod_muc's options by ejabberd 24.12's names, types and defaults; then muc_rs's own, the
%% core's options by their Prosody names (muc_rs_nif:options/0 lists them and their kinds).
mod_opt_type(test_panic) -> econf:bool();
mod_opt_type(Name) ->
    case lists:keyfind(Name, 1, mod_muc_options()) of
        {_, Type, _} -> Type;
        false -> own_type(Name)
    end.

mod_options(Host) ->
    [{Name, default(Default, Host)} || {Name, _, Default} <- mod_muc_options()] ++
        %% Only for muc_rs's own tests: see muc_rs_nif:new_host/4.
        [{test_panic, false} | [{Name, undefined} || {Name, _} <- own_options()]].

%% mod_muc's options: {Name, Type, Default}, Default a value or {by_host, Fun}.
mod_muc_options() ->
    [{host, econf:host(), {by_host, fun(Host) -> <<"conference.", Host/binary>> end}},
     {hosts, econf:hosts(), []},
     {name, econf:binary(), <<"Chatrooms">>},
     {access, econf:acl(), all},
     {access_admin, econf:acl(), none},
     {access_create, econf:acl(), all},
     {access_persistent, econf:acl(), all},
     {access_mam, econf:acl(), all},
     {access_register, econf:acl(), all},
     {history_size, econf:non_neg_int(), 20},
     {max_users, econf:pos_int(), 200},
     {max_users_admin_threshold, econf:pos_int(), 5},
     {max_users_presence, econf:int(), 1000},
     {max_user_conferences, econf:pos_int(), 100},
     {max_rooms_discoitems, econf:non_neg_int(), 100},
     {max_room_id, econf:pos_int(infinity), infinity},
     {max_room_name, econf:pos_int(infinity), infinity},
     {max_room_desc, econf:pos_int(infinity), infinity},
     {max_password, econf:pos_int(infinity), infinity},
     {max_captcha_whitelist, econf:pos_int(infinity), infinity},
     {regexp_room_id, econf:re([unicode]), <<"">>},
     {min_message_interval, econf:number(0), 0},
     {min_presence_interval, econf:number(0), 0},
     {room_shaper, econf:atom(), none},
     {user_message_shaper, econf:atom(), none},
     {user_presence_shaper, econf:atom(), none},
     {preload_rooms, econf:bool(), true},
     {hibernation_timeout, econf:timeout(second, infinity), infinity},
     {cleanup_affiliations_on_start, econf:bool(), false},
     {vcard, econf:vcard_temp(), undefined},
     {queue_type, econf:queue_type(), {by_host, fun ejabberd_option:queue_type/1}},
     {db_type, econf:db_type(mod_muc), {by_host, fun(Host) -> ejabberd_config:default_db(Host, mod_muc) end}},
     {ram_db_type, econf:db_type(mod_muc),
      {by_host, fun(Host) -> ejabberd_config:default_ram_db(Host, mod_muc) end}},
     {default_room_options,
      econf:options(maps:from_list([{Key, Type} || {Key, Type, _} <- room_options()])),
      [{Key, Default} || {Key, _, Default} <- room_options(), Default /= unset]}].

default({by_host, Default}, Host) -> Default(Host);
default(Default, _Host) -> Default.

%% default_room_options' keys: {Key, Type, Default}, unset for keys mod_muc leaves out of
%% its default list.
room_options() ->
    [{allow_change_subj, econf:bool(), true},
     {allowpm, econf:enum([anyone, participants, moderators, none]), anyone},
     {allow_private_messages_from_visitors, econf:enum([anyone, moderators, nobody]), anyone},
     {allow_query_users, econf:bool(), true},
     {allow_subscription, econf:bool(), false},
     {allow_user_invites, econf:bool(), false},
     {allow_visitor_nickchange, econf:bool(), true},
     {allow_visitor_status, econf:bool(), true},
     {allow_voice_requests, econf:bool(), unset},
     {anonymous, econf:bool(), true},
     {captcha_protected, econf:bool(), false},
     {description, econf:binary(), unset},
     {enable_hats, econf:bool(), unset},
     {lang, econf:lang(), <<>>},
     {logging, econf:bool(), false},
     {mam, econf:bool(), false},
     {max_users, econf:pos_int(), 200},
     {members_by_default, econf:bool(), true},
     {members_only, econf:bool(), false},
     {moderated, econf:bool(), true},
     {password, econf:binary(), <<>>},
     {password_protected, econf:bool(), false},
     {persistent, econf:bool(), false},
     {presence_broadcast, econf:list(econf:enum([moderator, participant, visitor])),
      [moderator, participant, visitor]},
     {public, econf:bool(), true},
     {public_list, econf:bool(), true},
     {pubsub, econf:binary(), unset},
     {title, econf:binary(), <<>>},
     {vcard, econf:vcard_temp(), unset},
     {vcard_xupdate, econf:binary(), unset},
     {voice_request_min_interval, econf:pos_int(), unset}].

%% The core's options offered by their own names, [{Name, Kind}].
own_options() ->
    {Own, _ModMuc, _RoomKeys} = muc_rs_nif:options(),
    Own.

own_type(Name) ->
    {Name, Kind} = lists:keyfind(Name, 1, own_options()),
    case Kind of
        bool -> econf:bool();
        string -> econf:binary();
        {int, 0} -> econf:non_neg_int();
        {int, 1} -> econf:pos_int()
    end.

%% mod_muc's options this module honours itself (the access rules and the limits on new
%% rooms' names are asked per sender).
honoured_here() ->
    [host, hosts, access, access_admin, access_create, access_persistent, access_mam,
     access_register, max_room_id, regexp_room_id, db_type].

%% Why a mod_muc option neither this module nor the core honours has no effect yet.
not_yet(cleanup_affiliations_on_start) -> "deleted accounts' affiliations are not cleaned up yet";
not_yet(ram_db_type) -> "which node has a room is kept in mnesia only";
not_yet(hibernation_timeout) ->
    "idle rooms are put away by count (muc_room_cache_size), not by time";
not_yet(max_captcha_whitelist) -> "rooms have no CAPTCHA";
not_yet(max_rooms_discoitems) -> "the room list is not limited or paged yet";
not_yet(max_user_conferences) -> "rooms per user are not limited yet";
not_yet(max_users_presence) -> "presences are broadcast whatever the room's size";
not_yet(preload_rooms) -> "a stored room is read when first addressed (the room list has them all)";
not_yet(queue_type) -> "rooms keep no queues (the history lives in the core)";
not_yet(vcard) -> "the service has no vCard yet";
not_yet(Name) when Name == min_message_interval; Name == min_presence_interval;
                   Name == room_shaper; Name == user_message_shaper;
                   Name == user_presence_shaper ->
    "there are no rate limits yet".

%% Why a default_room_options key the core does not honour has no effect yet.
room_not_yet(captcha_protected) -> "rooms have no CAPTCHA";
room_not_yet(logging) -> "rooms have no logs (mod_muc_log)";
room_not_yet(pubsub) -> "rooms have no pubsub node";
room_not_yet(Key) when Key == vcard; Key == vcard_xupdate ->
    "new rooms do not take a vCard from the configuration yet (owners set it)";
room_not_yet(enable_hats) -> "hats (XEP-0317) are always on";
room_not_yet(max_users) -> "rooms have no limit of their own: the service's max_users applies";
room_not_yet(Key) when Key == title; Key == description; Key == password;
                       Key == password_protected; Key == presence_broadcast; Key == allowpm ->
    "new rooms do not take it from the configuration yet (owners set it in the room's form)";
room_not_yet(_Key) ->
    "muc_rs rooms have no such setting yet".

%% One warning per option the admin set (to another value than mod_muc's default) that
%% has no effect yet: the database types whenever they are not mnesia, which is where the
%% rooms are.
warn_unhonoured(Host, Opts) ->
    {_Own, ModMuc, RoomKeys} = muc_rs_nif:options(),
    Honoured = honoured_here() ++ [default_room_options | ModMuc],
    lists:foreach(
      fun({Name, _, Default}) ->
              Value = gen_mod:get_opt(Name, Opts),
              Set = case Name of
                        _ when Name == ram_db_type -> Value /= mnesia;
                        _ -> Value /= default(Default, Host)
                    end,
              case Set andalso not lists:member(Name, Honoured) of
                  true -> ?WARNING_MSG("mod_muc_rs: option ~ts has no effect yet: ~ts",
                                       [Name, not_yet(Name)]);
                  false -> ok
              end
      end, mod_muc_options()),
    lists:foreach(
      fun({Key, Value}) ->
              Default = case lists:keyfind(Key, 1, room_options()) of
                            {_, _, D} -> D
                        end,
              %% (mam: mod_muc_rs_hooks, for mod_mam)
              case Value /= Default andalso not lists:member(Key, [mam | RoomKeys]) of
                  true -> ?WARNING_MSG("mod_muc_rs: option default_room_options: ~ts has no "
                                       "effect yet: ~ts", [Key, room_not_yet(Key)]);
                  false -> ok
              end
      end, gen_mod:get_opt(default_room_options, Opts)).

%% The options the core takes (by ejabberd's names) and the new rooms' settings: the keys
%% of default_room_options the admin left out have mod_muc's defaults, as in mod_muc.
core_options(Opts) ->
    {Own, ModMuc, RoomKeys} = muc_rs_nif:options(),
    Options = [{Name, Value}
               || Name <- ModMuc ++ [N || {N, _} <- Own],
                  %% (mod_muc's `infinity`: no limit, as the core has without the option)
                  (Value = gen_mod:get_opt(Name, Opts)) /= undefined, Value /= infinity],
    %% Every key the core honours is one of mod_muc's (else a bug between the two).
    [] = RoomKeys -- [Key || {Key, _, _} <- room_options()],
    Set = gen_mod:get_opt(default_room_options, Opts),
    Rooms = [{Key, Value}
             || {Key, _, Default} <- room_options(), lists:member(Key, RoomKeys),
                (Value = proplists:get_value(Key, Set, Default)) /= unset],
    {Options, Rooms}.

mod_doc() ->
    #{desc => <<"Multi-user chat (XEP-0045) with the room logic of muc_rs (Rust)">>}.

%%% gen_server

init([ServerHost, Opts]) ->
    process_flag(trap_exit, true),
    %% Rooms are kept in mod_muc's tables (and muc_rs_room): mod_muc_rs_rooms.
    Db = mod_muc_rs_rooms:db(ServerHost, Opts),
    mod_muc_rs_rooms:create_tables(Db, ServerHost, Opts),
    ejabberd_mnesia:create(?MODULE, muc_rs_room_node,
                           [{ram_copies, [node()]},
                            {attributes, record_info(fields, muc_rs_room_node)}]),
    %% A node rejoining a cluster copies them from the others before it serves a stanza.
    ok = mnesia:wait_for_tables([muc_rs_room_node | mod_muc_rs_rooms:tables(Db)], 60000),
    warn_unhonoured(ServerHost, Opts),
    State = settings(Opts, #{server_host => ServerHost, services => #{}, db => Db}),
    ejabberd_hooks:add(remove_user, ServerHost, ?MODULE, remove_user, 50),
    {ok, serve(gen_mod:get_opt_hosts(Opts), Opts, State)}.

%% What the options say that this module reads itself (the access rules, the limits on new
%% rooms' names, what a new room is written with besides the settings the core has).
settings(Opts, State) ->
    State#{access => gen_mod:get_opt(access, Opts),
           access_admin => gen_mod:get_opt(access_admin, Opts),
           access_create => gen_mod:get_opt(access_create, Opts),
           access_persistent => gen_mod:get_opt(access_persistent, Opts),
           access_mam => gen_mod:get_opt(access_mam, Opts),
           access_register => gen_mod:get_opt(access_register, Opts),
           max_room_id => gen_mod:get_opt(max_room_id, Opts),
           %% The `mam` room option of rooms that have not set their own.
           default_mam => proplists:get_value(mam, gen_mod:get_opt(default_room_options, Opts), false),
           %% What a room made here is written to mod_muc's table with, besides the
           %% settings the core has: mod_muc's options for a new room.
           new_room_opts =>
               mod_muc_rs_rooms:new_room_opts(gen_mod:get_opt(default_room_options, Opts)),
           regexp_room_id => gen_mod:get_opt(regexp_room_id, Opts)}.

%% One core per service host: those of Hosts not served yet start, the others take the
%% options anew, and a host no longer listed stops (its occupants told, as on a stop).
serve(Hosts, Opts, #{services := Services} = State) ->
    {Options, RoomOptions} = core_options(Opts),
    Kept = maps:filter(fun(Host, Service) ->
                               lists:member(Host, Hosts) orelse stop_serving(Host, Service, State)
                       end, Services),
    Served = maps:map(fun(Host, Service) ->
                              case muc_rs_nif:reconfigure(Service, Options, RoomOptions) of
                                  ok -> ok;
                                  {error, Why} ->
                                      ?ERROR_MSG("muc_rs keeps ~ts's options as they were: ~p",
                                                 [Host, Why])
                              end,
                              %% Who the access rules make admins may have changed too.
                              muc_rs_nif:forget_service_admins(Service),
                              Service
                      end, Kept),
    New = [{Host, start_serving(Host, Options, RoomOptions, Opts, State)}
           || Host <- Hosts, not maps:is_key(Host, Kept)],
    State#{services := maps:merge(Served, maps:from_list(New))}.

start_serving(Host, Options, RoomOptions, Opts, #{server_host := ServerHost}) ->
    {ok, Service} = muc_rs_nif:new_host(Host, Options, RoomOptions,
                                        gen_mod:get_opt(test_panic, Opts)),
    %% Other nodes read this node's public rooms without a call to this process
    %% (local_public_rooms/1), so two nodes listing rooms at once never wait on each other.
    persistent_term:put({?MODULE, Host}, Service),
    ejabberd_router:register_route(Host, ServerHost),
    ?INFO_MSG("muc_rs serving ~ts", [Host]),
    Service.

%% As mod_muc's rooms do when they stop, each occupant is told it is removed (332). Returns
%% false (the host is no longer served).
stop_serving(Host, Service, State) ->
    ejabberd_router:unregister_route(Host),
    persistent_term:erase({?MODULE, Host}),
    try muc_rs_nif:shut_down(Service) of
        {ok, Deliveries, Logs} -> carry_out(Deliveries, Logs, [], hooks_ctx(Service, undefined, State))
    catch Class:Reason:Stack ->
            ?ERROR_MSG("muc_rs could not tell ~ts's occupants it stops: ~p:~p~n~p",
                       [Host, Class, Reason, Stack])
    end,
    ?INFO_MSG("muc_rs no longer serving ~ts", [Host]),
    false.

handle_info({route, Packet}, State) ->
    safely(fun() -> dispatch(Packet, State) end, Packet),
    {noreply, State};
%% A stanza another node forwarded: this node has the room.
handle_info({route_here, Packet}, State) ->
    safely(fun() -> route(Packet, State) end, Packet),
    {noreply, State};
handle_info(_Info, State) ->
    {noreply, State}.

handle_call({reload, Opts}, _From, #{server_host := ServerHost, db := Db} = State) ->
    warn_unhonoured(ServerHost, Opts),
    case mod_muc_rs_rooms:db(ServerHost, Opts) of
        Db -> ok;
        _ -> ?WARNING_MSG("mod_muc_rs on ~ts: a new db_type takes effect when ejabberd restarts",
                          [ServerHost])
    end,
    {reply, ok, serve(gen_mod:get_opt_hosts(Opts), Opts, settings(Opts, State))};
%% A room command (mod_muc_rs_admin) for the service Host.
handle_call({command, Host, Request}, _From, #{services := Services} = State) ->
    Reply = case maps:find(Host, Services) of
                {ok, Service} ->
                    try run_command(Request, Host, Service, State)
                    catch Class:Reason:Stack ->
                            ?ERROR_MSG("muc_rs failed on the command ~p: ~p:~p~n~p",
                                       [Request, Class, Reason, Stack]),
                            {error, <<"Internal error">>}
                    end;
                error -> {error, <<"Unknown service">>}
            end,
    {reply, Reply, State};
handle_call(_Request, _From, State) ->
    {reply, {error, badarg}, State}.

handle_cast({remove_user, User}, #{services := Services} = State) ->
    maps:foreach(
      fun(Host, Service) ->
              [try change(fun(Admins, Records) ->
                                  muc_rs_nif:remove_user(Service, Room, User, Admins, Records)
                          end, Service, State)
               catch Class:Reason:Stack ->
                       ?ERROR_MSG("muc_rs could not remove ~ts from ~ts: ~p:~p~n~p",
                                  [User, Room, Class, Reason, Stack])
               end || Room <- muc_rs_nif:rooms_of_user(Service, User, read_all_rooms(Host, State))]
      end, Services),
    {noreply, State};
%% A service admin's message to the service, on every node (each has its own rooms).
handle_cast({announce, Host, Text}, #{services := Services} = State) ->
    case maps:find(Host, Services) of
        {ok, Service} ->
            {ok, Deliveries, Logs} = muc_rs_nif:announce(Service, Text),
            carry_out(Deliveries, Logs, [], hooks_ctx(Service, undefined, State));
        error -> ok
    end,
    {noreply, State};
handle_cast(_Msg, State) ->
    {noreply, State}.

terminate(_Reason, #{server_host := ServerHost, services := Services} = State) ->
    ejabberd_hooks:delete(remove_user, ServerHost, ?MODULE, remove_user, 50),
    maps:foreach(fun(Host, Service) -> stop_serving(Host, Service, State) end, Services).

code_change(_OldVsn, State, _Extra) ->
    {ok, State}.

%%% Handling a stanza

safely(Handle, Packet) ->
    try Handle()
    catch Class:Reason:Stack ->
        ?ERROR_MSG("muc_rs failed on ~ts: ~p:~p~n~p",
                   [xmpp:pp(Packet), Class, Reason, Stack]),
        Err = xmpp:err_internal_server_error(),
        ejabberd_router:route_error(Packet, Err)
    end.

%% A stanza from a sender the access rule `access` refuses is answered as mod_muc answers
%% it; a stanza for a room goes to the node the room lives on; the rest is handled here.
dispatch(Packet, #{server_host := ServerHost, access := Access} = State) ->
    case acl:match_rule(ServerHost, Access, xmpp:get_from(Packet)) of
        allow -> dispatch_allowed(Packet, State);
        deny ->
            Err = xmpp:err_forbidden(?T("Access denied by service policy"), xmpp:get_lang(Packet)),
            ejabberd_router:route_error(Packet, Err)
    end.

%% A message to the service itself is an announcement to every room (mod_muc's service
%% message), from a MUC admin only.
dispatch_allowed(#message{to = #jid{luser = <<>>, lresource = <<>>}} = Packet, State) ->
    announce(Packet, State);
%% A nickname registered with the service itself, as mod_muc takes it.
dispatch_allowed(#iq{type = Type, to = #jid{luser = <<>>, lresource = <<>>}, sub_els = [El]} = IQ,
                 #{server_host := ServerHost, db := Db, access_register := Access} = State)
  when Type == get; Type == set ->
    case xmpp:get_ns(El) of
        ?NS_REGISTER ->
            ejabberd_router:route(mod_muc_rs_service_nicks:process(IQ, ServerHost, {Db, Access}));
        _ ->
            route(IQ, State)
    end;
dispatch_allowed(Packet, #{server_host := ServerHost} = State) ->
    case xmpp:get_to(Packet) of
        #jid{luser = <<>>} ->
            route(Packet, State);
        #jid{luser = Name, lserver = Service} ->
            case room_node(jid:encode({Name, Service, <<>>})) of
                Node when Node == node() -> route(Packet, State);
                Node -> erlang:send({gen_mod:get_module_proc(ServerHost, ?MODULE), Node},
                                    {route_here, Packet})
            end
    end.

announce(#message{type = error}, _State) ->
    ok;
announce(#message{from = From, to = #jid{lserver = Host}, body = Body, lang = Lang} = Packet,
         #{server_host := ServerHost} = State) ->
    case is_admin(From, State) of
        true -> announce_to_rooms(ServerHost, Host, xmpp:get_text(Body));
        false ->
            Err = xmpp:err_forbidden(?T("Only service administrators are allowed to send "
                                        "service messages"), Lang),
            ejabberd_router:route_error(Packet, Err)
    end.

%% Text as every room's message, in the service Host of ServerHost, on every node (each has
%% its own rooms).
announce_to_rooms(ServerHost, Host, Text) ->
    Proc = gen_mod:get_module_proc(ServerHost, ?MODULE),
    lists:foreach(fun(Node) -> gen_server:cast({Proc, Node}, {announce, Host, Text}) end,
                  [node() | nodes()]).

%% The node a room lives on: the one in the table while it is up, else this one, claimed.
room_node(Room) ->
    case mnesia:dirty_read(muc_rs_room_node, Room) of
        [#muc_rs_room_node{node = Node}] when Node == node() -> Node;
        [#muc_rs_room_node{node = Node}] ->
            case is_up(Node) of
                true -> Node;
                false -> claim(Room)
            end;
        [] -> claim(Room)
    end.

%% Two nodes may try at once: the transaction lets one win, and the other forwards to it.
%% A lone node has no one to race.
claim(Room) ->
    claim(Room, nodes()).

claim(Room, []) ->
    mnesia:dirty_write(#muc_rs_room_node{name_host = Room, node = node()}),
    node();
claim(Room, _Others) ->
    Claim = fun() ->
        case mnesia:read(muc_rs_room_node, Room, write) of
            [#muc_rs_room_node{node = Node}] when Node /= node() ->
                case is_up(Node) of
                    true -> Node;
                    false -> take(Room)
                end;
            _ -> take(Room)
        end
    end,
    {atomic, Node} = mnesia:transaction(Claim),
    Node.

%% A node not connected yet (this one has just started) is asked before its rooms are taken.
is_up(Node) ->
    lists:member(Node, nodes()) orelse net_kernel:connect_node(Node) == true.

take(Room) ->
    mnesia:write(#muc_rs_room_node{name_host = Room, node = node()}),
    node().

route(Packet, #{services := Services, db := Db, server_host := ServerHost} = State) ->
    #jid{lserver = Host, luser = Name} = xmpp:get_to(Packet),
    Service = maps:get(Host, Services),
    case registered_to_another(Packet, Db) of
        false when Name /= <<>> ->
            case mod_muc_rs_hooks:is_archive_query(Packet, ServerHost) of
                true -> archive_query(Packet, Service, State);
                false ->
                    case filter_presence(Packet, Service, State) of
                        drop -> ok;
                        Packet1 -> handle(fun muc_rs_nif:handle/5, {Host, Service}, xmpp:encode(Packet1),
                                          sender(Packet1, State), [], State)
                    end
            end;
        false ->
            %% (the service's disco#info lists mod_mam's features where it is loaded)
            State1 = case mod_muc_rs_hooks:service_features(Packet, ServerHost) of
                         [] -> State;
                         Features -> State#{service_features => Features}
                     end,
            handle(fun muc_rs_nif:handle/5, {Host, Service}, xmpp:encode(Packet),
                   sender(Packet, State1), [], State1);
        true ->
            Err = xmpp:err_conflict(?T("That nickname is registered by another person"),
                                    xmpp:get_lang(Packet)),
            ejabberd_router:route_error(Packet, Err)
    end.

%% A join (or a nick change) with a nick someone else registered with the service itself
%% (mod_muc_rs_service_nicks, or under mod_muc), which mod_muc refuses in every room of the service; the rooms' own reservations are the core's.
registered_to_another(#presence{type = available, from = From,
                                to = #jid{resource = Nick, lserver = Service}}, Db)
  when Nick /= <<>> ->
    case mod_muc_rs_rooms:service_nick_owner(Db, Service, Nick) of
        none -> false;
        Owner -> Owner /= {From#jid.luser, From#jid.lserver}
    end;
registered_to_another(_Packet, _Db) ->
    false.

%% A MAM query to a room goes to ejabberd's muc_process_iq hook with the room as the core
%% has it (brought back from storage first); to the core if there is no such room.
archive_query(Packet, Service, State) ->
    #jid{lserver = Host} = To = xmpp:get_to(Packet),
    case view_room(Service, jid:encode(jid:remove_resource(To)), [], State) of
        {none, Records} -> handle(fun muc_rs_nif:handle/5, {Host, Service}, xmpp:encode(Packet),
                                  sender(Packet, State), Records, State);
        {View, _} -> mod_muc_rs_hooks:archive_query(Packet, View, hooks_ctx(Service, xmpp:get_from(Packet), State))
    end.

%% A presence to a room, through muc_filter_presence's handlers if it has some (with the
%% room brought back from storage first): the presence as they left it, or drop.
filter_presence(#presence{to = To} = Packet, Service, #{server_host := ServerHost} = State) ->
    case mod_muc_rs_hooks:has_handlers(muc_filter_presence, ServerHost) of
        false -> Packet;
        true ->
            {View, _} = view_room(Service, jid:encode(jid:remove_resource(To)), [], State),
            mod_muc_rs_hooks:filter_presence(Packet, View, hooks_ctx(Service, xmpp:get_from(Packet), State))
    end;
filter_presence(Packet, _Service, _State) ->
    Packet.

%% The room RoomJid as the core has it (muc_rs_nif:room_view/4), brought back from storage
%% first: {View, Records}, Records those read on the way (View none: no such room).
view_room(Service, RoomJid, Records, State) ->
    case muc_rs_nif:room_view(Service, RoomJid, erlang:system_time(second), Records) of
        {load, Jid} ->
            view_room(Service, RoomJid, [{Jid, read_room(Jid, State)} | Records], State);
        {View, Done} ->
            started(Records, Done, State),
            settle(Service, Done, hooks_ctx(Service, undefined, State)),
            {View, Records}
    end.

%% The stored rooms of Records the core brought back into memory (those it asked for and
%% did not put away again, by Done's Gone), as mod_muc_room starts a stored room:
%% start_room, if it has handlers. (Every stored room read for a room list, {all, ...},
%% stays stored.)
started(Records, {ok, _, _, _, Gone}, #{server_host := ServerHost}) when is_list(Records) ->
    case mod_muc_rs_hooks:has_handlers(start_room, ServerHost) of
        true ->
            [mod_muc_rs_hooks:lifecycle({room_created, Jid}, #{server_host => ServerHost})
             || {Jid, #{config := #{<<"_data">> := Data}}} <- Records,
                maps:get(<<"destroyed">>, Data, false) /= true, not lists:member(Jid, Gone)],
            ok;
        false -> ok
    end;
started(_Records, _Done, _State) ->
    ok.

%% The state with what mod_muc_rs_hooks needs of the stanza at hand: its service's core
%% and sender (a #jid{}, or the stanza's #xmlel{}; mod_muc_rs_hooks:ctx()).
hooks_ctx(Service, From, State) ->
    State#{service => Service, from => From}.

%% The core may first ask for stored records (read them and hand the stanza back), or to be
%% called on a dirty scheduler (a big room).
handle(Nif, {Host, Service} = Core, El, Sender, Rooms, State) ->
    case Nif(Service, El, erlang:system_time(second), Sender, Rooms) of
        {load, RoomJid} ->
            handle(Nif, Core, El, Sender, [{RoomJid, read_room(RoomJid, State)} | Rooms], State);
        {admins, Users} ->
            #{admins := Known} = Sender,
            Answers = [{User, is_admin(jid:decode(User), State)} || User <- Users],
            handle(Nif, Core, El, Sender#{admins := Answers ++ Known}, Rooms, State);
        load_all ->
            Every = {all, read_all_rooms(Host, State), public_rooms_elsewhere(Host)},
            handle(Nif, Core, El, Sender, Every, State);
        dirty ->
            handle(fun muc_rs_nif:handle_dirty/5, Core, El, Sender, Rooms, State);
        {check_create_room, RoomJid} ->
            IsAdmin = is_admin(jid:decode(fxml:get_tag_attr_s(<<"from">>, El)), State),
            Sender1 = mod_muc_rs_hooks:check_create_room(RoomJid, IsAdmin, Sender, maps:get(server_host, State)),
            handle(Nif, Core, El, Sender1, Rooms, State);
        {ok, _, _, _, _} = Done ->
            started(Rooms, Done, State),
            %% (the sender, for the hooks, read from the stanza only if they need it)
            settle(Service, Done, hooks_ctx(Service, El, State))
    end.

%% What the core did: its stores written before anything is routed (a failed write is
%% undone by the core, which then hands the error reply instead), then carried out.
%% Ctx: what ejabberd's hooks need for the broadcasts left to them (hooks_ctx/3). ok, or the
%% failed write's {error, Reason}.
settle(_Service, {ok, Deliveries, [], Logs, Gone}, Ctx) ->
    carry_out(Deliveries, Logs, Gone, Ctx),
    ok;
settle(Service, {ok, [], Stores, [], Gone}, Ctx0) ->
    Forgotten = mod_muc_rs_hooks:forgotten(Stores, Ctx0),
    Ctx = Ctx0#{persistent_gone => mod_muc_rs_hooks:persistent_gone(Stores, Ctx0)},
    Written = write_rooms(Stores, Ctx),
    {ok, Deliveries, Logs} = muc_rs_nif:confirm(Service, Written),
    %% A room made temporary is forgotten as its rows go (one the core reports destroyed is
    %% forgotten with the report).
    Destroyed = [Room || {room_destroyed, Room} <- Deliveries],
    [mod_muc_rs_hooks:forget(Room, Ctx)
     || Written == ok, Room <- Forgotten, not lists:member(Room, Destroyed)],
    carry_out(Deliveries, Logs, Gone, Ctx),
    Written.

%% A deleted account: as mod_muc does in its live rooms, the user loses their affiliation
%% and leaves ("User removed"), on every node of the cluster (each has its own rooms).
remove_user(User, Server) ->
    Proc = gen_mod:get_module_proc(Server, ?MODULE),
    Removed = {remove_user, jid:encode(jid:make(User, Server))},
    lists:foreach(fun(Node) -> gen_server:cast({Proc, Node}, Removed) end, [node() | nodes()]).

%% A change outside a stanza (a deleted account, an admin command): Call(Admins, Records)
%% asks the core, called again with the answers to its questions until it is done; then
%% settled. ok, or {error, Why} (nothing changed).
change(Call, Service, State) ->
    change(Call, Service, [], [], State).

change(Call, Service, Admins, Records, State) ->
    case Call(Admins, Records) of
        {load, RoomJid} ->
            change(Call, Service, Admins, [{RoomJid, read_room(RoomJid, State)} | Records], State);
        {admins, Users} ->
            Answers = [{Jid, is_admin(jid:decode(Jid), State)} || Jid <- Users],
            change(Call, Service, Answers ++ Admins, Records, State);
        {error, Why} ->
            {error, Why};
        Done ->
            started(Records, Done, State),
            %% (a room made by a command is made as mod_muc:create_room/4 makes it)
            settle(Service, Done, (hooks_ctx(Service, undefined, State))#{by_command => true})
    end.

carry_out(Deliveries0, Logs, Gone, Ctx) ->
    Deliveries = case Ctx of
                     #{service_features := Features} ->
                         mod_muc_rs_hooks:add_service_features(Deliveries0, Features);
                     _ -> Deliveries0
                 end,
    lists:foreach(fun log/1, Logs),
    lists:foreach(fun({#xmlel{}, _} = Delivery) -> deliver(Delivery);
                     ({room_destroyed, _} = Destroyed) -> mod_muc_rs_hooks:room_destroyed(Destroyed, Ctx);
                     ({disco_info, _, _, _, _} = Reply) -> mod_muc_rs_hooks:disco_info(Reply, Ctx);
                     ({invite, _, _, _} = Invite) -> mod_muc_rs_hooks:invite(Invite, Ctx);
                     ({Hook, _, _} = Event) when Hook == join_room; Hook == leave_room ->
                         mod_muc_rs_hooks:lifecycle(Event, Ctx);
                     ({room_created, _} = Event) -> mod_muc_rs_hooks:lifecycle(Event, Ctx);
                     ({remove_archived, _, _, _} = Moderated) -> mod_muc_rs_hooks:remove_archived(Moderated, Ctx);
                     (Broadcast) -> mod_muc_rs_hooks:broadcast_message(Broadcast, Ctx, erlang:system_time(second))
                  end, Deliveries),
    %% A room no longer live here is no node's until a stanza brings it back.
    lists:foreach(fun(Room) -> mnesia:dirty_delete(muc_rs_room_node, Room) end, Gone),
    ok.

%%% Room commands (mod_muc_rs_admin)

%% Request on the service Host, run by the gen_server of the node its room lives on (a
%% change claims the room for this node if none has it; a read does not); {error,
%% <<"Unknown service">>} if Host is not a service of mod_muc_rs.
command(Host, Request) ->
    case persistent_term:get({?MODULE, Host}, none) of
        none -> {error, <<"Unknown service">>};
        _ -> call_command(Host, Request)
    end.

call_command(Host, Request) ->
    ServerHost = ejabberd_router:host_of_route(Host),
    Node = case Request of
               stored_rooms -> node();
               {snapshot, Room} -> live_node(Room);
               {create, Room, _, _} -> room_node(Room);
               {configure, Room, _, _} -> room_node(Room);
               {set_affiliation, Room, _, _} -> room_node(Room);
               {destroy, Room, _} -> room_node(Room)
           end,
    gen_server:call({gen_mod:get_module_proc(ServerHost, ?MODULE), Node}, {command, Host, Request}, 60000).

%% Request on the service Host, run on every node of the cluster: [Reply].
command_everywhere(Host, Request) ->
    ServerHost = ejabberd_router:host_of_route(Host),
    persistent_term:get({?MODULE, Host}, none) /= none orelse throw({error, <<"Unknown service">>}),
    {Replies, _Down} = gen_server:multi_call([node() | nodes()], gen_mod:get_module_proc(ServerHost, ?MODULE),
                                             {command, Host, Request}, 60000),
    [Reply || {_Node, Reply} <- Replies].

%% When mod_muc last put the room away (its row's hibernation_time), in seconds, or nil.
hibernated_at(Db, Room) ->
    case lists:keyfind(hibernation_time, 1, mod_muc_rs_rooms:stored_opts(Db, Room, [])) of
        {_, Microseconds} when is_integer(Microseconds) -> Microseconds div 1000000;
        _ -> nil
    end.

%% The node a room is live on, else this one.
live_node(Room) ->
    case mnesia:dirty_read(muc_rs_room_node, Room) of
        [#muc_rs_room_node{node = Node}] ->
            case Node == node() orelse is_up(Node) of
                true -> Node;
                false -> node()
            end;
        [] -> node()
    end.

%% The rooms live here, [{RoomJid, Public, Sessions, LastMessage}], or those with an
%% occupant of the user Jid, [RoomJid]; the stored rooms, [{RoomJid, Public, 0,
%% HibernatedAt}] (when mod_muc put the room away, in seconds, or nil); a room as the commands
%% read it, {ok, Opts, [{RealJid, Nick, Role}], [{Time, Message}]} (Opts mod_muc's options,
%% as it would store them) or none; or a change, ok or {error, Why}.
run_command(live_rooms, _Host, Service, _State) ->
    muc_rs_nif:live_rooms(Service);
run_command({user_rooms, Jid}, _Host, Service, _State) ->
    muc_rs_nif:rooms_with_occupant(Service, Jid);
run_command(stored_rooms, Host, _Service, #{db := Db} = State) ->
    [{Jid, maps:get(<<"hidden">>, Data, false) /= true, 0, hibernated_at(Db, Jid)}
     || {Jid, #{config := #{<<"_data">> := Data}}} <- read_all_rooms(Host, State),
        maps:get(<<"destroyed">>, Data, false) /= true];
run_command({snapshot, Room}, _Host, Service, #{db := Db, new_room_opts := NewRoomOpts} = State) ->
    Opts = fun(Config) ->
                   mod_muc_rs_rooms:to_opts(Config, mod_muc_rs_rooms:stored_opts(Db, Room, NewRoomOpts))
           end,
    case muc_rs_nif:room_snapshot(Service, Room) of
        {Config, Sessions, History} -> {ok, Opts(Config), Sessions, History};
        none ->
            case read_room(Room, State) of
                #{config := #{<<"_data">> := #{<<"destroyed">> := true}}} -> none;
                #{config := Config} -> {ok, Opts(Config), [], []};
                _ -> none
            end
    end;
run_command({create, Room, Config, Opts}, _Host, Service, State) ->
    change(fun(_Admins, Records) -> muc_rs_nif:create_room(Service, Room, Config, Records) end,
           Service, State#{new_room_opts := Opts});
run_command({configure, Room, Data, Overrides}, _Host, Service, State) ->
    change(fun(Admins, Records) -> muc_rs_nif:configure_room(Service, Room, Data, Admins, Records) end,
           Service, State#{overrides => Overrides});
run_command({set_affiliation, Room, Jid, Affiliation}, _Host, Service, State) ->
    change(fun(Admins, Records) ->
                   muc_rs_nif:set_affiliation(Service, Room, Jid, Affiliation, Admins, Records)
           end, Service, State);
run_command({destroy, Room, Reason}, _Host, Service, State) ->
    change(fun(Admins, Records) -> muc_rs_nif:destroy_room(Service, Room, Reason, Admins, Records) end,
           Service, State).

%% The service Host's public rooms live on the cluster's other nodes (none answers within
%% a second: left out, as a node that is going down would be).
public_rooms_elsewhere(Host) ->
    Answers = erpc:multicall(nodes(), ?MODULE, local_public_rooms, [Host], 1000),
    lists:append([Rooms || {ok, Rooms} <- Answers]).

%% This node's public rooms of the service Host (called by the other nodes of a cluster).
local_public_rooms(Host) ->
    case persistent_term:get({?MODULE, Host}, none) of
        none -> [];
        Service -> muc_rs_nif:public_rooms(Service)
    end.

%% What the access rules say of the sender: whether it is a MUC admin (access_admin: an
%% admin owns every room, as with mod_muc), may create the room (asked of presences only:
%% only a join makes a room; as mod_muc decides it: access_create, admins too, then
%% max_room_id and regexp_room_id on the room's name) and may make a room persistent or not
%% (access_persistent, asked of iqs only: only a room's configuration changes it). The core
%% asks about anyone else it needs ({admins, Users}).
sender(Packet, #{server_host := ServerHost, access_create := Create,
                 access_persistent := Persistent, max_room_id := MaxRoomId,
                 regexp_room_id := RoomIdRegexp} = State) ->
    From = xmpp:get_from(Packet),
    IsAdmin = is_admin(From, State),
    Name = (xmpp:get_to(Packet))#jid.luser,
    MayCreate = is_record(Packet, presence)
        andalso acl:match_rule(ServerHost, Create, From) == allow
        %% (an integer is less than infinity)
        andalso byte_size(Name) =< MaxRoomId
        andalso re:run(Name, RoomIdRegexp, [{capture, none}]) == match,
    MayPersist = not is_record(Packet, iq) orelse
        acl:match_rule(ServerHost, Persistent, From) == allow,
    #{admins => [{jid:encode(jid:remove_resource(From)), IsAdmin}], may_create => MayCreate,
      may_persist => MayPersist, listening => mod_muc_rs_hooks:listening(Packet, ServerHost),
      archive_switch => mod_muc_rs_hooks:archive_switch(Packet, State)}.

is_admin(Jid, #{server_host := ServerHost, access_admin := Admin}) ->
    acl:match_rule(ServerHost, Admin, Jid) == allow.

%% Every stored room of the service Host (for its room list, as mod_muc lists its stored
%% rooms).
read_all_rooms(Host, #{db := Db}) ->
    mod_muc_rs_rooms:read_all(Db, Host).

read_room(RoomJid, #{db := Db}) ->
    mod_muc_rs_rooms:read(Db, RoomJid).

%% Every record of the stanza, on disk before anything is sent: ok, or {error, Reason}.
%% (overrides: the options of mod_muc's row an admin command changed, which the core has
%% no setting for.)
write_rooms(Stores, #{db := Db, new_room_opts := NewRoomOpts} = State) ->
    mod_muc_rs_rooms:write(Db, Stores, NewRoomOpts, maps:get(overrides, State, [])).

deliver({El, Recipients}) ->
    Packet = xmpp:decode(El, ?NS_CLIENT, [ignore_els]),
    lists:foreach(fun(To) -> ejabberd_router:route(xmpp:set_to(Packet, recipient(To))) end,
                  Recipients).

%% The NIF hands prepared ASCII JIDs as parts (no stringprep needed), others as text.
recipient({User, Server, Resource}) ->
    #jid{user = User, server = Server, resource = Resource,
         luser = User, lserver = Server, lresource = Resource};
recipient(Jid) ->
    jid:decode(Jid).

log({debug, Line}) -> ?DEBUG("~ts", [Line]);
log({info, Line}) -> ?INFO_MSG("~ts", [Line]);
log({warning, Line}) -> ?WARNING_MSG("~ts", [Line]).
