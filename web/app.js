// Vigil web console: a single page over API v1, with no framework and no build step.
//
// Every value from the API reaches the page through textContent or attributes set one by one
// (the `h` helper); nothing is parsed as HTML. The data-flow diagram is shown as an <img> of
// the SVG endpoint, so text inside it can never run script in this page. The session cookie is
// HttpOnly; the CSRF token lives only in this page's memory and is asked for again on reload.
'use strict';

const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'];
const STATUSES = ['open', 'confirmed', 'in_progress', 'mitigated', 'risk_accepted', 'false_positive'];
// Statuses triage may set: a risk is accepted by a decision, with its owner, approver and expiry.
const TRIAGE_STATUSES = STATUSES.filter((s) => s !== 'risk_accepted');
const FRAMEWORKS = ['cwe', 'capec', 'attack', 'owasp_2021', 'owasp_2025', 'nist_csf', 'pci_dss', 'hipaa', 'soc2'];
const session = { me: null, csrf: null };
let keyHandler = null;

// ---------------------------------------------------------------------------------------------
// DOM and formatting helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function words(s) {
  return String(s || '').replace(/_/g, ' ');
}

function when(at) {
  if (!at) return '—';
  const date = new Date(at);
  if (Number.isNaN(date.getTime())) return String(at);
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

function severityBadge(severity) {
  const s = SEVERITIES.includes(severity) ? severity : 'info';
  return h('span', { class: `sev sev-${s}` }, s);
}

function statusBadge(status) {
  return h('span', { class: `status status-${status}` }, words(status));
}

function select(id, label, options, value, extra) {
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    h('select', { id, name: id, ...extra },
      options.map(([v, text]) => h('option', { value: v, selected: v === (value || '') }, text))));
}

function input(id, label, value, extra) {
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    h('input', { id, name: id, value: value || '', ...extra }));
}

function emptyState(text) {
  return h('div', { class: 'empty' }, text);
}

function errorBox(err) {
  const code = err && err.code ? ` (${err.code})` : '';
  return h('div', { class: 'error-box', role: 'alert' }, `${err.message || err}${code}`);
}

function flash(text, isError) {
  const box = document.getElementById('flash');
  box.textContent = text;
  box.className = isError ? 'flash error' : 'flash';
  box.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

function page(title, ...children) {
  const main = document.getElementById('main');
  main.replaceChildren(...children.flat().filter(Boolean));
  document.title = `${title} · Vigil`;
  return main;
}

// ---------------------------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body, options) {
  const opts = options || {};
  const headers = { Accept: 'application/json' };
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = opts.contentType || 'application/json';
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  if (method !== 'GET' && session.csrf) headers['X-CSRF-Token'] = session.csrf;
  const res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  if (res.status === 204) return null;
  const type = res.headers.get('content-type') || '';
  const data = type.includes('json') ? await res.json().catch(() => null) : await res.text();
  if (!res.ok) {
    const detail = data && data.error ? data.error : {};
    const err = new ApiError(res.status, detail.code, detail.message || `The server answered ${res.status}.`);
    if (res.status === 401 && !opts.quiet) showLogin('Your session has ended. Log in again.');
    throw err;
  }
  return data;
}

/** GET that answers null when the server has no such route (an older or smaller server). */
async function optional(path) {
  try {
    return await api('GET', path);
  } catch (err) {
    if (err.status === 404 || err.status === 405) return null;
    throw err;
  }
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

// ---------------------------------------------------------------------------------------------
// Login and session

function showLogin(message) {
  session.me = null;
  session.csrf = null;
  document.getElementById('topbar').hidden = true;
  setKeys(null);
  const err = h('div', { id: 'login-error', role: 'alert', class: message ? 'error-box' : '', hidden: !message }, message || '');
  const token = h('input', {
    id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true,
    spellcheck: 'false', placeholder: 'vgl_…', 'aria-describedby': 'token-help',
  });
  const form = h('form', { class: 'panel', 'aria-labelledby': 'login-title' },
    h('div', { class: 'brand' }, h('img', { src: '/assets/favicon.svg', alt: '', width: 28, height: 28 }), ' Vigil'),
    h('h1', { id: 'login-title' }, 'Sign in to the console'),
    h('p', { class: 'muted', id: 'token-help' },
      'Paste an API token. vigil serve prints the first admin token once; vigil token create makes more.'),
    err,
    h('div', { class: 'field' }, h('label', { for: 'token' }, 'API token'), token),
    h('button', { type: 'submit', id: 'login-submit' }, 'Sign in'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    err.hidden = true;
    try {
      const info = await api('POST', '/api/v1/session', { token: token.value.trim() }, { quiet: true });
      token.value = '';
      startSession(info);
      if (!location.hash || location.hash === '#/login') location.hash = '#/findings';
      else route();
    } catch (e) {
      err.textContent = e.status === 401 ? 'That token is not valid or has been revoked.' : e.message;
      err.className = 'error-box';
      err.hidden = false;
      token.focus();
    }
  });
  page('Sign in', h('div', { class: 'login' }, form));
  token.focus();
}

function startSession(info) {
  session.me = info;
  session.csrf = info.csrf_token || null;
  const who = document.getElementById('who');
  who.replaceChildren(info.name, h('span', { class: 'role' }, info.role));
  document.getElementById('topbar').hidden = false;
}

async function logout() {
  try {
    await api('DELETE', '/api/v1/session', undefined, { quiet: true });
  } catch (e) {
    // The session is gone either way; the login page follows.
  }
  location.hash = '#/login';
  showLogin('You have logged out.');
}

// ---------------------------------------------------------------------------------------------
// Routing and keyboard

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, qs] = raw.split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(qs || '') };
}

// Each navigation has a number; a page that finishes loading after a newer navigation began
// (a slow request, then a click elsewhere) does not replace what the newer one shows.
let navigation = 0;

function stale(nav) {
  return nav !== navigation;
}

async function route() {
  if (!session.me) return;
  navigation += 1;
  const nav = navigation;
  const { parts, params } = parseHash();
  const [section, id] = parts;
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === (section || 'dashboard')) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  setKeys(null);
  page('Loading', h('p', { class: 'loading' }, 'Loading…'));
  try {
    if (section === 'findings' && id) await findingPage(id, nav);
    else if (section === 'findings') await queuePage(params, nav);
    else if (section === 'reviews' && id) await reviewPage(id, nav);
    else if (section === 'reviews') await reviewsPage(nav);
    else if (section === 'decisions') await decisionsPage(nav);
    else if (section === 'inbox') await inboxPage(params, nav);
    else await dashboardPage(nav);
  } catch (err) {
    if (err.status !== 401 && !stale(nav)) page('Error', h('h1', {}, 'Something went wrong'), errorBox(err));
  }
  document.getElementById('main').focus({ preventScroll: true });
}

function setKeys(handler) {
  keyHandler = handler;
}

let pendingG = false;
document.addEventListener('keydown', (event) => {
  const target = event.target;
  const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement
    || target instanceof HTMLSelectElement;
  if (typing || event.ctrlKey || event.metaKey || event.altKey || !session.me) return;
  if (event.key === '?') {
    document.getElementById('shortcuts').showModal();
    event.preventDefault();
    return;
  }
  if (pendingG) {
    pendingG = false;
    const to = { d: 'dashboard', f: 'findings', a: 'reviews', r: 'decisions', i: 'inbox' }[event.key];
    if (to) { location.hash = `#/${to}`; event.preventDefault(); return; }
  }
  if (event.key === 'g') { pendingG = true; return; }
  if (keyHandler && keyHandler(event)) event.preventDefault();
});

// ---------------------------------------------------------------------------------------------
// Findings queue

async function queuePage(params, nav) {
  const filters = {};
  for (const key of ['severity', 'status', 'team', 'project', 'tool', 'framework', 'rule', 'review']) {
    filters[key] = params.get(key) || '';
  }
  const search = params.get('q') || '';
  const ascending = params.get('sort') === 'score';
  const result = await api('GET', `/api/v1/findings${query({ ...filters, limit: 500 })}`);
  let items = result.items.slice();
  if (ascending) items.reverse();

  const form = h('form', { class: 'panel filters', role: 'search', 'aria-label': 'Filter findings' },
    select('f-severity', 'Severity', [['', 'Any'], ...SEVERITIES.map((s) => [s, s])], filters.severity),
    select('f-status', 'Status', [['', 'Any'], ...STATUSES.map((s) => [s, words(s)])], filters.status),
    select('f-framework', 'Framework', [['', 'Any'], ...FRAMEWORKS.map((s) => [s, words(s)])], filters.framework),
    input('f-team', 'Team', filters.team, { size: 12 }),
    input('f-project', 'Project', filters.project, { size: 12 }),
    input('f-rule', 'Rule', filters.rule, { size: 12 }),
    input('f-q', 'Search titles', search, { type: 'search', size: 20, 'aria-keyshortcuts': '/' }),
    h('button', { type: 'submit' }, 'Apply'),
    h('a', { class: 'button secondary', href: '#/findings' }, 'Reset'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = {};
    for (const key of ['severity', 'status', 'framework', 'team', 'project', 'rule']) next[key] = form.querySelector(`#f-${key}`).value.trim();
    next.review = filters.review;
    next.q = form.querySelector('#f-q').value.trim();
    if (ascending) next.sort = 'score';
    location.hash = `#/findings${query(next)}`;
  });

  if (search) {
    const needle = search.toLowerCase();
    items = items.filter((f) => [f.title, f.rule, f.artifact_title, f.finding.element_name, f.team, f.project]
      .some((v) => String(v || '').toLowerCase().includes(needle)));
  }

  const selected = new Set();
  let current = items.length ? 0 : -1;
  const count = h('span', { id: 'selected-count', 'aria-live': 'polite' }, '0 selected');
  const bulkStatus = h('select', { id: 'bulk-status', 'aria-label': 'New status for the selected findings' },
    TRIAGE_STATUSES.map((s) => h('option', { value: s }, words(s))));
  const bulkButton = h('button', { type: 'button', id: 'bulk-apply', disabled: true }, 'Set status');
  const rows = items.map((f, i) => {
    const box = h('input', { type: 'checkbox', 'aria-label': `Select ${f.title}`, dataset: { id: f.id } });
    box.addEventListener('change', () => { toggle(f.id, box.checked); });
    return h('tr', { dataset: { index: i, id: f.id }, onclick: (e) => { if (e.target === box) return; setCurrent(i); } },
      h('td', {}, box),
      h('td', {}, severityBadge(f.severity)),
      h('td', { class: 'num' }, f.score.toFixed(1)),
      h('td', {}, h('a', { href: `#/findings/${encodeURIComponent(f.id)}` }, f.title), h('div', { class: 'muted mono' }, f.rule)),
      h('td', {}, f.finding.element_name),
      h('td', {}, h('a', { href: `#/reviews/${encodeURIComponent(f.review_id)}` }, f.artifact_title)),
      h('td', {}, f.team || '—'),
      h('td', {}, statusBadge(f.state.status)));
  });
  const allBox = h('input', { type: 'checkbox', 'aria-label': 'Select all findings shown' });
  allBox.addEventListener('change', () => {
    for (const box of tbody.querySelectorAll('input[type=checkbox]')) { box.checked = allBox.checked; toggle(box.dataset.id, allBox.checked); }
  });
  const sortButton = h('button', { type: 'button', class: 'sort', 'aria-label': `Score, sorted ${ascending ? 'lowest' : 'highest'} first; activate to reverse` },
    `Score ${ascending ? '▲' : '▼'}`);
  sortButton.addEventListener('click', () => {
    const next = Object.fromEntries(params.entries());
    if (ascending) delete next.sort; else next.sort = 'score';
    location.hash = `#/findings${query(next)}`;
  });
  const tbody = h('tbody', {}, rows);
  const table = h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'Findings', id: 'queue' },
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, allBox),
      h('th', { scope: 'col' }, 'Severity'),
      h('th', { scope: 'col', class: 'num', 'aria-sort': ascending ? 'ascending' : 'descending' }, sortButton),
      h('th', { scope: 'col' }, 'Finding'),
      h('th', { scope: 'col' }, 'Element'),
      h('th', { scope: 'col' }, 'Artifact'),
      h('th', { scope: 'col' }, 'Team'),
      h('th', { scope: 'col' }, 'Status'))),
    tbody));

  function toggle(id, on) {
    if (on) selected.add(id); else selected.delete(id);
    count.textContent = `${selected.size} selected`;
    bulkButton.disabled = selected.size === 0 || !canTriage();
  }
  function setCurrent(i) {
    if (i < 0 || i >= rows.length) return;
    if (rows[current]) rows[current].classList.remove('current');
    current = i;
    rows[i].classList.add('current');
    rows[i].scrollIntoView({ block: 'nearest' });
    rows[i].querySelector('a').focus({ preventScroll: true });
  }
  bulkButton.addEventListener('click', async () => {
    const status = bulkStatus.value;
    bulkButton.disabled = true;
    let done = 0;
    try {
      for (const id of selected) {
        await api('POST', `/api/v1/findings/${encodeURIComponent(id)}/triage`, { status });
        done += 1;
      }
      flash(`${done} finding${done === 1 ? '' : 's'} set to ${words(status)}.`);
    } catch (err) {
      flash(`${done} changed, then: ${err.message}`, true);
    }
    route();
  });

  setKeys((event) => {
    if (event.key === 'j') { setCurrent(current + 1); return true; }
    if (event.key === 'k') { setCurrent(current - 1); return true; }
    if (event.key === '/') { form.querySelector('#f-q').focus(); return true; }
    if (event.key === 'x' && rows[current]) {
      const box = rows[current].querySelector('input');
      box.checked = !box.checked;
      toggle(box.dataset.id, box.checked);
      return true;
    }
    if (event.key === 'Enter' && items[current] && !(event.target instanceof HTMLAnchorElement)) {
      location.hash = `#/findings/${encodeURIComponent(items[current].id)}`;
      return true;
    }
    return false;
  });

  const shown = items.length === result.items.length ? `${result.total} findings` : `${items.length} of ${result.total} findings match the search`;
  if (stale(nav)) return;
  page('Findings',
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Findings'), h('p', { class: 'muted', id: 'queue-count' }, shown, filters.review ? ` in review ${filters.review}` : '')),
      h('div', { class: 'muted' }, h('kbd', {}, 'j'), ' ', h('kbd', {}, 'k'), ' move · ', h('kbd', {}, 'x'), ' select · ', h('kbd', {}, 'Enter'), ' open · ', h('kbd', {}, '/'), ' search')),
    form,
    h('div', { class: 'toolbar', role: 'group', 'aria-label': 'Bulk triage' },
      count, h('label', { for: 'bulk-status', class: 'sr-only' }, 'New status'), bulkStatus, bulkButton,
      canTriage() ? null : h('span', { class: 'muted' }, 'Your role can read findings but not triage them.')),
    items.length ? table : emptyState(result.total ? 'No finding matches these filters.' : 'No findings yet. Submit an artifact to review it.'));
  if (current >= 0) rows[0].classList.add('current');
}

function canTriage() {
  return session.me && ['admin', 'security'].includes(session.me.role);
}

// ---------------------------------------------------------------------------------------------
// Finding detail

async function findingPage(id, nav) {
  const view = await api('GET', `/api/v1/findings/${encodeURIComponent(id)}`);
  const f = view.finding;
  const [text, history] = await Promise.all([
    artifactText(view).catch(() => null),
    optional(`/api/v1/findings/${encodeURIComponent(id)}/history`).catch(() => null),
  ]);
  const precedents = view.recall ? view.recall.precedents || [] : null;

  if (stale(nav)) return;

  page(f.title,
    h('p', {}, h('a', { href: '#/findings' }, '← Findings')),
    h('div', { class: 'page-head' },
      h('div', {},
        h('h1', {}, f.title),
        h('div', { class: 'chips' }, severityBadge(view.severity), h('span', { class: 'chip' }, `score ${view.score.toFixed(1)} / 10`),
          statusBadge(view.state.status), h('span', { class: 'chip' }, f.rule), h('span', { class: 'chip' }, words(f.category)),
          f.origin === 'model' ? h('span', { class: 'chip' }, 'proposed by model') : null))),
    h('div', { class: 'two' },
      h('div', {},
        h('section', { class: 'panel', 'aria-labelledby': 'ev-title' },
          h('h2', { id: 'ev-title' }, 'Evidence'),
          h('p', { class: 'muted' }, 'In ', h('a', { href: `#/reviews/${encodeURIComponent(view.review_id)}` }, view.artifact_title),
            ` · element ${f.element_name} (${words(f.element_kind)})`),
          evidenceView(f.evidence, text)),
        h('section', { class: 'panel' },
          h('h2', {}, 'Why it matters'), h('p', {}, f.rationale),
          f.mitigations.length ? [h('h3', {}, 'Mitigations'), h('ul', {}, f.mitigations.map((m) => h('li', {}, m)))] : null),
        h('section', { class: 'panel', 'aria-labelledby': 'score-title' },
          h('h2', { id: 'score-title' }, `Score ${view.score.toFixed(1)}`),
          h('p', { class: 'muted' }, f.score.formula),
          ['exploitability', 'blast_radius', 'urgency'].map((g) => factorTable(g, f.score[g])),
          f.score.adjustments && f.score.adjustments.length ? [h('h3', {}, 'Adjustments'), h('ul', {}, f.score.adjustments.map((a) => h('li', {}, a)))] : null,
          f.score.sla_days ? h('p', {}, `SLA: fix within ${f.score.sla_days} days.`) : null)),
      h('div', {},
        triagePanel(view),
        riskPanel(view),
        h('section', { class: 'panel' }, h('h2', {}, 'Framework mappings'), mappings(f)),
        h('section', { class: 'panel' }, h('h2', {}, 'Memory and precedents'), recallView(view.recall), precedentsView(precedents)),
        h('section', { class: 'panel' }, h('h2', {}, 'History'), historyView(view, history)))));
}

/** The text of the artifact's latest version, when the server keeps artifact versions. */
async function artifactText(view) {
  const artifact = encodeURIComponent(view.artifact);
  const versions = await optional(`/api/v1/artifacts/${artifact}/versions`);
  const list = versions && (Array.isArray(versions) ? versions : versions.versions || versions.items);
  if (!list || !list.length) return null;
  const latest = Math.max(...list.map((v) => v.version));
  const found = await optional(`/api/v1/artifacts/${artifact}/versions/${latest}`);
  return found && typeof found.text === 'string' ? found.text : null;
}

function evidenceView(evidence, text) {
  if (!evidence.length) return emptyState('This finding was inferred from the kind of component; no sentence states it.');
  const quotes = h('div', {}, evidence.map((e) => h('blockquote', { class: 'quote' },
    h('mark', { class: 'evidence' }, e.text),
    h('div', { class: 'muted mono' }, `${e.section ? `${e.section} · ` : ''}bytes ${e.start}–${e.end}`))));
  const ranges = text ? evidenceRanges(text, evidence) : [];
  if (!ranges.length) return quotes;
  const view = h('div', { class: 'artifact-text', id: 'artifact-text', tabindex: 0, role: 'region', 'aria-label': 'Artifact text with the evidence highlighted' },
    highlight(text, ranges));
  requestAnimationFrame(() => {
    const first = view.querySelector('mark');
    if (first) view.scrollTop = Math.max(0, first.offsetTop - view.offsetTop - 60);
  });
  return [view, h('h3', {}, 'Quotes'), quotes];
}

const squash = (s) => s.replace(/\s+/g, ' ').trim();

/**
 * Where each quote sits in the text, as [start, end) in string indices. The evidence's byte
 * offsets (UTF-8, in the original file) are used when they hold the quote; otherwise the quote
 * is looked for, so a text kept in another form still shows what can be found.
 */
function evidenceRanges(text, evidence) {
  const bytes = new TextEncoder().encode(text);
  const decoder = new TextDecoder();
  const ranges = [];
  for (const e of evidence) {
    const slice = e.end <= bytes.length && e.end > e.start ? decoder.decode(bytes.subarray(e.start, e.end)) : '';
    if (slice && squash(slice) === squash(e.text)) {
      const start = decoder.decode(bytes.subarray(0, e.start)).length;
      ranges.push([start, start + slice.length]);
      continue;
    }
    const at = text.indexOf(e.text);
    if (at >= 0) ranges.push([at, at + e.text.length]);
  }
  return ranges.sort((a, b) => a[0] - b[0]);
}

/** The text with each range wrapped in <mark>. */
function highlight(text, ranges) {
  const out = [];
  let at = 0;
  for (const [start, end] of ranges) {
    if (start < at) continue;
    out.push(text.slice(at, start));
    out.push(h('mark', { class: 'evidence' }, text.slice(start, end)));
    at = end;
  }
  out.push(text.slice(at));
  return out;
}

function factorTable(name, group) {
  return h('div', {},
    h('h3', {}, `${words(name)} · ${group.value.toFixed(2)}`),
    h('table', { class: 'factors' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Factor'), h('th', { scope: 'col' }, 'Value'), h('th', { scope: 'col' }, 'Weight'), h('th', { scope: 'col' }, 'Why'))),
      h('tbody', {}, group.factors.map((x) => h('tr', {},
        h('td', {}, words(x.name), h('div', { class: 'bar', 'aria-hidden': 'true' }, barSpan(x.value))),
        h('td', {}, x.value.toFixed(2)), h('td', {}, x.weight.toFixed(2)), h('td', {}, x.reason))))));
}

function barSpan(value) {
  const span = h('span');
  span.style.width = `${Math.round(Math.max(0, Math.min(1, value)) * 100)}%`;
  return span;
}

function mappings(f) {
  const rows = [
    ['CWE', f.cwe.map((n) => `CWE-${n}`)],
    ['CAPEC', f.capec.map((n) => `CAPEC-${n}`)],
    ['ATT&CK', f.attack],
    ['OWASP 2021', f.frameworks.owasp_2021],
    ['OWASP 2025', f.frameworks.owasp_2025],
    ['NIST CSF 2.0', f.frameworks.nist_csf],
    ['PCI DSS v4', f.frameworks.pci_dss],
    ['HIPAA', f.frameworks.hipaa],
    ['SOC 2', f.frameworks.soc2],
  ].filter(([, ids]) => ids && ids.length);
  if (!rows.length) return emptyState('No framework mapping.');
  return h('dl', { class: 'meta' }, rows.map(([name, ids]) => [h('dt', {}, name), h('dd', { class: 'chips' }, ids.map((id) => h('span', { class: 'chip' }, id)))]));
}

function recallView(recall) {
  if (!recall || !recall.disposition) return null;
  return h('p', {}, 'Memory: ', statusBadge(recall.disposition), recall.reason ? ` ${recall.reason}` : '',
    recall.decision_id ? h('span', { class: 'muted mono' }, ` (decision ${recall.decision_id})`) : null);
}

function precedentsView(items) {
  if (!items) return emptyState('Memory was not consulted for this review.');
  if (!items.length) return emptyState('No similar finding was mitigated before.');
  return h('ul', {}, items.map((p) => h('li', {},
    p.external_key ? h('strong', { class: 'mono' }, `${p.external_key} `) : null,
    p.summary || p.rationale || '',
    p.similarity !== undefined ? h('span', { class: 'muted' }, ` · similarity ${Number(p.similarity).toFixed(2)}`) : null,
    p.rationale && p.summary ? h('div', { class: 'muted' }, p.rationale) : null)));
}

function historyView(view, history) {
  const entries = [];
  const items = history && (Array.isArray(history) ? history : history.items || history.events);
  for (const e of items || []) {
    const version = e.review_version ? `version ${e.review_version}: ` : '';
    entries.push({ at: e.at, text: `${version}${words(e.event)}${e.detail ? ` — ${e.detail}` : ''}` });
  }
  for (const c of view.state.comments) entries.push({ at: c.at_ms, text: c.text, who: c.author });
  entries.sort((a, b) => new Date(a.at) - new Date(b.at));
  if (!entries.length) return emptyState('No change since the finding was raised.');
  return h('ol', { class: 'timeline' }, entries.map((e) => h('li', {},
    h('div', { class: 'muted' }, `${when(e.at)}${e.who ? ` · ${e.who}` : ''}`), h('div', {}, e.text))));
}

function triagePanel(view) {
  const disabled = !canTriage();
  const form = h('form', { class: 'panel', id: 'triage-form', 'aria-labelledby': 'triage-title' },
    h('h2', { id: 'triage-title' }, 'Triage'),
    select('t-status', 'Status', (view.state.status === 'risk_accepted' ? STATUSES : TRIAGE_STATUSES).map((s) => [s, words(s)]), view.state.status, { disabled }),
    input('t-assignee', 'Assignee', view.state.assignee, { disabled }),
    h('div', { class: 'field' }, h('label', { for: 't-comment' }, 'Comment'), h('textarea', { id: 't-comment', disabled })),
    h('button', { type: 'submit', disabled }, 'Save triage'),
    disabled ? h('p', { class: 'muted' }, 'Your role may read but not triage.') : null);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    // The status is sent only when changed (an accepted risk keeps its decision's status).
    const status = form.querySelector('#t-status').value;
    const change = { assignee: form.querySelector('#t-assignee').value.trim() };
    if (status !== view.state.status) change.status = status;
    const comment = form.querySelector('#t-comment').value.trim();
    if (comment) change.comment = comment;
    try {
      await api('POST', `/api/v1/findings/${encodeURIComponent(view.id)}/triage`, change);
      flash('Triage saved.');
      route();
    } catch (err) {
      flash(err.message, true);
    }
  });
  return form;
}

function riskPanel(view) {
  const disabled = !canTriage();
  const inNinety = new Date(Date.now() + 90 * 864e5).toISOString().slice(0, 10);
  const form = h('form', { class: 'panel', id: 'risk-form', 'aria-labelledby': 'risk-title' },
    h('h2', { id: 'risk-title' }, 'Accept the risk'),
    h('p', { class: 'muted' }, 'An exception with an owner and an end date; the finding returns when it expires.'),
    input('r-owner', 'Owner', view.state.assignee || '', { required: true, disabled }),
    input('r-approver', 'Approver', '', { required: true, disabled }),
    input('r-expires', 'Expires on', inNinety, { type: 'date', required: true, disabled }),
    h('div', { class: 'field' }, h('label', { for: 'r-rationale' }, 'Rationale'), h('textarea', { id: 'r-rationale', required: true, disabled })),
    h('button', { type: 'submit', disabled }, 'Accept risk'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const owner = form.querySelector('#r-owner').value.trim();
    const approver = form.querySelector('#r-approver').value.trim();
    const expires = form.querySelector('#r-expires').value;
    const rationale = form.querySelector('#r-rationale').value.trim();
    try {
      await acceptRisk(view, { owner, approver, expires, rationale });
      flash(`Risk accepted until ${expires}, approved by ${approver}.`);
      route();
    } catch (err) {
      flash(err.message, true);
    }
  });
  return form;
}

/** Records a risk acceptance in the decision register, which sets the finding's status. */
async function acceptRisk(view, terms) {
  await api('POST', '/api/v1/decisions', {
    kind: 'risk_accepted', scope: 'finding', fingerprint: view.id, rule: view.rule,
    owner: terms.owner, approver: terms.approver, expires_on: terms.expires, rationale: terms.rationale,
  });
}

// ---------------------------------------------------------------------------------------------
// Artifacts and reviews

async function reviewsPage(nav) {
  const result = await api('GET', '/api/v1/reviews?limit=500');
  const table = h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'Reviewed artifacts' },
    h('thead', {}, h('tr', {}, ['Artifact', 'Key', 'Format', 'Team', 'Project', 'Findings', 'Critical or high', 'Reviewed'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, result.items.map((r) => h('tr', {},
      h('td', {}, h('a', { href: `#/reviews/${encodeURIComponent(r.id)}` }, r.title)),
      h('td', { class: 'mono' }, r.key || '—'), h('td', {}, words(r.format)), h('td', {}, r.team || '—'), h('td', {}, r.project || '—'),
      h('td', { class: 'num' }, r.findings), h('td', { class: 'num' }, r.critical_or_high), h('td', {}, when(r.created_ms)))))));
  if (stale(nav)) return;
  page('Artifacts',
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Artifacts'), h('p', { class: 'muted' }, `${result.total} artifacts, latest review of each`))),
    result.items.length ? table : emptyState('Nothing reviewed yet. Submit a design document, ticket or page to POST /api/v1/artifacts.'));
}

async function reviewPage(id, nav) {
  const detail = await api('GET', `/api/v1/reviews/${encodeURIComponent(id)}`);
  const review = detail.review;
  const versions = await optional(`/api/v1/reviews/${encodeURIComponent(id)}/versions`).catch(() => null);
  const list = Array.isArray(versions) ? versions : null;
  const index = list ? list.findIndex((v) => v.content_hash === review.content_hash) : -1;
  const diff = list && index > 0
    ? await optional(`/api/v1/reviews/${encodeURIComponent(id)}/diff${query({ from: list[index - 1].version, to: list[index].version })}`).catch(() => null)
    : null;
  const dfdUrl = `/api/v1/reviews/${encodeURIComponent(id)}/dfd?format=svg`;
  const exports = ['sarif', 'csv', 'json'].map((fmt) => h('a', { class: 'button secondary', href: `/api/v1/reviews/${encodeURIComponent(id)}/export?format=${fmt}`, download: `vigil-${id}.${fmt === 'sarif' ? 'sarif' : fmt}` }, fmt.toUpperCase()));
  const findings = review.findings.slice().sort((a, b) => b.score.value - a.score.value);

  if (stale(nav)) return;

  page(review.title,
    h('p', {}, h('a', { href: '#/reviews' }, '← Artifacts')),
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, review.title),
        h('dl', { class: 'meta' },
          h('dt', {}, 'Artifact'), h('dd', { class: 'mono' }, review.artifact),
          h('dt', {}, 'Format'), h('dd', {}, words(review.format)),
          review.meta.key ? [h('dt', {}, 'Key'), h('dd', { class: 'mono' }, review.meta.key)] : null,
          review.meta.team ? [h('dt', {}, 'Team'), h('dd', {}, review.meta.team)] : null,
          review.meta.project ? [h('dt', {}, 'Project'), h('dd', {}, review.meta.project)] : null,
          h('dt', {}, 'Reviewed'), h('dd', {}, `${when(detail.created_ms)} · ${detail.source}`))),
      h('div', { class: 'toolbar', 'aria-label': 'Export' }, 'Export ', exports)),
    h('section', { class: 'panel', 'aria-labelledby': 'dfd-title' },
      h('h2', { id: 'dfd-title' }, 'Data-flow diagram'),
      h('div', { class: 'dfd' }, h('img', { src: dfdUrl, id: 'dfd', alt: `Data-flow diagram of ${review.title}: ${review.dfd.nodes.length} elements; the list below describes them` })),
      h('details', {}, h('summary', {}, 'Elements and flows as text'), dfdText(review.dfd))),
    h('div', { class: 'two' },
      h('section', { class: 'panel' }, h('h2', {}, `Findings (${findings.length})`),
        findings.length ? h('table', { 'aria-label': 'Findings of this review' },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Severity'), h('th', { scope: 'col', class: 'num' }, 'Score'), h('th', { scope: 'col' }, 'Finding'))),
          h('tbody', {}, findings.map((f) => h('tr', {}, h('td', {}, severityBadge(f.score.severity)), h('td', { class: 'num' }, f.score.value.toFixed(1)),
            h('td', {}, h('a', { href: `#/findings/${encodeURIComponent(f.id)}` }, f.title), h('div', { class: 'muted' }, f.element_name))))))
          : emptyState('No finding in this review.'),
        review.attack_paths.length ? [h('h3', {}, 'Attack paths'), h('ol', {}, review.attack_paths.map((p) => h('li', {}, p.summary, h('span', { class: 'muted' }, ` · ${p.score.toFixed(1)}`))))] : null),
      h('div', {},
        h('section', { class: 'panel' }, h('h2', {}, 'Version timeline'), versionsView(list, index)),
        h('section', { class: 'panel' }, h('h2', {}, 'Review diff'), diffView(diff, list && index === 0)))));
}

function dfdText(dfd) {
  const names = Object.fromEntries(dfd.nodes.map((n) => [n.id, n.name]));
  return h('div', {},
    h('h3', {}, 'Elements'),
    h('ul', {}, dfd.nodes.map((n) => h('li', {}, `${n.name} (${words(n.kind)}${n.trust_zone ? `, ${words(n.trust_zone)} zone` : ''}${n.entry_point ? ", entry point" : ''})`))),
    h('h3', {}, 'Flows'),
    h('ul', {}, (dfd.flows || []).map((f) => h('li', {}, `${names[f.from] || f.from} → ${names[f.to] || f.to}${f.data && f.data.length ? `: ${f.data.join(", ")}` : ''}`))));
}

function versionsView(items, current) {
  if (!items) return emptyState('Version history is not kept by this server.');
  if (!items.length) return emptyState('No version recorded.');
  return h('ol', { class: 'timeline', id: 'versions' }, items.map((v, i) => h('li', { 'aria-current': i === current ? 'true' : null },
    h('div', {}, v.review_id && i !== current ? h('a', { href: `#/reviews/${encodeURIComponent(v.review_id)}` }, `Version ${v.version}`)
      : h('strong', {}, `Version ${v.version}${i === current ? ' (this review)' : ''}`)),
    h('div', { class: 'muted' }, `${when(v.created_at)} · ${v.findings} findings`),
    i > 0 ? h('div', { class: 'muted' }, `${v.new} new · ${v.changed} changed · ${v.gone} gone · ${v.unchanged} unchanged`) : null)));
}

function diffView(diff, first) {
  if (first) return emptyState('This is the first version: nothing to compare with.');
  if (!diff || !Array.isArray(diff.entries)) return emptyState('No comparison is available for this review.');
  const changes = diff.entries.filter((e) => e.change !== 'unchanged');
  if (!changes.length) return emptyState(`No finding changed from version ${diff.from} to ${diff.to}.`);
  return [h('p', { class: 'muted' }, `Version ${diff.from} → ${diff.to}`),
    h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'Findings that changed' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Change'), h('th', { scope: 'col' }, 'Rule'), h('th', { scope: 'col' }, 'Detail'))),
      h('tbody', {}, changes.map((e) => h('tr', {}, h('td', { class: `diff-${e.change}` }, words(e.change)), h('td', { class: 'mono' }, e.rule), h('td', {}, e.detail))))))];
}

// ---------------------------------------------------------------------------------------------
// Decisions and exceptions

async function decisionsPage(nav) {
  const decisions = await optional('/api/v1/decisions?limit=500');
  const items = decisions && (Array.isArray(decisions) ? decisions : decisions.items || decisions.decisions);
  const today = new Date().toISOString().slice(0, 10);
  let body;
  if (items) {
    body = items.length ? h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'Decisions' },
      h('thead', {}, h('tr', {}, ['Kind', 'Scope', 'About', 'Rationale', 'Owner', 'Approver', 'Expires', 'State'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, items.map((d) => {
        const expired = d.active === false || (d.expires_on && d.expires_on < today);
        const about = d.fingerprint
          ? h('a', { href: `#/findings/${encodeURIComponent(d.fingerprint)}`, class: 'mono' }, d.fingerprint)
          : h('span', { class: 'mono' }, [d.rule, d.component].filter(Boolean).join(' on ') || '—');
        return h('tr', {},
          h('td', {}, statusBadge(d.kind)), h('td', {}, words(d.scope)), h('td', {}, about),
          h('td', {}, d.rationale), h('td', {}, d.owner || '—'), h('td', {}, d.approver || '—'),
          h('td', {}, d.expires_on || 'no end'), h('td', {}, expired ? 'expired' : 'active'));
      }))))
      : emptyState('No decision recorded yet. Accept a risk or mark a false positive from a finding.');
  } else {
    const accepted = await api('GET', '/api/v1/findings?status=risk_accepted&limit=500');
    body = [h('p', { class: 'muted' }, 'This server keeps no decision register; these are the findings whose risk was accepted in triage.'),
      accepted.items.length ? h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'Accepted risks' },
        h('thead', {}, h('tr', {}, ['Finding', 'Severity', 'Terms'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, accepted.items.map((f) => h('tr', {},
          h('td', {}, h('a', { href: `#/findings/${encodeURIComponent(f.id)}` }, f.title)), h('td', {}, severityBadge(f.severity)),
          h('td', {}, (f.state.comments.filter((c) => c.text.startsWith('Risk accepted')).pop() || { text: '—' }).text))))))
        : emptyState('No accepted risk.')];
  }
  if (stale(nav)) return;
  page('Decisions', h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Decisions and exceptions'),
    h('p', { class: 'muted' }, 'Accepted risks, false positives and approved patterns, with their expiry.'))), body);
}

// ---------------------------------------------------------------------------------------------
// Webhook inbox and its dead-letter list

const EVENT_STATUSES = ['dead', 'pending', 'processing', 'done'];

async function inboxPage(params, nav) {
  const status = EVENT_STATUSES.includes(params.get('status')) ? params.get('status') : 'dead';
  let inbox;
  try {
    inbox = await api('GET', `/api/v1/inbox${query({ status, limit: 200 })}`);
  } catch (err) {
    if (err.status !== 403) throw err;
    if (stale(nav)) return;
    page('Inbox', h('h1', {}, 'Webhook inbox'), errorBox(err),
      h('p', { class: 'muted' }, 'Administrators, security engineers and auditors see the inbox.'));
    return;
  }
  const depth = inbox.depth;
  const tile = (s, label) => h('div', { class: 'panel', role: 'listitem' },
    h('a', { href: `#/inbox${query({ status: s })}`, 'aria-current': s === status ? 'true' : null },
      h('div', { class: 'kpi' }, depth[s])),
    h('div', { class: 'kpi-label' }, label));
  const retry = async (event, button) => {
    button.disabled = true;
    try {
      await api('POST', `/api/v1/inbox/${event.id}/retry`);
      flash(`Event ${event.id} (${event.delivery_id}) is queued again.`);
      route();
    } catch (err) {
      button.disabled = false;
      flash(err.message, true);
    }
  };
  const columns = ['Received', 'Connector', 'Event', 'Delivery', 'Attempts', status === 'done' ? 'Outcome' : 'Last error', 'Size'];
  if (status === 'dead' && canTriage()) columns.push('');
  const table = h('div', { class: 'table-wrap' }, h('table', { 'aria-label': `Inbox events: ${status}` },
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, inbox.events.map((e) => {
      const button = h('button', { type: 'button', class: 'secondary', 'aria-label': `Retry event ${e.id}` }, 'Retry');
      button.addEventListener('click', () => retry(e, button));
      return h('tr', { dataset: { event: e.id } },
        h('td', {}, when(e.received_ms)), h('td', {}, `${e.connector} (${words(e.tool)})`),
        h('td', { class: 'mono' }, e.event), h('td', { class: 'mono' }, e.delivery_id),
        h('td', { class: 'num' }, e.attempts),
        h('td', { class: 'wrap' }, (status === 'done' ? e.outcome : e.last_error) || '—'),
        h('td', { class: 'num' }, e.bytes < 1024 ? `${e.bytes} B` : `${(e.bytes / 1024).toFixed(1)} KiB`),
        status === 'dead' && canTriage() ? h('td', {}, button) : null);
    }))));
  const empty = { dead: 'No dead letters: every event was processed or is still being tried.',
    pending: 'Nothing waiting.', processing: 'Nothing in progress.', done: 'No event processed yet.' }[status];
  if (stale(nav)) return;
  page('Inbox',
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Webhook inbox'),
      h('p', { class: 'muted' }, 'Every event a connector sent, stored before it was acknowledged. Events that failed every attempt wait in the dead-letter list until retried.'))),
    h('div', { class: 'grid', role: 'list', 'aria-label': 'Events by status' },
      tile('dead', 'dead letters'), tile('pending', 'waiting'), tile('processing', 'being processed'), tile('done', 'processed')),
    h('section', { class: 'panel', 'aria-labelledby': 'events-title' },
      h('h2', { id: 'events-title' }, { dead: 'Dead letters', pending: 'Waiting', processing: 'Being processed', done: 'Processed' }[status]),
      inbox.events.length ? table : emptyState(empty)));
}

// ---------------------------------------------------------------------------------------------
// Dashboard

async function dashboardPage(nav) {
  const server = await optional('/api/v1/dashboard');
  const local = server ? null : await localFigures();
  const open = server ? server.open_by_severity : local.open;
  const teams = server ? server.teams : local.teams;
  const kpi = (label, value, note) => h('div', { class: 'panel' }, h('div', { class: 'kpi' }, value), h('div', { class: 'kpi-label' }, label),
    note ? h('div', { class: 'muted' }, note) : null);
  const days = (x) => (x === null || x === undefined ? '—' : `${Number(x).toFixed(1)} d`);

  if (stale(nav)) return;

  page('Dashboard',
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Dashboard'),
      h('p', { class: 'muted' }, server ? `${server.reviewed} of ${server.artifacts} planned artifacts reviewed` : 'Figures from the findings alone'))),
    h('div', { class: 'grid sev-grid', role: 'list', 'aria-label': 'Open findings by severity' },
      SEVERITIES.map((s) => h('div', { class: 'panel', role: 'listitem' },
        h('a', { href: `#/findings${query({ severity: s, status: 'open' })}`, 'aria-label': `${open[s] || 0} open ${s} findings` }, severityBadge(s)),
        h('div', { class: 'kpi' }, open[s] || 0), h('div', { class: 'kpi-label' }, `open ${s}`)))),
    server ? h('div', { class: 'grid', id: 'kpis' },
      kpi('Coverage: share of planned work reviewed', `${Math.round(server.coverage * 100)}%`, `${server.reviewed} of ${server.artifacts} artifacts`),
      kpi('SLA breaches', server.sla_breaches, SEVERITIES.filter((s) => server.sla_breaches_by_severity[s]).map((s) => `${server.sla_breaches_by_severity[s]} ${s}`).join(' · ') || 'none'),
      kpi('Mitigated', server.mitigated),
      kpi('Mean time to mitigation', days(server.mean_days_to_mitigation)))
      : h('div', { class: 'panel muted' }, 'Coverage, SLA breaches and mean time to mitigation come from the server\'s dashboard, which this server does not offer.'),
    h('section', { class: 'panel', 'aria-labelledby': 'teams-title' }, h('h2', { id: 'teams-title' }, 'By team'),
      teams.length ? h('table', { 'aria-label': 'Figures by team' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Team'), h('th', { scope: 'col', class: 'num' }, 'Open'),
          h('th', { scope: 'col', class: 'num' }, 'SLA breaches'), h('th', { scope: 'col', class: 'num' }, 'Mitigated'),
          h('th', { scope: 'col', class: 'num' }, 'Mean time to mitigation'))),
        h('tbody', {}, teams.map((t) => h('tr', {},
          h('td', {}, h('a', { href: `#/findings${query({ team: t.team === 'unassigned' ? '' : t.team })}` }, t.team)),
          h('td', { class: 'num' }, t.open), h('td', { class: 'num' }, t.sla_breaches ?? '—'),
          h('td', { class: 'num' }, t.mitigated ?? '—'), h('td', { class: 'num' }, days(t.mean_days_to_mitigation))))))
        : emptyState('No finding yet. Submit an artifact to see its risks here.')),
    server && server.weeks && server.weeks.length ? h('section', { class: 'panel', 'aria-labelledby': 'weeks-title' },
      h('h2', { id: 'weeks-title' }, 'Over time'), weeksView(server.weeks)) : null);
}

/** Open findings by severity and team, counted from the findings list. */
async function localFigures() {
  const all = await api('GET', '/api/v1/findings?limit=500');
  const open = {};
  const teams = {};
  for (const f of all.items) {
    if (!['open', 'confirmed', 'in_progress'].includes(f.state.status)) continue;
    open[f.severity] = (open[f.severity] || 0) + 1;
    const team = f.team || 'unassigned';
    teams[team] = teams[team] || { team, open: 0 };
    teams[team].open += 1;
  }
  return { open, teams: Object.values(teams).sort((a, b) => a.team.localeCompare(b.team)) };
}

function weeksView(weeks) {
  const max = Math.max(1, ...weeks.map((w) => Math.max(w.raised, w.mitigated)));
  return h('table', { 'aria-label': 'Findings raised and mitigated per week' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Week of'), h('th', { scope: 'col', class: 'num' }, 'Raised'), h('th', { scope: 'col' }, ''),
      h('th', { scope: 'col', class: 'num' }, 'Mitigated'), h('th', { scope: 'col' }, ''))),
    h('tbody', {}, weeks.map((w) => h('tr', {},
      h('td', {}, new Date(w.week_start_ms).toLocaleDateString(undefined, { dateStyle: 'medium' })),
      h('td', { class: 'num' }, w.raised), h('td', {}, h('div', { class: 'bar', 'aria-hidden': 'true' }, barSpan(w.raised / max))),
      h('td', { class: 'num' }, w.mitigated), h('td', {}, h('div', { class: 'bar', 'aria-hidden': 'true' }, barSpan(w.mitigated / max)))))));
}

// ---------------------------------------------------------------------------------------------
// Start

async function start() {
  document.getElementById('logout').addEventListener('click', logout);
  document.getElementById('shortcuts-button').addEventListener('click', () => document.getElementById('shortcuts').showModal());
  window.addEventListener('hashchange', route);
  try {
    const info = await api('GET', '/api/v1/session', undefined, { quiet: true });
    startSession(info);
    route();
  } catch (err) {
    showLogin(err.status === 401 ? '' : err.message);
  }
}

start();
