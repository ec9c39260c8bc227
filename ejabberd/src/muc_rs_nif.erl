%%% The muc_rs core as a NIF (ejabberd/nif, libmuc_rs_nif.so in the module's priv/).
%%% The functions below are replaced when the library loads.
-module(muc_rs_nif).
-export([options/0, new_host/4, handle/5, handle_dirty/5, confirm/2, public_rooms/1,
         forget_service_admins/1, rooms_of_user/3, remove_user/5, add_history/4, room_view/4,
         announce/2, shut_down/1, reconfigure/3,
         live_rooms/1, rooms_with_occupant/2, room_snapshot/2, create_room/4, configure_room/5,
         set_affiliation/6, destroy_room/5]).
-on_load(init/0).

init() ->
    Priv = filename:join([filename:dirname(code:which(?MODULE)), "..", "priv"]),
    erlang:load_nif(filename:join(Priv, "libmuc_rs_nif"), 0).

%% The core's options as ejabberd names them: {Own, ModMuc, RoomKeys}, the core options
%% mod_muc_rs offers by their own names ([{Name, bool | string | {int, Least}}]), mod_muc's
%% options the core honours and the default_room_options keys it honours ([Name]).
options() ->
    erlang:nif_error(not_loaded).

%% A core for the MUC service Host (a binary), configured by Options ([{Name, Value}]:
%% mod_muc's options the core honours and the core's own, by the names options/0 gives) and
%% RoomOptions (default_room_options, [{Key, Value}]; keys the core does not honour are left
%% alone), each Value a boolean, integer or binary: {ok, Service}, or
%% {error, {bad_options, [Name]}}. TestPanic arms the test hook that makes the core panic
%% on a stanza with <panic xmlns='urn:xmpp:muc-rs:test:0'/>.
new_host(_Host, _Options, _RoomOptions, _TestPanic) ->
    erlang:nif_error(not_loaded).

%% One stanza (the #xmlel{} of xmpp:encode/1) with the clock (seconds), what the access rules say of its
%% sender (#{admins => [{BareJid, IsAdmin}] (the sender's, and those asked for), may_create
%% => boolean(), may_persist => boolean(), listening => [Hook]}) and the stored records read so far ([{RoomJid,
%% Record | none | {error, Reason}}], Reason a binary: a record that could not be read, which
%% the core answers with an error reply; or {all, [{RoomJid, Record}], PublicElsewhere} with every stored room
%% and the public rooms live on the cluster's other nodes, [{RoomJid, Name | nil}]):
%% {load, RoomJid} (read that room's record and call again), load_all (read every stored
%% room's record and call again with {all, ...}), {admins, [BareJid]} (say whether each is
%% a MUC admin and call again),
%% dirty (call handle_dirty/5 with the same arguments), or
%% {ok, [{Xmlel, [To]}], [{RoomJid, Record | none}], [{Level, Line}], Gone}: each stanza
%% as an #xmlel{} with its recipients ({User, Server, Resource} when already prepared, else
%% the JID as a binary), and among them the broadcasts left to ejabberd's hooks
%% ({broadcast_message, RoomJid, Xmlel, [To], Historic, Archiving}: Sender's `listening`
%% names the hooks with handlers, see mod_muc_rs_hooks); Gone is [RoomJid] if the stanza's room is not live after it. When
%% there are records to write, the stanzas and log lines are held back until confirm/2.
handle(_Service, _Xmlel, _Now, _Sender, _Rooms) ->
    erlang:nif_error(not_loaded).

%% After the records handle/5 returned were written (ok) or not ({error, Reason}, Reason a
%% binary): {ok, [{Xmlel, [To]}], [{Level, Line}]}, what handle/5 held back, or, if the
%% write failed, the error reply to the sender (the core has put the room back as it was).
confirm(_Service, _Written) ->
    erlang:nif_error(not_loaded).

%% handle/5 on a dirty CPU scheduler: what handle/5 answers `dirty` to (a stanza for a room
%% so big that its fan-out may outlast a normal scheduler's time slice).
handle_dirty(_Service, _Xmlel, _Now, _Sender, _Rooms) ->
    erlang:nif_error(not_loaded).

%% The public rooms live in this node's core: [{RoomJid, Name | nil}].
public_rooms(_Service) ->
    erlang:nif_error(not_loaded).

%% The MUC admins may have changed (access_admin reloaded): rooms ask again about their
%% occupants before their next stanza. ok.
forget_service_admins(_Service) ->
    erlang:nif_error(not_loaded).

%% The rooms where the deleted account User (a bare JID) has an affiliation or an
%% occupant, live or among Stored ([{RoomJid, Record}], every stored room): [RoomJid].
rooms_of_user(_Service, _User, _Stored) ->
    erlang:nif_error(not_loaded).

%% The deleted account User loses its affiliation in Room and leaves it, as with mod_muc.
%% Admins: [{BareJid, IsAdmin}] answered so far; Records: [{RoomJid, Record | none}] read so
%% far. Answers as handle/5 does ({load, RoomJid}, {admins, Users} or {ok, ...}).
remove_user(_Service, _Room, _User, _Admins, _Records) ->
    erlang:nif_error(not_loaded).

%% Text (a binary) from every live room to its occupants as the room's groupchat message,
%% kept in its history: {ok, [{Xmlel, [To]}], [{Level, Line}]}.
announce(_Service, _Text) ->
    erlang:nif_error(not_loaded).

%% The service stops: each occupant's own unavailable presence (statuses 332 and 110), the
%% rooms left empty: {ok, [{Xmlel, [To]}], [{Level, Line}]}.
shut_down(_Service) ->
    erlang:nif_error(not_loaded).

%% The module's options changed (reload_config): Options and RoomOptions as new_host/4 takes
%% them. ok, or {error, {bad_options, [Name]}} (the service keeps its options).
reconfigure(_Service, _Options, _RoomOptions) ->
    erlang:nif_error(not_loaded).

%% The room RoomJid keeps Xmlel (a message its broadcast left to ejabberd's hooks, as they
%% left it) in its history, stamped Now (seconds): true, or false if it is not live.
add_history(_Service, _RoomJid, _Xmlel, _Now) ->
    erlang:nif_error(not_loaded).

%% The room RoomJid as ejabberd's MUC hooks read it, brought back from storage if need be
%% (Records: [{RoomJid, Record | none}] read so far): {load, RoomJid}, or {View, Done},
%% View none (no such room) or #{archiving => boolean() | undefined, anonymous, members_only,
%% affiliations => [{BareJid, Aff}], users => [{FullJid, Nick, Role}], history => [{Nick,
%% Xmlel, Time}]} (binaries), Done as handle/5 answers ({ok, ...}: rooms put away for it).
room_view(_Service, _RoomJid, _Now, _Records) ->
    erlang:nif_error(not_loaded).

%%% The room commands (mod_muc_rs_admin). A change answers as remove_user/5 does, or
%%% {error, Why} (Why a binary; nothing changed).

%% The rooms live here: [{RoomJid, Public, Sessions, LastMessage}], LastMessage the time
%% (seconds) of the last message in the room's history, or nil.
live_rooms(_Service) ->
    erlang:nif_error(not_loaded).

%% The live room Room: {Config, [{RealJid, Nick, Role}], [{Time, Message}]} (Config its
%% record as stored; its history, each message as XML text with the time in seconds), or
%% none if it is not live here.
room_snapshot(_Service, _Room) ->
    erlang:nif_error(not_loaded).

%% The rooms live here where User (a bare JID) has an occupant: [RoomJid].
rooms_with_occupant(_Service, _User) ->
    erlang:nif_error(not_loaded).

%% Makes the room Room from Config (its record as stored); Records as for remove_user/5.
create_room(_Service, _Room, _Config, _Records) ->
    erlang:nif_error(not_loaded).

%% Gives the room Room the settings Data (its record's `_data`), as if its owner had
%% submitted them: the occupants are told.
configure_room(_Service, _Room, _Data, _Admins, _Records) ->
    erlang:nif_error(not_loaded).

%% Sets Jid's affiliation in Room (owner, admin, member, outcast or none, a binary).
set_affiliation(_Service, _Room, _Jid, _Affiliation, _Admins, _Records) ->
    erlang:nif_error(not_loaded).

%% Destroys Room, its occupants told, with Reason (<<>>: none).
destroy_room(_Service, _Room, _Reason, _Admins, _Records) ->
    erlang:nif_error(not_loaded).
