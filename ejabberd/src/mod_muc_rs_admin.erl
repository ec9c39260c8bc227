%%% The room commands of ejabberd's mod_muc_admin (ejabberdctl, the HTTP API) on
%%% mod_muc_rs's rooms. mod_muc_admin cannot load beside mod_muc_rs (it depends on
%%% mod_muc), so mod_muc_rs registers them itself when it starts: stock's own definitions
%%% (names, arguments, result formats, docs: mod_muc_admin:get_commands_spec/0), each
%%% pointed at this module's function of the same name, for the commands this module has.
%%% Results and errors are stock's.
%%%
%%% A command on a room is a call to the gen_server of the node the room lives on
%%% (mod_muc_rs:command/2); the room is read as mod_muc would store it (mod_muc's options),
%%% and changed by the core with the room's own authority, stored before the occupants
%%% hear of it.
-module(mod_muc_rs_admin).

-export([register_commands/0, unregister_commands/0]).
-export([stop_kindly/2, evacuate_kindly/2]).
-export([muc_online_rooms/1, muc_online_rooms_by_regex/2,
         create_room/3, create_room_with_opts/4, destroy_room/2,
         get_room_options/2, change_room_option/4,
         set_room_affiliation/4, set_room_affiliation/5,
         get_room_affiliations/2, get_room_affiliations_v3/2, get_room_affiliation/3,
         get_room_occupants/2, get_room_occupants_number/2,
         get_room_history/2, get_user_rooms/2,
         muc_register_nick/3, muc_register_nick/4, muc_unregister_nick/2, muc_unregister_nick/3,
         send_direct_invitation/5, create_rooms_file/1, destroy_rooms_file/1,
         rooms_unused_list/2, rooms_unused_destroy/2, rooms_empty_list/1, rooms_empty_destroy/1,
         rooms_empty_destroy_restuple/1]).

-include_lib("xmpp/include/xmpp.hrl").
-include("ejabberd_commands.hrl").
-include("mod_muc_room.hrl").

%%% Registration

register_commands() ->
    ejabberd_commands:register_commands(?MODULE, commands() ++ kindly_commands()).

%% (ejabberd's own stop_kindly and evacuate_kindly back as they were)
unregister_commands() ->
    ejabberd_commands:unregister_commands(commands() ++ kindly_commands()),
    ejabberd_commands:register_commands(ejabberd_admin_kindly()).

%% Stock's definitions of the commands this module has.
commands() ->
    [Command#ejabberd_commands{module = ?MODULE}
     || #ejabberd_commands{function = Function, args = Args} = Command
            <- mod_muc_admin:get_commands_spec(),
        erlang:function_exported(?MODULE, Function, length(Args))].

%% ejabberd's stop_kindly and evacuate_kindly send their notice to mod_muc's rooms only
%% (ejabberd_admin finds the MUC services by mod_muc's name): while mod_muc_rs runs they are
%% ejabberd's own commands, same definitions, that first send it to mod_muc_rs's rooms.
kindly_commands() ->
    [Command#ejabberd_commands{module = ?MODULE} || Command <- ejabberd_admin_kindly()].

ejabberd_admin_kindly() ->
    [Command || #ejabberd_commands{name = Name, module = ejabberd_admin} = Command
                    <- ejabberd_admin:get_commands_spec(),
                lists:member(Name, [stop_kindly, evacuate_kindly])].

stop_kindly(Delay, Announcement) ->
    tell_rooms_kindly(Delay, Announcement),
    ejabberd_admin:stop_kindly(Delay, Announcement).

evacuate_kindly(Delay, Announcement) ->
    tell_rooms_kindly(Delay, Announcement),
    ejabberd_admin:evacuate_kindly(Delay, Announcement).

%% The notice ejabberd_admin sends to mod_muc's rooms, to every room of every mod_muc_rs
%% service.
tell_rooms_kindly(Delay, Announcement) ->
    Subject = str:format("Server stop in ~p seconds!", [Delay]),
    Text = str:format("~s~n~s", [Subject, unicode:characters_to_binary(Announcement)]),
    [mod_muc_rs:announce_to_rooms(ServerHost, Host, Text)
     || ServerHost <- ejabberd_option:hosts(), gen_mod:is_loaded(ServerHost, mod_muc_rs),
        Host <- gen_mod:get_module_opt_hosts(ServerHost, mod_muc_rs)],
    ok.

%%% Listing rooms

muc_online_rooms(ServiceArg) ->
    [Jid || {Jid, _Public, _Sessions, _Active} <- rooms(ServiceArg)].

muc_online_rooms_by_regex(ServiceArg, Regex) ->
    {ok, Pattern} = re:compile(Regex),
    [{Jid, atom_to_binary(Public), Sessions}
     || {Jid, Public, Sessions, _Active} <- rooms(ServiceArg),
        re:run(room_name(Jid), Pattern, [{capture, none}]) == match].

%% The rooms of the service (or of every service with `global`), live on any node of the
%% cluster or stored: [{RoomJid, Public, Sessions, Active}], Active the time (seconds) of
%% the last message of a live room (else now), or when mod_muc put a stored room away (else
%% nil).
rooms(ServiceArg) ->
    lists:flatmap(
      fun(Service) ->
              case mod_muc_rs:command(Service, stored_rooms) of
                  Stored when is_list(Stored) ->
                      %% (a live room without messages counts as active now, as stock
                      %% counts a room never joined since it started)
                      Now = erlang:system_time(second),
                      Live = [{Jid, Public, Sessions, case Active of nil -> Now; _ -> Active end}
                              || {Jid, Public, Sessions, Active}
                                     <- lists:append(mod_muc_rs:command_everywhere(Service, live_rooms))],
                      Live ++ [Room || {Jid, _, _, _} = Room <- Stored, not lists:keymember(Jid, 1, Live)];
                  {error, _} -> []   % not a service of mod_muc_rs: no rooms, as with stock
              end
      end, services(ServiceArg)).

services(Global) when Global == <<"global">> ->
    lists:append([gen_mod:get_module_opt_hosts(ServerHost, mod_muc_rs)
                  || ServerHost <- ejabberd_option:hosts(),
                     gen_mod:is_loaded(ServerHost, mod_muc_rs)]);
services(Service) ->
    {_ServerHost, Service2} = service(Service, <<"serverhost">>),
    [Service2].

room_name(Jid) ->
    (jid:decode(Jid))#jid.luser.

%%% Making and destroying rooms

create_room(Name, Service, ServerHost) ->
    create_room_with_opts(Name, Service, ServerHost, []).

%% Options: [{Name, Value}], binaries, as stock's change_room_option takes them.
create_room_with_opts(Name, Service, ServerHost, Options) ->
    ServerHost2 = server_host(ServerHost),
    Room = room_jid(Name, Service),
    case snapshot(Room) of
        none ->
            Defaults = mod_muc_rs_rooms:new_room_opts(
                         gen_mod:get_module_opt(ServerHost2, mod_muc_rs, default_room_options)),
            Opts = lists:foldl(fun({Option, Value}, Acc) ->
                                       lists:keystore(Option, 1, Acc, {Option, Value})
                               end, Defaults, [room_option(O, V) || {O, V} <- Options]),
            #{config := Config} = mod_muc_rs_rooms:to_record(Room, Opts, [], none),
            case mod_muc_rs:command(room_service(Room), {create, Room, Config, Opts}) of
                ok -> ok;
                {error, _} -> throw({error, "Unable to start room"})
            end;
        {ok, _, _, _} ->
            throw({error, "Room already exists"})
    end.

destroy_room(Name, Service) ->
    Room = room_jid(Name, Service),
    case mod_muc_rs:command(room_service(Room), {destroy, Room, <<>>}) of
        ok -> ok;
        {error, _} -> throw({error, "Room doesn't exists"})
    end.

%%% Unused and empty rooms

rooms_unused_list(ServiceArg, Days) ->
    rooms_report(unused, list, ServiceArg, Days).

rooms_unused_destroy(ServiceArg, Days) ->
    rooms_report(unused, destroy, ServiceArg, Days).

rooms_empty_list(ServiceArg) ->
    rooms_report(empty, list, ServiceArg, 0).

rooms_empty_destroy(ServiceArg) ->
    rooms_report(empty, destroy, ServiceArg, 0).

rooms_empty_destroy_restuple(ServiceArg) ->
    Destroyed = rooms_empty_destroy(ServiceArg),
    {ok, <<"Destroyed rooms: ", (integer_to_binary(length(Destroyed)))/binary>>}.

%% The rooms that are unused (no occupant, no message for Days days; a stored room: since
%% mod_muc put it away, or since the node started) or empty (an archive, with mod_mam, that
%% has no message), listed or destroyed, as stock does it.
rooms_report(Method, Action, ServiceArg, Days) ->
    All = rooms(ServiceArg),
    Now = erlang:system_time(second),
    NodeStart = Now - (erlang:monotonic_time(second) - ejabberd_config:get_node_start()),
    Passing = [Room || {Jid, _Public, Sessions, Active} = Room <- All,
                       passes(Method, Jid, Sessions, Active, Days, Now, NodeStart)],
    io:format("rooms ~ts: ~p out of ~p~n", [Method, length(Passing), length(All)]),
    Reason = iolist_to_binary(io_lib:format("Room destroyed by rooms_~s_destroy.", [Method])),
    [mod_muc_rs:command(room_service(Jid), {destroy, Jid, Reason})
     || Action == destroy, {Jid, _, _, _} <- Passing],
    [Jid || {Jid, _, _, _} <- Passing].

passes(unused, _Jid, Sessions, Active, Days, Now, NodeStart) ->
    Since = case Active of
                nil -> NodeStart;
                Time -> Time
            end,
    Sessions == 0 andalso (Now - Since) div 86400 >= Days;
passes(empty, Jid, _Sessions, _Active, _Days, _Now, _NodeStart) ->
    ServerHost = server_host_of(Jid),
    #jid{luser = Name, lserver = Service} = jid:decode(Jid),
    gen_mod:is_loaded(ServerHost, mod_mam)
        andalso lists:member({<<"mam">>, <<"true">>}, get_room_options(Name, Service))
        andalso mod_mam:is_empty_for_room(ServerHost, Name, Service).

%%% Options

get_room_options(Name, Service) ->
    case snapshot(room_jid(Name, Service)) of
        {ok, Opts, _, _} -> format_config(config(Opts));
        none -> []
    end.

%% As stock: an option the core has a setting for is changed by the core (as if an owner
%% had submitted it: the occupants are told); the others are kept in mod_muc's row of a
%% persistent room, which is where mod_muc_rs has them.
change_room_option(Name, Service, OptionName, ValueText) ->
    Room = room_jid(Name, Service),
    case snapshot(Room) of
        none -> throw({error, "Room not found"});
        {ok, Opts, _, _} ->
            {Option, Value} = room_option(OptionName, ValueText),
            case Option == logging andalso not gen_mod:is_loaded(server_host_of(Room), mod_muc_log) of
                true -> mod_muc_log_not_enabled;
                false -> change_option(Room, Opts, Option, Value)
            end
    end.

change_option(Room, Opts, Option, Value) ->
    %% (the rest are create_room_with_opts' only)
    lists:member(Option, record_info(fields, config))
        orelse throw({error, <<"Unknown option '", (atom_to_binary(Option))/binary, "'">>}),
    New = lists:keystore(Option, 1, Opts, {Option, Value}),
    Data = fun(O) -> maps:get(<<"_data">>, maps:get(config, mod_muc_rs_rooms:to_record(Room, O, [], none))) end,
    Persistent = proplists:get_value(persistent, New, false),
    case Data(New) == Data(Opts) andalso New /= Opts andalso not Persistent of
        true -> throw({error, "mod_muc_rs keeps this option only for persistent rooms"});
        false -> ok
    end,
    case mod_muc_rs:command(room_service(Room), {configure, Room, Data(New), [{Option, Value}]}) of
        ok -> ok;
        {error, Why} -> throw({error, Why})
    end.

%% A command's option and value as mod_muc keeps them, as stock reads them; an option a
%% room has no such setting for, or a value of the wrong type, is refused (stock crashes).
room_option(Name, Text) ->
    Option = misc:binary_to_atom(Name),
    Settable = [affiliations, subject, subject_author | record_info(fields, config)],
    lists:member(Option, Settable) orelse throw({error, <<"Unknown option '", Name/binary, "'">>}),
    Value = try option_value(Option, Text)
            catch error:_ -> throw({error, <<"Invalid value of '", Name/binary, "'">>})
            end,
    Default = proplists:get_value(Option, lists:zip(record_info(fields, config), tl(tuple_to_list(#config{})))),
    is_boolean(Default) andalso not is_boolean(Value)
        andalso throw({error, <<"Invalid value of '", Name/binary, "'">>}),
    {Option, Value}.

option_value(Option, Text) ->
    case Option of
        _ when Option == title; Option == description; Option == password;
               Option == subject; Option == subject_author; Option == vcard;
               Option == lang; Option == pubsub -> Text;
        _ when Option == max_users; Option == voice_request_min_interval ->
            binary_to_integer(Text);
        presence_broadcast ->
            Roles = misc:expr_to_term(Text),
            [] = Roles -- [moderator, participant, visitor],
            Roles;
        vcard_xupdate when Text /= <<"undefined">>, Text /= <<"external">> -> Text;
        affiliations -> [affiliation_entry(Entry) || Entry <- str:tokens(Text, <<",">>)];
        _ -> misc:binary_to_atom(Text)
    end.

%% `Type:JID`, as in create_room_with_opts' `affiliations`.
affiliation_entry(Entry) ->
    case binary:split(Entry, <<":">>) of
        [Type, Jid] when Type == <<"owner">>; Type == <<"admin">>; Type == <<"member">>;
                         Type == <<"outcast">> ->
            try jid:tolower(jid:decode(Jid)) of
                LJid -> {LJid, {binary_to_atom(Type), <<>>}}
            catch _:{bad_jid, _} -> throw({error, "Malformed JID in affiliation"})
            end;
        _ -> throw({error, "Invalid 'affiliation'"})
    end.

%% mod_muc's options as the #config{} a room of mod_muc would have.
config(Opts) ->
    Defaults = lists:zip(record_info(fields, config), tl(tuple_to_list(#config{}))),
    Values = [case lists:keyfind(Field, 1, Opts) of
                  {_, List} when Field == captcha_whitelist, is_list(List) -> gb_sets:from_list(List);
                  {_, Value} -> Value;
                  false -> Default
              end || {Field, Default} <- Defaults],
    list_to_tuple([config | Values]).

%% As stock lists a room's #config{}: every field, by name, with its value as text.
format_config(Config) ->
    [{atom_to_binary(Field), format_value(Value)}
     || {Field, Value} <- lists:zip(record_info(fields, config), tl(tuple_to_list(Config)))].

format_value(Value) when is_atom(Value) -> atom_to_binary(Value);
format_value(Value) when is_integer(Value) -> integer_to_binary(Value);
format_value(Value) when is_tuple(Value); is_list(Value) -> iolist_to_binary(io_lib:format("~w", [Value]));
format_value(Value) -> Value.

%%% Affiliations

set_room_affiliation(Name, Service, User, Host, Affiliation) ->
    set_room_affiliation(Name, Service, jid:encode(jid:make(User, Host)), Affiliation).

set_room_affiliation(Name, Service, Jid, Affiliation) ->
    lists:member(Affiliation, [<<"outcast">>, <<"none">>, <<"member">>, <<"admin">>, <<"owner">>])
        orelse throw({error, "Invalid affiliation"}),
    Room = room_jid(Name, Service),
    case mod_muc_rs:command(room_service(Room), {set_affiliation, Room, Jid, Affiliation}) of
        ok -> ok;
        {error, <<"No such room">>} -> throw({error, "Room doesn't exists"});
        {error, _} -> throw({error, "Unable to perform change"})
    end.

get_room_affiliations(Name, Service) ->
    [{U, S, Affiliation, Reason} || {{U, S, _}, Affiliation, Reason} <- affiliations(Name, Service)].

get_room_affiliations_v3(Name, Service) ->
    [{jid:encode(jid:make(U, S)), Affiliation, Reason}
     || {{U, S, _}, Affiliation, Reason} <- affiliations(Name, Service)].

%% [{LJid, Affiliation, Reason}].
affiliations(Name, Service) ->
    case snapshot(room_jid(Name, Service)) of
        {ok, Opts, _, _} ->
            [case Value of
                 {Affiliation, Reason} -> {LJid, Affiliation, Reason};
                 Affiliation -> {LJid, Affiliation, <<>>}
             end || {LJid, Value} <- proplists:get_value(affiliations, Opts, [])];
        none -> throw({error, "The room does not exist."})
    end.

%% As mod_muc_room:get_affiliation/2: a MUC admin owns every room; else the affiliation of
%% the full JID, the bare JID, the domain with the resource, or the domain.
get_room_affiliation(Name, Service, Jid) ->
    Room = room_jid(Name, Service),
    case snapshot(Room) of
        {ok, Opts, _, _} ->
            User = jid:decode(Jid),
            Admin = gen_mod:get_module_opt(server_host_of(Room), mod_muc_rs, access_admin),
            case acl:match_rule(server_host_of(Room), Admin, User) of
                allow -> owner;
                deny -> stored_affiliation(jid:tolower(User), proplists:get_value(affiliations, Opts, []))
            end;
        none -> throw({error, "The room does not exist."})
    end.

stored_affiliation({U, S, R}, Affiliations) ->
    Found = [Value || Key <- [{U, S, R}, {U, S, <<>>}, {<<>>, S, R}, {<<>>, S, <<>>}],
                      {_, Value} <- [lists:keyfind(Key, 1, Affiliations)]],
    case Found of
        [{Affiliation, _Reason} | _] -> Affiliation;
        [Affiliation | _] -> Affiliation;
        [] -> none
    end.

%%% Occupants

get_room_occupants(Name, Service) ->
    case snapshot(room_jid(Name, Service)) of
        {ok, _, Sessions, _} -> [{Jid, Nick, binary_to_list(Role)} || {Jid, Nick, Role} <- Sessions];
        none -> throw({error, room_not_found})
    end.

get_room_occupants_number(Name, Service) ->
    case snapshot(room_jid(Name, Service)) of
        {ok, _, Sessions, _} -> length(Sessions);
        none -> throw({error, room_not_found})
    end.

%%% History

%% [{Timestamp, Message}], each message pretty-printed, as stock lists them.
get_room_history(Name, Service) ->
    case snapshot(room_jid(Name, Service)) of
        {ok, _, _, History} ->
            [{xmpp_util:encode_timestamp({Time div 1000000, Time rem 1000000, 0}),
              ejabberd_web_admin:pretty_print_xml(fxml_stream:parse_element(Message))}
             || {Time, Message} <- History];
        none -> throw({error, "The room does not exist."})
    end.

%%% Users

%% The rooms, on every node, where the user has an occupant.
get_user_rooms(User, Server) ->
    Jid = jid:encode({jid:nodeprep(User), jid:nodeprep(Server), <<>>}),
    lists:append([lists:append(mod_muc_rs:command_everywhere(Service, {user_rooms, Jid}))
                  || Service <- services(<<"global">>)]).

muc_register_nick(Nick, User, Host, Service) ->
    muc_register_nick(Nick, jid:encode(jid:make(User, Host)), Service).

%% A nick registered with the service itself, in mod_muc's table: the service refuses it
%% to anyone else in every room.
muc_register_nick(Nick, UserJid, Service) ->
    {ServerHost, From} =
        try {ejabberd_router:host_of_route(Service), jid:decode(UserJid)}
        catch error:{invalid_domain, _} -> throw({error, "Invalid value of 'service'"});
              error:{unregistered_route, _} -> throw({error, "Unknown host in 'service'"});
              error:{bad_jid, _} -> throw({error, "Invalid 'jid'"})
        end,
    Db = mod_muc_rs_rooms:db(ServerHost, gen_mod:get_module_opts(ServerHost, mod_muc_rs)),
    case mod_muc_rs_rooms:set_service_nick(Db, Service, From, Nick) of
        {atomic, ok} -> ok;
        {atomic, false} -> throw({error, "Nick already registered"});
        _ -> throw({error, "Database error"})
    end.

muc_unregister_nick(User, Host, Service) ->
    muc_unregister_nick(jid:encode(jid:make(User, Host)), Service).

muc_unregister_nick(UserJid, Service) ->
    muc_register_nick(<<>>, UserJid, Service).

%% XEP-0249 invitations from the room to each user not in it already (Users: JIDs, or one
%% binary of them separated by `:`). Password and Reason: text, or `none`.
send_direct_invitation(Name, Service, Password, Reason, Users) when is_binary(Users) ->
    send_direct_invitation(Name, Service, Password, Reason, binary:split(Users, <<":">>, [global]));
send_direct_invitation(Name, Service, Password, Reason, Users) ->
    Room = case jid:make(Name, Service) of
               error -> throw({error, "Invalid 'roomname' or 'service'"});
               Jid -> Jid
           end,
    Occupants = [jid:remove_resource(jid:tolower(jid:decode(Jid)))
                 || {Jid, _, _} <- get_room_occupants(Room#jid.luser, Room#jid.lserver)],
    Text = fun(<<"none">>) -> <<>>; (T) -> T end,
    Invitation = #message{sub_els = [#x_conference{jid = Room, password = Text(Password),
                                                   reason = Text(Reason)}]},
    [ejabberd_router:route(xmpp:set_from_to(Invitation, Room, User))
     || User <- [jid:decode(U) || U <- Users],
        User#jid.luser /= <<>>,
        not lists:member(jid:remove_resource(jid:tolower(User)), Occupants)],
    ok.

%%% Rooms in a file (one room JID a line)

%% Stock writes the rooms to mod_muc's table, to be served from the next start; mod_muc_rs
%% makes them now (persistent, with the default options), and leaves a room that exists as
%% it is.
create_rooms_file(Filename) ->
    lists:foreach(fun({Name, Service, ServerHost}) ->
                          io:format("Creating room ~ts@~ts~n", [Name, Service]),
                          try create_room_with_opts(Name, Service, ServerHost, [{<<"persistent">>, <<"true">>}])
                          catch throw:{error, "Room already exists"} -> ok
                          end
                  end, rooms_in_file(Filename)).

destroy_rooms_file(Filename) ->
    lists:foreach(fun({Name, Service, ServerHost}) ->
                          io:format("Destroying room: ~ts@~ts - vhost: ~ts~n", [Name, Service, ServerHost]),
                          destroy_room(Name, Service)
                  end, rooms_in_file(Filename)).

%% [{Name, Service, ServerHost}], the server host being the service's name without its
%% first label, as stock reads the file (and in its order: from the last line).
rooms_in_file(Filename) ->
    {ok, Text} = file:read_file(Filename),
    lists:reverse(lists:filtermap(
      fun(Line) ->
              case binary:split(string:trim(Line), <<"@">>) of
                  [Name, Service] when Name /= <<>> ->
                      case binary:split(Service, <<".">>) of
                          [_, ServerHost] -> {true, {Name, Service, ServerHost}};
                          _ -> false
                      end;
                  _ -> false
              end
      end, binary:split(Text, <<"\n">>, [global]))).

%%% Rooms and services, checked as stock checks them

%% The room as the commands read it: {ok, Opts, Sessions, History} or none (also in a service
%% that is not mod_muc_rs's, as stock finds no room there).
snapshot(Room) ->
    case mod_muc_rs:command(room_service(Room), {snapshot, Room}) of
        {ok, _, _, _} = Found -> Found;
        _ -> none
    end.

%% The room Name@Service, of a service of mod_muc_rs.
room_jid(Name, Service) ->
    Name2 = case jid:nodeprep(Name) of
                error -> throw({error, <<"Invalid value of room name">>});
                Prepared -> Prepared
            end,
    {_ServerHost, Service2} = service(Service, <<"service">>),
    jid:encode({Name2, Service2, <<>>}).

room_service(Room) ->
    (jid:decode(Room))#jid.lserver.

server_host_of(Room) ->
    ejabberd_router:host_of_route(room_service(Room)).

%% {ServerHost, Service}: a service routed here, as stock checks it (ArgName names the
%% argument in the error).
service(Service, ArgName) ->
    Unknown = {error, <<"Unknown host passed in '", ArgName/binary, "'">>},
    case jid:nameprep(Service) of
        error -> throw({error, <<"Invalid value of '", ArgName/binary, "'">>});
        Service2 ->
            try ejabberd_router:host_of_route(Service2) of
                ServerHost -> {ServerHost, Service2}
            catch error:{invalid_domain, _} -> throw(Unknown);
                  error:{unregistered_route, _} -> throw(Unknown)
            end
    end.

server_host(ServerHost) ->
    case jid:nameprep(ServerHost) of
        error -> throw({error, <<"Invalid value of 'serverhost'">>});
        Prepared ->
            lists:member(Prepared, ejabberd_option:hosts())
                orelse throw({error, <<"Unknown host passed in 'serverhost'">>}),
            Prepared
    end.
