%%% Nicknames registered with the MUC service itself (jabber:iq:register to the service's
%%% JID), as ejabberd's mod_muc takes them: a registered nick is the user's in every room of
%%% the service (mod_muc_rs refuses it to others on join). They are kept where mod_muc keeps
%%% them, `muc_registered` keyed by the service, through mod_muc's own storage modules
%%% (mod_muc_mnesia, mod_muc_sql: set_nick/4, get_nick/3), which also refuse a nick someone
%%% else has registered with the service or in one of its rooms. Who may register is the
%%% access rule `access_register`.
-module(mod_muc_rs_service_nicks).

-export([process/3]).

-include("translate.hrl").
-include_lib("xmpp/include/xmpp.hrl").

%% The reply to a registration iq (get: the form, with the nick registered so far; set:
%% register, change or remove), for the service Db and Access (access_register) of
%% ServerHost.
-spec process(iq(), binary(), {term(), atom()}) -> iq().
process(#iq{from = From, lang = Lang} = IQ, ServerHost, {Db, Access}) ->
    case acl:match_rule(ServerHost, Access, From) of
        allow ->
            try xmpp:get_subtag(IQ, #register{}) of
                #register{} = Register -> answer(IQ, Register, ServerHost, Db);
                false -> xmpp:make_error(IQ, xmpp:err_bad_request())
            catch _:{xmpp_codec, Why} ->
                    xmpp:make_error(IQ, xmpp:err_bad_request(xmpp:io_format_error(Why), Lang))
            end;
        deny ->
            xmpp:make_error(IQ, xmpp:err_forbidden(?T("Access denied by service policy"), Lang))
    end.

answer(#iq{type = get, from = From, to = To, lang = Lang} = IQ, _Register, ServerHost, Db) ->
    Service = To#jid.lserver,
    {Nick, Registered} = case (storage(Db)):get_nick(ServerHost, Service, From) of
                             error -> {<<>>, false};
                             Known -> {Known, true}
                         end,
    Title = <<(translate:translate(Lang, ?T("Nickname Registration at ")))/binary,
              Service/binary>>,
    Form = #xdata{type = form, title = Title,
                  instructions = [translate:translate(Lang, ?T("Enter nickname you want to register"))],
                  fields = muc_register:encode([{roomnick, Nick}], Lang)},
    Instructions = translate:translate(
                     Lang, ?T("You need a client that supports x:data to register the nickname")),
    xmpp:make_iq_result(IQ, #register{nick = Nick, registered = Registered,
                                      instructions = Instructions, xdata = Form});
answer(#iq{type = set, lang = Lang} = IQ, Register, ServerHost, Db) ->
    case nick_to_set(Register, Lang) of
        cancel -> xmpp:make_iq_result(IQ);
        {error, Err} -> xmpp:make_error(IQ, Err);
        {set, Nick} -> set(IQ, Nick, ServerHost, Db)
    end.

%% What a set asks for: a nick (<<>> to remove the registration), or nothing (a cancelled
%% form), or an error.
nick_to_set(#register{remove = true}, _Lang) ->
    {set, <<>>};
nick_to_set(#register{xdata = #xdata{type = cancel}}, _Lang) ->
    cancel;
nick_to_set(#register{xdata = #xdata{type = submit, fields = Fields}}, Lang) ->
    try {set, proplists:get_value(roomnick, muc_register:decode(Fields))}
    catch _:{muc_register, Why} ->
            {error, xmpp:err_bad_request(muc_register:format_error(Why), Lang)}
    end;
nick_to_set(#register{xdata = #xdata{}}, Lang) ->
    {error, xmpp:err_bad_request(?T("Incorrect data form"), Lang)};
nick_to_set(#register{nick = Nick}, _Lang) when is_binary(Nick), Nick /= <<>> ->
    {set, Nick};
nick_to_set(_Register, Lang) ->
    {error, xmpp:err_not_acceptable(?T("You must fill in field \"Nickname\" in the form"), Lang)}.

set(#iq{from = From, to = To, lang = Lang} = IQ, Nick, ServerHost, Db) ->
    case (storage(Db)):set_nick(ServerHost, To#jid.lserver, From, Nick) of
        {atomic, ok} ->
            xmpp:make_iq_result(IQ);
        {atomic, false} ->
            xmpp:make_error(IQ, xmpp:err_conflict(?T("That nickname is registered by another person"),
                                                  Lang));
        _ ->
            xmpp:make_error(IQ, xmpp:err_internal_server_error(?T("Database failure"), Lang))
    end.

storage(mnesia) -> mod_muc_mnesia;
storage({sql, _}) -> mod_muc_sql.
