// The eventstore web console: a single-page front-end over the JSON API of
// `eventstore serve` (docs/http-api.md, docs/console.md).
//
// One file, no framework, no dependency: the server builds it into the
// binary and its Content-Security-Policy allows only this script, so there
// is no inline script, style or event handler anywhere. Every text that
// comes from the store goes into the page through textContent or an
// attribute, never through innerHTML.
//
// Pages are hash routes (#/, #/streams, #/stream/<name>, #/tail,
// #/projections, #/dead-letters, #/outbox); each render gets a context
// whose alive() turns false when the user navigates away, which ends its
// refresh timers and long-polls. data-testid attributes are the hooks of
// the browser tests (tests/browser/console.test.mjs): keep them stable.
'use strict';

(function() {
const TOKEN_KEY = 'eventstore.token';
const OPERATOR_KEY = 'eventstore.operator';
const SVG_NS = 'http://www.w3.org/2000/svg';
const PAGE = 20;       // events per page on the stream page
const LIST_PAGE = 50;  // rows per page in the other lists
const TAIL_MAX_ROWS = 200;

const state = {
  console: null,  // the answer of /api/console
  route: null,
  generation: 0,
  aborts: new Set(),
};

// ---------------------------------------------------------------- DOM

// el("div", {class: "x", testid: "y"}, "text", child, ...): attributes
// go through setAttribute, strings become text nodes.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

function setAttrs(node, attrs) {
  if (!attrs) return;
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'testid')
      node.setAttribute('data-testid', value);
    else if (key === 'on') {
      for (const [ev, fn] of Object.entries(value))
        node.addEventListener(ev, fn);
    } else
      node.setAttribute(key, value === true ? '' : String(value));
  }
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(
        child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

function fmtNumber(n) {
  if (n === null || n === undefined) return '–';
  return typeof n === 'number' ? n.toLocaleString('en-US') : String(n);
}

function fmtBytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return (i === 0 ? String(v) : v.toFixed(1)) + ' ' + units[i];
}

// "2026-05-01T12:00:00.000001Z" -> "2026-05-01 12:00:00.000Z" (UTC).
function fmtTime(t) {
  if (!t) return '–';
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d{1,3})?\d*Z$/.exec(t);
  return m ? m[1] + ' ' + m[2] + (m[3] || '') + 'Z' : t;
}

function timeEl(t) {
  return el('time', {datetime: t || null, title: t || null}, fmtTime(t));
}

function fmtSeconds(s) {
  if (s === null || s === undefined) return '–';
  if (s < 120) return s + ' s';
  if (s < 7200) return Math.round(s / 60) + ' min';
  if (s < 172800) return Math.round(s / 3600) + ' h';
  return Math.round(s / 86400) + ' d';
}

// The bytes of a base64 text as a hex dump: offset, 16 bytes a line.
function hexDump(b64) {
  let bin;
  try {
    bin = atob(b64 || '');
  } catch (e) {
    return '(not base64: ' + e.message + ')';
  }
  if (bin.length === 0) return '(no bytes)';
  const lines = [];
  for (let off = 0; off < bin.length; off += 16) {
    const hex = [];
    let ascii = '';
    for (let i = off; i < Math.min(off + 16, bin.length); i++) {
      const c = bin.charCodeAt(i);
      hex.push(c.toString(16).padStart(2, '0'));
      ascii += c >= 0x20 && c < 0x7f ? bin[i] : '.';
    }
    lines.push(
        off.toString(16).padStart(8, '0') + '  ' + hex.join(' ').padEnd(47) +
        '  ' + ascii);
  }
  return lines.join('\n');
}

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

// ---------------------------------------------------------------- banners

function showError(message) {
  document.getElementById('error-text').textContent = message;
  document.getElementById('error-banner').hidden = false;
}

function clearError() {
  document.getElementById('error-banner').hidden = true;
}

let noticeTimer = null;
function showNotice(message) {
  const n = document.getElementById('notice');
  n.textContent = message;
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    n.hidden = true;
  }, 8000);
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

let tokenPrompt = null;  // one dialog for every request that got a 401

function askToken(wrong) {
  if (tokenPrompt) return tokenPrompt;
  const dialog = document.getElementById('token-dialog');
  const input = document.getElementById('token-input');
  const error = document.getElementById('token-error');
  error.hidden = !wrong;
  error.textContent = wrong ? 'The server refused that token.' : '';
  input.value = '';
  tokenPrompt = new Promise((resolve) => {
    const form = document.getElementById('token-form');
    const onSubmit = (ev) => {
      ev.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      form.removeEventListener('submit', onSubmit);
      dialog.removeEventListener('cancel', onCancel);
      sessionStorage.setItem(TOKEN_KEY, token);
      input.value = '';  // the token lives in sessionStorage only
      dialog.close();
      tokenPrompt = null;
      resolve(token);
    };
    // Escape would leave the page without a token: keep the dialog.
    const onCancel = (ev) => ev.preventDefault();
    form.addEventListener('submit', onSubmit);
    dialog.addEventListener('cancel', onCancel);
  });
  if (!dialog.open) dialog.showModal();
  input.focus();
  return tokenPrompt;
}

// fetch + JSON + the token: a 401 asks for the token and tries again.
async function api(path, options) {
  const opts = options || {};
  for (let attempt = 0;; attempt++) {
    const headers =
        Object.assign({Accept: 'application/json'}, opts.headers || {});
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = 'Bearer ' + token;
    const controller = new AbortController();
    state.aborts.add(controller);
    if (opts.signal) {
      if (opts.signal.aborted) controller.abort();
      opts.signal.addEventListener('abort', () => controller.abort());
    }
    let response;
    try {
      response = await fetch(path, {
        method: opts.method || 'GET',
        headers,
        body: opts.body,
        signal: controller.signal,
        cache: 'no-store',
        credentials: 'same-origin',
      });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, 'cannot reach the server: ' + e.message, null);
    } finally {
      state.aborts.delete(controller);
    }
    if (response.status === 401 && attempt < 5) {
      await askToken(Boolean(token));
      continue;
    }
    let body = null;
    const text = await response.text();
    try {
      body = text ? JSON.parse(text) : null;
    } catch (e) {
      body = null;
    }
    if (!response.ok) {
      const what =
          body && body.error ? body.error : text || response.statusText;
      throw new ApiError(
          response.status, 'HTTP ' + response.status + ': ' + what, body);
    }
    return body;
  }
}

function pathPart(s) {
  return encodeURIComponent(s);
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === '') continue;
    if (Array.isArray(v))
      v.forEach((x) => q.append(k, x));
    else
      q.append(k, String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

// A write: asks for confirmation (with the operator's name), then POSTs
// operator=NAME with the CSRF header. Resolves to the answer, or null
// when the user cancelled. opts: {title, ok}: the dialog's heading and
// its confirm button's text (default "Confirm").
async function write(path, what, opts) {
  const operator = await confirmAction(what, opts);
  if (operator === null) return null;
  const body = new URLSearchParams({operator}).toString();
  return api(path, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded',
      'X-Eventstore-Csrf': state.console.csrf_token || '',
    },
    body,
  });
}

function confirmAction(what, opts) {
  const dialog = document.getElementById('confirm-dialog');
  const form = document.getElementById('confirm-form');
  const input = document.getElementById('confirm-operator');
  const cancel = document.getElementById('confirm-cancel');
  document.getElementById('confirm-title').textContent =
      (opts && opts.title) || 'Confirm';
  document.getElementById('confirm-ok').textContent =
      (opts && opts.ok) || 'Confirm';
  document.getElementById('confirm-text').textContent = what;
  input.value = localStorage.getItem(OPERATOR_KEY) || '';
  return new Promise((resolve) => {
    const done = (value) => {
      form.removeEventListener('submit', onSubmit);
      cancel.removeEventListener('click', onCancel);
      dialog.removeEventListener('cancel', onCancel);
      if (dialog.open) dialog.close();
      resolve(value);
    };
    const onSubmit = (ev) => {
      ev.preventDefault();
      const name = input.value.trim();
      if (!name) {
        input.focus();
        return;
      }
      localStorage.setItem(OPERATOR_KEY, name);
      done(name);
    };
    const onCancel = (ev) => {
      ev.preventDefault();
      done(null);
    };
    form.addEventListener('submit', onSubmit);
    cancel.addEventListener('click', onCancel);
    dialog.addEventListener('cancel', onCancel);
    dialog.showModal();
    if (input.value)
      document.getElementById('confirm-ok').focus();
    else
      input.focus();
  });
}

function writesAllowed() {
  return Boolean(state.console && state.console.allow_writes);
}

// ---------------------------------------------------------------- routing

function parseRoute() {
  let hash = location.hash.replace(/^#/, '');
  if (!hash.startsWith('/')) hash = '/' + hash;
  const qi = hash.indexOf('?');
  const path = qi >= 0 ? hash.slice(0, qi) : hash;
  const params = new URLSearchParams(qi >= 0 ? hash.slice(qi + 1) : '');
  if (path === '/' || path === '') return {page: 'overview', params};
  if (path.startsWith('/stream/')) {
    let name = path.slice('/stream/'.length);
    try {
      name = decodeURIComponent(name);
    } catch (e) {
      /* shown as given */
    }
    return {page: 'stream', name, params};
  }
  const page = path.slice(1);
  if (PAGES[page]) return {page, params};
  return {page: 'not-found', path, params};
}

// Replaces the hash's query without a new render (filters, paging).
function setHashQuery(base, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== null && v !== undefined && v !== '') q.set(k, v);
  const s = q.toString();
  history.replaceState(null, '', '#' + base + (s ? '?' + s : ''));
}

function streamHref(name) {
  return '#/stream/' + encodeURIComponent(name);
}

function render(focusMain) {
  state.generation++;
  const generation = state.generation;
  for (const c of state.aborts) c.abort();
  state.aborts.clear();
  clearError();
  const route = parseRoute();
  state.route = route;
  const navRoute = route.page === 'stream' ? 'streams' : route.page;
  for (const a of document.querySelectorAll('nav a[data-route]')) {
    if (a.getAttribute('data-route') === navRoute)
      a.setAttribute('aria-current', 'page');
    else
      a.removeAttribute('aria-current');
  }
  const main = document.getElementById('main');
  clear(main);
  const timers = [];
  const ctx = {
    route,
    alive: () => generation === state.generation,
    // every(ms, fn): fn now is the page's business; then every ms while
    // the page is shown and no dialog is open.
    every(ms, fn) {
      const tick = async () => {
        if (!ctx.alive()) return;
        if (!document.querySelector('dialog[open]') && !document.hidden) {
          try {
            await fn();
          } catch (e) {
            ctx.fail(e);
          }
        }
        if (ctx.alive()) timers.push(setTimeout(tick, ms));
      };
      timers.push(setTimeout(tick, ms));
    },
    fail(e) {
      if (!ctx.alive() || (e && e.name === 'AbortError')) return;
      showError(e && e.message ? e.message : String(e));
    },
  };
  const stop = () => timers.forEach(clearTimeout);
  const check = setInterval(() => {
    if (!ctx.alive()) {
      stop();
      clearInterval(check);
    }
  }, 1000);
  const page = PAGES[route.page] || renderNotFound;
  Promise.resolve()
      .then(() => page(main, ctx))
      .catch((e) => ctx.fail(e))
      .then(() => {
        // Not when the focus is in the page already: its controls appear
        // before the page's last request is answered, and a user (or a
        // test) may have moved to one of them meanwhile.
        if (focusMain && ctx.alive() &&
            !main.contains(document.activeElement)) {
          const h1 = main.querySelector('h1');
          if (h1) {
            h1.setAttribute('tabindex', '-1');
            h1.focus();
          }
        }
      });
}

// ---------------------------------------------------------------- widgets

function table(testid, headings) {
  const tbody = el('tbody');
  const t =
      el('table', {testid},
         el('thead', null,
            el('tr', null, headings.map((h) => el('th', {scope: 'col'}, h)))),
         tbody);
  return {wrap: el('div', {class: 'table-wrap'}, t), table: t, tbody};
}

// Keeps a tbody's rows in step with items without rebuilding rows that
// stay (so a button keeps its focus across a refresh): create(item)
// returns {tr, update(item)}.
function syncRows(tbody, items, keyOf, create) {
  if (!tbody._rows) tbody._rows = new Map();
  const rows = tbody._rows;
  const seen = new Set();
  let previous = null;
  for (const item of items) {
    const key = keyOf(item);
    seen.add(key);
    let row = rows.get(key);
    if (!row) {
      row = create(item);
      rows.set(key, row);
    }
    row.update(item);
    const want = previous ? previous.nextSibling : tbody.firstChild;
    if (want !== row.tr) tbody.insertBefore(row.tr, want);
    previous = row.tr;
  }
  for (const [key, row] of rows) {
    if (!seen.has(key)) {
      row.tr.remove();
      rows.delete(key);
    }
  }
}

function emptyRow(tbody, columns, text) {
  if (tbody.children.length === 0) {
    tbody.append(
        el('tr', {class: 'empty'}, el('td', {colspan: columns}, text)));
  }
}

function clearEmpty(tbody) {
  for (const tr of tbody.querySelectorAll('tr.empty')) tr.remove();
}

function defList(pairs) {
  return el(
      'dl', {class: 'facts'},
      pairs.map(
          ([label, value, testid]) => el(
              'div', null, el('dt', null, label), el('dd', {testid}, value))));
}

function button(text, attrs, onClick) {
  const b = el('button', Object.assign({type: 'button'}, attrs || {}), text);
  if (onClick) b.addEventListener('click', onClick);
  return b;
}

// A line chart in SVG. series: [{name, points: [[t(ms), value], ...]}].
// Drawn at the width of its box in pixels (redrawn on each refresh), so
// its text stays readable on a phone.
function lineChart(testid, title, series, opts) {
  const W = Math.max(280, Math.round(opts.width || 640));
  const H = W < 500 ? 160 : 200;
  const L = 48;
  const R = 8;
  const T = 10;
  const B = 26;
  const all = series.flatMap((s) => s.points);
  const chart = svg('svg', {
    testid,
    class: 'chart',
    viewBox: `0 0 ${W} ${H}`,
    role: 'img',
    'aria-label': title,
    width: W,
    height: H,
  });
  chart.append(svg('title', null, title));
  const now = Date.now();
  const span = opts.spanMs;
  const t0 = now - span;
  let max = 0;
  for (const [, v] of all) max = Math.max(max, v);
  max = niceMax(max);
  const x = (t) => L + ((t - t0) / span) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  // grid and labels
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    chart.append(
        svg('line', {class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v)}));
    chart.append(svg(
        'text', {class: 'axis', x: L - 6, y: y(v) + 4, 'text-anchor': 'end'},
        shortNumber(v)));
  }
  const minutes = Math.round(span / 60000);
  const step = W < 500 ? Math.max(1, Math.round(minutes / 2)) :
                         Math.max(1, Math.round(minutes / 5));
  for (let i = 0; i <= minutes; i += step) {
    const t = now - i * 60000;
    chart.append(
        svg('text', {
          class: 'axis',
          x: x(t),
          y: H - 8,
          'text-anchor': i === 0 ? 'end' : 'middle'
        },
            i === 0 ? 'now' : '−' + i + ' min'));
  }
  series.forEach((s, index) => {
    const pts = s.points.filter(([t]) => t >= t0);
    if (pts.length === 0) return;
    const d = pts.map(
                     ([t, v], i) => (i ? 'L' : 'M') + x(t).toFixed(1) + ' ' +
                         y(v).toFixed(1))
                  .join(' ');
    chart.append(
        svg('path', {class: 'series s' + (index % 6), d},
            svg('title', null, s.name)));
  });
  if (all.length === 0) {
    chart.append(svg(
        'text', {class: 'axis', x: W / 2, y: H / 2, 'text-anchor': 'middle'},
        opts.empty || 'no samples yet'));
  }
  return chart;
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10])
    if (v <= m * p) return m * p;
  return 10 * p;
}

function shortNumber(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(v % 1e6 ? 1 : 0) + 'M';
  if (v >= 1e3) return (v / 1e3).toFixed(v % 1e3 ? 1 : 0) + 'k';
  return String(Math.round(v * 100) / 100);
}

function legend(names) {
  return el(
      'ul', {class: 'legend'},
      names.map(
          (n, i) => el(
              'li', null,
              el('span', {class: 'swatch s' + (i % 6), 'aria-hidden': 'true'}),
              n)));
}

// ---------------------------------------------------------------- events

// One event as the JSON API renders it (http-api.md "Events").
function renderEvent(ev, opts) {
  const o = opts || {};
  const node = el('article', {
    class: 'event' + (ev.damage ? ' damaged' : ''),
    testid: o.testid || 'event-row',
    'data-version': ev.version,
    'data-position': ev.position,
  });
  const head = el(
      'header', null,
      el('span', {class: 'version', title: 'version'}, '#' + ev.version), ' ',
      el('strong', {testid: 'event-type', class: 'type'},
         ev.type || '(no type)'),
      o.showStream ?
          [' in ', el('a', {href: streamHref(ev.stream)}, ev.stream)] :
          null);
  node.append(head);
  node.append(
      el('p', {class: 'meta-line'}, 'position ',
         el('code', {testid: 'event-position'}, ev.position), ' · ',
         timeEl(ev.recorded_at),
         ev.id ? [' · id ', el('code', null, ev.id)] : null));
  if (ev.damage) {
    node.append(
        el('p', {class: 'badge-line'},
           el('span', {class: 'badge bad'}, 'damaged'), ' ', ev.damage));
  }
  if (ev.payload_state === 'encrypted') {
    node.append(el(
        'p', {class: 'badge-line', testid: 'event-encrypted'},
        el('span', {class: 'badge warn'}, 'encrypted'),
        ' The payload is encrypted; start serve with --master-key-file to see it.'));
  } else if (ev.payload_state === 'forgotten') {
    node.append(
        el('p', {class: 'badge-line', testid: 'event-forgotten'},
           el('span', {class: 'badge warn'}, 'forgotten'),
           ' Its data subject was forgotten: the payload is gone for good.'));
  } else if (ev.payload_state === 'decrypted') {
    node.append(el(
        'p', {class: 'badge-line'}, el('span', {class: 'badge'}, 'decrypted')));
  }
  // Data and metadata side by side on a wide screen (console.css).
  const body = el('div', {class: 'event-body'});
  if (ev.data !== undefined) {
    body.append(
        el('div', null, el('h3', {class: 'label'}, 'Data'),
           el('pre', {class: 'json', testid: 'event-json'}, pretty(ev.data))));
  } else if (ev.data_base64 !== undefined) {
    body.append(
        el('div', null, el('h3', {class: 'label'}, 'Data (hex)'),
           ev.data_error ?
               el('p', {class: 'muted'}, 'Shown as bytes: ', ev.data_error) :
               null,
           el('pre', {class: 'hex', testid: 'event-hex'},
              hexDump(ev.data_base64))));
  }
  if (ev.metadata !== undefined && ev.metadata !== null) {
    const empty = typeof ev.metadata === 'object' &&
        Object.keys(ev.metadata).length === 0;
    if (!empty) {
      body.append(
          el('div', null, el('h3', {class: 'label'}, 'Metadata'),
             el('pre', {class: 'json', testid: 'event-metadata'},
                pretty(ev.metadata))));
    }
  }
  if (body.firstChild) node.append(body);
  return node;
}

// ---------------------------------------------------------------- overview

async function renderOverview(main, ctx) {
  main.append(el('h1', null, 'Overview'));
  const facts =
      el('section', {'aria-labelledby': 'store-h'},
         el('h2', {id: 'store-h'}, 'Store'));
  const rate =
      el('section', {'aria-labelledby': 'rate-h'},
         el('h2', {id: 'rate-h'}, 'Appended events per second'));
  const rateBox = el('div', {class: 'chart-box'});
  rate.append(rateBox);
  const proj =
      el('section', {'aria-labelledby': 'proj-h'},
         el('h2', {id: 'proj-h'},
            el('a', {href: '#/projections'}, 'Projections')));
  const projTable = table(
      'overview-projections',
      ['Projection', 'Checkpoint', 'Events behind', 'Seconds behind']);
  proj.append(projTable.wrap);
  const backlog = el('section', {class: 'two'});
  const dlqBox =
      el('div', null,
         el('h2', null, el('a', {href: '#/dead-letters'}, 'Dead letters')));
  const dlqValue =
      el('p', {testid: 'overview-dead-letters', class: 'big'}, '…');
  dlqBox.append(dlqValue);
  const outboxBox =
      el('div', null, el('h2', null, el('a', {href: '#/outbox'}, 'Outbox')));
  const outboxValue = el('p', {testid: 'overview-outbox', class: 'big'}, '…');
  outboxBox.append(outboxValue);
  backlog.append(dlqBox, outboxBox);
  main.append(facts, rate, proj, backlog);

  const v = {};
  const fields = [
    ['Store', 'overview-url'],
    ['Backend', 'overview-backend'],
    ['Schema version', 'overview-schema'],
    ['Events', 'overview-events'],
    ['Streams', 'overview-streams'],
    ['Head position', 'overview-head'],
    ['Size', 'overview-size'],
    ['Failover', 'overview-failover'],
  ];
  facts.append(defList(fields.map(([label, testid]) => {
    v[testid] = el('span', {testid}, '…');
    return [label, v[testid]];
  })));

  function showFailover(cons) {
    const f = cons.failover;
    v['overview-failover'].textContent = f ? f.mode +
            (f.journal_pending !== undefined ?
                 ', ' + fmtNumber(f.journal_pending) + ' in the journal' :
                 '') :
                                             'not a failover store';
    v['overview-failover'].className =
        f && f.mode !== 'primary' ? 'badge warn' : '';
  }

  async function refreshInfo() {
    // Settled one by one: when a failover store's primary is down,
    // /api/info fails while /api/console still gives the mode, which is
    // when it matters most.
    const [infoResult, consResult] =
        await Promise.allSettled([api('/api/info'), api('/api/console')]);
    if (!ctx.alive()) return;
    if (consResult.status === 'fulfilled') {
      state.console = consResult.value;
      updateMode();
      showFailover(consResult.value);
    }
    if (infoResult.status === 'rejected') throw infoResult.reason;
    if (consResult.status === 'rejected') throw consResult.reason;
    const info = infoResult.value;
    v['overview-url'].textContent = info.location;
    v['overview-backend'].textContent = info.backend;
    v['overview-schema'].textContent = info.schema_version +
        (info.code_schema_version !== undefined &&
                 info.code_schema_version !== info.schema_version ?
             ' (this build: ' + info.code_schema_version + ')' :
             '');
    setCount(v['overview-events'], info.events);
    setCount(v['overview-streams'], info.streams);
    v['overview-head'].textContent =
        info.head === null || info.head === undefined ? '– (empty)' : info.head;
    v['overview-size'].textContent = fmtBytes(info.size_bytes);
    v['overview-size'].title = fmtNumber(info.size_bytes) + ' bytes';
  }

  async function refreshActivity() {
    const act = await api('/api/activity');
    if (!ctx.alive()) return;
    const interval = act.interval_seconds || 1;
    // The server samples often (every interval_seconds); the chart shows
    // the mean rate over buckets of at least 5 s, which reads better over
    // ten minutes than a spike per sample.
    const bucketMs = Math.max(5000, interval * 1000);
    const buckets = new Map();
    for (const sample of act.appended || []) {
      const key = Math.floor(Date.parse(sample.at) / bucketMs);
      const b = buckets.get(key) || {events: 0, samples: 0};
      b.events += sample.events;
      b.samples += 1;
      buckets.set(key, b);
    }
    const points = [...buckets.entries()].map(
        ([key, b]) =>
            [Math.min((key + 1) * bucketMs, Date.now()),
             b.events / (b.samples * interval)]);
    const last = points.length ? points[points.length - 1][1] : 0;
    clear(rateBox);
    append(rateBox, [
      lineChart(
          'rate-chart', 'Appended events per second, last 10 minutes',
          [{name: 'events/s', points}], {
            spanMs: 10 * 60 * 1000,
            width: rateBox.clientWidth - 16,
            empty: 'sampling…',
          }),
      el('p', {class: 'muted'},
         'Now: ', el('strong', {testid: 'rate-last'}, shortNumber(last)),
         ' events/s (mean over ', String(bucketMs / 1000), ' s; sampled every ',
         String(interval), ' s)'),
      // The sampler's last failure (the database away), if any.
      act.appended_error ? el('p', {class: 'error-text', testid: 'rate-error'},
                              'Sampling failed: ', act.appended_error) :
                           null,
    ]);
  }

  async function refreshBacklog() {
    const [cps, dl, ob] = await Promise.all([
      api('/api/checkpoints'),
      api('/api/dead-letters' + query({status: 'unresolved', limit: 1000})),
      api('/api/outbox'),
    ]);
    if (!ctx.alive()) return;
    clearEmpty(projTable.tbody);
    syncRows(projTable.tbody, cps.checkpoints, (c) => c.projection, (c) => {
      const rebuildBadge =
          el('span', {class: 'badge warn', hidden: ''}, 'rebuild requested');
      const cells = [
        el('td', null, el('a', {href: '#/projections'}, c.projection), ' ',
           rebuildBadge),
        el('td'), el('td'), el('td')
      ];
      const tr = el('tr', {'data-projection': c.projection}, cells);
      return {
        tr,
        update(c2) {
          rebuildBadge.hidden = !c2.rebuild_requested_at;
          rebuildBadge.title = c2.rebuild_requested_at ?
              'by ' + c2.rebuild_requested_by + ' at ' +
                  fmtTime(c2.rebuild_requested_at) :
              '';
          cells[1].textContent = c2.position;
          cells[2].textContent = fmtNumber(c2.events_behind);
          cells[2].setAttribute('data-value', c2.events_behind);
          cells[3].textContent = fmtSeconds(c2.seconds_behind);
        },
      };
    });
    emptyRow(
        projTable.tbody, 4, 'No projection has a checkpoint in this store.');
    const items = dl.dead_letters;
    const parked = items.filter((d) => d.status === 'parked').length;
    const retrying = items.filter((d) => d.status === 'retrying').length;
    const more = dl.next_cursor ? '+' : '';
    dlqValue.textContent = items.length + more + ' unresolved (' + parked +
        ' parked, ' + retrying + ' retrying)';
    dlqValue.setAttribute('data-value', items.length);
    outboxValue.textContent = fmtNumber(ob.pending) + ' pending, ' +
        fmtNumber(ob.failed) + ' failed (given up), ' +
        fmtNumber(ob.published) + ' published' +
        (ob.oldest_pending_age_seconds ? '; oldest pending ' +
                 fmtSeconds(ob.oldest_pending_age_seconds) + ' old' :
                                         '');
    outboxValue.setAttribute('data-pending', ob.pending);
    outboxValue.setAttribute('data-failed', ob.failed);
  }

  await Promise.all([refreshInfo(), refreshActivity(), refreshBacklog()].map(
      (p) => p.catch((e) => ctx.fail(e))));
  ctx.every(2000, refreshInfo);
  ctx.every(
      1000 *
          Math.max(
              1,
              (state.console && state.console.activity_interval_seconds) || 1),
      refreshActivity);
  ctx.every(5000, refreshBacklog);
}

function setCount(node, n) {
  node.textContent = fmtNumber(n);
  node.setAttribute('data-value', n);
}

// ---------------------------------------------------------------- streams

async function renderStreams(main, ctx) {
  const params = ctx.route.params;
  main.append(el('h1', null, 'Streams'));
  const input = el('input', {
    id: 'streams-prefix',
    testid: 'streams-prefix',
    type: 'search',
    placeholder: 'order-',
    autocomplete: 'off',
    spellcheck: 'false',
  });
  input.value = params.get('prefix') || '';
  main.append(el('form', {class: 'filters', role: 'search'}, el('label', { for: 'streams-prefix'
                 }, 'Name starts with'), input));
  const t = table(
      'streams-table', ['Stream', 'Version', 'First event', 'Last event']);
  const prev = button('← Previous page', {testid: 'streams-prev'});
  const next = button('Next page →', {testid: 'streams-next'});
  const pager = el('div', {class: 'pager'}, prev, next);
  main.append(t.wrap, pager);
  // cursors[i] is the `after` of page i (page 0: none).
  let cursors = [params.get('after') || ''];
  let nextAfter = null;
  let seq = 0;

  async function load() {
    const mine = ++seq;
    const after = cursors[cursors.length - 1];
    const prefix = input.value;
    setHashQuery('/streams', {prefix, after});
    const r =
        await api('/api/streams' + query({prefix, after, limit: LIST_PAGE}));
    if (!ctx.alive() || mine !== seq) return;
    clear(t.tbody);
    for (const s of r.streams) {
      t.tbody.append(
          el('tr', {testid: 'stream-row', 'data-stream': s.stream},
             el('td', null, el('a', {href: streamHref(s.stream)}, s.stream)),
             el('td', {class: 'num'}, fmtNumber(s.version)),
             el('td', null, timeEl(s.first_recorded_at)),
             el('td', null, timeEl(s.last_recorded_at))));
    }
    emptyRow(
        t.tbody, 4,
        prefix ? 'No stream starts with that.' : 'The store has no stream.');
    nextAfter = r.next_after;
    next.disabled = !nextAfter;
    prev.disabled = cursors.length <= 1 && !cursors[0];
  }

  let debounce = null;
  input.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      cursors = [''];
      load().catch(ctx.fail);
    }, 250);
  });
  input.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clearTimeout(debounce);
    cursors = [''];
    load().catch(ctx.fail);
  });
  next.addEventListener('click', () => {
    if (!nextAfter) return;
    cursors.push(nextAfter);
    load().catch(ctx.fail);
  });
  prev.addEventListener('click', () => {
    if (cursors.length > 1)
      cursors.pop();
    else
      cursors = [''];
    load().catch(ctx.fail);
  });
  await load();
}

// ---------------------------------------------------------------- stream

async function renderStream(main, ctx) {
  const name = ctx.route.name;
  const params = ctx.route.params;
  let direction =
      params.get('direction') === 'backward' ? 'backward' : 'forward';
  let from = params.get('from') ? Number(params.get('from')) : null;
  main.append(
      el('p', {class: 'crumbs'}, el('a', {href: '#/streams'}, 'Streams'),
         ' / '),
      el('h1', {testid: 'stream-name', class: 'stream-name'}, name));
  const versionEl = el('strong', {testid: 'stream-version'}, '…');
  const dirButton =
      button('', {testid: 'stream-direction', 'aria-pressed': 'false'});
  const older = button('← Older', {testid: 'stream-older'});
  const newer = button('Newer →', {testid: 'stream-newer'});
  const range = el('span', {class: 'muted', testid: 'stream-range'});
  main.append(
      el('p', null, 'Version ', versionEl, ' · ', range),
      el('div', {class: 'pager'}, dirButton, older, newer));
  const list = el('div', {class: 'events', 'aria-live': 'polite'});
  main.append(list);
  let version = 0;
  let shown = [];

  async function load() {
    setHashQuery('/stream/' + encodeURIComponent(name), {
      direction: direction === 'backward' ? 'backward' : '',
      from: from || ''
    });
    dirButton.textContent = direction === 'forward' ?
        'Oldest first (switch to newest first)' :
        'Newest first (switch to oldest first)';
    dirButton.setAttribute(
        'aria-pressed', direction === 'backward' ? 'true' : 'false');
    let r;
    try {
      r = await api(
          '/api/streams/' + pathPart(name) + '/events' +
          query({from, limit: PAGE, direction}));
    } catch (e) {
      if (e.status === 404) {
        clear(list);
        list.append(
            el('p', {class: 'muted', testid: 'stream-empty'},
               'This stream has no events.'));
        versionEl.textContent = '–';
        older.disabled = newer.disabled = true;
        return;
      }
      throw e;
    }
    if (!ctx.alive()) return;
    version = r.version;
    versionEl.textContent = String(r.version);
    shown = r.events.map((e) => e.version);
    clear(list);
    for (const ev of r.events) list.append(renderEvent(ev));
    if (shown.length === 0)
      list.append(el('p', {class: 'muted'}, 'No events in this range.'));
    const lo = shown.length ? Math.min(...shown) : 1;
    const hi = shown.length ? Math.max(...shown) : 0;
    range.textContent = shown.length ? 'showing versions ' + lo + '–' + hi : '';
    older.disabled = lo <= 1;
    newer.disabled = hi >= version;
  }

  dirButton.addEventListener('click', () => {
    direction = direction === 'forward' ? 'backward' : 'forward';
    from = null;
    load().catch(ctx.fail);
  });
  older.addEventListener('click', () => {
    const lo = Math.min(...shown);
    if (direction === 'forward')
      from = Math.max(1, lo - PAGE);
    else
      from = lo - 1;
    load().catch(ctx.fail);
  });
  newer.addEventListener('click', () => {
    const hi = Math.max(...shown);
    if (direction === 'forward')
      from = hi + 1;
    else
      from = Math.min(version, hi + PAGE);
    load().catch(ctx.fail);
  });
  await load();
}

// ---------------------------------------------------------------- tail

async function renderTail(main, ctx) {
  const params = ctx.route.params;
  main.append(el('h1', null, 'Live tail'));
  const prefix = el('input', {
    id: 'tail-prefix',
    testid: 'tail-prefix',
    type: 'search',
    placeholder: 'order-',
    autocomplete: 'off',
    spellcheck: 'false'
  });
  const type = el('input', {
    id: 'tail-type',
    testid: 'tail-type',
    type: 'search',
    placeholder: 'shop.v1.OrderPlaced',
    autocomplete: 'off',
    spellcheck: 'false'
  });
  prefix.value = params.get('prefix') || '';
  type.value = params.get('type') || '';
  const pause =
      button('Pause', {testid: 'tail-pause', 'aria-pressed': 'false'});
  const status =
      el('span', {class: 'muted', testid: 'tail-status', role: 'status'},
         'starting…');
  main.append(el('form', {class: 'filters', role: 'search'}, el('label', { for: 'tail-prefix'
                 }, 'Stream prefix'), prefix, el('label', { for: 'tail-type'
                 }, 'Event type'), type, pause, status));
  main.append(
      el('p', {class: 'muted'},
         'Newest first. Several types: separate them with commas.'));
  const t = table(
      'tail-table',
      ['Position', 'Recorded', 'Stream', 'Version', 'Type', 'Data']);
  main.append(t.wrap);

  let paused = false;
  let run = 0;  // bumps on every filter change or pause: ends the loop
  let nextFrom = null;
  let controller = null;

  function types() {
    return type.value.split(',').map((s) => s.trim()).filter(Boolean);
  }

  function addRows(events) {
    clearEmpty(t.tbody);
    for (const ev of events) {
      const summary = ev.data !== undefined ? JSON.stringify(ev.data) :
          ev.payload_state                  ? '(' + ev.payload_state + ')' :
          ev.damage                         ? '(damaged)' :
                                              '(bytes)';
      const details =
          el('details', null,
             el('summary', null,
                summary.length > 80 ? summary.slice(0, 80) + '…' : summary),
             renderEvent(ev, {testid: 'tail-event'}));
      t.tbody.insertBefore(
          el('tr', {
            testid: 'tail-row',
            'data-position': ev.position,
            'data-stream': ev.stream,
            'data-type': ev.type
          },
             el('td', null, el('code', null, ev.position)),
             el('td', null, timeEl(ev.recorded_at)),
             el('td', null, el('a', {href: streamHref(ev.stream)}, ev.stream)),
             el('td', {class: 'num'}, String(ev.version)),
             el('td', null, ev.type), el('td', {class: 'data-cell'}, details)),
          t.tbody.firstChild);
    }
    while (t.tbody.children.length > TAIL_MAX_ROWS) t.tbody.lastChild.remove();
  }

  async function loop(myRun) {
    const alive = () => ctx.alive() && myRun === run && !paused;
    let failures = 0;
    while (alive()) {
      controller = new AbortController();
      const q = {prefix: prefix.value, type: types()};
      if (nextFrom === null)
        q.last = 20;
      else {
        q.from = nextFrom;
        q.wait = 25;
      }
      try {
        status.textContent =
            nextFrom === null ? 'loading…' : 'waiting for events…';
        const r =
            await api('/api/events' + query(q), {signal: controller.signal});
        if (!alive()) return;
        failures = 0;
        addRows(r.events);
        if (r.next_from !== null && r.next_from !== undefined)
          nextFrom = r.next_from;
        else if (nextFrom === null)
          nextFrom = r.head || '0';
        emptyRow(t.tbody, 6, 'No events yet.');
        clearError();
      } catch (e) {
        if (!alive() || e.name === 'AbortError') return;
        failures++;
        // 503: too many long-polls at once, or the database is away.
        if (e.status !== 503 || failures > 3) ctx.fail(e);
        status.textContent = 'retrying…';
        await new Promise(
            (res) => setTimeout(res, Math.min(10000, 1000 * failures)));
      }
    }
  }

  function restart(resetPosition) {
    run++;
    if (controller) controller.abort();
    if (resetPosition) {
      nextFrom = null;
      clear(t.tbody);
    }
    setHashQuery('/tail', {prefix: prefix.value, type: type.value});
    if (!paused) loop(run);
  }

  let debounce = null;
  for (const input of [prefix, type]) {
    input.addEventListener('input', () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => restart(true), 300);
    });
  }
  prefix.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clearTimeout(debounce);
    restart(true);
  });
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', paused ? 'true' : 'false');
    if (paused) {
      run++;
      if (controller) controller.abort();
      status.textContent = 'paused';
    } else
      restart(false);
  });
  restart(true);
}

// ---------------------------------------------------------------- projections

async function renderProjections(main, ctx) {
  main.append(el('h1', null, 'Projections'));
  main.append(el(
      'p', {class: 'muted'},
      'Lag counts every event after the checkpoint (the store does not record a projection\'s filter). The lease holder is the runner processing it now.' +
          (writesAllowed() ?
               ' Reset removes a stopped projection\'s checkpoint; Rebuild asks its runner to clear the read model and replay every event.' :
               '')));
  const headings = [
    'Projection', 'Checkpoint', 'Events handled', 'Lag', 'Lease holder',
    'Dead letters', 'Updated'
  ];
  if (writesAllowed()) headings.push('Actions');
  const t = table('projections-table', headings);
  main.append(t.wrap);
  const chartSection =
      el('section', {'aria-labelledby': 'lag-h'},
         el('h2', {id: 'lag-h'}, 'Lag (events behind)'));
  const chartBox = el('div', {class: 'chart-box'});
  chartSection.append(chartBox);
  main.append(chartSection);

  async function refresh() {
    const r = await api('/api/checkpoints');
    if (!ctx.alive()) return;
    clearEmpty(t.tbody);
    syncRows(t.tbody, r.checkpoints, (c) => c.projection, createRow);
    emptyRow(
        t.tbody, headings.length,
        'No projection has a checkpoint in this store.');
  }

  function createRow(c) {
    const name = c.projection;
    const cells = {
      checkpoint: el('td', {testid: 'projection-checkpoint'}),
      handled: el('td', {testid: 'projection-handled', class: 'num'}),
      lag: el('td', {testid: 'projection-lag', class: 'num'}),
      lease: el('td', {testid: 'projection-lease'}),
      dlq: el('td'),
      updated: el('td'),
    };
    // A rebuild requested and not yet started by a runner: shown under the
    // name, on every server (it is the store's state, not a button).
    const rebuildNote = el('span', {
      class: 'rebuild-note',
      testid: 'projection-rebuild-pending',
      hidden: ''
    });
    const tr =
        el('tr', {testid: 'projection-row', 'data-projection': name},
           el('th', {scope: 'row'}, el('span', null, name), rebuildNote),
           cells.checkpoint, cells.handled, cells.lag, cells.lease, cells.dlq,
           cells.updated);
    if (writesAllowed()) {
      const reset = button(
          'Reset', {
            testid: 'projection-reset',
            class: 'danger',
            'aria-label': 'Reset ' + name
          },
          async () => {
            try {
              const res = await write(
                  '/api/projections/' + pathPart(name) + '/reset',
                  'Reset projection “' + name +
                      '”: its checkpoint is removed, so a runner started later replays the log from the start. ' +
                      'The console cannot clear the application\'s read model; it refuses while a runner holds the lease.');
              if (res) {
                showNotice('Projection ' + name + ' was reset.');
                await refresh();
              }
            } catch (e) {
              ctx.fail(e);
            }
            reset.focus();
          });
      const rebuild = button(
          'Rebuild', {
            testid: 'projection-rebuild',
            class: 'danger',
            'aria-label': 'Rebuild ' + name
          },
          async () => {
            try {
              const res = await write(
                  '/api/projections/' + pathPart(name) + '/rebuild',
                  'Rebuild projection “' + name +
                      '”: its runner clears the read model (the projection\'s Reset) and replays every event from the start of the log. ' +
                      'A running runner starts it between two batches; when none runs, the next runner to start does. ' +
                      'Until the replay catches up, the read model is incomplete.',
                  {title: 'Rebuild projection?', ok: 'Request rebuild'});
              if (res) {
                showNotice(
                    res.rebuild_requested_at ? 'Rebuild of ' + name +
                            ' requested by ' + res.rebuild_requested_by +
                            ' at ' + fmtTime(res.rebuild_requested_at) + '.' :
                                               'Rebuild of ' + name +
                            ' requested; a runner has started it.');
                await refresh();
              }
            } catch (e) {
              ctx.fail(e);
            }
            rebuild.focus();
          });
      tr.append(el('td', {class: 'actions'}, reset, ' ', rebuild));
    }
    return {
      tr,
      update(c2) {
        const pending = Boolean(c2.rebuild_requested_at);
        tr.setAttribute('data-rebuild', pending ? 'pending' : 'none');
        rebuildNote.hidden = !pending;
        clear(rebuildNote);
        if (pending) {
          append(rebuildNote, [
            'rebuild requested by ' + (c2.rebuild_requested_by || '?') + ' at ',
            timeEl(c2.rebuild_requested_at),
          ]);
          rebuildNote.setAttribute('data-by', c2.rebuild_requested_by || '');
        }
        cells.checkpoint.textContent = c2.position;
        cells.handled.textContent = fmtNumber(c2.events_processed);
        cells.handled.setAttribute('data-value', c2.events_processed);
        cells.lag.textContent = fmtNumber(c2.events_behind) + ' events · ' +
            fmtSeconds(c2.seconds_behind);
        cells.lag.setAttribute('data-value', c2.events_behind);
        cells.lag.title = 'counted over ' + (c2.lag_counts || 'all events');
        const h = c2.lease_holder;
        cells.lease.textContent =
            h ? 'pid ' + h.pid + (h.detail ? ' · ' + h.detail : '') : 'none';
        cells.lease.setAttribute('data-pid', h ? h.pid : '');
        cells.dlq.textContent =
            (c2.parked || 0) + ' parked, ' + (c2.retrying || 0) + ' retrying';
        clear(cells.updated);
        cells.updated.append(timeEl(c2.updated_at));
      },
    };
  }

  async function refreshChart() {
    const act = await api('/api/activity');
    if (!ctx.alive()) return;
    const series = (act.projections ||
                    []).map((p) => ({
                              name: p.projection,
                              points: p.samples.map(
                                  (s) => [Date.parse(s.at), s.events_behind]),
                            }));
    const interval = act.lag_interval_seconds || 5;
    clear(chartBox);
    append(chartBox, [
      lineChart(
          'lag-chart', 'Events behind per projection, last 10 minutes', series,
          {
            spanMs: 10 * 60 * 1000,
            width: chartBox.clientWidth - 16,
            empty: 'sampling every ' + interval + ' s…'
          }),
      legend(series.map((s) => s.name)),
      act.lag_error ? el('p', {class: 'error-text', testid: 'lag-error'},
                         'Sampling failed: ', act.lag_error) :
                      null,
    ]);
  }

  await Promise.all([refresh(), refreshChart()].map((p) => p.catch(ctx.fail)));
  ctx.every(3000, refresh);
  ctx.every(5000, refreshChart);
}

// ---------------------------------------------------------------- dead letters

async function renderDeadLetters(main, ctx) {
  const params = ctx.route.params;
  main.append(el('h1', null, 'Dead letters'));
  const projSelect =
      el('select', {id: 'dlq-projection', testid: 'dlq-projection'},
         el('option', {value: ''}, 'all projections'));
  const statusSelect = el('select', {id: 'dlq-status', testid: 'dlq-status'}, [
    'unresolved', 'parked', 'retrying', 'resolved', 'all'
  ].map((s) => el('option', {value: s}, s)));
  statusSelect.value = params.get('status') || 'unresolved';
  main.append(el('form', {class: 'filters'}, el('label', { for: 'dlq-projection'
                 }, 'Projection'), projSelect, el('label', { for: 'dlq-status'
                 }, 'Status'), statusSelect));
  const t = table('dlq-table', [
    'Projection', 'Event', 'Type', 'Status', 'Failures', 'Last failed', 'Error',
    ''
  ]);
  const more = button('Next page →', {testid: 'dlq-next'});
  main.append(t.wrap, el('div', {class: 'pager'}, more));
  const detail = el('section', {
    testid: 'dlq-detail',
    class: 'detail',
    'aria-live': 'polite',
    hidden: true
  });
  main.append(detail);

  let selected = params.get('event') ?
      {projection: params.get('of') || '', event_id: params.get('event')} :
      null;
  let cursor = null;
  let nextCursor = null;

  // The projection list: names with a checkpoint, plus the one asked for.
  const known = new Set();
  try {
    const cps = await api('/api/checkpoints');
    cps.checkpoints.forEach((c) => known.add(c.projection));
  } catch (e) {
    ctx.fail(e);
  }
  if (params.get('projection')) known.add(params.get('projection'));
  function addProjectionOption(name) {
    if ([...projSelect.options].some((o) => o.value === name)) return;
    projSelect.append(el('option', {value: name}, name));
  }
  [...known].sort().forEach(addProjectionOption);
  projSelect.value = params.get('projection') || '';

  function saveQuery() {
    setHashQuery('/dead-letters', {
      projection: projSelect.value,
      status: statusSelect.value === 'unresolved' ? '' : statusSelect.value,
      of: selected ? selected.projection : '',
      event: selected ? selected.event_id : '',
    });
  }

  async function loadList() {
    saveQuery();
    const r = await api('/api/dead-letters' + query({
                          projection: projSelect.value,
                          status: statusSelect.value,
                          limit: LIST_PAGE,
                          cursor
                        }));
    if (!ctx.alive()) return;
    clearEmpty(t.tbody);
    syncRows(
        t.tbody, r.dead_letters, (d) => d.projection + '\u0000' + d.event_id,
        createRow);
    emptyRow(t.tbody, 8, 'No dead letter with that status.');
    for (const d of r.dead_letters) addProjectionOption(d.projection);
    nextCursor = r.next_cursor;
    more.hidden = !nextCursor && !cursor;
    more.textContent = cursor ? '↺ First page' : 'Next page →';
    more.disabled = !nextCursor && !cursor;
  }

  function createRow(d) {
    const status = el('td');
    const failures = el('td', {class: 'num'});
    const last = el('td');
    const error = el('td', {class: 'error-cell'});
    const show = button('Show', {
      testid: 'dlq-show',
      'aria-label': 'Show dead letter of ' + d.stream + ' #' + d.version
    });
    const tr =
        el('tr', {
          testid: 'dlq-row',
          'data-event-id': d.event_id,
          'data-projection': d.projection
        },
           el('td', null, d.projection),
           el('td', null, el('a', {href: streamHref(d.stream)}, d.stream),
              ' #' + d.version, el('br'),
              el('code', {class: 'small-text'}, d.event_id)),
           el('td', null, d.event_type), status, failures, last, error,
           el('td', null, show));
    show.addEventListener('click', () => {
      selected = {projection: d.projection, event_id: d.event_id};
      saveQuery();
      loadDetail(true).catch(ctx.fail);
    });
    return {
      tr,
      update(d2) {
        tr.setAttribute('data-status', d2.status);
        status.textContent = d2.status;
        status.className = 'status-' + d2.status;
        failures.textContent = String(d2.failure_count);
        clear(last);
        last.append(timeEl(d2.last_failed_at));
        error.textContent =
            d2.error.length > 120 ? d2.error.slice(0, 120) + '…' : d2.error;
        error.title = d2.error;
        if (selected && selected.projection === d2.projection &&
            selected.event_id === d2.event_id)
          tr.classList.add('selected');
        else
          tr.classList.remove('selected');
      },
    };
  }

  async function loadDetail(focus) {
    if (!selected) {
      detail.hidden = true;
      return;
    }
    const sel = selected;
    const r = await api(
        '/api/dead-letters/' + pathPart(sel.projection) + '/' +
        pathPart(sel.event_id));
    if (!ctx.alive() || sel !== selected) return;
    const d = r.dead_letter;
    clear(detail);
    detail.hidden = false;
    detail.setAttribute('data-event-id', d.event_id);
    detail.setAttribute('data-status', d.status);
    const heading =
        el('h2', {tabindex: '-1'}, 'Dead letter: ', d.stream, ' #' + d.version);
    detail.append(
        heading, defList([
          ['Projection', d.projection, 'dlq-detail-projection'],
          [
            'Status', el('span', {class: 'status-' + d.status}, d.status),
            'dlq-detail-status'
          ],
          ['Event id', el('code', null, d.event_id)],
          ['Position', d.position],
          ['Type', d.event_type],
          ['Failures', String(d.failure_count)],
          ['First failed', timeEl(d.first_failed_at)],
          ['Last failed', timeEl(d.last_failed_at)],
          [
            'Resolved by',
            d.resolved_by ? d.resolved_by + ' at ' + fmtTime(d.resolved_at) :
                            '–'
          ],
        ]),
        el('h3', {class: 'label'}, 'Error'),
        el('pre', {class: 'error-text', testid: 'dlq-error'}, d.error));
    if (writesAllowed()) {
      const what = 'dead letter of ' + d.stream + ' #' + d.version +
          ' in projection “' + d.projection + '”';
      const retry = button(
          'Retry', {testid: 'dlq-retry'},
          () => act(
              '/retry',
              'Retry the ' + what +
                  ': the projection\'s runner handles the event again on its next pass.',
              'marked for retry'));
      const resolve = button(
          'Resolve', {testid: 'dlq-resolve', class: 'danger'},
          () =>
              act('/resolve',
                  'Resolve the ' + what +
                      ' without handling it again (your name is recorded).',
                  'resolved'));
      retry.disabled = d.status === 'retrying' || d.status === 'resolved';
      resolve.disabled = d.status === 'resolved';
      detail.append(el('div', {class: 'buttons'}, retry, resolve));
    }
    detail.append(el('h3', {class: 'label'}, 'Event'));
    if (r.event)
      detail.append(
          renderEvent(r.event, {testid: 'dlq-event', showStream: true}));
    else
      detail.append(
          el('p', {class: 'muted'}, 'The event is no longer stored.'));
    if (focus) heading.focus();
  }

  async function act(suffix, what, done) {
    const sel = selected;
    try {
      const r = await write(
          '/api/dead-letters/' + pathPart(sel.projection) + '/' +
              pathPart(sel.event_id) + suffix,
          what);
      if (!r) return;
      showNotice('Dead letter ' + done + '.');
      await loadList();
      await loadDetail(true);
    } catch (e) {
      ctx.fail(e);
    }
  }

  projSelect.addEventListener('change', () => {
    cursor = null;
    loadList().catch(ctx.fail);
  });
  statusSelect.addEventListener('change', () => {
    cursor = null;
    loadList().catch(ctx.fail);
  });
  more.addEventListener('click', () => {
    cursor = cursor ? null : nextCursor;
    clear(t.tbody);
    t.tbody._rows = null;
    loadList().catch(ctx.fail);
  });
  await loadList();
  if (selected) await loadDetail(false);
  ctx.every(5000, loadList);
}

// ---------------------------------------------------------------- outbox

async function renderOutbox(main, ctx) {
  const params = ctx.route.params;
  main.append(el('h1', null, 'Outbox'));
  const counts = {
    pending: el('span', {testid: 'outbox-pending'}, '…'),
    failed: el('span', {testid: 'outbox-failed'}, '…'),
    published: el('span', {testid: 'outbox-published'}, '…'),
    oldest: el('span', {testid: 'outbox-oldest'}, '…'),
  };
  main.append(defList([
    ['Pending', counts.pending],
    ['Failed (given up after the publisher\'s attempts)', counts.failed],
    ['Published', counts.published],
    ['Oldest pending', counts.oldest],
  ]));
  const statusSelect = el(
      'select', {id: 'outbox-status', testid: 'outbox-status'},
      ['pending', 'failed', 'published', 'all'].map(
          (s) => el(
              'option', {value: s}, s === 'failed' ? 'failed (given up)' : s)));
  statusSelect.value = params.get('status') || 'pending';
  main.append(el('form', {class: 'filters'}, el('label', { for: 'outbox-status'
                 }, 'Show'), statusSelect));
  const headings = [
    'Id', 'Destination', 'Key', 'Status', 'Attempts', 'Created', 'Last error',
    'Payload'
  ];
  if (writesAllowed()) headings.push('');
  const t = table('outbox-table', headings);
  const prev = button('↺ First page', {testid: 'outbox-first'});
  const next = button('Next page →', {testid: 'outbox-next'});
  main.append(t.wrap, el('div', {class: 'pager'}, prev, next));
  let cursor = null;
  let nextCursor = null;

  async function loadCounts() {
    const s = await api('/api/outbox');
    if (!ctx.alive()) return;
    setCount(counts.pending, s.pending);
    setCount(counts.failed, s.failed);
    setCount(counts.published, s.published);
    counts.oldest.textContent = s.oldest_pending ? fmtTime(s.oldest_pending) +
            ' (' + fmtSeconds(s.oldest_pending_age_seconds) + ' old)' :
                                                   '–';
  }

  async function loadList() {
    setHashQuery(
        '/outbox',
        {status: statusSelect.value === 'pending' ? '' : statusSelect.value});
    const r = await api(
        '/api/outbox/messages' +
        query({status: statusSelect.value, limit: LIST_PAGE, cursor}));
    if (!ctx.alive()) return;
    clearEmpty(t.tbody);
    syncRows(t.tbody, r.messages, (m) => String(m.id), createRow);
    emptyRow(
        t.tbody, headings.length, 'No ' + statusSelect.value + ' message.');
    nextCursor = r.next_cursor;
    next.disabled = !nextCursor;
    prev.disabled = !cursor;
  }

  function createRow(m) {
    const status = el('td');
    const attempts = el('td', {class: 'num'});
    const error = el('td', {class: 'error-cell'});
    const action = el('td');
    const payload =
        el('details', null, el('summary', null, 'bytes'),
           el('pre', {class: 'hex'}, hexDump(m.payload_base64)),
           m.headers && Object.keys(m.headers).length ?
               el('pre', {class: 'json'}, 'headers ' + pretty(m.headers)) :
               null);
    const tr = el(
        'tr', {testid: 'outbox-row', 'data-id': m.id},
        el('td', {class: 'num'}, String(m.id)), el('td', null, m.destination),
        el('td', null, m.key), status, attempts,
        el('td', null, timeEl(m.created_at)), error, el('td', null, payload));
    if (writesAllowed()) tr.append(action);
    let current = m;
    const row = {
      tr,
      update(m2) {
        current = m2;
        tr.setAttribute('data-status', m2.status);
        status.textContent = m2.status +
            (m2.status === 'published' && m2.published_at ?
                 ' ' + fmtTime(m2.published_at) :
                 '');
        status.className = 'status-' + m2.status;
        attempts.textContent = String(m2.attempts);
        error.textContent = m2.last_error || '';
        if (!writesAllowed()) return;
        const has = action.querySelector('button');
        if (m2.status === 'failed' && !has) {
          const b = button(
              'Retry',
              {testid: 'outbox-retry', 'aria-label': 'Retry message ' + m2.id},
              async () => {
                try {
                  const r = await write(
                      '/api/outbox/messages/' + current.id + '/retry',
                      'Retry outbox message ' + current.id + ' to “' +
                          current.destination +
                          '”: it goes back to pending and the publisher sends it again.');
                  if (!r) return;
                  showNotice('Message ' + current.id + ' is pending again.');
                  if (r.message) row.update(r.message);
                  await loadCounts();
                } catch (e) {
                  ctx.fail(e);
                }
              });
          action.append(b);
        } else if (m2.status !== 'failed' && has) {
          clear(action);
        }
      },
    };
    return row;
  }

  statusSelect.addEventListener('change', () => {
    cursor = null;
    clear(t.tbody);
    t.tbody._rows = null;
    loadList().catch(ctx.fail);
  });
  next.addEventListener('click', () => {
    if (!nextCursor) return;
    cursor = nextCursor;
    clear(t.tbody);
    t.tbody._rows = null;
    loadList().catch(ctx.fail);
  });
  prev.addEventListener('click', () => {
    cursor = null;
    clear(t.tbody);
    t.tbody._rows = null;
    loadList().catch(ctx.fail);
  });
  await Promise.all([loadCounts(), loadList()]);
  ctx.every(5000, async () => {
    await loadCounts();
    await loadList();
  });
}

function renderNotFound(main, ctx) {
  main.append(
      el('h1', null, 'Not found'),
      el('p', null, 'No page at ', el('code', null, ctx.route.path || ''), '. ',
         el('a', {href: '#/'}, 'Go to the overview'), '.'));
}

const PAGES = {
  overview: renderOverview,
  streams: renderStreams,
  stream: renderStream,
  tail: renderTail,
  projections: renderProjections,
  'dead-letters': renderDeadLetters,
  outbox: renderOutbox,
  'not-found': renderNotFound,
};

// ---------------------------------------------------------------- start

function updateMode() {
  const mode = document.getElementById('mode');
  const writes = writesAllowed();
  mode.textContent = writes ? 'writes allowed' : 'read-only';
  mode.className = 'badge' + (writes ? ' warn' : '');
  mode.title = writes ?
      'started with --allow-writes: retry, resolve, reset and rebuild are available' :
      'started without --allow-writes: nothing here changes the store';
}

async function start() {
  document.getElementById('error-close').addEventListener('click', clearError);
  window.addEventListener('hashchange', () => render(true));
  // The page's own settings come first: every page needs allow_writes.
  for (;;) {
    try {
      state.console = await api('/api/console');
      break;
    } catch (e) {
      showError(e.message + ' (retrying)');
      await new Promise((res) => setTimeout(res, 2000));
    }
  }
  clearError();
  updateMode();
  document.body.setAttribute('data-ready', 'true');
  render(false);
}

if (document.readyState === 'loading')
  document.addEventListener('DOMContentLoaded', start);
else
  start();
})();
