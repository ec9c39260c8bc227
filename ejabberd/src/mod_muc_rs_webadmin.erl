%%% The web admin's MUC pages for mod_muc_rs's rooms (mod_muc_admin's need mod_muc): like
%%% stock's, built from the room commands (mod_muc_rs_admin) with the web admin's
%%% make_command, which shows each command's form and, once submitted, its result.
%%%
%%% - Multi-User Chat (the server's menu): the rooms of every service;
%%% - Multi-User Chat (a virtual host's menu): each of its services' rooms, and the room
%%%   commands with the service filled in;
%%% - a user's MUC rooms, affiliations and registered nick (a user's menu).
-module(mod_muc_rs_webadmin).

-export([add_hooks/1, remove_hooks/1]).
-export([web_menu_main/2, web_page_main/2, web_menu_host/3, web_page_host/3,
         web_menu_hostuser/4, web_page_hostuser/4]).

-include_lib("xmpp/include/xmpp.hrl").
-include("ejabberd_http.hrl").
-include("ejabberd_web_admin.hrl").
-include("translate.hrl").

-import(ejabberd_web_admin, [make_command/4]).

%% The pages of the virtual host ServerHost (and the server's, once for all hosts).
add_hooks(ServerHost) ->
    ejabberd_hooks:add(webadmin_menu_main, ?MODULE, web_menu_main, 50),
    ejabberd_hooks:add(webadmin_page_main, ?MODULE, web_page_main, 50),
    [ejabberd_hooks:add(Hook, ServerHost, ?MODULE, Function, 50) || {Hook, Function} <- host_hooks()],
    ok.

remove_hooks(ServerHost) ->
    [ejabberd_hooks:delete(Hook, ServerHost, ?MODULE, Function, 50) || {Hook, Function} <- host_hooks()],
    case gen_mod:is_loaded_elsewhere(ServerHost, mod_muc_rs) of
        false ->
            ejabberd_hooks:delete(webadmin_menu_main, ?MODULE, web_menu_main, 50),
            ejabberd_hooks:delete(webadmin_page_main, ?MODULE, web_page_main, 50);
        true -> ok
    end,
    ok.

host_hooks() ->
    [{webadmin_menu_host, web_menu_host}, {webadmin_page_host, web_page_host},
     {webadmin_menu_hostuser, web_menu_hostuser}, {webadmin_page_hostuser, web_page_hostuser}].

%%% The server's page

web_menu_main(Acc, Lang) ->
    Acc ++ [{<<"muc">>, translate:translate(Lang, ?T("Multi-User Chat"))}].

web_page_main(_, #request{path = [<<"muc">>], lang = Lang} = R) ->
    {stop, title(Lang) ++ [rooms(R, <<"global">>)]};
web_page_main(Acc, _) ->
    Acc.

%%% A virtual host's page

web_menu_host(Acc, _ServerHost, Lang) ->
    Acc ++ [{<<"muc">>, translate:translate(Lang, ?T("Multi-User Chat"))}].

web_page_host(_, ServerHost, #request{path = [<<"muc">> | _], lang = Lang} = R) ->
    Services = gen_mod:get_module_opt_hosts(ServerHost, mod_muc_rs),
    {stop, title(Lang) ++ lists:append([service(R, ServerHost, Service) || Service <- Services])};
web_page_host(Acc, _, _) ->
    Acc.

%% A service's rooms, then the commands on its rooms.
service(R, ServerHost, Service) ->
    Filled = [{<<"service">>, Service}],
    [?XC(<<"h2">>, Service), rooms(R, Service)]
        ++ [make_command(Command, R, Filled, [])
            || Command <- [get_room_occupants, get_room_affiliations, get_room_options,
                           get_room_history, change_room_option, set_room_affiliation,
                           destroy_room, rooms_unused_list, rooms_unused_destroy,
                           rooms_empty_list, rooms_empty_destroy]]
        ++ [make_command(create_room, R, [{<<"host">>, ServerHost} | Filled], [])].

%% The rooms of a service (or of every service: `global`), each with its public flag and
%% how many are in it.
rooms(R, Service) ->
    make_command(muc_online_rooms_by_regex, R, [{<<"service">>, Service}, {<<"regex">>, <<>>}],
                 [{table_options, {100, []}}]).

title(Lang) ->
    ?H1GL(translate:translate(Lang, ?T("Multi-User Chat")), <<"modules/#mod_muc">>, <<"mod_muc">>).

%%% A user's pages

web_menu_hostuser(Acc, _ServerHost, _User, _Lang) ->
    Acc ++ [{<<"muc-rooms">>, <<"MUC Rooms Online">>},
            {<<"muc-affiliations">>, <<"MUC Rooms Affiliations">>},
            {<<"muc-register">>, <<"MUC Service Registration">>}].

web_page_hostuser(_, ServerHost, User, #request{path = [<<"muc-rooms">> | _]} = R) ->
    {stop, [?XC(<<"h1">>, <<"MUC Rooms Online">>),
            make_command(get_user_rooms, R, [{<<"user">>, User}, {<<"host">>, ServerHost}], [])]};
web_page_hostuser(_, ServerHost, User, #request{path = [<<"muc-affiliations">> | _]} = R) ->
    Jid = [{<<"user">>, User}, {<<"host">>, ServerHost}],
    {stop, [?XC(<<"h1">>, <<"MUC Rooms Affiliations">>),
            make_command(set_room_affiliation, R, Jid, []),
            make_command(get_room_affiliation, R, [{<<"jid">>, jid:encode(jid:make(User, ServerHost))}], [])]};
web_page_hostuser(_, ServerHost, User, #request{path = [<<"muc-register">> | _]} = R) ->
    Jid = [{<<"user">>, User}, {<<"host">>, ServerHost}],
    {stop, [?XC(<<"h1">>, <<"MUC Service Registration">>),
            make_command(muc_register_nick, R, Jid, []),
            make_command(muc_unregister_nick, R, Jid, [])]};
web_page_hostuser(Acc, _, _, _) ->
    Acc.
