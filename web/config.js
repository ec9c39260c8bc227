// make run's Converse.js settings (web/index.html loads this after converse.min.js).
// The websocket is Prosody's mod_websocket on the host and port this page came from.
const ws = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/xmpp-websocket';
// ?room=NAME joins NAME@conference.localhost after login (make run's page joins "lobby";
// ?room= with no name joins nothing).
const params = new URLSearchParams(location.search);
const room = params.has('room') ? params.get('room') : 'lobby';
converse.initialize({
  websocket_url: ws,
  discover_connection_methods: false, // no XEP-0156 look-up: the websocket is known
  assets_path: '/converse/',
  authentication: 'login',
  default_domain: 'localhost',        // log in as "user" or "user2" (password "password")
  muc_domain: 'conference.localhost',
  auto_join_rooms: room ? [room + '@conference.localhost'] : [],
  muc_instant_rooms: true,            // a new room is configured with the defaults at once
  muc_nickname_from_jid: true,        // the nickname is the account's name: user, user2
  // Converse.js asks a room for no history on join (maxstanzas=0) unless told: the room's
  // last 20 messages (where a room has muc_mam, as make run's do, Converse.js asks MAM).
  muc_history_max_stanzas: 20,
  view_mode: 'fullscreen',
  allow_registration: false,
  i18n: 'en',
  play_sounds: false,
  show_send_button: true,
  loglevel: 'warn',
});
