%%% muc_rs for ejabberd: a MUC service (XEP-0045) whose rooms live in the muc_rs core,
%%% loaded as a NIF (muc_rs_nif). One gen_server per service host: it receives every
%%% stanza routed to the service, hands it to the core with the facts the core needs
%%% (the clock, whether the sender is a MUC admin, the stored records of the room), writes
%%% the records the core hands back (mnesia, before anything is sent), routes the
%%% stanzas, and logs through ejabberd's logger.
%%%
%%% In a cluster every node runs the service, and each room lives on one node at a time:
%%% the node that first handles it claims it in a cluster-wide table (muc_rs_room_node)
%%% and the others forward its stanzas there. A room whose node is gone is claimed anew
%%% by the next node that gets a stanza for it, from the records mnesia replicated.
%%%
%%%   modules:
%%%     mod_muc_rs:
%%%       host: "conference.@HOST@"
%%%       access_admin: admin       # as mod_muc's options: who administers every room,
%%%       access_create: local      #   who may create rooms, the service's name, the
%%%       name: "Chatrooms"         #   room history kept, occupants per room and
%%%       history_size: 20          #   the new rooms' settings
%%%       max_users: 200
%%%       default_room_options: {persistent: true, public: false}
%%%       muc_room_locking: false   # muc_rs's own options, by their Prosody names
-module(mod_muc_rs).
-behaviour(gen_mod).
-behaviour(gen_server).

-export([start/2, stop/1, reload/3, depends/2, mod_options/1, mod_opt_type/1, mod_doc/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2, code_change/3]).
-export([local_public_rooms/1]).

-include("logger.hrl").
-include_lib("xmpp/include/xmpp.hrl").

-record(muc_rs_room, {name_host :: binary(), record :: map()}).
%% Which node a room lives on (ram_copies on every node of the cluster).
-record(muc_rs_room_node, {name_host :: binary(), node :: node()}).

%%% gen_mod

start(ServerHost, Opts) ->
    gen_mod:start_child(?MODULE, ServerHost, Opts).

stop(ServerHost) ->
    gen_mod:stop_child(?MODULE, ServerHost).

reload(ServerHost, _NewOpts, _OldOpts) ->
    %% access_admin may have changed: rooms ask again who among them is an admin.
    case persistent_term:get({?MODULE, ServerHost}, none) of
        none -> ok;
        Service -> muc_rs_nif:forget_service_admins(Service)
    end.

depends(_ServerHost, _Opts) ->
    [].

mod_opt_type(host) -> econf:host();
mod_opt_type(hosts) -> econf:hosts();
mod_opt_type(access_admin) -> econf:acl();
mod_opt_type(access_create) -> econf:acl();
mod_opt_type(name) -> econf:binary();
mod_opt_type(history_size) -> econf:non_neg_int();
mod_opt_type(max_users) -> econf:pos_int();
mod_opt_type(default_room_options) ->
    econf:options(
      #{persistent => econf:bool(), public => econf:bool(), members_only => econf:bool(),
        moderated => econf:bool(), allow_change_subj => econf:bool(),
        allow_user_invites => econf:bool(), anonymous => econf:bool(), lang => econf:lang()},
      [unique]);
mod_opt_type(test_panic) -> econf:bool();
mod_opt_type(Name) ->
    {Name, Type} = lists:keyfind(Name, 1, core_options()),
    case Type of
        bool -> econf:bool();
        non_neg_int -> econf:non_neg_int();
        pos_int -> econf:pos_int()
    end.

mod_options(_ServerHost) ->
    [{host, <<"conference.@HOST@">>}, {hosts, []}, {access_admin, none}, {access_create, all},
     {name, <<"Chatrooms">>}, {history_size, undefined}, {max_users, undefined},
     {default_room_options, []},
     %% Only for muc_rs's own tests: see muc_rs_nif:new_host/3.
     {test_panic, false}
     | [{Name, undefined} || {Name, _} <- core_options()]].

%% muc_rs's options that mod_muc has no name for, by their Prosody names (the README's
%% table says what each does), and the type of their values. Not offered here:
%% component_admins_as_room_owners (access_admin's users own every room, as with mod_muc).
core_options() ->
    [{muc_room_locking, bool}, {muc_room_lock_timeout, non_neg_int}, {muc_max_rooms, non_neg_int},
     {muc_max_sessions_per_occupant, pos_int}, {muc_max_affiliations, pos_int},
     {muc_room_cache_size, pos_int}, {muc_occupant_id, bool}, {muc_hats_compat, bool},
     {muc_tombstones, bool}, {muc_tombstone_expiry, non_neg_int},
     {muc_registration_include_form, bool}, {allow_unaffiliated_register, bool},
     {enforce_registered_nickname, bool}].

%% mod_muc's room options and the core's names for them.
room_defaults() ->
    [{persistent, <<"muc_room_default_persistent">>},
     {public, <<"muc_room_default_public">>},
     {members_only, <<"muc_room_default_members_only">>},
     {moderated, <<"muc_room_default_moderated">>},
     {allow_change_subj, <<"muc_room_default_change_subject">>},
     {allow_user_invites, <<"muc_room_default_allow_member_invites">>},
     {anonymous, <<"muc_room_default_public_jids">>},
     {lang, <<"muc_room_default_language">>}].

%% anonymous is the opposite of public_jids: a non-anonymous room shows real JIDs to all.
room_default_value(anonymous, Anonymous) -> not Anonymous;
room_default_value(_, Value) -> Value.

%% The module's options as the core's settings ([{Name, Value}], core names).
core_settings(Opts) ->
    Set = fun(Name) -> gen_mod:get_opt(Name, Opts) end,
    History = case Set(history_size) of
                  undefined -> [];
                  N -> [{<<"max_history_messages">>, N},
                        {<<"muc_room_default_history_length">>, N}]
              end,
    MaxUsers = case Set(max_users) of
                   undefined -> [];
                   M -> [{<<"muc_max_occupants">>, M}]
               end,
    RoomOptions = Set(default_room_options),
    Defaults = [{CoreName, room_default_value(Name, Value)}
                || {Name, CoreName} <- room_defaults(),
                   {_, Value} <- [lists:keyfind(Name, 1, RoomOptions)]],
    Own = [{atom_to_binary(Name), Value}
           || {Name, _} <- core_options(), (Value = Set(Name)) =/= undefined],
    %% Room vCards live in Prosody's mod_vcard: ejabberd has no store for them here.
    [{<<"muc_vcard">>, false}, {<<"name">>, Set(name)}] ++ History ++ MaxUsers ++ Defaults ++ Own.

mod_doc() ->
    #{desc => <<"Multi-user chat (XEP-0045) with the room logic of muc_rs (Rust)">>}.

%%% gen_server

init([ServerHost, Opts]) ->
    process_flag(trap_exit, true),
    ejabberd_mnesia:create(?MODULE, muc_rs_room,
                           [{disc_copies, [node()]},
                            {attributes, record_info(fields, muc_rs_room)}]),
    ejabberd_mnesia:create(?MODULE, muc_rs_room_node,
                           [{ram_copies, [node()]},
                            {attributes, record_info(fields, muc_rs_room_node)}]),
    %% A node rejoining a cluster copies both from the others before it serves a stanza.
    ok = mnesia:wait_for_tables([muc_rs_room, muc_rs_room_node], 60000),
    [Host | _] = Hosts = gen_mod:get_opt_hosts(Opts),
    {ok, Service} = muc_rs_nif:new_host(Host, core_settings(Opts), gen_mod:get_opt(test_panic, Opts)),
    %% Other nodes read this node's public rooms without a call to this process
    %% (local_public_rooms/1), so two nodes listing rooms at once never wait on each other.
    persistent_term:put({?MODULE, ServerHost}, Service),
    lists:foreach(fun(H) -> ejabberd_router:register_route(H, ServerHost) end, Hosts),
    ?INFO_MSG("muc_rs serving ~ts", [Host]),
    {ok, #{server_host => ServerHost, hosts => Hosts, service => Service,
           access_admin => gen_mod:get_opt(access_admin, Opts),
           access_create => gen_mod:get_opt(access_create, Opts)}}.

handle_info({route, Packet}, State) ->
    safely(fun() -> dispatch(Packet, State) end, Packet),
    {noreply, State};
%% A stanza another node forwarded: this node has the room.
handle_info({route_here, Packet}, State) ->
    safely(fun() -> route(Packet, State) end, Packet),
    {noreply, State};
handle_info(_Info, State) ->
    {noreply, State}.

handle_call(_Request, _From, State) ->
    {reply, {error, badarg}, State}.

handle_cast(_Msg, State) ->
    {noreply, State}.

terminate(_Reason, #{hosts := Hosts, server_host := ServerHost}) ->
    persistent_term:erase({?MODULE, ServerHost}),
    lists:foreach(fun ejabberd_router:unregister_route/1, Hosts).

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

%% A stanza for a room goes to the node the room lives on; the rest is handled here.
dispatch(Packet, #{server_host := ServerHost} = State) ->
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

route(Packet, #{service := Service} = State) ->
    handle(fun muc_rs_nif:handle/5, Service, xmpp:encode(Packet), sender(Packet, State), [], State).

%% The core may first ask for stored records (read them and hand the stanza back), or to be
%% called on a dirty scheduler (a big room).
handle(Nif, Service, El, Sender, Rooms, #{server_host := ServerHost} = State) ->
    case Nif(Service, El, erlang:system_time(second), Sender, Rooms) of
        {load, RoomJid} ->
            handle(Nif, Service, El, Sender, [{RoomJid, read_room(RoomJid)} | Rooms], State);
        {admins, Users} ->
            #{admins := Known} = Sender,
            Answers = [{User, is_admin(jid:decode(User), State)} || User <- Users],
            handle(Nif, Service, El, Sender#{admins := Answers ++ Known}, Rooms, State);
        load_all ->
            Every = {all, read_all_rooms(), public_rooms_elsewhere(ServerHost)},
            handle(Nif, Service, El, Sender, Every, State);
        dirty ->
            handle(fun muc_rs_nif:handle_dirty/5, Service, El, Sender, Rooms, State);
        {ok, Deliveries, [], Logs, Gone} ->
            carry_out(Deliveries, Logs, Gone);
        {ok, [], Stores, [], Gone} ->
            %% Written before anything is routed; a failed write is undone by the core,
            %% which then hands the error reply instead.
            {ok, Deliveries, Logs} = muc_rs_nif:confirm(Service, write_rooms(Stores)),
            carry_out(Deliveries, Logs, Gone)
    end.

carry_out(Deliveries, Logs, Gone) ->
    lists:foreach(fun log/1, Logs),
    lists:foreach(fun deliver/1, Deliveries),
    %% A room no longer live here is no node's until a stanza brings it back.
    lists:foreach(fun(Room) -> mnesia:dirty_delete(muc_rs_room_node, Room) end, Gone).

%% The public rooms live on the cluster's other nodes (none answers within a second: left
%% out, as a node that is going down would be).
public_rooms_elsewhere(ServerHost) ->
    Answers = erpc:multicall(nodes(), ?MODULE, local_public_rooms, [ServerHost], 1000),
    lists:append([Rooms || {ok, Rooms} <- Answers]).

%% This node's public rooms (called by the other nodes of a cluster).
local_public_rooms(ServerHost) ->
    case persistent_term:get({?MODULE, ServerHost}, none) of
        none -> [];
        Service -> muc_rs_nif:public_rooms(Service)
    end.

%% What the access rules say of the sender: whether it is a MUC admin (access_admin: an
%% admin owns every room and may create rooms, as with mod_muc) and may create rooms
%% (access_create, asked of presences only: only a join makes a room). The core asks
%% about anyone else it needs ({admins, Users}).
sender(Packet, #{access_create := Create, server_host := ServerHost} = State) ->
    From = xmpp:get_from(Packet),
    IsAdmin = is_admin(From, State),
    MayCreate = IsAdmin orelse
        (is_record(Packet, presence) andalso acl:match_rule(ServerHost, Create, From) == allow),
    #{admins => [{jid:encode(jid:remove_resource(From)), IsAdmin}], may_create => MayCreate}.

is_admin(Jid, #{server_host := ServerHost, access_admin := Admin}) ->
    acl:match_rule(ServerHost, Admin, Jid) == allow.

%% Every stored room (for the service's room list, as mod_muc lists its stored rooms).
read_all_rooms() ->
    mnesia:dirty_select(muc_rs_room, [{#muc_rs_room{name_host = '$1', record = '$2'}, [], [{{'$1', '$2'}}]}]).

read_room(RoomJid) ->
    case mnesia:dirty_read(muc_rs_room, RoomJid) of
        [#muc_rs_room{record = Record}] -> Record;
        [] -> none
    end.

%% Every record of the stanza in one transaction, on disk before anything is sent: ok, or
%% {error, Reason} with nothing written.
write_rooms(Stores) ->
    Write = fun() ->
        lists:foreach(
          fun({RoomJid, none}) -> mnesia:delete({muc_rs_room, RoomJid});
             ({RoomJid, Record}) -> mnesia:write(#muc_rs_room{name_host = RoomJid, record = Record})
          end, Stores)
    end,
    case mnesia:transaction(Write) of
        {atomic, ok} ->
            %% mnesia's log buffers in its own process: flushed now, the change outlives a
            %% kill -9.
            mnesia:sync_log(),
            ok;
        {aborted, Reason} ->
            ?ERROR_MSG("muc_rs could not write ~p: ~p", [[Room || {Room, _} <- Stores], Reason]),
            {error, iolist_to_binary(io_lib:format("~p", [Reason]))}
    end.

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
