%%% Where mod_muc_rs keeps its rooms: in ejabberd mod_muc's own tables and record format
%%% (mnesia, or SQL with db_type: sql), so that an admin who switches from mod_muc to
%%% mod_muc_rs finds every room, and one who switches back finds them too, with what
%%% changed meanwhile.
%%%
%%% - A persistent room is a row of mod_muc's `muc_room` ({muc_room, {Name, Host}, Opts},
%%%   Opts the proplist mod_muc_room:make_opts/2 writes) and, for each nick reserved in it,
%%%   a row of `muc_registered` ({muc_registered, {{LUser, LServer}, RoomJid}, Nick}), as
%%%   mod_muc_mnesia writes them; or, with `db_type: sql`, the rows mod_muc_sql keeps in
%%%   the SQL tables `muc_room`, `muc_room_subscribers` and `muc_registered` (written
%%%   through mod_muc_sql's own store_room/5, read through its restore_room/3). Written
%%%   back, a row keeps every option the core has no setting for (MucSub subscribers, the
%%%   captcha whitelist, hats, the vCard, voice requests, max_users, logging, ...) as
%%%   it was: only the options the core has are replaced (to_opts/2). mod_mam's `mam` is
%%%   the core record's `archiving` (module data the core keeps as found).
%%% - Beside it, `muc_rs_room` (mnesia) keeps the core's own record of the room (what
%%%   mod_muc has no option for: the occupant-id salt, the lock, the history settings; and
%%%   the occupants of a room put away with them), marked `stock => true`: mod_muc's row is
%%%   the truth for every setting it has, so a change made under mod_muc is seen here, and
%%%   a room mod_muc has removed is not brought back from it.
%%% - Temporary rooms put away with their occupants, tombstones of destroyed rooms, and the
%%%   records earlier mod_muc_rs versions wrote (unmarked) are in `muc_rs_room` only, and
%%%   read from there.
%%%
%%% Rows are written directly (mnesia) or through mod_muc_sql:store_room/5 and
%%% mod_muc_sql:forget_room/3 (SQL; neither runs a hook), never through
%%% mod_muc:forget_room/3 or mod_muc's destroy: those run the `remove_room` hook, on which
%%% mod_mam deletes the room's archive, which mod_muc_rs_hooks runs only where mod_muc
%%% would (a room destroyed or made temporary: forgotten/2), not when a room is stored. Service-wide registered nicks (muc_registered rows
%%% keyed by the service) are left as they are.
-module(mod_muc_rs_rooms).

-export([db/2, create_tables/3, tables/1, new_room_opts/1, read/2, read_all/2, write/3, write/4,
         service_nick_owner/3, set_service_nick/4, stored_opts/3, forgotten/2]).
-export([to_record/4, to_opts/2]).

-include("logger.hrl").
-include_lib("xmpp/include/xmpp.hrl").
-include("mod_muc.hrl").
-include("mod_muc_room.hrl").
-include("ejabberd_sql_pt.hrl").

-record(muc_rs_room, {name_host :: binary(), record :: map()}).

%% The settings (keys of the core's `_data`) mod_muc's options stand for: read from mod_muc's
%% row, never from the core's own record.
-define(STOCK_KEYS, [<<"name">>, <<"description">>, <<"language">>, <<"persistent">>,
                     <<"hidden">>, <<"password">>, <<"members_only">>,
                     <<"allow_member_invites">>, <<"moderated">>, <<"changesubject">>,
                     <<"whois">>, <<"allow_pm">>, <<"presence_broadcast">>, <<"subject">>,
                     <<"subject_from">>, <<"subject_time">>, <<"vcard">>, <<"archiving">>,
                     <<"allow_subscription">>, <<"mucsub_subscribers">>]).

-define(AFFILIATIONS, [owner, admin, member, outcast]).

%%% Tables

%% Where mod_muc keeps rooms for the virtual host ServerHost with the module's options
%% (db_type, as mod_muc reads it): mnesia, or {sql, ServerHost}.
db(ServerHost, Opts) ->
    case gen_mod:get_opt(db_type, Opts) of
        sql -> {sql, ServerHost};
        _ -> mnesia
    end.

%% mod_muc's tables as mod_muc_mnesia or mod_muc_sql makes them (the same definitions:
%% either module may make them first), and muc_rs's own.
create_tables(mnesia, _ServerHost, _Opts) ->
    create_own_table(),
    ejabberd_mnesia:create(mod_muc_mnesia, muc_room,
                           [{disc_copies, [node()]},
                            {attributes, record_info(fields, muc_room)}]),
    ejabberd_mnesia:create(mod_muc_mnesia, muc_registered,
                           [{disc_copies, [node()]},
                            {attributes, record_info(fields, muc_registered)},
                            {index, [nick]}]);
create_tables({sql, _}, ServerHost, Opts) ->
    create_own_table(),
    %% (makes or updates mod_muc's SQL schema when update_sql_schema is on, as mod_muc does)
    mod_muc_sql:init(ServerHost, Opts).

create_own_table() ->
    ejabberd_mnesia:create(mod_muc_rs, muc_rs_room,
                           [{disc_copies, [node()]},
                            {attributes, record_info(fields, muc_rs_room)}]).

%% The mnesia tables to wait for.
tables(mnesia) -> [muc_rs_room, muc_room, muc_registered];
tables({sql, _}) -> [muc_rs_room].

%% The options mod_muc gives a new room (its #config{} defaults, then the module's
%% default_room_options): what a room made under mod_muc_rs is written with, besides the
%% settings the core has.
new_room_opts(DefaultRoomOptions) ->
    Defaults = lists:zip(record_info(fields, config), tl(tuple_to_list(#config{}))),
    Config = [{Key, proplists:get_value(Key, DefaultRoomOptions, plain(Default))}
              || {Key, Default} <- Defaults],
    Config ++ [{affiliations, []}, {roles, []}, {subject, []}, {subject_author, {<<>>, #jid{}}},
               {hats_users, []}, {hibernation_time, undefined}, {subscribers, []}].

plain(Value) ->
    case gb_sets:is_set(Value) of
        true -> gb_sets:to_list(Value);
        false -> Value
    end.

%%% Reading

%% A room's record for the core: the record, `none`, or {error, Reason} (logged) for a
%% stored room that cannot be read.
read(Db, RoomJid) ->
    Own = case mnesia:dirty_read(muc_rs_room, RoomJid) of
              [#muc_rs_room{record = Record}] -> Record;
              [] -> none
          end,
    try stock_opts(Db, RoomJid) of
        {ok, Opts} ->
            try to_record(RoomJid, Opts, nicks(Db, RoomJid), Own)
            catch Class:Reason ->
                unreadable(RoomJid, Class, Reason, Opts)
            end;
        none ->
            case Own of
                %% The room mod_muc's row stood for is gone (destroyed under mod_muc).
                #{stock := true} -> none;
                _ -> Own
            end;
        {error, Why} ->
            ?ERROR_MSG("mod_muc_rs: room ~ts could not be read: ~p", [RoomJid, Why]),
            {error, <<"the room could not be read">>}
    catch Class:Reason ->
        unreadable(RoomJid, Class, Reason, undefined)
    end.

unreadable(RoomJid, Class, Reason, Opts) ->
    ?ERROR_MSG("mod_muc_rs: room ~ts is not served: its record in mod_muc's table "
               "muc_room cannot be read (~p:~p): ~p", [RoomJid, Class, Reason, Opts]),
    {error, <<"unreadable room record">>}.

%% Every stored room of the service Host, [{RoomJid, Record}]; those that cannot be read
%% are logged and left out.
read_all(Db, Host) ->
    Stock = [jid:encode({Name, Host, <<>>}) || Name <- stock_rooms(Db, Host)],
    Suffix = <<"@", Host/binary>>,
    Own = mnesia:dirty_select(muc_rs_room, [{#muc_rs_room{name_host = '$1', _ = '_'}, [], ['$1']}]),
    OwnOnly = [Jid || Jid <- Own, binary:longest_common_suffix([Jid, Suffix]) == byte_size(Suffix),
                      not lists:member(Jid, Stock)],
    [{Jid, Record} || Jid <- Stock ++ OwnOnly, is_map(Record = read(Db, Jid))].

name_host(RoomJid) ->
    #jid{luser = Name, lserver = Host} = jid:decode(RoomJid),
    {Name, Host}.

%% mod_muc's options of the room: {ok, Opts}, none, or {error, Why}.
stock_opts(mnesia, RoomJid) ->
    case mnesia:dirty_read(muc_room, name_host(RoomJid)) of
        [#muc_room{opts = Opts}] -> {ok, Opts};
        [] -> none
    end;
stock_opts({sql, LServer}, RoomJid) ->
    {Name, Host} = name_host(RoomJid),
    case ejabberd_sql:sql_query(LServer, ?SQL("select @(name)s from muc_room"
                                              " where name=%(Name)s and host=%(Host)s")) of
        {selected, []} -> none;
        {selected, [_]} ->
            %% (with the subscribers, from muc_room_subscribers)
            case mod_muc_sql:restore_room(LServer, Host, Name) of
                error -> {error, restore_room};
                Opts -> {ok, Opts}
            end;
        Error -> {error, Error}
    end.

%% The names of the service Host's rooms in mod_muc's table.
stock_rooms(mnesia, Host) ->
    mnesia:dirty_select(muc_room, [{#muc_room{name_host = {'$1', Host}, _ = '_'}, [], ['$1']}]);
stock_rooms({sql, LServer}, Host) ->
    case ejabberd_sql:sql_query(LServer, ?SQL("select @(name)s from muc_room where host=%(Host)s")) of
        {selected, Names} -> [Name || {Name} <- Names];
        Error ->
            ?ERROR_MSG("mod_muc_rs: the rooms of ~ts could not be listed: ~p", [Host, Error]),
            []
    end.

%% The nicks reserved in the room: [{{LUser, LServer}, Nick}].
nicks(mnesia, RoomJid) ->
    mnesia:dirty_select(muc_registered, nicks_spec(RoomJid));
nicks({sql, LServer}, RoomJid) ->
    {selected, Rows} =
        ejabberd_sql:sql_query(LServer, ?SQL("select @(jid)s, @(nick)s from muc_registered"
                                             " where host=%(RoomJid)s")),
    [{us(Jid), Nick} || {Jid, Nick} <- Rows].

%% Who registered Nick with the service Service itself (not with one of its rooms):
%% {LUser, LServer}, or none.
service_nick_owner(mnesia, Service, Nick) ->
    case mnesia:dirty_index_read(muc_registered, Nick, #muc_registered.nick) of
        Rows when is_list(Rows) ->
            case [US || #muc_registered{us_host = {US, Host}} <- Rows, Host == Service] of
                [Owner | _] -> Owner;
                [] -> none
            end
    end;
service_nick_owner({sql, LServer}, Service, Nick) ->
    case ejabberd_sql:sql_query(LServer, ?SQL("select @(jid)s from muc_registered"
                                              " where nick=%(Nick)s and host=%(Service)s")) of
        {selected, [{Jid} | _]} -> us(Jid);
        _ -> none
    end.

%% Registers Nick for the user From with the service Service itself (unregisters with
%% <<>>), through mod_muc's own storage module, as mod_muc does: {atomic, ok}, {atomic,
%% false} when someone else has it, or the storage's error.
set_service_nick(mnesia, Service, From, Nick) ->
    mod_muc_mnesia:set_nick(undefined, Service, From, Nick);
set_service_nick({sql, LServer}, Service, From, Nick) ->
    mod_muc_sql:set_nick(LServer, Service, From, Nick).

nicks_spec(RoomJid) ->
    [{#muc_registered{us_host = {'$1', RoomJid}, nick = '$2'}, [], [{{'$1', '$2'}}]}].

%% mod_muc's options of a room (and the nicks reserved in it) as the core's record:
%% #{config => Config} (Config as src/persist.rs reads it: `_jid`, `_data` with the
%% settings, `_affiliation_data` with reasons and reserved nicks, and each affiliated JID),
%% with the state and the settings mod_muc has no option for from the core's own record of
%% the room, Own (or none). Fails on options that are not mod_muc's.
to_record(RoomJid, Opts, Nicks, Own) when is_list(Opts) ->
    Get = fun(Key, Default) -> proplists:get_value(Key, Opts, Default) end,
    OwnData = case Own of
                  #{config := #{<<"_data">> := D}} when is_map(D) -> D;
                  _ -> #{}
              end,
    Subject = subject_text(Get(subject, [])),
    Author = case Get(subject_author, {<<>>, #jid{}}) of
                 {AuthorNick, _} when is_binary(AuthorNick) -> AuthorNick;
                 AuthorNick when is_binary(AuthorNick) -> AuthorNick   % 23.04 or older
             end,
    %% The time the subject was set, while it is the one the core knew.
    SubjectTime = [{<<"subject_time">>, T} || Subject /= none,
                                              maps:get(<<"subject">>, OwnData, none) == Subject,
                                              (T = maps:get(<<"subject_time">>, OwnData, none)) /= none],
    Settings = lists:append(
                 [text(<<"name">>, Get(title, <<>>)),
                  text(<<"description">>, Get(description, <<>>)),
                  text(<<"language">>, Get(lang, <<>>)),
                  flag(<<"persistent">>, Get(persistent, false)),
                  flag(<<"hidden">>, not Get(public, true)),
                  case Get(password_protected, false) of
                      true -> text(<<"password">>, Get(password, <<>>));
                      false -> []
                  end,
                  flag(<<"members_only">>, Get(members_only, false)),
                  flag(<<"allow_member_invites">>, Get(allow_user_invites, false)),
                  %% mod_muc's moderated room gives newcomers voice unless members_by_default
                  %% is off: only then is it moderated as the core's rooms are.
                  flag(<<"moderated">>, Get(moderated, true) and not Get(members_by_default, true)),
                  flag(<<"changesubject">>, Get(allow_change_subj, true)),
                  case Get(anonymous, true) of
                      true -> [];
                      false -> [{<<"whois">>, <<"anyone">>}]
                  end,
                  case Get(allowpm, anyone) of
                      anyone -> [];
                      participants -> [{<<"allow_pm">>, <<"participant">>}];
                      moderators -> [{<<"allow_pm">>, <<"moderator">>}];
                      none -> [{<<"allow_pm">>, <<"none">>}]
                  end,
                  case Get(presence_broadcast, [moderator, participant, visitor]) of
                      [moderator, participant, visitor] -> [];
                      Roles -> [{<<"presence_broadcast">>,
                                 maps:from_list([{role_name(R), true} || R <- Roles])}]
                  end,
                  %% mod_mam's switch (mod_muc_rs_hooks reads it)
                  [{<<"archiving">>, Get(mam, false) == true}],
                  [{<<"subject">>, Subject} || Subject /= none],
                  [{<<"subject_from">>, <<RoomJid/binary, "/", Author/binary>>}
                   || Subject /= none, Author /= <<>>],
                  SubjectTime,
                  text(<<"vcard">>, vcard_xml(Get(vcard, <<>>))),
                  flag(<<"allow_subscription">>, Get(allow_subscription, false)),
                  subscribers_data(Get(subscribers, []))]),
    Data = maps:merge(maps:without(?STOCK_KEYS, OwnData), maps:from_list(Settings)),
    Affiliations = [{jid:encode({U, S, <<>>}), affiliation(Value)}
                    || {{U, S, <<>>}, Value} <- Get(affiliations, []),
                       affiliation(Value) /= none],
    Reasons = [{Jid, #{<<"reason">> => Reason}} || {Jid, {_, Reason}} <- Affiliations, Reason /= <<>>],
    Reserved = [{jid:encode({U, S, <<>>}), Nick} || {{U, S}, Nick} <- Nicks],
    AffiliationData = lists:foldl(
                        fun({Jid, Nick}, Acc) ->
                                maps:update_with(Jid, fun(D) -> D#{<<"reserved_nickname">> => Nick} end,
                                                 #{<<"reserved_nickname">> => Nick}, Acc)
                        end, maps:from_list(Reasons), Reserved),
    Config = maps:merge(maps:from_list([{Jid, atom_to_binary(Aff)} || {Jid, {Aff, _}} <- Affiliations]),
                        #{<<"_jid">> => RoomJid, <<"_data">> => Data,
                          <<"_affiliation_data">> => AffiliationData}),
    case Own of
        #{state := State} -> #{config => Config, state => State};
        _ -> #{config => Config}
    end.

%% MucSub's subscribers as mod_muc keeps them ([{JID, Nick, Nodes}]) as the core's list
%% (`mucsub_subscribers`: #{1 => #{<<"jid">>, <<"nick">>, <<"nodes">> => #{1 => Node}}}).
subscribers_data([]) -> [];
subscribers_data(Subs) ->
    [{<<"mucsub_subscribers">>,
      numbered([#{<<"jid">> => jid:encode(jid:remove_resource(J)), <<"nick">> => Nick,
                  <<"nodes">> => numbered(Nodes)} || {#jid{} = J, Nick, Nodes} <- Subs])}].

%% The core's subscribers back as mod_muc's option.
subscribers_opt(Data) ->
    Subs = maps:get(<<"mucsub_subscribers">>, Data, #{}),
    [{jid:decode(J), Nick, [N || {_, N} <- lists:sort(maps:to_list(maps:get(<<"nodes">>, S, #{})))]}
     || {_, #{<<"jid">> := J, <<"nick">> := Nick} = S} <- lists:sort(maps:to_list(Subs))].

numbered(List) -> maps:from_list(lists:zip(lists:seq(1, length(List)), List)).

%% The room's vCard as XML (mod_muc keeps it so; default_room_options may give a record).
vcard_xml(VCard) when is_binary(VCard) -> VCard;
vcard_xml(VCard) -> fxml:element_to_binary(xmpp:encode(VCard)).

text(Key, Value) when is_binary(Value) ->
    [{Key, Value} || Value /= <<>>].

flag(Key, Value) when is_boolean(Value) ->
    [{Key, true} || Value].

role_name(Role) when Role == moderator; Role == participant; Role == visitor ->
    atom_to_binary(Role).

%% {Affiliation, Reason}, or none for an entry the core has no affiliation for.
affiliation({Aff, Reason}) when is_binary(Reason) ->
    case lists:member(Aff, ?AFFILIATIONS) of
        true -> {Aff, Reason};
        false when Aff == none -> none
    end;
affiliation(Aff) ->
    affiliation({Aff, <<>>}).

subject_text([]) -> none;
subject_text(<<>>) -> none;
subject_text(Text) when is_binary(Text) -> Text;   % ejabberd 23.04 or older
subject_text([#text{} | _] = Texts) ->
    case xmpp:get_text(Texts) of
        <<>> -> none;
        Text -> Text
    end.

%%% Writing

%% Writes the records of one stanza ([{RoomJid, Record | none}]), on disk before anything
%% is sent: ok, or {error, Reason}. On mnesia in one transaction (nothing written if it
%% fails); on SQL each room's rows in mod_muc_sql's transactions, then muc_rs's own table.
%% NewRoomOpts are the options a room mod_muc has no row for yet is written with.
write(Db, Stores, NewRoomOpts) ->
    write(Db, Stores, NewRoomOpts, []).

%% write/3, with Overrides ([{Option, Value}]: mod_muc options an admin command set that the
%% core has no setting for) replacing those of the rooms' rows.
write(mnesia, Stores, NewRoomOpts, Overrides) ->
    Write = fun() ->
        lists:foreach(fun(Store) ->
                              write_stock(mnesia, Store, NewRoomOpts, Overrides),
                              write_own(Store)
                      end, Stores)
    end,
    transaction(Write, Stores);
write({sql, _} = Db, Stores, NewRoomOpts, Overrides) ->
    try
        lists:foreach(fun(Store) -> write_stock(Db, Store, NewRoomOpts, Overrides) end, Stores),
        transaction(fun() -> lists:foreach(fun write_own/1, Stores) end, Stores)
    catch
        throw:{sql, Why} -> write_failed(Stores, Why);
        %% (a row that cannot be read or written: the core is told, as of a failed write)
        Class:Why -> write_failed(Stores, {Class, Why})
    end.

write_failed(Stores, Why) ->
    ?ERROR_MSG("muc_rs could not write ~p: ~p", [[Room || {Room, _} <- Stores], Why]),
    {error, iolist_to_binary(io_lib:format("~p", [Why]))}.

transaction(Write, Stores) ->
    case mnesia:transaction(Write) of
        {atomic, _} ->
            %% mnesia's log buffers in its own process: flushed now, the change outlives a
            %% kill -9.
            mnesia:sync_log(),
            ok;
        {aborted, Reason} ->
            write_failed(Stores, Reason)
    end.

%% The rooms among Stores (before they are written) whose mod_muc rows the write deletes:
%% a room destroyed, or made temporary (mod_muc_room's maybe_forget_room), which mod_muc
%% forgets (its remove_room hook has mod_mam clear the archive). A tombstone keeps no row.
forgotten(Db, Stores) ->
    [RoomJid || {RoomJid, Record} <- Stores, stock_config(Record) == none,
                {ok, _} <- [stock_opts(Db, RoomJid)]].

%% mod_muc's rows of the room: a persistent room's options and reserved nicks; none for a
%% room gone, temporary or a tombstone (not a room mod_muc would keep).
write_stock(Db, {RoomJid, Record}, NewRoomOpts, Overrides) ->
    case stock_config(Record) of
        {ok, Config} ->
            Old = stored_opts(Db, RoomJid, NewRoomOpts),
            Overridden = lists:foldl(fun({Key, _} = Opt, Opts) -> lists:keystore(Key, 1, Opts, Opt) end,
                                     Old, Overrides),
            store_opts(Db, RoomJid, to_opts(Config, Overridden)),
            AffiliationData = maps:get(<<"_affiliation_data">>, Config, #{}),
            write_nicks(Db, RoomJid, [{us(Jid), Nick}
                                      || {Jid, #{<<"reserved_nickname">> := Nick}}
                                             <- maps:to_list(AffiliationData)]);
        none ->
            forget(Db, RoomJid),
            write_nicks(Db, RoomJid, [])
    end.

%% mod_muc's options of the room as stored, or NewRoomOpts if mod_muc has no row for it
%% (a temporary room, or one not written yet).
stored_opts(Db, RoomJid, NewRoomOpts) ->
    case stock_opts(Db, RoomJid) of
        {ok, Opts} -> Opts;
        none -> NewRoomOpts;
        {error, Why} -> throw({sql, Why})
    end.

%% muc_rs's own record of the room: marked as standing beside mod_muc's row, or alone.
write_own({RoomJid, none}) ->
    mnesia:delete({muc_rs_room, RoomJid});
write_own({RoomJid, Record}) ->
    Stock = stock_config(Record) /= none,
    mnesia:write(#muc_rs_room{name_host = RoomJid, record = (maps:remove(stock, Record))#{stock => Stock}}).

stock_config(#{config := Config}) ->
    Data = maps:get(<<"_data">>, Config, #{}),
    case maps:get(<<"persistent">>, Data, false) == true
        andalso maps:get(<<"destroyed">>, Data, false) /= true of
        true -> {ok, Config};
        false -> none
    end;
stock_config(none) ->
    none.

store_opts(mnesia, RoomJid, Opts) ->
    mnesia:write(#muc_room{name_host = name_host(RoomJid), opts = Opts});
store_opts({sql, LServer}, RoomJid, Opts) ->
    {Name, Host} = name_host(RoomJid),
    sql_done(mod_muc_sql:store_room(LServer, Host, Name, Opts, undefined)).

%% Never mod_muc:forget_room/3, which runs the remove_room hook (mod_mam deletes the
%% archive on it).
forget(mnesia, RoomJid) ->
    mnesia:delete({muc_room, name_host(RoomJid)});
forget({sql, LServer}, RoomJid) ->
    {Name, Host} = name_host(RoomJid),
    sql_done(mod_muc_sql:forget_room(LServer, Host, Name)).

sql_done({atomic, _}) -> ok;
sql_done(Error) -> throw({sql, Error}).

us(Jid) ->
    #jid{luser = U, lserver = S} = jid:decode(Jid),
    {U, S}.

%% The room's reserved nicks become Nicks ([{{LUser, LServer}, Nick}]).
write_nicks(mnesia, RoomJid, Nicks) ->
    Stored = mnesia:select(muc_registered, nicks_spec(RoomJid)),
    [mnesia:delete({muc_registered, {US, RoomJid}}) || {US, _} <- Stored, not lists:keymember(US, 1, Nicks)],
    [mnesia:write(#muc_registered{us_host = {US, RoomJid}, nick = Nick})
     || {US, Nick} = Entry <- Nicks, not lists:member(Entry, Stored)],
    ok;
write_nicks({sql, LServer} = Db, RoomJid, Nicks) ->
    Stored = nicks(Db, RoomJid),
    Write = fun() ->
        [ejabberd_sql:sql_query_t(?SQL("delete from muc_registered where jid=%(Jid)s and host=%(RoomJid)s"))
         || {{U, S} = US, _} <- Stored, not lists:keymember(US, 1, Nicks), Jid <- [jid:encode({U, S, <<>>})]],
        [?SQL_UPSERT_T("muc_registered",
                       ["!jid=%(Jid)s", "!host=%(RoomJid)s", "server_host=%(LServer)s", "nick=%(Nick)s"])
         || {{U, S}, Nick} = Entry <- Nicks, not lists:member(Entry, Stored), Jid <- [jid:encode({U, S, <<>>})]],
        ok
    end,
    case Stored == Nicks of
        true -> ok;
        false -> sql_done(ejabberd_sql:sql_transaction(LServer, Write))
    end.

%% A vCard the room changed, with its avatar's hash as mod_muc keeps it beside it.
vcard_opts(VCard, Old) ->
    case vcard_xml(proplists:get_value(vcard, Old, <<>>)) of
        VCard -> [];   % as stored
        _ when VCard == <<>> -> [{vcard, <<>>}, {vcard_xupdate, undefined}];
        _ ->
            Hash = case fxml_stream:parse_element(VCard) of
                       #xmlel{} = El -> mod_vcard_xupdate:compute_hash(El);
                       {error, _} -> undefined
                   end,
            [{vcard, VCard}, {vcard_xupdate, Hash}]
    end.

%% The core's record of a room (its config) as mod_muc's options: Old (the room's stored
%% options, or a new room's) with the options the core has settings for replaced.
to_opts(Config, Old) ->
    Data = maps:get(<<"_data">>, Config, #{}),
    Flag = fun(Key) -> maps:get(Key, Data, false) == true end,
    Text = fun(Key) -> maps:get(Key, Data, <<>>) end,
    Password = maps:get(<<"password">>, Data, none),
    {Moderated, MembersByDefault} =
        case Flag(<<"moderated">>) of
            true -> {true, false};
            false ->
                case {proplists:get_value(moderated, Old, true),
                      proplists:get_value(members_by_default, Old, true)} of
                    {true, false} -> {true, true};
                    Both -> Both
                end
        end,
    AllowPm = case maps:get(<<"allow_pm">>, Data, <<"visitor">>) of
                  <<"visitor">> -> [{allowpm, anyone}];
                  <<"participant">> -> [{allowpm, participants}];
                  <<"moderator">> -> [{allowpm, moderators}];
                  <<"none">> -> [{allowpm, none}];
                  _ -> []   % mod_muc has no such value: as it was
              end,
    Broadcast = case maps:get(<<"presence_broadcast">>, Data, none) of
                    none -> [moderator, participant, visitor];
                    Roles -> [R || R <- [moderator, participant, visitor],
                                   maps:get(atom_to_binary(R), Roles, false) == true]
                end,
    Subject = case Text(<<"subject">>) of
                  <<>> -> none;
                  S -> S
              end,
    SubjectOpts =
        case subject_text(proplists:get_value(subject, Old, [])) of
            Subject -> [];   % the same subject: as stored, in every language it has
            _ when Subject == none -> [{subject, []}, {subject_author, {<<>>, #jid{}}}];
            _ ->
                Author = case maps:find(<<"subject_from">>, Data) of
                             {ok, From} ->
                                 FromJid = jid:decode(From),
                                 {FromJid#jid.resource, FromJid};
                             error -> {<<>>, #jid{}}
                         end,
                [{subject, [#text{data = Subject}]}, {subject_author, Author}]
        end,
    AffiliationData = maps:get(<<"_affiliation_data">>, Config, #{}),
    Affiliations =
        [{jid:tolower(jid:decode(Jid)),
          case maps:get(<<"reason">>, maps:get(Jid, AffiliationData, #{}), <<>>) of
              <<>> -> binary_to_existing_atom(Aff);
              Reason -> {binary_to_existing_atom(Aff), Reason}
          end}
         || {Jid, Aff} <- maps:to_list(Config), is_binary(Jid), byte_size(Jid) > 0, binary:first(Jid) /= $_,
            lists:member(Aff, [atom_to_binary(A) || A <- ?AFFILIATIONS])]
        %% mod_muc's affiliations of full JIDs, which the core has not: as they were.
        ++ [Entry || {{_, _, R}, _} = Entry <- proplists:get_value(affiliations, Old, []), R /= <<>>],
    New = [{title, Text(<<"name">>)},
           {description, Text(<<"description">>)},
           {lang, Text(<<"language">>)},
           {persistent, Flag(<<"persistent">>)},
           {public, not Flag(<<"hidden">>)},
           {members_only, Flag(<<"members_only">>)},
           {allow_user_invites, Flag(<<"allow_member_invites">>)},
           {moderated, Moderated},
           {members_by_default, MembersByDefault},
           {allow_change_subj, Flag(<<"changesubject">>)},
           {anonymous, maps:get(<<"whois">>, Data, <<"moderators">>) /= <<"anyone">>},
           {password_protected, Password /= none},
           {presence_broadcast, Broadcast},
           {affiliations, Affiliations},
           {allow_subscription, Flag(<<"allow_subscription">>)},
           {subscribers, subscribers_opt(Data)}]
        %% A password no longer asked for stays, as mod_muc keeps it.
        ++ [{password, Password} || Password /= none]
        ++ [{mam, Mam} || {ok, Mam} <- [maps:find(<<"archiving">>, Data)], is_boolean(Mam)]
        ++ AllowPm ++ SubjectOpts ++ vcard_opts(Text(<<"vcard">>), Old),
    lists:foldl(fun({Key, _} = Opt, Opts) -> lists:keystore(Key, 1, Opts, Opt) end, Old, New).
