%%% Where mod_muc_rs keeps its rooms: in ejabberd mod_muc's own mnesia tables and record
%%% format, so that an admin who switches from mod_muc to mod_muc_rs finds every room, and
%%% one who switches back finds them too, with what changed meanwhile.
%%%
%%% - A persistent room is a row of mod_muc's `muc_room` ({muc_room, {Name, Host}, Opts},
%%%   Opts the proplist mod_muc_room:make_opts/2 writes) and, for each nick reserved in it,
%%%   a row of `muc_registered` ({muc_registered, {{LUser, LServer}, RoomJid}, Nick}), as
%%%   mod_muc_mnesia writes them. Written back, a row keeps every option the core has no
%%%   setting for (MucSub subscribers, the captcha whitelist, hats, the vCard, voice
%%%   requests, max_users, logging, mam, ...) as it was: only the options the core has are
%%%   replaced (to_opts/2).
%%% - Beside it, `muc_rs_room` keeps the core's own record of the room (what mod_muc has no
%%%   option for: the occupant-id salt, the lock, the history settings; and the occupants of
%%%   a room put away with them), marked `stock => true`: mod_muc's row is the truth for
%%%   every setting it has, so a change made under mod_muc is seen here, and a room
%%%   mod_muc has removed is not brought back from it.
%%% - Temporary rooms put away with their occupants, tombstones of destroyed rooms, and the
%%%   records earlier mod_muc_rs versions wrote (unmarked) are in `muc_rs_room` only, and
%%%   read from there.
%%%
%%% Rows are written directly, never through mod_muc:forget_room/3 or mod_muc's destroy:
%%% those run the `remove_room` hook, on which mod_mam deletes the room's archive.
%%% Service-wide registered nicks (muc_registered rows keyed by the service) are left as
%%% they are.
-module(mod_muc_rs_rooms).

-export([create_tables/0, tables/0, new_room_opts/1, read/1, read_all/1, write/2]).
-export([to_record/4, to_opts/2]).

-include("logger.hrl").
-include_lib("xmpp/include/xmpp.hrl").
-include("mod_muc.hrl").
-include("mod_muc_room.hrl").

-record(muc_rs_room, {name_host :: binary(), record :: map()}).

%% The settings (keys of the core's `_data`) mod_muc's options stand for: read from mod_muc's
%% row, never from the core's own record.
-define(STOCK_KEYS, [<<"name">>, <<"description">>, <<"language">>, <<"persistent">>,
                     <<"hidden">>, <<"password">>, <<"members_only">>,
                     <<"allow_member_invites">>, <<"moderated">>, <<"changesubject">>,
                     <<"whois">>, <<"allow_pm">>, <<"presence_broadcast">>, <<"subject">>,
                     <<"subject_from">>, <<"subject_time">>]).

-define(AFFILIATIONS, [owner, admin, member, outcast]).

%%% Tables

%% mod_muc's tables as mod_muc_mnesia makes them (the same definitions: either module may
%% make them first), and muc_rs's own.
create_tables() ->
    ejabberd_mnesia:create(mod_muc_rs, muc_rs_room,
                           [{disc_copies, [node()]},
                            {attributes, record_info(fields, muc_rs_room)}]),
    ejabberd_mnesia:create(mod_muc_mnesia, muc_room,
                           [{disc_copies, [node()]},
                            {attributes, record_info(fields, muc_room)}]),
    ejabberd_mnesia:create(mod_muc_mnesia, muc_registered,
                           [{disc_copies, [node()]},
                            {attributes, record_info(fields, muc_registered)},
                            {index, [nick]}]).

tables() ->
    [muc_rs_room, muc_room, muc_registered].

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
read(RoomJid) ->
    Own = case mnesia:dirty_read(muc_rs_room, RoomJid) of
              [#muc_rs_room{record = Record}] -> Record;
              [] -> none
          end,
    case mnesia:dirty_read(muc_room, name_host(RoomJid)) of
        [#muc_room{opts = Opts}] ->
            try to_record(RoomJid, Opts, nicks(RoomJid), Own)
            catch Class:Reason ->
                ?ERROR_MSG("mod_muc_rs: room ~ts is not served: its record in mod_muc's table "
                           "muc_room cannot be read (~p:~p): ~p", [RoomJid, Class, Reason, Opts]),
                {error, <<"unreadable room record">>}
            end;
        [] ->
            case Own of
                %% The room mod_muc's row stood for is gone (destroyed under mod_muc).
                #{stock := true} -> none;
                _ -> Own
            end
    end.

%% Every stored room of the service Host, [{RoomJid, Record}]; those that cannot be read
%% are logged and left out.
read_all(Host) ->
    Stock = [jid:encode({Name, Host, <<>>})
             || #muc_room{name_host = {Name, _}}
                    <- mnesia:dirty_select(muc_room, [{#muc_room{name_host = {'_', Host}, _ = '_'},
                                                       [], ['$_']}])],
    Suffix = <<"@", Host/binary>>,
    Own = mnesia:dirty_select(muc_rs_room, [{#muc_rs_room{name_host = '$1', _ = '_'}, [], ['$1']}]),
    OwnOnly = [Jid || Jid <- Own, binary:longest_common_suffix([Jid, Suffix]) == byte_size(Suffix),
                      not lists:member(Jid, Stock)],
    [{Jid, Record} || Jid <- Stock ++ OwnOnly, is_map(Record = read(Jid))].

name_host(RoomJid) ->
    #jid{luser = Name, lserver = Host} = jid:decode(RoomJid),
    {Name, Host}.

%% The nicks reserved in the room: [{{LUser, LServer}, Nick}].
nicks(RoomJid) ->
    mnesia:dirty_select(muc_registered, nicks_spec(RoomJid)).

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
                  [{<<"subject">>, Subject} || Subject /= none],
                  [{<<"subject_from">>, <<RoomJid/binary, "/", Author/binary>>}
                   || Subject /= none, Author /= <<>>],
                  SubjectTime]),
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

%% Writes a room's record (or deletes it: none) as part of the caller's mnesia transaction;
%% NewRoomOpts are the options a room mod_muc has no row for yet is written with.
write({RoomJid, none}, _NewRoomOpts) ->
    mnesia:delete({muc_room, name_host(RoomJid)}),
    write_nicks(RoomJid, []),
    mnesia:delete({muc_rs_room, RoomJid});
write({RoomJid, #{config := Config} = Record}, NewRoomOpts) ->
    Data = maps:get(<<"_data">>, Config, #{}),
    NameHost = name_host(RoomJid),
    case maps:get(<<"persistent">>, Data, false) == true
        andalso maps:get(<<"destroyed">>, Data, false) /= true of
        true ->
            Old = case mnesia:read(muc_room, NameHost) of
                      [#muc_room{opts = Opts}] -> Opts;
                      [] -> NewRoomOpts
                  end,
            mnesia:write(#muc_room{name_host = NameHost, opts = to_opts(Config, Old)}),
            AffiliationData = maps:get(<<"_affiliation_data">>, Config, #{}),
            write_nicks(RoomJid, [{us(Jid), Nick}
                                  || {Jid, #{<<"reserved_nickname">> := Nick}}
                                         <- maps:to_list(AffiliationData)]),
            mnesia:write(#muc_rs_room{name_host = RoomJid, record = Record#{stock => true}});
        false ->
            %% Temporary (a room put away with its occupants) or a tombstone: not a room
            %% mod_muc would keep (its reserved nicks are in the record).
            mnesia:delete({muc_room, NameHost}),
            write_nicks(RoomJid, []),
            mnesia:write(#muc_rs_room{name_host = RoomJid, record = maps:remove(stock, Record)})
    end.

us(Jid) ->
    #jid{luser = U, lserver = S} = jid:decode(Jid),
    {U, S}.

%% The room's reserved nicks become Nicks ([{{LUser, LServer}, Nick}]).
write_nicks(RoomJid, Nicks) ->
    Stored = mnesia:select(muc_registered, nicks_spec(RoomJid)),
    [mnesia:delete({muc_registered, {US, RoomJid}}) || {US, _} <- Stored, not lists:keymember(US, 1, Nicks)],
    [mnesia:write(#muc_registered{us_host = {US, RoomJid}, nick = Nick})
     || {US, Nick} = Entry <- Nicks, not lists:member(Entry, Stored)],
    ok.

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
           {affiliations, Affiliations}]
        %% A password no longer asked for stays, as mod_muc keeps it.
        ++ [{password, Password} || Password /= none]
        ++ AllowPm ++ SubjectOpts,
    lists:foldl(fun({Key, _} = Opt, Opts) -> lists:keystore(Key, 1, Opts, Opt) end, Old, New).
