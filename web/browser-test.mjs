// The browser test: two Converse.js users in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core) go through a room session on a Prosody of their own, against
// muc_rs and against stock mod_muc, on Prosody 0.12 and 13. Every step is asserted on what
// the pages show.
//
//   node web/browser-test.mjs                      the 4 runs: {0.12, 13} x {muc_rs, muc}
//   node web/browser-test.mjs --runs 13:muc_rs     some of them (VERSION:MODULE, commas)
//   node web/browser-test.mjs --expect-fail        muc_rs on 0.12 with a broken copy of the
//                                                  plugin (groupchat messages dropped): the
//                                                  session must fail, and that passes
//   --plugin-dir DIR (default build/plugin)  --jobs N (runs at once, default 2)
//   --screenshot FILE (a PNG of user's page before the nick change, from the first run)
//   --keep (keep each run's temp dir: prosody.cfg.lua, prosody.log, failure screenshots)
//
// Each run writes a config into a temp dir, starts Prosody on a free loopback port with
// mod_http, mod_websocket and mod_http_files serving build/web (tools/web-setup.sh assembles
// it), and launches its own Chromium (a fresh profile: playwright-core creates a new
// --user-data-dir per launch) with a context per user. Every request that is not for
// 127.0.0.1 or localhost is aborted, and counted as a failure.
// The last line is "N passed, M failed" (tools/test-all.sh adds it up).

import { createRequire } from 'node:module';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PROSODY = {
  '0.12': process.env.MUC_HARNESS_PROSODY_0_12 || '/usr/bin/prosody',
  '13': process.env.MUC_HARNESS_PROSODY_13 || path.join(ROOT, '.deps/prosody-13/bin/prosody'),
};
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const ROOM = 'browsertest@conference.localhost';
const STEP_TIMEOUT = 10_000;

// ---------- options ----------
const argv = process.argv.slice(2);
const opt = { runs: null, pluginDir: path.join(ROOT, 'build/plugin'), jobs: 2, expectFail: false, screenshot: null, keep: false };
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--runs') opt.runs = argv[++i].split(',');
  else if (a === '--plugin-dir') opt.pluginDir = path.resolve(argv[++i]);
  else if (a === '--jobs') opt.jobs = Math.max(1, parseInt(argv[++i], 10));
  else if (a === '--expect-fail') opt.expectFail = true;
  else if (a === '--screenshot') opt.screenshot = path.resolve(argv[++i]);
  else if (a === '--keep') opt.keep = true;
  else { console.error(`unknown argument ${a}`); process.exit(2); }
}
const runs = (opt.runs || (opt.expectFail ? ['0.12:muc_rs'] : ['0.12:muc_rs', '13:muc_rs', '0.12:muc', '13:muc']))
  .map((r) => { const [version, module] = r.split(':'); return { version, module }; });

// ---------- the broken plugin (--expect-fail) ----------
// A copy of the plugin whose shim drops every groupchat message with a body before muc_rs
// sees it: the room looks alive (joins, subject, roles) but nobody gets a message.
function brokenPlugin(dir) {
  fs.mkdirSync(dir, { recursive: true });
  for (const f of fs.readdirSync(opt.pluginDir)) fs.copyFileSync(path.join(opt.pluginDir, f), path.join(dir, f));
  fs.appendFileSync(path.join(dir, 'mod_muc_rs.lua'), `
-- browser-test --expect-fail: this copy drops groupchat messages (a deliberately broken MUC).
module:hook("message/bare", function (event)
	local stanza = event.stanza;
	if stanza.attr.type == "groupchat" and stanza:get_child("body") then return true; end
end, 100);
`);
  return dir;
}

// ---------- Prosody ----------
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

const lua = (s) => JSON.stringify(s); // paths and names here have no Lua-only escapes

function config(dir, port, module, pluginDir) {
  return `-- Written by web/browser-test.mjs: a Prosody for one browser run.
interfaces = { "127.0.0.1" }
c2s_ports = { }
c2s_direct_tls_ports = { }
legacy_ssl_ports = { }
s2s_ports = { }
s2s_direct_tls_ports = { }
component_ports = { }
https_ports = { }
http_ports = { ${port} }
http_interfaces = { "127.0.0.1" }
run_as_root = true
daemonize = false
pidfile = ${lua(path.join(dir, 'prosody.pid'))}
data_path = ${lua(path.join(dir, 'data'))}
certificates = ${lua(path.join(dir, 'certs'))}
log = { { levels = { min = "info" }, to = "file", filename = ${lua(path.join(dir, 'prosody.log'))} } }
authentication = "insecure"
insecure_open_authentication = "Yes please, I know what I'm doing!"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
storage = "memory"
modules_enabled = { "roster", "saslauth", "disco", "ping", "http", "websocket", "http_files" }
http_files_dir = ${lua(path.join(ROOT, 'build/web'))}
http_paths = { files = "/" }
http_default_host = "localhost"
plugin_paths = { ${lua(pluginDir)} }
admins = { }

VirtualHost "localhost"

Component "conference.localhost" ${lua(module)}
`;
}

// Prosodies still running when this process ends (an interrupted run) are killed with it.
const live = new Set();
process.on('exit', () => { for (const c of live) c.kill('SIGKILL'); });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

async function startProsody(run, dir, pluginDir) {
  for (const sub of ['data', 'certs']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  const log = path.join(dir, 'prosody.log');
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    fs.writeFileSync(path.join(dir, 'prosody.cfg.lua'), config(dir, port, run.module, pluginDir));
    fs.rmSync(log, { force: true });
    const console_ = fs.openSync(path.join(dir, 'console.log'), 'a');
    const child = spawn(PROSODY[run.version], ['--config', path.join(dir, 'prosody.cfg.lua'), '-F'],
      { cwd: dir, stdio: ['ignore', console_, console_] });
    fs.closeSync(console_);
    let exited = null;
    live.add(child);
    child.on('exit', (code, sig) => { exited = sig || code; live.delete(child); });
    const ready = `Activated service 'http' on [127.0.0.1]:${port}`;
    const deadline = Date.now() + 20_000;
    for (;;) {
      const text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
      if (text.includes(ready)) {
        const banner = text.match(/Hello and welcome to Prosody version (\S+)/);
        if (!banner || !banner[1].startsWith(run.version === '13' ? '13.' : '0.12.')) {
          child.kill('SIGKILL');
          throw new Error(`expected Prosody ${run.version}, the log says ${banner ? banner[1] : 'nothing'}`);
        }
        return { child, port, log };
      }
      if (text.includes('Failed to open server port')) { child.kill('SIGKILL'); break; }
      if (exited !== null) throw new Error(`Prosody exited during startup (${exited}):\n${tail(text + readOr(path.join(dir, 'console.log')), 20)}`);
      if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`Prosody did not listen within 20 s:\n${tail(text, 20)}`); }
      await sleep(50);
    }
  }
  throw new Error('no free port for Prosody');
}

function stopProsody(p) {
  if (!p || p.child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => p.child.kill('SIGKILL'), 3000);
    p.child.on('exit', () => { clearTimeout(t); resolve(); });
    p.child.kill('SIGTERM');
  });
}

// Lines of the Prosody log that fail a run whatever the pages showed: tracebacks, and
// error-level lines that mention muc (as the harness's log_problems).
function logProblems(text) {
  return text.split('\n').filter((l) => {
    const level = (l.split('\t')[1] || '').trim();
    return /traceback/i.test(l) || (level === 'error' && /muc/i.test(l));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tail = (s, n) => s.trimEnd().split('\n').slice(-n).join('\n');
const readOr = (f) => { try { return fs.readFileSync(f, 'utf8'); } catch { return ''; } };

// ---------- the pages ----------
class User {
  constructor(name, page) { this.name = name; this.page = page; }

  async login(base) {
    await this.page.goto(`${base}/?room=${ROOM.split('@')[0]}`);
    await this.page.fill('#converse-login-jid', this.name);
    await this.page.fill('#converse-login-password', 'password');
    await this.page.click('form button[type=submit]');
  }

  room() { return this.page.locator(`converse-muc[jid="${ROOM}"]`); }
  textarea() { return this.room().locator('textarea.chat-textarea'); }

  async send(text) {
    const ta = this.textarea();
    await ta.waitFor({ timeout: STEP_TIMEOUT });
    await ta.fill(text);
    await ta.press('Enter');
  }

  // Waits until the room shows something.
  async sees(what, locator) {
    try {
      await locator.first().waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
    } catch {
      throw new Error(`${this.name}'s page does not show ${what}`);
    }
  }
  async seesGone(what, locator) {
    try {
      await locator.first().waitFor({ state: 'detached', timeout: STEP_TIMEOUT });
    } catch {
      throw new Error(`${this.name}'s page still shows ${what}`);
    }
  }

  message(from, text) {
    return this.room().locator(`.message.chat-msg[data-from="${ROOM}/${from}"] .chat-msg__text`, { hasText: text });
  }
  info(text) { return this.room().locator('.chat-info__message', { hasText: text }); }
  notice(text) { return this.room().getByText(text); }
  subject(text) { return this.room().locator('.chat-head__desc', { hasText: text }); }
  occupant(nick) {
    return this.room().locator('converse-muc-occupants .occupant-nick').filter({ hasText: exactly(nick) });
  }
  row(nick) {
    return this.room().locator('converse-muc-occupants li.occupant')
      .filter({ has: this.page.locator('.occupant-nick', { hasText: exactly(nick) }) });
  }
  badge(nick, title) { return this.row(nick).locator(`.occupant-badges [title="${title}"]`); }
  online(nick) { return this.row(nick).locator('.chat-status--avatar[title="Online"]'); }
  async messageTexts() {
    return this.room().locator('.message.chat-msg .chat-msg__text').allInnerTexts();
  }
}

const exactly = (text) => new RegExp(`^\\s*${text}\\s*$`);

// The session. Each step names what it checks; the first that fails ends the run.
async function session(a, b, base, step, shot) {
  await step('user creates the room', async () => {
    await a.login(base);
    await a.sees('"A new groupchat has been created"', a.info('A new groupchat has been created'));
    await a.sees('user in the occupant list', a.occupant('user'));
    await a.sees('user as owner', a.badge('user', 'Owner'));
  });
  await step('user sets the subject', async () => {
    await a.sees('user online', a.online('user'));
    await a.send('/subject Testing muc_rs in a browser');
    await a.sees('the subject in the heading', a.subject('Testing muc_rs in a browser'));
    await a.sees('"Topic set by user"', a.info('Topic set by user'));
  });
  await step('user sends two messages', async () => {
    await a.send('First message, before user2 is here');
    await a.send('Second message, before user2 is here');
    await a.sees('the first message', a.message('user', 'First message'));
    await a.sees('the second message', a.message('user', 'Second message'));
  });
  await step('user2 joins and gets the history and the subject', async () => {
    await b.login(base);
    await b.sees('user in the occupant list', b.occupant('user'));
    await b.sees('user2 in the occupant list', b.occupant('user2'));
    await b.sees('the subject in the heading', b.subject('Testing muc_rs in a browser'));
    await b.sees('the first message from the history', b.message('user', 'First message'));
    await b.sees('the second message from the history', b.message('user', 'Second message'));
    const texts = await b.messageTexts();
    const i1 = texts.findIndex((t) => t.includes('First message'));
    const i2 = texts.findIndex((t) => t.includes('Second message'));
    if (!(i1 >= 0 && i1 < i2)) throw new Error(`user2's history is out of order: ${JSON.stringify(texts)}`);
    await a.sees('user2 online in the occupant list', a.online('user2'));
  });
  await step('user and user2 exchange messages', async () => {
    await b.send('Hello from user2');
    await a.sees("user2's message", a.message('user2', 'Hello from user2'));
    await a.send('Welcome, user2');
    await b.sees("user's reply", b.message('user', 'Welcome, user2'));
  });
  await step('user makes user2 a member (affiliation)', async () => {
    await a.send('/member user2');
    await a.sees('"user2 is now a member"', a.info('user2 is now a member of this groupchat'));
    await b.sees('"user2 is now a member"', b.info('user2 is now a member of this groupchat'));
  });
  await step('user makes user2 a moderator (role), then not', async () => {
    await a.send('/op user2');
    // Converse.js shows role changes as a passing notice under the messages, and as badges.
    await a.sees('"user2 is now a moderator"', a.notice('user2 is now a moderator'));
    await a.sees('user2 as moderator', a.badge('user2', 'Moderator'));
    await b.sees('user2 as moderator', b.badge('user2', 'Moderator'));
    await a.send('/deop user2');
    await a.sees('"user2 is no longer a moderator"', a.notice('user2 is no longer a moderator'));
    await a.seesGone('user2 as moderator', a.badge('user2', 'Moderator'));
    await b.seesGone('user2 as moderator', b.badge('user2', 'Moderator'));
    await b.sees('user2 as member', b.badge('user2', 'Member'));
  });
  // (Before the nick change: Converse.js 14 shows other occupants' nick changes with its
  // template unfilled, "Your nickname has been changed to %1$s", for 10 s, whatever the MUC.)
  await shot();
  await step('user2 changes nick to buddy', async () => {
    await b.send('/nick buddy');
    await b.sees('buddy in the occupant list', b.occupant('buddy'));
    await a.sees('buddy in the occupant list', a.occupant('buddy'));
    await a.seesGone('user2 in the occupant list', a.occupant('user2'));
    await b.send('Now I am buddy');
    await a.sees("buddy's message", a.message('buddy', 'Now I am buddy'));
  });
  await step('user kicks buddy', async () => {
    await a.send('/kick buddy Bye for now');
    await a.sees('"buddy has been kicked out"', a.info('buddy has been kicked out'));
    // buddy is a member: Converse.js keeps members in the list, offline.
    await a.seesGone('buddy online', a.online('buddy'));
    await b.sees('"You have been kicked from this groupchat"', b.room().getByText('You have been kicked from this groupchat'));
    await b.sees('the reason', b.room().getByText('Bye for now'));
  });
}

async function runOne(run, label, first) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'muc-browser-'));
  const started = Date.now();
  const result = { label, ok: false, steps: [], error: null, dir, blocked: [], stepsPassed: 0, failedStep: null };
  let prosody = null;
  let browser = null;
  try {
    const pluginDir = opt.expectFail ? brokenPlugin(path.join(dir, 'plugin')) : opt.pluginDir;
    prosody = await startProsody(run, dir, pluginDir);
    const base = `http://localhost:${prosody.port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const users = [];
    for (const name of ['user', 'user2']) {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 760 } });
      await ctx.route('**/*', (route) => {
        const url = new URL(route.request().url());
        if (url.hostname === '127.0.0.1' || url.hostname === 'localhost') return route.continue();
        result.blocked.push(url.href);
        return route.abort();
      });
      const page = await ctx.newPage();
      page.on('pageerror', (e) => result.steps.push(`  (${name}'s page: ${e.message})`));
      if (process.env.BROWSER_TEST_TRACE) { // the XMPP traffic of each page, in the run's dir
        const trace = path.join(dir, `${name}.xmpp.log`);
        page.on('websocket', (ws) => {
          ws.on('framesent', (f) => fs.appendFileSync(trace, `SEND ${f.payload}\n`));
          ws.on('framereceived', (f) => fs.appendFileSync(trace, `RECV ${f.payload}\n`));
        });
      }
      users.push(new User(name, page));
    }
    const [a, b] = users;
    let current = null;
    const step = async (name, fn) => {
      current = name;
      const t = Date.now();
      await fn();
      result.stepsPassed++;
      result.steps.push(`  ok   ${name} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
    };
    const shot = async () => {
      if (opt.screenshot && first) { // the first run's page: the same picture every time
        fs.mkdirSync(path.dirname(opt.screenshot), { recursive: true });
        await a.page.screenshot({ path: opt.screenshot });
        result.steps.push(`  (screenshot of user's page: ${path.relative(process.cwd(), opt.screenshot)})`);
      }
    };
    try {
      await session(a, b, base, step, shot);
    } catch (e) {
      result.failedStep = current;
      result.steps.push(`  FAIL ${current}: ${e.message.split('\n')[0]}`);
      for (const u of users) await u.page.screenshot({ path: path.join(dir, `${u.name}.png`) }).catch(() => {});
      throw e;
    }
    if (result.blocked.length) throw new Error(`requests left loopback: ${result.blocked.join(', ')}`);
    const problems = logProblems(readOr(prosody.log));
    if (problems.length) throw new Error(`Prosody's log has errors:\n${problems.slice(0, 10).join('\n')}`);
    result.ok = true;
  } catch (e) {
    result.error = e.message;
  } finally {
    if (browser) await browser.close().catch(() => {});
    await stopProsody(prosody);
    result.seconds = (Date.now() - started) / 1000;
    if (!result.ok && prosody) result.logTail = tail(readOr(prosody.log), 15);
    if (!opt.keep && (result.ok || opt.expectFail)) fs.rmSync(dir, { recursive: true, force: true });
  }
  return result;
}

// ---------- main ----------
for (const [what, file] of [['Chromium', CHROMIUM], ...Object.entries(PROSODY).map(([v, f]) => [`Prosody ${v}`, f])]) {
  if (!fs.existsSync(file)) { console.log(`${what} not found at ${file} (tools/install-deps.sh installs it)`); console.log('0 passed, 1 failed'); process.exit(1); }
}
if (!fs.existsSync(path.join(ROOT, 'build/web/index.html'))) {
  console.log('build/web is missing: run tools/web-setup.sh'); console.log('0 passed, 1 failed'); process.exit(1);
}
if (!fs.existsSync(path.join(opt.pluginDir, 'mod_muc_rs.lua'))) {
  console.log(`no plugin in ${opt.pluginDir}: run make build`); console.log('0 passed, 1 failed'); process.exit(1);
}

// With --expect-fail a run passes when the session failed at a step after the room was made
// (not when Prosody or Chromium could not start, which proves nothing).
const passes = (r) => (opt.expectFail ? !r.ok && r.failedStep !== null && r.stepsPassed >= 1 : r.ok);

const t0 = Date.now();
const results = new Array(runs.length);
let next = 0;
await Promise.all(Array.from({ length: Math.min(opt.jobs, runs.length) }, async () => {
  while (next < runs.length) {
    const i = next++;
    const run = runs[i];
    const label = `Prosody ${run.version}, ${run.module}${opt.expectFail ? ' (broken plugin: must fail)' : ''}`;
    const r = await runOne(run, label, i === 0);
    results[i] = r;
    const pass = passes(r);
    const lines = [`${pass ? 'ok  ' : 'FAIL'} ${label}: ${r.ok ? 'the session went through' : 'the session failed'} (${r.seconds.toFixed(1)} s)`, ...r.steps];
    if (!r.ok && r.error) lines.push(`  error: ${r.error.split('\n').join('\n  ')}`);
    if (opt.expectFail && r.ok) lines.push('  the broken plugin was not noticed: the test cannot fail');
    else if (opt.expectFail && !pass) lines.push('  the session did not get as far as the room: that proves nothing');
    if (!pass && r.logTail) lines.push(`  Prosody log (${r.dir}):`, ...r.logTail.split('\n').map((l) => `    ${l}`));
    console.log(lines.join('\n'));
  }
}));
const passed = results.filter(passes).length;
console.log(`(${((Date.now() - t0) / 1000).toFixed(1)} s)`);
console.log(`${passed} passed, ${results.length - passed} failed`);
process.exit(passed === results.length ? 0 : 1);
