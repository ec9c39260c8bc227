%%% ejabberd's MUC hooks on mod_muc_rs rooms, run where mod_muc_room runs them, with what
%%% their handlers read: the room as a #state{} record (built here from what the core
%%% says of the room, as mod_mam builds one itself in mod_mam_sql), the sender's nick, the
%%% packet to filter or drop. What is built only for a hook with handlers (ejabberd's hook
%%% table says which have some): without mod_mam and its like, the core broadcasts alone.
%%%
%%% - muc_filter_message: the core leaves an occupant's message's broadcast to the
%%%   gen_server ({broadcast_message, ...} among its deliveries) when the hook has handlers
%%%   (listening/2); broadcast_message/3 runs it (mod_mam archives the message and gives
%%%   its id; a handler's `drop` stops it), stamps the room's <stanza-id/>, delivers it and
%%%   has the core keep it in the room's history.
%%% - disco#info: where mod_mam is loaded, the core leaves a room's reply to the gen_server
%%%   (disco_info/2 adds the MAM features if the room archives), and the service's gets
%%%   them too (service_features/2), as mod_muc_room and mod_muc list them.
%%% - remove_room: a room destroyed (by its owner, or a temporary room its last occupant
%%%   left) or made temporary is forgotten as mod_muc forgets it (mod_mam clears its
%%%   archive). A room put away to storage, or moved between mod_muc and mod_muc_rs, is not.
%%% - remove_archived: a moderator (XEP-0425) or its sender (XEP-0424) removed a message
%%%   of a room that archives: mod_mam removes it from the archive
%%%   (remove_message_from_archive/3), as mod_muc_room's process_iq_moderate and
%%%   check_message_for_retractions have it do.
%%% - muc_process_iq: a MAM query to a room (archive_query/3) goes to its handlers (mod_mam
%%%   answers it from its archive, or from the room's history when the room does not
%%%   archive), as mod_muc_room hands it over.
%%% - muc_filter_presence: a presence to a room goes to its handlers before the core sees
%%%   it (filter_presence/3), as mod_muc_room runs it: a handler may change it, or drop it.
%%% - check_create_room: a join that would make a room (not a MUC admin's) asks its
%%%   handlers first (check_create_room/4); refused, it is refused as access_create refuses.
%%% - join_room, leave_room, start_room (and create_room for a room a command made),
%%%   room_destroyed and muc_invite (the invitation the room sends, as the handlers leave
%%%   it): the core reports them among its deliveries (lifecycle/2, room_destroyed/2,
%%%   invite/2).
-module(mod_muc_rs_hooks).

-export([listening/2, archive_switch/2, service_features/2, add_service_features/2,
         broadcast_message/3, disco_info/2, room_destroyed/2, remove_archived/2, forget/2, forgotten/2,
         persistent_gone/2, is_archive_query/2, archive_query/3, filter_presence/3,
         check_create_room/4, lifecycle/2, invite/2, has_handlers/2]).

-include_lib("xmpp/include/xmpp.hrl").
-include("mod_muc_room.hrl").

%% What a room needs of the gen_server's state here: its ServerHost, the core (Service),
%% access_admin and access_mam, the default of the `mam` room option, and the sender of
%% the stanza at hand (its JID, or the stanza as an #xmlel{}; undefined outside one).
-type ctx() :: #{server_host := binary(), service := term(), access_admin := atom(),
                 access_mam := atom(), default_mam := boolean(),
                 from := jid() | fxml:xmlel() | undefined}.
-export_type([ctx/0]).

%% The core's extension points at which ejabberd's hooks have handlers, for the stanza
%% Packet: only a groupchat message may broadcast one, only an iq ask for disco#info (where
%% mod_mam adds its features), only a presence make a room, only a message invite; any
%% stanza may have sessions leave (a kick, a destroy, an error) and a presence join them.
listening(Packet, ServerHost) ->
    stanza_points(Packet, ServerHost) ++
        [occupant_lifecycle || has_handlers(join_room, ServerHost) orelse has_handlers(leave_room, ServerHost)].

stanza_points(#message{type = groupchat}, ServerHost) ->
    [broadcast_message || has_handlers(muc_filter_message, ServerHost)];
stanza_points(#message{}, ServerHost) ->
    [invite || has_handlers(muc_invite, ServerHost)];
stanza_points(#iq{type = get}, ServerHost) ->
    [disco_info || gen_mod:is_loaded(ServerHost, mod_mam)];
stanza_points(#presence{}, ServerHost) ->
    [room_lifecycle || has_handlers(start_room, ServerHost)] ++
        [room_pre_create || has_handlers(check_create_room, ServerHost)];
stanza_points(_Packet, _ServerHost) ->
    [].

%% The archiving switch the owner's form offers, as mod_mam's get_room_config adds it
%% where mod_mam is loaded: {Default, MayChange} (default_room_options' mam; access_mam
%% for the sender), or none. Only an iq may read or submit the form.
archive_switch(#iq{from = From}, #{server_host := ServerHost, access_mam := AccessMam,
                                   default_mam := Default}) ->
    case gen_mod:is_loaded(ServerHost, mod_mam) of
        true -> {Default, acl:match_rule(ServerHost, AccessMam, From) == allow};
        false -> none
    end;
archive_switch(_Packet, _State) ->
    none.

%% The features mod_muc adds to the service's disco#info for other modules (mod_mam's,
%% where it is loaded), if Packet asks for it: [Feature].
service_features(#iq{type = get, sub_els = [#xmlel{name = <<"query">>} = Q]}, ServerHost) ->
    case fxml:get_tag_attr_s(<<"xmlns">>, Q) == ?NS_DISCO_INFO
        andalso fxml:get_tag_attr_s(<<"node">>, Q) == <<>>
        andalso gen_mod:is_loaded(ServerHost, mod_mam) of
        true -> [?NS_MAM_TMP, ?NS_MAM_0, ?NS_MAM_1, ?NS_MAM_2];
        false -> []
    end;
service_features(_Packet, _ServerHost) ->
    [].

%% The core's disco#info reply of the service among Deliveries, with Features added.
add_service_features(Deliveries, Features) ->
    Add = fun(#xmlel{name = <<"query">>, children = Children} = Q) ->
                  case fxml:get_tag_attr_s(<<"xmlns">>, Q) of
                      ?NS_DISCO_INFO -> Q#xmlel{children = Children ++ [feature(F) || F <- Features]};
                      _ -> Q
                  end;
             (Child) -> Child
          end,
    [case Delivery of
         {#xmlel{name = <<"iq">>, children = Children} = El, To} -> {El#xmlel{children = lists:map(Add, Children)}, To};
         Other -> Other
     end || Delivery <- Deliveries].

feature(NS) ->
    #xmlel{name = <<"feature">>, attrs = [{<<"var">>, NS}]}.

%% Whether ejabberd's hook Hook has handlers on Host (ejabberd_hooks keeps {{Hook, Host},
%% Handlers, Subscribers} in its `hooks` table).
has_handlers(Hook, Host) ->
    case ets:lookup(hooks, {Hook, Host}) of
        [{_, [_ | _], _}] -> true;
        _ -> false
    end.

%% A message from the room to Recipients: an occupant's runs through muc_filter_message
%% first, as mod_muc_room does (with the sender's real JID as its `from`, and the room as
%% its `to`). Then it goes to every occupant with the room's <stanza-id/> (mod_mam's id, or
%% one made here as mod_muc_room makes it) and, if Historic, into the room's history.
broadcast_message({broadcast_message, RoomJid, El, Recipients, Historic, Archiving},
                  #{server_host := ServerHost, service := Service} = Ctx, Now) ->
    Room = jid:decode(RoomJid),
    Pkt = xmpp:decode(El, ?NS_CLIENT, [ignore_els]),
    Nick = (xmpp:get_from(Pkt))#jid.resource,
    Filtered =
        case Nick of
            <<>> -> Pkt;   % the room's own (a configuration change): no hook on stock
            _ ->
                State = room_state(Room, Archiving, #{}, Ctx),
                Sender = case Ctx of
                             #{from := #jid{} = From} -> From;
                             #{from := #xmlel{} = Stanza} ->
                                 case fxml:get_tag_attr(<<"from">>, Stanza) of
                                     {value, From} -> jid:decode(From);
                                     false -> xmpp:get_from(Pkt)
                                 end;
                             _ -> xmpp:get_from(Pkt)
                         end,
                In = xmpp:set_from_to(Pkt, Sender, Room),
                case ejabberd_hooks:run_fold(muc_filter_message, ServerHost, In, [State, Nick]) of
                    drop -> drop;
                    #message{} = Kept -> add_stanza_id(xmpp:set_from_to(Kept, xmpp:get_from(Pkt), undefined), Room)
                end
        end,
    case Filtered of
        drop -> ok;
        Message ->
            Encoded = xmpp:encode(Message),
            %% (routed as decoded: the recipient's session reads it as any other)
            lists:foreach(fun(To) -> ejabberd_router:route(xmpp:set_to(Message, mod_muc_rs:recipient(To))) end,
                          Recipients),
            case Historic of
                true -> muc_rs_nif:add_history(Service, RoomJid, Encoded, Now), ok;
                false -> ok
            end
    end.

%% mod_muc_room's add_stanza_id/2: the room's <stanza-id/> with the id mod_mam gave (its
%% meta), or a new one, unless the room's own is there.
add_stanza_id(Pkt, Room) ->
    Ours = [Id || #stanza_id{by = By} = Id <- xmpp:get_subtags(Pkt, #stanza_id{by = #jid{}}),
                  jid:tolower(By) == jid:tolower(Room)],
    case Ours of
        [_ | _] -> Pkt;
        [] ->
            Id = case xmpp:get_meta(Pkt, stanza_id, false) of
                     false -> erlang:system_time(microsecond);
                     Given -> Given
                 end,
            xmpp:append_subtags(Pkt, [#stanza_id{by = Room, id = integer_to_binary(Id)}])
    end.

%% A room is gone: mod_muc forgets it (remove_room), then its process ends
%% (room_destroyed, with whether it was persistent: a room whose mod_muc row goes with it,
%% persistent_gone/2).
room_destroyed({room_destroyed, RoomJid}, #{server_host := ServerHost} = Ctx) ->
    forget(RoomJid, Ctx),
    case has_handlers(room_destroyed, ServerHost) of
        true ->
            #jid{luser = Name, lserver = Host} = jid:decode(RoomJid),
            Persistent = lists:member(RoomJid, maps:get(persistent_gone, Ctx, [])),
            ejabberd_hooks:run(room_destroyed, ServerHost, [ServerHost, Name, Host, Persistent]);
        false -> ok
    end.

%% mod_muc:forget_room/3's hook, without mod_muc's tables (the core has had the room's
%% records written already).
forget(RoomJid, #{server_host := ServerHost}) ->
    case has_handlers(remove_room, ServerHost) of
        true ->
            #jid{luser = Name, lserver = Host} = jid:decode(RoomJid),
            ejabberd_hooks:run(remove_room, ServerHost, [ServerHost, Name, Host]);
        false -> ok
    end.

%% The rooms of Stores whose mod_muc row goes (a persistent room destroyed), if
%% room_destroyed has handlers: [RoomJid].
persistent_gone(Stores, #{server_host := ServerHost, db := Db}) ->
    case has_handlers(room_destroyed, ServerHost) of
        true -> mod_muc_rs_rooms:forgotten(Db, Stores);
        false -> []
    end.

%% A session joined (join_room), an occupant left (leave_room), a room was made
%% (start_room; and create_room after it for a room a command made, as mod_muc makes it),
%% as mod_muc_room and mod_muc run them: [ServerHost, Room, Host | JID].
lifecycle(Event, #{server_host := ServerHost} = Ctx) ->
    {Hooks, RoomJid, Args} =
        case Event of
            {join_room, Room, Jid} -> {[join_room], Room, [jid:decode(Jid)]};
            {leave_room, Room, Jid} -> {[leave_room], Room, [jid:decode(Jid)]};
            {room_created, Room} ->
                {[start_room | [create_room || maps:get(by_command, Ctx, false)]], Room, []}
        end,
    #jid{luser = Name, lserver = Host} = jid:decode(RoomJid),
    [ejabberd_hooks:run(Hook, ServerHost, [ServerHost, Name, Host | Args]) || Hook <- Hooks],
    ok.

%% The invitation the room sends to To, through muc_invite's handlers (with the room's
%% JID and #config{}, the inviter, the invitee, the reason and the inviter's stanza, as
%% mod_muc_room runs it), then routed.
invite({invite, RoomJid, El, To}, #{server_host := ServerHost, service := Service, from := Stanza} = Ctx) ->
    Room = jid:decode(RoomJid),
    Invitee = mod_muc_rs:recipient(To),
    Msg = xmpp:decode(El, ?NS_CLIENT, [ignore_els]),
    Pkt = xmpp:decode(Stanza, ?NS_CLIENT, [ignore_els]),
    Reason = try xmpp:get_subtag(Pkt, #muc_user{}) of
                 #muc_user{invites = [#muc_invite{reason = R} | _]} -> R;
                 _ -> <<>>
             catch _:{xmpp_codec, _} -> <<>>
             end,
    View = case muc_rs_nif:room_view(Service, RoomJid, erlang:system_time(second), []) of
               {#{} = V, _Done} -> V;
               _ -> #{}
           end,
    #state{config = Config} = room_state(Room, maps:get(archiving, View, undefined), View, Ctx),
    Msg2 = ejabberd_hooks:run_fold(muc_invite, ServerHost, Msg,
                                   [Room, Config, xmpp:get_from(Pkt), Invitee, Reason, Pkt]),
    ejabberd_router:route(Msg2).

%% A presence to a room, of which View is what the core says (muc_rs_nif:room_view/4; none
%% for a room the join would make), through muc_filter_presence's handlers when
%% mod_muc_room would run them (a join, a presence of an occupant's session, its leave):
%% the presence as they left it, or drop.
filter_presence(#presence{type = Type, from = From, to = #jid{resource = Nick} = To} = Presence, View0,
                #{server_host := ServerHost} = Ctx) when Nick /= <<>> ->
    View = case View0 of none -> #{}; _ -> View0 end,
    Online = lists:any(fun({Real, _, _}) -> jid:tolower(jid:decode(Real)) == jid:tolower(From) end,
                       maps:get(users, View, [])),
    case Type == available orelse (Online andalso (Type == unavailable orelse Type == error)) of
        true ->
            State = room_state(jid:remove_resource(To), maps:get(archiving, View, undefined), View, Ctx),
            ejabberd_hooks:run_fold(muc_filter_presence, ServerHost, Presence, [State, Nick]);
        false -> Presence
    end;
filter_presence(Presence, _View, _Ctx) ->
    Presence.

%% A join of From would make the room RoomJid: as mod_muc:check_create_room/4 asks its
%% handlers (not for a MUC admin). The sender's facts to call the core again with.
check_create_room(RoomJid, IsAdmin, Sender, ServerHost) ->
    #jid{luser = Name, lserver = Host} = jid:decode(RoomJid),
    case IsAdmin orelse ejabberd_hooks:run_fold(check_create_room, ServerHost, true, [ServerHost, Name, Host]) of
        true -> Sender#{listening := lists:delete(room_pre_create, maps:get(listening, Sender))};
        _ -> Sender#{may_create := false}
    end.

%% A moderated or retracted message: if the room archives, mod_mam removes it from the
%% room's archive by its id, as mod_muc_room has it do.
remove_archived({remove_archived, RoomJid, StanzaId, Archiving}, #{server_host := ServerHost} = Ctx) ->
    case gen_mod:is_loaded(ServerHost, mod_mam) andalso mam(Archiving, Ctx) of
        true ->
            #jid{luser = Name, lserver = Host} = jid:decode(RoomJid),
            mod_mam:remove_message_from_archive({Name, Host}, ServerHost, StanzaId);
        false -> ok
    end.

%% The rooms of Stores that mod_muc would forget as they are written (destroyed, or made
%% temporary), if remove_room has handlers: [RoomJid].
forgotten(Stores, #{server_host := ServerHost, db := Db}) ->
    case has_handlers(remove_room, ServerHost) of
        true -> mod_muc_rs_rooms:forgotten(Db, Stores);
        false -> []
    end.

%% Whether Packet is a MAM query (any version) that mod_muc_room would hand to
%% muc_process_iq's handlers, and some listen.
is_archive_query(#iq{type = T, sub_els = [#xmlel{name = <<"query">>} = Q]}, ServerHost)
  when T == get; T == set ->
    lists:member(fxml:get_tag_attr_s(<<"xmlns">>, Q), [?NS_MAM_TMP, ?NS_MAM_0, ?NS_MAM_1, ?NS_MAM_2])
        andalso has_handlers(muc_process_iq, ServerHost);
is_archive_query(_Packet, _ServerHost) ->
    false.

%% A MAM query to a room, of which View is what the core says (muc_rs_nif:room_view/4),
%% answered by muc_process_iq's handlers as mod_muc_room has them answer it; one none
%% answers is refused as stock refuses an iq to a room it does not serve.
archive_query(#iq{lang = Lang} = IQ, View, #{server_host := ServerHost} = Ctx) ->
    Room = jid:remove_resource(xmpp:get_to(IQ)),
    Reply = try xmpp:decode_els(IQ) of
                Decoded ->
                    State = room_state(Room, maps:get(archiving, View), View, Ctx),
                    ejabberd_hooks:run_fold(muc_process_iq, ServerHost, Decoded, [State])
            catch _:{xmpp_codec, Why} ->
                    xmpp:make_error(IQ, xmpp:err_bad_request(xmpp:io_format_error(Why), Lang))
            end,
    case Reply of
        #iq{type = T} = Res when T == result; T == error -> ejabberd_router:route(Res);
        ignore -> ok;
        {ignore, _} -> ok;
        _ -> ejabberd_router:route_error(IQ, xmpp:err_service_unavailable())
    end.

%% A room's disco#info reply (the core's, with its form) to To: with the MAM features when
%% mod_mam is loaded and the room archives, as mod_muc_room's process_iq_disco_info.
disco_info({disco_info, _RoomJid, #xmlel{children = [Query | _]} = El, To, Archiving},
           #{server_host := ServerHost} = Ctx) ->
    Features = case gen_mod:is_loaded(ServerHost, mod_mam) andalso mam(Archiving, Ctx) of
                   true -> [feature(NS) || NS <- [?NS_MAM_TMP, ?NS_MAM_0, ?NS_MAM_1, ?NS_MAM_2, ?NS_SID_0]];
                   false -> []
               end,
    %% (after the room's own features, before its form)
    {Form, Rest} = lists:partition(fun(#xmlel{name = Name}) -> Name == <<"x">>;
                                      (_) -> false
                                   end, Query#xmlel.children),
    Reply = El#xmlel{children = [Query#xmlel{children = Rest ++ Features ++ Form}]},
    Packet = xmpp:decode(Reply, ?NS_CLIENT, [ignore_els]),
    ejabberd_router:route(xmpp:set_to(Packet, mod_muc_rs:recipient(To))).

mam(undefined, #{default_mam := Default}) -> Default;
mam(Archiving, _Ctx) -> Archiving.

%% The room as mod_muc_room's #state{}, with what the hooks' handlers read of it: its JID,
%% server host, access_admin (service admins own every room), and from the core's View
%% (room_view/4) its configuration (mam, anonymous, members_only), affiliations, occupants
%% and history. It is not persistent here, so that mod_muc_room:get_affiliation/2 reads
%% the affiliations given rather than mod_muc's database.
room_state(#jid{luser = Name, lserver = Host} = Room, Archiving,
           View, #{server_host := ServerHost, access_admin := AccessAdmin} = Ctx) ->
    Config = #config{mam = mam(Archiving, Ctx),
                     anonymous = maps:get(anonymous, View, true),
                     members_only = maps:get(members_only, View, false),
                     persistent = false},
    Affiliations = maps:from_list([{jid:tolower(jid:decode(Jid)), binary_to_existing_atom(Aff)}
                                   || {Jid, Aff} <- maps:get(affiliations, View, [])]),
    Users = maps:from_list([{jid:tolower(J), #user{jid = J, nick = Nick, role = binary_to_existing_atom(Role)}}
                            || {Real, Nick, Role} <- maps:get(users, View, []), J <- [jid:decode(Real)]]),
    History = lists:foldl(
                fun({Nick, El, Time}, Q) ->
                        Msg = xmpp:decode(El, ?NS_CLIENT, [ignore_els]),
                        Now = {Time div 1000000, Time rem 1000000, 0},
                        p1_queue:in({Nick, Msg, false, Now, 0}, Q)
                end, p1_queue:new(), maps:get(history, View, [])),
    #state{room = Name, host = Host, server_host = ServerHost, jid = Room,
           access = {none, none, AccessAdmin, none, none},
           config = Config, affiliations = Affiliations, users = Users,
           history = #lqueue{queue = History, max = p1_queue:len(History)}}.
