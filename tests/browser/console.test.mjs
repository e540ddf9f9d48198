// Browser tests of the eventstore web console (docs/console.md), in Debian's
// headless Chromium driven by puppeteer-core.
//
// tests/browser/console_browser_test.cc seeds a store, serves it (a
// read-only server, one with writes allowed, one that requires a bearer
// token, and on PostgreSQL one over a failover store), keeps appending one
// event to the ticker stream every 100 ms and runs this script with:
//   CONSOLE_READONLY_URL  http://127.0.0.1:PORT of the read-only server
//   CONSOLE_WRITES_URL    the same store served with writes allowed
//   CONSOLE_TOKEN_URL     optional: the same store, read-only, served with
//   CONSOLE_TOKEN         this bearer token (the token steps need both)
//   CONSOLE_FAILOVER_URL  optional: the same store opened as a failover
//                         store (primary mode), read-only
//   CONSOLE_FALLBACK_URL  optional: another failover store, in fallback
//                         mode (its primary stopped) with one append
//                         journaled, read-only
//   CONSOLE_BACKEND       sqlite | postgres
//   CONSOLE_OUT           folder for the screenshots (and Chromium's profile)
//   CONSOLE_FACTS         JSON file: what the driver seeded (WriteFacts)
//   CONSOLE_CHROMIUM      the browser (default /usr/bin/chromium)
//   CONSOLE_ONLY          optional: a regular expression; only the steps
//                         whose name matches run (to debug one page)
// By hand, against any seeded store (see the driver for what it needs):
//   cd tests/browser && npm ci && CONSOLE_READONLY_URL=... node
//   console.test.mjs
//
// Every wait is on a condition with a deadline (waitForSelector,
// waitForFunction), never a fixed sleep. Exit code 0 when every step
// passed; else 1, naming the step and what was expected, with a
// screenshot failure-<step>.png in CONSOLE_OUT.

import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import puppeteer from 'puppeteer-core';

const TIMEOUT_MS = 20000;

function need(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`console.test.mjs: the environment variable ${
        name} is not set (see the file comment)`);
    process.exit(2);
  }
  return value;
}

const READONLY_URL = need('CONSOLE_READONLY_URL').replace(/\/$/, '');
const WRITES_URL = need('CONSOLE_WRITES_URL').replace(/\/$/, '');
const TOKEN_URL = (process.env.CONSOLE_TOKEN_URL || '').replace(/\/$/, '');
const TOKEN = process.env.CONSOLE_TOKEN || '';
const FAILOVER_URL =
    (process.env.CONSOLE_FAILOVER_URL || '').replace(/\/$/, '');
const FALLBACK_URL =
    (process.env.CONSOLE_FALLBACK_URL || '').replace(/\/$/, '');
const OUT = need('CONSOLE_OUT');
const FACTS_FILE = need('CONSOLE_FACTS');
const BACKEND = process.env.CONSOLE_BACKEND || 'unknown';
const CHROMIUM = process.env.CONSOLE_CHROMIUM || '/usr/bin/chromium';
const facts = JSON.parse(fs.readFileSync(FACTS_FILE, 'utf8'));
fs.mkdirSync(OUT, {recursive: true});

const tid = (id) => `[data-testid="${id}"]`;
const WRITE_BUTTONS = [
  'projection-reset', 'projection-rebuild', 'dlq-retry', 'dlq-resolve',
  'outbox-retry'
].map(tid).join(',');
const OPERATOR = 'browser-test';

class StepFailure extends Error {}

function check(condition, message) {
  if (!condition) throw new StepFailure(message);
}

// Waits for fn(...args) to be truthy in the page; on the deadline fails
// with `what` (what was expected) instead of puppeteer's bare timeout.
async function waitFor(page, what, fn, ...args) {
  const started = Date.now();
  try {
    return await page.waitForFunction(
        fn, {timeout: TIMEOUT_MS, polling: 100}, ...args);
  } catch (e) {
    throw new StepFailure(`timed out after ${TIMEOUT_MS} ms waiting for: ${
        what} (${e.message.split('\n')[0]})`);
  } finally {
    slow(started, what);
  }
}

// Reports a wait that took long (a page slower than it should be).
function slow(started, what) {
  const ms = Date.now() - started;
  if (ms > 3000) console.log(`  (waited ${ms} ms for ${what})`);
}

async function waitSelector(page, selector, what) {
  const started = Date.now();
  try {
    return await page.waitForSelector(
        selector, {timeout: TIMEOUT_MS, visible: true});
  } catch (e) {
    throw new StepFailure(`timed out after ${TIMEOUT_MS} ms waiting for ${
        what || selector} (${e.message.split('\n')[0]})`);
  } finally {
    slow(started, what || selector);
  }
}

// Waits in node (not in the page) for a condition on the server, e.g. the
// ticker having appended more events.
async function waitServer(what, fn) {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline)
      throw new StepFailure(
          `timed out after ${TIMEOUT_MS} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function serverEvents(base, token) {
  const response = await fetch(
      base + '/api/info',
      {headers: token ? {Authorization: 'Bearer ' + token} : {}});
  check(response.ok, `GET ${base}/api/info answered ${response.status}`);
  return (await response.json()).events;
}

const text = (page, selector) =>
    page.$eval(selector, (e) => e.textContent.trim());
const attr = (page, selector, name) =>
    page.$eval(selector, (e, n) => e.getAttribute(n), name);

async function screenshot(page, name) {
  const file = path.join(OUT, name + '.png');
  await page.screenshot({path: file, fullPage: true});
  console.log(`  screenshot ${file}`);
}

async function noWriteButtons(page, where) {
  const found = await page.$$eval(
      WRITE_BUTTONS, (els) => els.map((e) => e.getAttribute('data-testid')));
  check(
      found.length === 0,
      `${where}: the read-only server's page has write buttons: ${
          found.join(', ')}`);
}

async function noErrorBanner(page, where) {
  const banner = await page.$eval(
      tid('error-banner'), (e) => (e.hidden ? '' : e.textContent.trim()));
  check(banner === '', `${where}: the page shows an error: ${banner}`);
}

async function noSecret(page, where) {
  if (!facts.url_secret) return;
  const html = await page.content();
  check(
      !html.includes(facts.url_secret),
      `${where}: the page shows the store URL's password`);
}

// Clicks a nav link by keyboard-free click and waits for the page's h1.
async function nav(page, id, heading) {
  await page.click(tid('nav-' + id));
  await waitFor(
      page, `the ${heading} page`,
      (h) => document.querySelector('main h1')?.textContent === h, heading);
}

// Clears an input and types into it (fires input events, as a user does).
async function typeInto(page, selector, value) {
  await page.$eval(selector, (e) => {
    e.value = '';
    e.dispatchEvent(new Event('input', {bubbles: true}));
  });
  if (value) await page.type(selector, value);
}

// Confirms the open confirmation dialog as OPERATOR.
async function confirmAs(page, operator) {
  await waitSelector(
      page, tid('confirm-dialog') + '[open]', 'the confirmation dialog');
  await typeInto(page, tid('confirm-operator'), operator);
  await page.click(tid('confirm-ok'));
  await waitFor(
      page, 'the confirmation dialog to close',
      () => !document.querySelector('[data-testid="confirm-dialog"]').open);
}

// Opens a tab on `base` (its problems collected as openConsole's are) and
// returns it once its shell is loaded, before the console has started.
async function openShell(browser, base, label) {
  const page = await browser.newPage();
  await page.setViewport({width: 1280, height: 900});
  page.problems = [];
  page.on(
      'pageerror',
      (e) => page.problems.push(
          `${label}: uncaught error in the page: ${e.message}`));
  page.on('console', (m) => {
    const t = m.text();
    if (/Content Security Policy|Refused to/i.test(t))
      page.problems.push(`${label}: CSP violation: ${t}`);
  });
  const response = await page.goto(
      base + '/#/', {waitUntil: 'domcontentloaded', timeout: TIMEOUT_MS});
  check(
      response && response.ok(),
      `${label}: GET / answered ${response && response.status()}`);
  const csp = response.headers()['content-security-policy'] || '';
  check(
      /script-src 'self'/.test(csp),
      `${label}: GET / has no Content-Security-Policy with script-src 'self' (got "${
          csp}")`);
  pages.push({page, label});
  return page;
}

async function openConsole(browser, base, label) {
  const page = await openShell(browser, base, label);
  await waitSelector(
      page, 'body[data-ready]',
      `${label}: the console to start (body[data-ready])`);
  return page;
}

const steps = [];
function step(name, fn) {
  steps.push({name, fn});
}

let browser;
let ro;  // the read-only server's page
let rw;  // the writes server's page
// Every page opened, with a label: checked for problems after each step,
// and screenshot on a failure.
const pages = [];

// ---------------------------------------------------------------- read-only

step('overview', async () => {
  await waitFor(
      ro, `overview-events >= ${facts.events}`,
      (n) => Number(document.querySelector('[data-testid="overview-events"]')
                        ?.getAttribute('data-value')) >= n,
      facts.events);
  const streams = Number(await attr(ro, tid('overview-streams'), 'data-value'));
  // The ticker's stream is new when the seeding did not make it.
  check(
      streams === facts.streams || streams === facts.streams + 1,
      `overview-streams is ${streams}, expected ${
          facts.streams} (+1 for the ticker's stream)`);
  check(
      (await text(ro, tid('overview-backend'))) === facts.backend,
      `overview-backend is not ${facts.backend}`);
  check(
      /^\d+/.test(await text(ro, tid('overview-schema'))),
      'overview-schema shows no version');
  check(
      (await text(ro, tid('overview-head'))).length > 0,
      'overview-head is empty');
  check(
      /\d/.test(await text(ro, tid('overview-size'))),
      'overview-size shows no size');
  check(
      (await text(ro, tid('overview-url'))).length > 0,
      'overview-url is empty');
  check(
      (await text(ro, tid('overview-failover'))) === 'not a failover store',
      'overview-failover should say it is not a failover store');
  await waitSelector(
      ro, `${tid('rate-chart')} path.series`,
      'the rate chart to draw a line (rate-chart path.series)');
  await waitSelector(
      ro,
      `${tid('overview-projections')} tr[data-projection="${
          facts.projection}"]`,
      `${facts.projection} in overview-projections`);
  await waitFor(
      ro,
      `overview-dead-letters >= 1 and overview-outbox pending ${
          facts.outbox_pending}, failed 1`,
      (p) => {
        const d =
            document.querySelector('[data-testid="overview-dead-letters"]');
        const o = document.querySelector('[data-testid="overview-outbox"]');
        return Number(d?.getAttribute('data-value')) >= 1 &&
            Number(o?.getAttribute('data-pending')) === p &&
            Number(o?.getAttribute('data-failed')) === 1;
      },
      facts.outbox_pending);
  await noWriteButtons(ro, 'overview');
  await noErrorBanner(ro, 'overview');
  await noSecret(ro, 'overview');
  check(
      (await text(ro, tid('mode'))) === 'read-only',
      'the header does not say read-only');
  await screenshot(ro, 'overview');
});

step('keyboard navigation', async () => {
  // Tab from the top of the page to the Streams link and follow it with
  // Enter: the nav is real links, reachable and visibly focused.
  await ro.evaluate(
      () => document.activeElement && document.activeElement.blur());
  let reached = false;
  for (let i = 0; i < 12 && !reached; i++) {
    await ro.keyboard.press('Tab');
    reached = await ro.evaluate(
        () => document.activeElement?.getAttribute('data-testid') ===
            'nav-streams');
  }
  check(reached, 'Tab never reached the Streams link (nav-streams)');
  const outline = await ro.evaluate(
      () => getComputedStyle(document.activeElement).outlineStyle);
  check(outline !== 'none', 'the focused link has no visible focus outline');
  await ro.keyboard.press('Enter');
  await waitFor(
      ro, 'the Streams page after Enter',
      () => document.querySelector('main h1')?.textContent === 'Streams');
});

step('streams', async () => {
  await waitSelector(ro, tid('stream-row'), 'stream rows');
  await typeInto(ro, tid('streams-prefix'), facts.order_stream_prefix);
  await waitFor(
      ro,
      `only streams starting with ${facts.order_stream_prefix}, ${
          facts.order_streams} of them`,
      (prefix, n) => {
        const rows =
            [...document.querySelectorAll('[data-testid="stream-row"]')];
        return rows.length === n &&
            rows.every((r) => r.getAttribute('data-stream').startsWith(prefix));
      },
      facts.order_stream_prefix, Math.min(facts.order_streams, 50));
  const version = await ro.$eval(
      `${tid('stream-row')}[data-stream="${
          facts.order_stream}"] td:nth-child(2)`,
      (e) => e.textContent.trim());
  check(
      version === String(facts.order_stream_events),
      `${facts.order_stream}'s version shows ${version}, expected ${
          facts.order_stream_events}`);
  check(
      await ro.$eval(tid('streams-next'), (b) => b.disabled),
      'streams-next should be disabled: one page holds them all');
  await noWriteButtons(ro, 'streams');
  await noErrorBanner(ro, 'streams');
  await screenshot(ro, 'streams');
  await ro.click(`${tid('stream-row')}[data-stream="${facts.order_stream}"] a`);
  await waitFor(
      ro, `the ${facts.order_stream} page`,
      (n) =>
          document.querySelector('[data-testid="stream-name"]')?.textContent ===
          n,
      facts.order_stream);
});

step('stream', async () => {
  await waitSelector(
      ro, `${tid('event-row')}[data-version="1"]`, 'the stream\'s first event');
  check(
      (await text(ro, tid('stream-version'))) ===
          String(facts.order_stream_events),
      `stream-version is not ${facts.order_stream_events}`);
  const first = `${tid('event-row')}[data-version="1"]`;
  check(
      (await text(ro, `${first} ${tid('event-type')}`)) === facts.order_type,
      `the first event's type is not ${facts.order_type}`);
  const json = JSON.parse(await text(ro, `${first} ${tid('event-json')}`));
  check(
      json[facts.order_field] === facts.order_value,
      `the first event's JSON has ${facts.order_field}=${
          JSON.stringify(
              json[facts.order_field])}, expected ${facts.order_value}`);
  check(
      /^\S+$/.test(await attr(ro, first, 'data-position')),
      'event-row has no data-position');
  const versions = await ro.$$eval(
      tid('event-row'),
      (rows) => rows.map((r) => Number(r.getAttribute('data-version'))));
  check(
      versions.length === Math.min(20, facts.order_stream_events) &&
          versions[0] === 1,
      `the first page shows versions ${versions.join(',')}`);
  await screenshot(ro, 'stream');
  // Paging forward, then newest first.
  await ro.click(tid('stream-newer'));
  await waitSelector(
      ro, `${tid('event-row')}[data-version="21"]`, 'version 21 after Newer');
  await ro.click(tid('stream-direction'));
  await waitFor(
      ro, `newest first: version ${facts.order_stream_events} at the top`,
      (v) => document.querySelector('[data-testid="event-row"]')
                 ?.getAttribute('data-version') === String(v),
      facts.order_stream_events);
  await ro.click(tid('stream-older'));
  await waitFor(
      ro, 'an older page, newest first',
      (v) => Number(document.querySelector('[data-testid="event-row"]')
                        ?.getAttribute('data-version')) === v - 20,
      facts.order_stream_events);
  await noWriteButtons(ro, 'stream');
  await noErrorBanner(ro, 'stream');
});

step('stream of an unknown type', async () => {
  await ro.goto(
      `${READONLY_URL}/#/stream/${encodeURIComponent(facts.unknown_stream)}`);
  await waitSelector(
      ro, `${tid('event-row')} ${tid('event-hex')}`,
      'the unknown type\'s bytes in hex (event-hex)');
  const hex = await text(ro, tid('event-hex'));
  check(
      /^00000000 {2}[0-9a-f]{2}( [0-9a-f]{2})*/.test(hex),
      `event-hex is not a hex dump: ${hex.slice(0, 80)}`);
  check(
      (await text(ro, tid('event-type'))) === facts.unknown_type,
      `the event's type is not ${facts.unknown_type}`);
  check(
      (await ro.$(tid('event-json'))) === null,
      'an unknown type should show no JSON');
  await noErrorBanner(ro, 'unknown stream');
  await screenshot(ro, 'stream-unknown');
});

step('live tail', async () => {
  await nav(ro, 'tail', 'Live tail');
  await waitSelector(ro, tid('tail-row'), 'the tail\'s first rows');
  const before = await ro.$$eval(
      tid('tail-row'),
      (rows) => rows.map((r) => r.getAttribute('data-position')));
  // A ticker event appended after the page opened arrives by long-poll.
  await waitFor(
      ro, `a new ${facts.ticker_stream} event in the tail`,
      (seen,
       stream) => [...document.querySelectorAll('[data-testid="tail-row"]')]
                      .some(
                          (r) => r.getAttribute('data-stream') === stream &&
                              !seen.includes(r.getAttribute('data-position'))),
      before, facts.ticker_stream);
  // Type filter: only the order type.
  await typeInto(ro, tid('tail-type'), facts.order_type);
  await waitFor(ro, `tail rows all of type ${facts.order_type}`, (type) => {
    const rows = [...document.querySelectorAll('[data-testid="tail-row"]')];
    return rows.length > 0 &&
        rows.every((r) => r.getAttribute('data-type') === type);
  }, facts.order_type);
  // Prefix filter: only the ticker.
  await typeInto(ro, tid('tail-type'), '');
  await typeInto(ro, tid('tail-prefix'), facts.ticker_stream);
  await waitFor(
      ro, `tail rows all of ${facts.ticker_stream}, and growing`, (stream) => {
        const rows = [...document.querySelectorAll('[data-testid="tail-row"]')];
        return rows.length > 1 &&
            rows.every((r) => r.getAttribute('data-stream') === stream);
      }, facts.ticker_stream);
  await screenshot(ro, 'tail');
  // Pause: the ticker goes on, the rows do not.
  await ro.click(tid('tail-pause'));
  check(
      (await text(ro, tid('tail-pause'))) === 'Resume',
      'tail-pause does not say Resume once paused');
  const paused = await ro.$$eval(
      tid('tail-row'),
      (rows) => rows.map((r) => r.getAttribute('data-position')));
  const events = await serverEvents(READONLY_URL);
  await waitServer(
      'the ticker to append 5 events while paused',
      async () => (await serverEvents(READONLY_URL)) >= events + 5);
  const afterPause = await ro.$$eval(
      tid('tail-row'),
      (rows) => rows.map((r) => r.getAttribute('data-position')));
  check(
      afterPause.length === paused.length &&
          afterPause.every((p, i) => p === paused[i]),
      `new rows appeared while paused (${paused.length} rows before, ${
          afterPause.length} after)`);
  await ro.click(tid('tail-pause'));
  check(
      (await text(ro, tid('tail-pause'))) === 'Pause',
      'tail-pause does not say Pause once resumed');
  await waitFor(
      ro, 'new rows after Resume',
      (seen) => [...document.querySelectorAll('[data-testid="tail-row"]')].some(
          (r) => !seen.includes(r.getAttribute('data-position'))),
      paused);
  await noWriteButtons(ro, 'tail');
  await noErrorBanner(ro, 'tail');
});

step('projections', async () => {
  await nav(ro, 'projections', 'Projections');
  const row = `${tid('projection-row')}[data-projection="${facts.projection}"]`;
  await waitSelector(ro, row, `the ${facts.projection} row`);
  await waitFor(
      ro, `${facts.projection}'s lag >= ${facts.projection_events_behind}`,
      (sel, n) =>
          Number(
              document.querySelector(sel + ' [data-testid="projection-lag"]')
                  ?.getAttribute('data-value')) >= n,
      row, facts.projection_events_behind);
  if (facts.projection_checkpoint) {
    const cp = await text(ro, `${row} ${tid('projection-checkpoint')}`);
    check(
        cp === facts.projection_checkpoint,
        `${facts.projection}'s checkpoint shows ${cp}, expected ${
            facts.projection_checkpoint}`);
  }
  check(
      /\d/.test(await text(ro, `${row} ${tid('projection-handled')}`)),
      'projection-handled shows no number');
  check(
      (await text(ro, `${row} ${tid('projection-lease')}`)) === 'none',
      `${facts.projection} should have no lease holder`);
  const running = `${tid('projection-row')}[data-projection="${
      facts.running_projection}"] ${tid('projection-lease')}`;
  await waitSelector(ro, running, `the ${facts.running_projection} row`);
  const lease = await text(ro, running);
  if (facts.lease_holder_pid !== null && facts.lease_holder_pid !== undefined) {
    check(
        lease.startsWith(`pid ${facts.lease_holder_pid}`),
        `${facts.running_projection}'s lease shows "${lease}", expected pid ${
            facts.lease_holder_pid}`);
  } else {
    check(
        lease !== 'none',
        `${facts.running_projection}'s lease holder is not shown`);
  }
  await waitSelector(
      ro, `${tid('lag-chart')} path.series`, 'the lag chart to draw a line');
  await noWriteButtons(ro, 'projections');
  await noErrorBanner(ro, 'projections');
  await screenshot(ro, 'projections');
});

step('dead letters', async () => {
  await nav(ro, 'dead-letters', 'Dead letters');
  const dl = facts.dead_letter;
  const row = `${tid('dlq-row')}[data-event-id="${dl.event_id}"]`;
  await waitSelector(
      ro, `${row}[data-status="parked"]`,
      `the parked dead letter ${dl.event_id}`);
  await ro.click(`${row} ${tid('dlq-show')}`);
  await waitSelector(
      ro, `${tid('dlq-detail')}[data-event-id="${dl.event_id}"]`,
      'the dead letter\'s detail');
  check(
      (await text(ro, tid('dlq-error'))) === dl.error,
      `dlq-error is not "${dl.error}"`);
  await waitSelector(
      ro, `${tid('dlq-detail')} ${tid('event-json')}`,
      'the dead letter\'s event as JSON');
  await noWriteButtons(ro, 'dead letters');
  await noErrorBanner(ro, 'dead letters');
  await screenshot(ro, 'dead-letters');
});

step('outbox', async () => {
  await nav(ro, 'outbox', 'Outbox');
  await waitFor(
      ro, `outbox-pending = ${facts.outbox_pending} and outbox-failed = 1`,
      (p) => Number(document.querySelector('[data-testid="outbox-pending"]')
                        ?.getAttribute('data-value')) === p &&
          Number(document.querySelector('[data-testid="outbox-failed"]')
                     ?.getAttribute('data-value')) === 1,
      facts.outbox_pending);
  await ro.select(tid('outbox-status'), 'failed');
  await waitSelector(
      ro,
      `${tid('outbox-row')}[data-id="${
          facts.outbox_failed_id}"][data-status="failed"]`,
      `failed message ${facts.outbox_failed_id}`);
  await noWriteButtons(ro, 'outbox');
  await noErrorBanner(ro, 'outbox');
  await screenshot(ro, 'outbox');
});

step('phone width and dark mode', async () => {
  await ro.setViewport(
      {width: 390, height: 844, isMobile: true, hasTouch: true});
  await ro.emulateMediaFeatures(
      [{name: 'prefers-color-scheme', value: 'dark'}]);
  await nav(ro, 'overview', 'Overview');
  await waitSelector(
      ro, `${tid('rate-chart')} path.series`, 'the rate chart at phone width');
  const overflow = await ro.evaluate(
      () => document.documentElement.scrollWidth - window.innerWidth);
  check(
      overflow <= 1,
      `the overview is ${overflow} px wider than a phone's screen`);
  const bg =
      await ro.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const [r, g, b] = bg.match(/\d+/g).map(Number);
  check(r + g + b < 150, `dark mode: the background is ${bg}, not dark`);
  await screenshot(ro, 'overview-phone-dark');
  await ro.goto(
      `${READONLY_URL}/#/stream/${encodeURIComponent(facts.order_stream)}`);
  await waitSelector(ro, tid('event-row'), 'the stream page at phone width');
  const overflow2 = await ro.evaluate(
      () => document.documentElement.scrollWidth - window.innerWidth);
  check(
      overflow2 <= 1,
      `the stream page is ${overflow2} px wider than a phone's screen`);
  await screenshot(ro, 'stream-phone-dark');
  await ro.emulateMediaFeatures(
      [{name: 'prefers-color-scheme', value: 'light'}]);
  await ro.setViewport({width: 1280, height: 900});
});

// ---------------------------------------------------------------- token

// Fails unless `page` (its HTML and its visible text) never shows the token.
async function noToken(page, where) {
  const [html, shown] = await Promise.all(
      [page.content(), page.evaluate(() => document.body.innerText)]);
  check(
      !html.includes(TOKEN) && !shown.includes(TOKEN),
      `${where}: the page shows the bearer token`);
}

async function tokenDialogOpen(page) {
  return page.$eval(tid('token-dialog'), (d) => d.open);
}

if (TOKEN_URL && TOKEN) {
  step('token: the shell is public, the API is not', async () => {
    for (const file of ['/', '/console.js', '/console.css']) {
      const r = await fetch(TOKEN_URL + file);
      check(
          r.status === 200,
          `GET ${file} without the token answered ${r.status}, expected 200`);
    }
    for (const token of [null, 'wrong-' + TOKEN, TOKEN + 'x']) {
      const r = await fetch(
          TOKEN_URL + '/api/info',
          {headers: token ? {Authorization: 'Bearer ' + token} : {}});
      check(
          r.status === 401,
          `GET /api/info ${
              token ? 'with a wrong token' :
                      'without a token'} answered ${r.status}, expected 401`);
      const body = await r.text();
      check(
          !/"events"|"backend"/.test(body),
          `the 401 answer tells about the store: ${body}`);
    }
    check(
        (await serverEvents(TOKEN_URL, TOKEN)) >= facts.events,
        'GET /api/info with the token does not count the seeded events');
  });

  step(
      'token: the dialog asks, refuses a wrong token, takes the right one',
      async () => {
        const tk = await openShell(browser, TOKEN_URL, 'token server');
        await tk.bringToFront();
        await waitSelector(
            tk, tid('token-dialog') + '[open]',
            'the token dialog (token-dialog) to open');
        check(
            (await tk.$('body[data-ready]')) === null,
            'the console started without the token');
        // A wrong token: the dialog comes back, saying it was refused, and
        // the page shows nothing of the store.
        await typeInto(tk, tid('token-input'), 'wrong-' + TOKEN);
        await tk.click(tid('token-ok'));
        await waitFor(
            tk, 'the token dialog open again, saying the token was refused',
            () => {
              const d = document.querySelector('[data-testid="token-dialog"]');
              const e = document.getElementById('token-error');
              return d.open && e && !e.hidden && /refused/i.test(e.textContent);
            });
        check(
            (await tk.$('body[data-ready]')) === null,
            'the console started with a wrong token');
        // (The overview renders once /api/console answered: not yet.)
        const shown = await tk.$$eval(
            tid('overview-events'), (els) => els.map((e) => e.textContent));
        check(
            shown.length === 0,
            `overview-events shows ${shown} although the token was refused`);
        await screenshot(tk, 'token-dialog');
        // The right token: the dialog closes and the overview loads.
        await typeInto(tk, tid('token-input'), TOKEN);
        await tk.click(tid('token-ok'));
        await waitSelector(
            tk, 'body[data-ready]',
            'the console to start with the right token (body[data-ready])');
        await waitFor(
            tk, `overview-events >= ${facts.events} with the token`,
            (n) => Number(document
                              .querySelector('[data-testid="overview-events"]')
                              ?.getAttribute('data-value')) >= n,
            facts.events);
        check(!(await tokenDialogOpen(tk)), 'the token dialog stays open');
        const events =
            Number(await attr(tk, tid('overview-events'), 'data-value'));
        const now = await serverEvents(TOKEN_URL, TOKEN);
        check(
            events >= facts.events && events <= now,
            `overview-events is ${events}: expected ${
                facts.events} seeded, plus the ticker's (at most ${now} now)`);
        check(
            (await text(tk, tid('overview-backend'))) === facts.backend,
            `overview-backend is not ${facts.backend} with the token`);
        // The token goes on with every request: another page loads.
        await nav(tk, 'streams', 'Streams');
        await waitSelector(tk, tid('stream-row'), 'stream rows with the token');
        check(!(await tokenDialogOpen(tk)), 'the token dialog came back');
        await noToken(tk, 'token server');
        await noSecret(tk, 'token server');
        await noErrorBanner(tk, 'token server');
        await tk.close();
        pages.splice(pages.findIndex((p) => p.page === tk), 1);
        await ro.bringToFront();
      });
}

// ---------------------------------------------------------------- failover

if (FAILOVER_URL) {
  step('failover: the overview shows the mode and the journal', async () => {
    const fo = await openConsole(browser, FAILOVER_URL, 'failover server');
    await fo.bringToFront();
    await waitFor(
        fo, 'overview-failover to say "primary, 0 in the journal"',
        () => document.querySelector('[data-testid="overview-failover"]')
                  ?.textContent.trim() === 'primary, 0 in the journal');
    check(
        !(await fo.$eval(tid('overview-failover'), (e) => e.className))
             .includes('warn'),
        'overview-failover is marked as a warning in primary mode');
    await waitFor(
        fo, `overview-events >= ${facts.events} through the failover store`,
        (n) => Number(document.querySelector('[data-testid="overview-events"]')
                          ?.getAttribute('data-value')) >= n,
        facts.events);
    const cons = await (await fetch(FAILOVER_URL + '/api/console')).json();
    check(
        cons.failover && cons.failover.mode === 'primary' &&
            cons.failover.journal_pending === 0,
        `/api/console's failover is ${JSON.stringify(cons.failover)}`);
    await noWriteButtons(fo, 'failover overview');
    await noErrorBanner(fo, 'failover overview');
    await noSecret(fo, 'failover overview');
    await screenshot(fo, 'overview-failover');
    await fo.close();
    pages.splice(pages.findIndex((p) => p.page === fo), 1);
    await ro.bringToFront();
  });
}

if (FALLBACK_URL) {
  step('failover: the overview shows fallback mode', async () => {
    const fb = await openConsole(browser, FALLBACK_URL, 'fallback server');
    await fb.bringToFront();
    // The primary is down: the store's counts cannot be read, the mode and
    // the journal can, and the overview must still show them.
    await waitFor(
        fb,
        'overview-failover to say "fallback, 1 in the journal", as a warning',
        () => {
          const e = document.querySelector('[data-testid="overview-failover"]');
          return e?.textContent.trim() === 'fallback, 1 in the journal' &&
              e.className.includes('warn');
        });
    await noSecret(fb, 'fallback overview');
    await screenshot(fb, 'overview-fallback');
    await fb.close();
    pages.splice(pages.findIndex((p) => p.page === fb), 1);
    await ro.bringToFront();
  });
}

// ---------------------------------------------------------------- writes

step('writes: dead letter retry and resolve', async () => {
  await rw.bringToFront();
  check(
      (await text(rw, tid('mode'))) === 'writes allowed',
      'the writes server\'s header does not say writes allowed');
  const dl = facts.dead_letter;
  await rw.goto(`${WRITES_URL}/#/dead-letters`);
  const row = `${tid('dlq-row')}[data-event-id="${dl.event_id}"]`;
  await waitSelector(
      rw, `${row}[data-status="parked"]`,
      `the parked dead letter ${dl.event_id}`);
  await rw.click(`${row} ${tid('dlq-show')}`);
  await waitSelector(
      rw,
      `${tid('dlq-detail')}[data-event-id="${dl.event_id}"] ${
          tid('dlq-retry')}`,
      'the Retry button in the detail');
  // Cancel changes nothing.
  await rw.click(tid('dlq-retry'));
  await waitSelector(
      rw, tid('confirm-dialog') + '[open]', 'the confirmation dialog');
  await rw.click(tid('confirm-cancel'));
  await waitFor(
      rw, 'the dialog to close on Cancel',
      () => !document.querySelector('[data-testid="confirm-dialog"]').open);
  check(
      (await attr(rw, row, 'data-status')) === 'parked',
      'Cancel changed the dead letter\'s status');
  // Retry, confirmed.
  await rw.click(tid('dlq-retry'));
  await confirmAs(rw, OPERATOR);
  await waitSelector(
      rw, `${row}[data-status="retrying"]`,
      'the dead letter\'s row to say retrying');
  await waitSelector(
      rw, `${tid('dlq-detail')}[data-status="retrying"]`,
      'the detail to say retrying');
  // The read-only server sees the change too (same store).
  await ro.bringToFront();
  await ro.goto(`${READONLY_URL}/#/dead-letters`);
  await waitSelector(
      ro, `${row}[data-status="retrying"]`,
      'the read-only page to show retrying');
  await rw.bringToFront();
  // Resolve, confirmed: the operator's name is remembered and recorded.
  await rw.click(tid('dlq-resolve'));
  await waitSelector(
      rw, tid('confirm-dialog') + '[open]', 'the confirmation dialog');
  const remembered = await rw.$eval(tid('confirm-operator'), (e) => e.value);
  check(
      remembered === OPERATOR,
      `the dialog did not remember the operator (has "${remembered}")`);
  await rw.click(tid('confirm-ok'));
  await waitSelector(
      rw, `${tid('dlq-detail')}[data-status="resolved"]`,
      'the detail to say resolved');
  const detail = await text(rw, tid('dlq-detail'));
  check(
      detail.includes(OPERATOR),
      'the resolved dead letter does not show who resolved it');
  await noErrorBanner(rw, 'dead letters (writes)');
  await screenshot(rw, 'dead-letters-writes');
});

step('writes: outbox retry', async () => {
  await rw.goto(`${WRITES_URL}/#/outbox?status=failed`);
  const row = `${tid('outbox-row')}[data-id="${facts.outbox_failed_id}"]`;
  await waitSelector(
      rw, `${row}[data-status="failed"] ${tid('outbox-retry')}`,
      'the failed message\'s Retry button');
  await screenshot(rw, 'outbox-writes');
  await rw.click(`${row} ${tid('outbox-retry')}`);
  await confirmAs(rw, OPERATOR);
  await rw.select(tid('outbox-status'), 'pending');
  await waitSelector(
      rw, `${row}[data-status="pending"]`,
      `message ${facts.outbox_failed_id} pending again`);
  await waitFor(
      rw, `outbox-pending = ${facts.outbox_pending + 1} and outbox-failed = 0`,
      (p) => Number(document.querySelector('[data-testid="outbox-pending"]')
                        ?.getAttribute('data-value')) === p &&
          Number(document.querySelector('[data-testid="outbox-failed"]')
                     ?.getAttribute('data-value')) === 0,
      facts.outbox_pending + 1);
  await noErrorBanner(rw, 'outbox (writes)');
});

step('writes: projection rebuild', async () => {
  // The running projection: a rebuild is for it (unlike a reset, it is
  // not refused while a runner holds the lease).
  const running =
      `${tid('projection-row')}[data-projection="${facts.running_projection}"]`;
  const rebuild = `${running} ${tid('projection-rebuild')}`;
  // A page's heading takes the focus once the page has loaded, unless the
  // focus is in the page already: the lag chart's request (the page's
  // last) is held until the Rebuild button has the focus, and the focus
  // stays there once the chart is drawn.
  let held = null;
  let heldNow;
  const heldOnce = new Promise((resolve) => {
    heldNow = resolve;
  });
  const hold = (request) => {
    if (held === null && request.url().includes('/api/activity')) {
      held = request;
      heldNow();
    } else {
      request.continue();
    }
  };
  await rw.setRequestInterception(true);
  rw.on('request', hold);
  try {
    await rw.goto(`${WRITES_URL}/#/projections`);
    await waitSelector(rw, rebuild, 'the Rebuild button');
    let timer;
    await Promise.race([
      heldOnce,
      new Promise((resolve) => {
        timer = setTimeout(resolve, TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    check(held !== null, 'the projections page asked no /api/activity');
    await rw.focus(rebuild);
    await held.continue();
    await waitSelector(rw, tid('lag-chart'), 'the lag chart');
  } finally {
    rw.off('request', hold);
    await rw.setRequestInterception(false);
  }
  check(
      await rw.evaluate(
          (sel) => document.activeElement === document.querySelector(sel),
          rebuild),
      'the page took the focus from the Rebuild button when it finished loading');
  check(
      (await attr(rw, running, 'data-rebuild')) === 'none',
      `${facts.running_projection} has a rebuild pending before any was asked`);
  // By keyboard: Enter on the focused button opens the confirmation,
  // which says what happens; Escape cancels and gives the focus back.
  await rw.focus(rebuild);
  await rw.keyboard.press('Enter');
  await waitSelector(
      rw, tid('confirm-dialog') + '[open]', 'the confirmation dialog');
  const said = await text(rw, '#confirm-text');
  check(
      /clears the read model/.test(said) && /replays every event/.test(said),
      `the confirmation does not say that the runner clears the read model and replays everything: "${
          said}"`);
  check(
      (await text(rw, '#confirm-title')) === 'Rebuild projection?',
      'the confirmation\'s title is not "Rebuild projection?"');
  await rw.keyboard.press('Escape');
  await waitFor(
      rw, 'the dialog to close on Escape',
      () => !document.querySelector('[data-testid="confirm-dialog"]').open);
  await waitFor(
      rw, 'the focus back on the Rebuild button',
      (sel) => document.activeElement === document.querySelector(sel), rebuild);
  check(
      (await attr(rw, running, 'data-rebuild')) === 'none',
      'Escape requested a rebuild');
  // Requested, confirmed: the row shows who asked and when.
  await rw.keyboard.press('Enter');
  await confirmAs(rw, OPERATOR);
  await waitSelector(
      rw,
      `${running}[data-rebuild="pending"] ${tid('projection-rebuild-pending')}`,
      'the pending rebuild in the running projection\'s row');
  const note =
      await text(rw, `${running} ${tid('projection-rebuild-pending')}`);
  check(
      note.startsWith(`rebuild requested by ${OPERATOR} at `) &&
          /\d{4}-\d\d-\d\d \d\d:\d\d/.test(note),
      `the pending rebuild says "${note}", expected "rebuild requested by ${
          OPERATOR} at <time>"`);
  await waitFor(
      rw, 'a notice that the rebuild was requested',
      () => /Rebuild of .* requested/.test(
          document.querySelector('[data-testid="notice"]')?.textContent || ''));
  // The lease is still the runner's: a rebuild does not take it.
  check(
      (await text(rw, `${running} ${tid('projection-lease')}`)) !== 'none',
      `${facts.running_projection}'s lease holder is gone after the request`);
  // The API says the same.
  const cps = await (await fetch(WRITES_URL + '/api/checkpoints')).json();
  const cp =
      cps.checkpoints.find((c) => c.projection === facts.running_projection);
  check(
      cp && cp.rebuild_requested_by === OPERATOR && cp.rebuild_requested_at,
      `/api/checkpoints shows ${JSON.stringify(cp)}`);
  const idle =
      `${tid('projection-row')}[data-projection="${facts.projection}"]`;
  check(
      (await attr(rw, idle, 'data-rebuild')) === 'none',
      `${facts.projection} shows a rebuild nobody asked for`);
  await noErrorBanner(rw, 'projections (rebuild)');
  await screenshot(rw, 'projections-rebuild');
  // The read-only server shows the pending state, without the button.
  await ro.bringToFront();
  await ro.goto(`${READONLY_URL}/#/projections`);
  await waitSelector(
      ro,
      `${running}[data-rebuild="pending"] ${tid('projection-rebuild-pending')}`,
      'the pending rebuild on the read-only page');
  await noWriteButtons(ro, 'projections with a rebuild pending');
  await rw.bringToFront();
});

step('writes: projection reset', async () => {
  await rw.goto(`${WRITES_URL}/#/projections`);
  const running =
      `${tid('projection-row')}[data-projection="${facts.running_projection}"]`;
  await waitSelector(
      rw, `${running} ${tid('projection-reset')}`, 'the Reset button');
  await screenshot(rw, 'projections-writes');
  // The running projection's lease is held: the reset is refused.
  await rw.click(`${running} ${tid('projection-reset')}`);
  await confirmAs(rw, OPERATOR);
  await waitFor(rw, 'an error saying the projection is running', () => {
    const b = document.querySelector('[data-testid="error-banner"]');
    return b && !b.hidden && /running|lease/i.test(b.textContent);
  });
  check(
      (await rw.$(running)) !== null,
      `${facts.running_projection} disappeared although its reset was refused`);
  // The idle one is reset: its checkpoint is gone.
  const idle =
      `${tid('projection-row')}[data-projection="${facts.projection}"]`;
  await rw.click(`${idle} ${tid('projection-reset')}`);
  await confirmAs(rw, OPERATOR);
  await waitFor(
      rw, `${facts.projection} gone after its reset`,
      (sel) => document.querySelector(sel) === null, idle);
});

// ---------------------------------------------------------------- run

async function main() {
  console.log(`console.test.mjs: ${BACKEND}, read-only ${
      READONLY_URL}, writes ${WRITES_URL}, output ${OUT}`);
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: path.join(OUT, 'chromium-profile'),
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
    timeout: TIMEOUT_MS * 2,
  });
  let failed = null;
  let current = null;
  try {
    ro = await openConsole(browser, READONLY_URL, 'read-only server');
    rw = await openConsole(browser, WRITES_URL, 'writes server');
    // A page in a background tab gets no animation frames, which clicks
    // and screenshots wait for: each step brings its page to the front.
    await ro.bringToFront();
    const only =
        process.env.CONSOLE_ONLY ? new RegExp(process.env.CONSOLE_ONLY) : null;
    for (const s of steps.filter((x) => !only || only.test(x.name))) {
      current = s;
      const started = Date.now();
      await s.fn();
      const problems = pages.flatMap((p) => p.page.problems || []);
      check(problems.length === 0, problems.join('\n'));
      console.log(`ok   ${s.name} (${Date.now() - started} ms)`);
    }
  } catch (e) {
    failed = e;
    const name = current ? current.name : 'start';
    console.error(
        `FAIL ${name}: ${e instanceof StepFailure ? e.message : e.stack || e}`);
    for (const {page: p, label} of pages) {
      try {
        await p.bringToFront();
        const file = path.join(
            OUT,
            `failure-${name.replace(/[^a-z0-9]+/gi, '_')}-${
                label.replace(/[^a-z0-9]+/gi, '_')}.png`);
        await p.screenshot({path: file, fullPage: true});
        console.error(`     screenshot of the page: ${file} (at ${p.url()})`);
      } catch (ignored) {
        /* the page may be gone */
      }
    }
  } finally {
    await browser.close();
  }
  if (failed) process.exit(1);
  console.log(`console.test.mjs: all ${steps.length} steps passed`);
}

main().catch((e) => {
  console.error(`console.test.mjs: ${e.stack || e}`);
  process.exit(1);
});
