// testfarm's dashboard (docs/dashboard.md). Data reaches the DOM only as text, never as HTML.
const $ = (id) => document.getElementById(id);
const MAX_FAILURES = 200, MAX_SPANS = 20000, WINDOW_MS = 300000, TOKEN_KEY = 'testfarm.token';
const COUNTS = ['passed', 'failed', 'flaky', 'skipped', 'cancelled', 'not_run', 'lost'];
const FILLS = ['passed', 'failed', 'lost', 'flaky', 'skipped', 'cancelled', 'not_run', 'running'];

// --- helpers
const isObj = (x) => x !== null && typeof x === 'object' && !Array.isArray(x);
const arr = (x) => (Array.isArray(x) ? x : []);
const str = (x) => (x === null || x === undefined ? '' : String(x));
const num = (x) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
const int0 = (x) => Math.max(0, Math.floor(num(x) ?? 0));
const enc = encodeURIComponent;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const words = (s) => str(s).replace('_', ' ');
const stCls = (s) => 'st-' + str(s).replace(/[^a-z_]/g, '');

// h('td.num', 'text' | {attrs}, ...children)
function h(spec, a, ...kids) {
  const [tag, ...cls] = spec.split('.');
  const e = document.createElement(tag);
  if (cls.length) e.className = cls.join(' ');
  if (typeof a === 'string') e.textContent = a;
  else if (a) {
    for (const k of Object.keys(a)) {
      const v = a[k];
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') e.textContent = v;
      else if (k === 'data') Object.assign(e.dataset, v);
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of kids) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}
function setText(e, s) { s = str(s); if (e.textContent !== s) e.textContent = s; }
function setAttr(e, n, v) { v = str(v); if (e.getAttribute(n) !== v) e.setAttribute(n, v); }
function throttle(fn, ms) {
  let last = 0, timer = null;
  return () => {
    const wait = last + ms - Date.now();
    if (wait <= 0) { last = Date.now(); fn(); }
    else if (!timer) timer = setTimeout(() => { timer = null; last = Date.now(); fn(); }, wait);
  };
}
const pad = (n) => String(n).padStart(2, '0');
function fmtClock(ms) {
  if (num(ms) === null) return '–';
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function fmtDur(ms) {
  ms = num(ms);
  if (ms === null) return '–';
  ms = Math.max(0, ms);
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 1 : 0)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} m ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} m`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}
function fmtSecs(ms) { // whole seconds, for times that tick
  ms = num(ms);
  if (ms === null) return '–';
  if (ms < 1000) return '<1 s';
  return ms < 60000 ? `${Math.floor(ms / 1000)} s` : fmtDur(ms);
}
function fmtBytes(b) {
  b = num(b);
  if (b === null) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return i ? `${b.toFixed(b < 10 ? 1 : 0)} ${u[i]}` : `${b} B`;
}
function fmtLabels(l) {
  if (Array.isArray(l)) return l.map(str).join(', ');
  return isObj(l) ? Object.keys(l).map((k) => `${k}=${str(l[k])}`).join(', ') : str(l);
}

// --- state; skew: the server's clock minus ours
const S = {farm: null, skew: 0, workers: new Map(), workerOrder: [], runs: new Map(), runOrder: [], selected: null, userSelected: false, ready: false};
const serverNow = () => Date.now() + S.skew;

// --- errors
const errorsEl = $('errors');
function showError(msg) { // the same error again only counts
  msg = str(msg) || 'unknown error';
  const old = [...errorsEl.children].find((p) => p.dataset.msg === msg);
  if (old) return setText(old.querySelector('.n'), ` (×${++old.n}, last ${fmtClock(Date.now())})`);
  const p = h('p.error', {data: {msg}}, h('span.msg', msg), h('span.n'),
    h('button.dismiss', {type: 'button', 'aria-label': 'Dismiss error', text: '×', onclick: () => p.remove()}));
  p.n = 1;
  errorsEl.append(p);
  if (errorsEl.children.length > 4) errorsEl.firstElementChild.remove();
}
function reportError(e) {
  showError(e && e.message ? e.message : String(e));
}

// --- API and the token
let token = '';
try { token = sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { /* no storage */ }
let tokenWait = null, tokenResolve = null;
const authHeaders = () => (token ? {Authorization: 'Bearer ' + token} : {});

async function errorText(res) {
  const t = await res.text().catch(() => '');
  try { const j = JSON.parse(t); if (isObj(j) && j.error !== undefined) return str(j.error); } catch (e) { /* not JSON */ }
  return t.trim().slice(0, 300) || `HTTP ${res.status}`;
}
// Resolves once a token other than `sent` is in use.
function needToken(sent, msg) {
  if (token !== sent) return Promise.resolve();
  if (!tokenWait) {
    tokenWait = new Promise((r) => { tokenResolve = r; });
    setText($('token-error'), sent ? `The token was not accepted: ${msg || 'wrong token'}` : '');
    $('token-form').hidden = false;
    const input = $('token-input');
    input.value = '';
    setAttr(input, 'aria-invalid', sent ? 'true' : 'false');
    input.focus();
  }
  return tokenWait;
}
$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const v = $('token-input').value.trim();
  if (!v) return;
  token = v;
  try { sessionStorage.setItem(TOKEN_KEY, v); } catch (e) { /* no storage */ }
  $('token-form').hidden = true;
  const r = tokenResolve;
  tokenWait = tokenResolve = null;
  if (r) r();
});
async function api(path) {
  for (;;) {
    const sent = token;
    let res;
    try {
      res = await fetch(path, {headers: authHeaders(), cache: 'no-store'});
    } catch (e) {
      throw new Error(`cannot reach testfarm (${path}): ${e && e.message ? e.message : e}`);
    }
    if (res.status === 401) { await needToken(sent, await errorText(res)); continue; }
    if (!res.ok) throw new Error(`${path}: ${await errorText(res)} (HTTP ${res.status})`);
    try { return await res.json(); } catch (e) { throw new Error(`${path}: the answer is not JSON`); }
  }
}

// --- header
function setConn(state, text, detail) {
  $('conn').dataset.state = state;
  setText($('conn'), text);
  setAttr($('conn'), 'title', detail || text);
}
function setFarm(f) {
  if (!isObj(f)) return;
  const F = S.farm = Object.assign({}, S.farm, f);
  if (num(f.now_ms) !== null) S.skew = f.now_ms - Date.now();
  setText($('mode'), str(F.mode) || '–');
  setText($('stat-workers'), str(num(F.workers) ?? S.workers.size));
  setText($('stat-slots'), `${num(F.busy) ?? 0}/${num(F.slots) ?? 0}`);
  setText($('stat-runs'), str(num(F.runs) ?? S.runs.size));
  setText($('farm-version'), F.version ? `testfarm ${str(F.version)}` : '');
  if (typeof F.history === 'boolean' && F.history !== HIST.on) setHistory(F.history);
}

// --- fleet
const fleetBody = $('fleet-body');
function makeWorker(name) {
  const e = {name, data: {}, at: 0, slots: []};
  e.tr = h('tr', {data: {worker: name}}, h('th.w-name', {scope: 'row', title: name, text: name}), e.labels = h('td.w-labels'),
    e.busy = h('td.num'), e.heard = h('td.num'), e.cache = h('td.num'), h('td', null, e.slotBox = h('div.slots', {role: 'group'})));
  return e;
}
function renderSlots(e, now) {
  const running = arr(e.data.running);
  const n = Math.max(int0(e.data.slots), running.length);
  while (e.slots.length < n) {
    const el = h('span.slot', {role: 'img'});
    e.slotBox.append(el);
    e.slots.push({el, cls: 'slot', label: ''});
  }
  while (e.slots.length > n) e.slots.pop().el.remove();
  e.slots.forEach((s, i) => { // busy first, in `running` order
    const r = isObj(running[i]) ? running[i] : null;
    const cls = r ? 'slot busy' : 'slot';
    if (s.cls !== cls) s.el.className = s.cls = cls;
    let label = `Slot ${i + 1}: idle`;
    if (r) {
      label = `Slot ${i + 1}: ${str(r.test) || 'a test'} (run ${str(r.run)})`;
      if (num(r.since_ms) !== null) label += `, running for ${fmtSecs(now - r.since_ms)}`;
    }
    if (s.label !== label) { s.label = s.el.title = label; s.el.setAttribute('aria-label', label); }
  });
}
function renderHeard(e) {
  const ago = num(e.data.heard_ms_ago);
  const age = ago === null ? null : ago + Date.now() - e.at;
  setText(e.heard, fmtSecs(age));
  e.heard.classList.toggle('stale', age > 30000);
}
function renderWorker(e) {
  const w = e.data, labels = fmtLabels(w.labels), cache = num(w.cache_bytes);
  const busy = num(w.busy) ?? arr(w.running).length, slots = int0(w.slots);
  setText(e.labels, labels);
  setAttr(e.labels, 'title', labels);
  // A draining worker (told to stop) finishes what it runs and takes nothing new.
  setText(e.busy, w.draining === true ? `${busy}/${slots} draining` : `${busy}/${slots}`);
  setAttr(e.busy, 'title', w.draining === true ? 'draining: it takes no new tests' : '');
  renderHeard(e);
  setText(e.cache, fmtBytes(cache));
  setAttr(e.slotBox, 'aria-label', `Slots of ${e.name}: ${busy} of ${slots} busy`);
  renderSlots(e, serverNow());
}
function upsertWorker(w, at) {
  const name = isObj(w) ? str(w.name) : '';
  if (!name) return;
  let e = S.workers.get(name);
  if (!e) { // keep the rows sorted by name
    e = makeWorker(name);
    S.workers.set(name, e);
    const order = S.workerOrder;
    let lo = 0, hi = order.length;
    while (lo < hi) { const m = (lo + hi) >> 1; if (order[m] < name) lo = m + 1; else hi = m; }
    fleetBody.insertBefore(e.tr, lo < order.length ? S.workers.get(order[lo]).tr : null);
    order.splice(lo, 0, name);
  }
  e.data = w;
  e.at = at;
  renderWorker(e);
}
function removeWorker(name) {
  const e = S.workers.get(name);
  if (e) { e.tr.remove(); S.workers.delete(name); S.workerOrder.splice(S.workerOrder.indexOf(name), 1); }
}

// --- runs
const runList = $('run-list');
function makeRun(id) {
  const e = {id, data: {}, at: 0, counts: {}};
  e.btn = h('button.run-title', {type: 'button', 'aria-pressed': 'false'}, h('span.run-id', `#${id}`), ' ', e.label = h('span'));
  const dl = h('dl.counts');
  for (const k of COUNTS) dl.append(h(`div.count.${stCls(k)}`, null, h('dt', words(k)), e.counts[k] = h('dd', {data: {count: k}, text: '0'})));
  e.li = h('li.run', {data: {run: id}, onclick: () => selectRun(id, true)},
    h('div.run-head', null, e.btn, e.state = h('span.badge'), e.client = h('span.run-client.muted'),
      e.times = h('span.run-times.muted'), e.eta = h('span.eta')),
    h('div.run-prog', null, e.progress = h('progress', {max: '1', value: '0'}), e.progText = h('span.prog-text'),
      e.active = h('span.run-active')), dl, e.summary = h('p.summary'));
  return e;
}
function renderRunTimes(e) {
  const r = e.data, st = num(r.started_ms), en = num(r.ended_ms), eta = num(r.eta_ms);
  let t = '';
  if (st !== null) t = `started ${fmtClock(st)}, ` + (en !== null ? `took ${fmtSecs(en - st)}` : `${fmtSecs(serverNow() - st)} so far`);
  setText(e.times, t);
  const showEta = eta !== null && str(r.state) !== 'done';
  setText(e.eta, showEta ? `ETA ${fmtSecs(Math.max(0, eta - (Date.now() - e.at)))}` : '');
  e.eta.hidden = !showEta;
}
function renderRun(e) {
  const r = e.data, state = str(r.state) || 'unknown', tests = int0(r.tests), fin = int0(r.finished);
  setText(e.label, str(r.label));
  setText(e.state, state);
  e.state.className = `badge state-${state.replace(/[^a-z]/g, '')}`;
  setText(e.client, str(r.client));
  e.progress.max = Math.max(1, tests);
  e.progress.value = Math.min(fin, Math.max(1, tests));
  setAttr(e.progress, 'aria-label', `Run ${e.id}: ${fin} of ${tests} tests finished`);
  const pct = tests ? Math.floor((fin / tests) * 100) : state === 'done' ? 100 : 0;
  setText(e.progText, `${fin} / ${tests} finished (${pct}%)`);
  const act = [];
  if (num(r.running)) act.push(`${r.running} running`);
  if (num(r.queued)) act.push(`${r.queued} queued`);
  setText(e.active, act.join(' · '));
  const c = isObj(r.counts) ? r.counts : {};
  for (const k of COUNTS) {
    const v = int0(c[k]);
    setText(e.counts[k], String(v));
    e.counts[k].parentElement.classList.toggle('zero', v === 0);
  }
  setText(e.summary, str(r.summary));
  renderRunTimes(e);
}
// Held runs (oldest first), then at most 20 ended ones (newest first).
function orderRuns() {
  const done = (e) => str(e.data.state) === 'done';
  const es = [...S.runs.values()].sort((a, b) => {
    if (done(a) !== done(b)) return done(a) ? 1 : -1;
    const sa = num(a.data.started_ms) ?? 0, sb = num(b.data.started_ms) ?? 0;
    if (done(a)) return (num(b.data.ended_ms) ?? 0) - (num(a.data.ended_ms) ?? 0) || sb - sa;
    return sa - sb || a.order - b.order;
  });
  let ended = 0;
  for (const e of es) {
    if (done(e) && ++ended > 20 && e.id !== S.selected) { e.li.remove(); S.runs.delete(e.id); }
  }
  const ids = es.filter((e) => S.runs.has(e.id)).map((e) => e.id);
  if (ids.join('\n') !== S.runOrder.join('\n')) {
    S.runOrder = ids;
    runList.append(...ids.map((id) => S.runs.get(id).li));
  }
  $('runs-empty').hidden = ids.length > 0;
}
let runCounter = 0;
function upsertRun(r, at) { // the previous state: '' when new, null when not a run
  if (!isObj(r) || r.id === undefined || r.id === null) return null;
  const id = str(r.id);
  let e = S.runs.get(id);
  const prev = e ? str(e.data.state) : '';
  if (!e) {
    S.runs.set(id, e = makeRun(id));
    e.order = runCounter++;
    runList.append(e.li);
  }
  e.data = r;
  e.at = at;
  renderRun(e);
  return prev;
}
// Unless the user chose one: the first running run, else the newest.
function autoSelect() {
  if (S.userSelected && S.runs.has(S.selected)) return;
  let pick = S.runOrder.find((id) => str(S.runs.get(id).data.state) === 'running') ?? null;
  if (pick === null) {
    let best = -Infinity;
    for (const id of S.runOrder) {
      const st = num(S.runs.get(id).data.started_ms) ?? 0;
      if (st > best) { best = st; pick = id; }
    }
  }
  if (pick !== S.selected) selectRun(pick, false);
}
function selectRun(id, byUser) {
  if (byUser) S.userSelected = true;
  const changed = id !== S.selected;
  S.selected = id;
  for (const e of S.runs.values()) {
    const on = e.id === id;
    e.li.classList.toggle('selected', on);
    if (on) e.li.setAttribute('aria-current', 'true'); else e.li.removeAttribute('aria-current');
    setAttr(e.btn, 'aria-pressed', on);
  }
  if (!changed) return;
  const e = id !== null ? S.runs.get(id) : null;
  setText($('tests-run'), e ? `run #${id} ${str(e.data.label)}` : '');
  setText($('tests-caption'), e ? `Tests of run ${id}` : 'No run selected');
  T.offset = 0;
  T.lastText = '';
  loadTests();
  TL.spans = [];
  TL.run = id;
  if (id !== null) { loadRunFailures(id); loadTimeline(id); }
  drawSoon(true);
}

// --- failures
const failList = $('failure-list');
const failMap = new Map();
function addFailure(f, atTop) {
  if (!isObj(f) || f.run === undefined || f.index === undefined) return;
  const run = str(f.run), index = str(f.index), name = str(f.name) || `test ${index}`;
  const key = run + '\n' + index, old = failMap.get(key);
  if (old && !atTop) return; // already listed: keep its place
  const li = h('li.failure', {data: {run, index}},
    h('button.link.fail-name', {type: 'button', text: name, onclick: () => openOutput(run, index, name)}), ' ',
    h(`span.badge.${stCls(f.status || 'failed')}`, str(f.result) || str(f.status) || 'FAIL'), ' ',
    h('span.reason', str(f.reason)), ' ', h('span.muted.fail-run', `run #${run}`));
  if (old) old.remove();
  failMap.set(key, li);
  if (atTop) failList.prepend(li); else failList.append(li);
  while (failList.children.length > MAX_FAILURES) {
    const last = failList.lastElementChild;
    failMap.delete(last.dataset.run + '\n' + last.dataset.index);
    last.remove();
  }
  $('failures-empty').hidden = true;
}
async function loadRunFailures(run) {
  try {
    const d = await api(`/api/v1/runs/${enc(run)}/tests?status=failed,lost&limit=100`);
    for (const t of arr(isObj(d) ? d.tests : null)) if (isObj(t)) addFailure({...t, run}, false);
  } catch (e) { reportError(e); }
}
let failuresMore = 0;
function noteFailuresMore(n) {
  if (!n) return;
  $('failures-more').hidden = false;
  setText($('failures-more'), `${failuresMore += n} more failures were not listed live; the Tests table has them all.`);
}

// --- output
let outSeq = 0;
async function openOutput(run, index, name) {
  const seq = ++outSeq, box = $('output-body');
  const title = h('h3.out-title', {tabindex: '-1', text: name || `test ${index}`});
  const show = (...kids) => { // keeps the focused heading
    if (title.parentNode !== box) box.replaceChildren(title);
    while (title.nextSibling) title.nextSibling.remove();
    box.append(...kids);
  };
  show(h('p.muted', `run #${run} · loading…`));
  box.closest('section').scrollIntoView({block: 'nearest'});
  title.focus({preventScroll: true});
  let d;
  try {
    d = await api(`/api/v1/runs/${enc(run)}/tests/${enc(index)}/output`);
  } catch (e) {
    if (seq !== outSeq) return;
    reportError(e);
    return show(h('p.error-inline', `Could not load the output: ${e.message || e}`));
  }
  if (seq !== outSeq) return;
  if (!isObj(d)) d = {};
  setText(title, str(d.name) || name || `test ${index}`);
  const meta = [`run #${str(d.run) || run}`, `index ${str(d.index ?? index)}`, d.status && `status ${str(d.status)}`,
    d.result && `result ${str(d.result)}`, str(d.reason)];
  const kids = [h('p.muted.out-meta', meta.filter(Boolean).join(' · '))];
  if (d.message) kids.push(h('p.out-message', str(d.message)));
  const atts = arr(d.attempts).filter(isObj);
  if (!atts.length) kids.push(h('p.empty', 'No finished attempt yet.'));
  for (const a of atts) {
    const bits = [`Attempt ${str(a.attempt) || '?'}`, num(a.iteration) > 1 && `iteration ${a.iteration}`, str(a.result),
      a.worker && `on ${str(a.worker)}`, num(a.duration_ms) !== null && fmtDur(a.duration_ms), a.retried && 'retried'];
    const div = h('div.attempt', null, h('h4', bits.filter(Boolean).join(' · ')));
    if (a.kept === false) div.append(h('p.not-kept', 'output not kept'));
    else {
      for (const k of ['stdout', 'stderr']) {
        const text = str(a[k]);
        div.append(h('p.stream-label', k), h(text ? 'pre.output' : 'pre.output.empty-out',
          {tabindex: '0', 'aria-label': `${k} of attempt ${str(a.attempt)}`, text}));
      }
    }
    kids.push(div);
  }
  show(...kids);
}

// --- tests table
const T = {offset: 0, limit: 100, status: '', q: '', total: 0, seq: 0, inflight: false, dirty: false, lastText: ''};
const testsBody = $('tests-body');
const testsMessage = (text) => testsBody.replaceChildren(h('tr', null, h('td.empty', {colspan: '7', text})));
function setRange(text, prev, next) {
  setText($('tests-range'), text);
  $('tests-prev').disabled = !prev;
  $('tests-next').disabled = !next;
}
async function loadTests() {
  const run = S.selected;
  if (run === null) { testsMessage('No run selected.'); setRange('–', false, false); return; }
  const seq = ++T.seq;
  let q = `offset=${T.offset}&limit=${T.limit}`;
  if (T.status) q += `&status=${T.status}`;
  if (T.q) q += `&q=${enc(T.q)}`;
  T.inflight = true;
  let d;
  try {
    d = await api(`/api/v1/runs/${enc(run)}/tests?${q}`);
  } catch (e) {
    if (seq === T.seq) { reportError(e); testsMessage('Could not load the tests.'); }
    return;
  } finally {
    if (seq === T.seq) {
      T.inflight = false;
      if (T.dirty) { T.dirty = false; refreshTests(); }
    }
  }
  if (seq !== T.seq || run !== S.selected || !isObj(d)) return;
  const total = T.total = int0(d.total);
  if (T.offset > 0 && T.offset >= total) { // the list shrank under us
    T.offset = Math.max(0, Math.floor((total - 1) / T.limit) * T.limit);
    return loadTests();
  }
  const rows = arr(d.tests).filter(isObj);
  setRange(total ? `${rows.length ? T.offset + 1 : 0}–${T.offset + rows.length} of ${total}` : 'no tests match',
    T.offset > 0, T.offset + T.limit < total);
  const text = JSON.stringify(rows);
  if (text === T.lastText) return; // this page did not change
  T.lastText = text;
  const focused = document.activeElement;
  const refocus = focused && testsBody.contains(focused) ? focused.closest('tr').dataset.index : undefined;
  if (!rows.length) return testsMessage(total ? 'No tests on this page.' : 'No tests match.');
  testsBody.replaceChildren(...rows.map((t) => {
    const index = str(t.index), name = str(t.name) || `test ${index}`, status = str(t.status);
    return h('tr', {data: {index, status}},
      h('td.c-name', null, h('button.link', {type: 'button', text: name, onclick: () => openOutput(run, index, name)})),
      h('td', null, h(`span.badge.${stCls(status)}`, words(status) || '–')),
      h('td.c-result', str(t.result), t.reason ? h('span.reason', str(t.reason)) : null),
      h('td.num', fmtDur(t.duration_ms)),
      h('td', str(t.worker) || '–'),
      h('td.num', str(num(t.attempt) ?? '–')),
      h('td.num', num(t.peak_rss_kb) !== null ? fmtBytes(t.peak_rss_kb * 1024) : '–'));
  }));
  if (refocus !== undefined) testsBody.querySelector(`tr[data-index="${CSS.escape(refocus)}"] button`)?.focus({preventScroll: true});
}
const refreshThrottled = throttle(() => loadTests(), 1000);
function refreshTests() { // at most one request a second, never two at once
  if (T.inflight) T.dirty = true; else refreshThrottled();
}
$('status-filter').addEventListener('change', (ev) => {
  T.status = ev.target.value.replace(/[^a-z_,]/g, '');
  T.offset = 0;
  loadTests();
});
let searchTimer = 0;
$('test-search').addEventListener('input', (ev) => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => { if (T.q !== ev.target.value) { T.q = ev.target.value; T.offset = 0; loadTests(); } }, 300);
});
$('tests-prev').addEventListener('click', () => { if (T.offset > 0) { T.offset = Math.max(0, T.offset - T.limit); loadTests(); } });
$('tests-next').addEventListener('click', () => { if (T.offset + T.limit < T.total) { T.offset += T.limit; loadTests(); } });

// --- timeline
const TL = {spans: [], run: null, seq: 0};
const canvas = $('timeline-canvas'), tlBox = $('timeline-box');
function normSpan(s) {
  if (!isObj(s) || num(s.start_ms) === null || num(s.end_ms) === null) return null;
  return {w: str(s.worker), lane: int0(s.lane), test: str(s.test), a: s.start_ms, b: Math.max(s.start_ms, s.end_ms), st: str(s.status)};
}
const spanKey = (s) => `${s.w}\n${s.lane}\n${s.a}`;
function keepSpans() { if (TL.spans.length > MAX_SPANS) TL.spans.splice(0, TL.spans.length - MAX_SPANS); }
function addSpans(list) { // the selected run's only
  const before = TL.spans.length;
  for (const s of list) if (isObj(s) && str(s.run) === TL.run) { const n = normSpan(s); if (n) TL.spans.push(n); }
  if (TL.spans.length !== before) { keepSpans(); drawSoon(); }
}
async function loadTimeline(run) {
  const seq = ++TL.seq;
  let d;
  try { d = await api(`/api/v1/runs/${enc(run)}/timeline?since_ms=0`); } catch (e) { if (seq === TL.seq) reportError(e); return; }
  if (seq !== TL.seq || run !== TL.run || !isObj(d)) return;
  const got = arr(d.spans).map(normSpan).filter(Boolean).sort((x, y) => x.b - y.b);
  const keys = new Set(got.map(spanKey));
  TL.spans = got.concat(TL.spans.filter((s) => !keys.has(spanKey(s)))); // + live ones meanwhile
  keepSpans();
  drawSoon(true);
}
const reloadTimeline = throttle(() => { if (TL.run !== null) loadTimeline(TL.run); }, 5000);
// At most one redraw a second; `now` skips the wait.
let drawQueued = false, drawTimer = 0, lastDraw = 0;
function drawSoon(now) {
  if (drawQueued) return;
  const wait = now ? 0 : lastDraw + 1000 - Date.now();
  if (wait > 0) {
    if (!drawTimer) drawTimer = setTimeout(() => { drawTimer = 0; drawSoon(true); }, wait);
    return;
  }
  clearTimeout(drawTimer);
  drawTimer = 0;
  drawQueued = true;
  requestAnimationFrame(() => { drawQueued = false; lastDraw = Date.now(); drawTimeline(); });
}
let hatch = null;
function drawTimeline() {
  const ctx = canvas.getContext('2d'), cssW = Math.max(200, tlBox.clientWidth);
  if (!ctx) return;
  const e = TL.run !== null ? S.runs.get(TL.run) : null;
  const cs = getComputedStyle(document.body), css = (n) => cs.getPropertyValue(n).trim() || '#888';
  const col = {};
  for (const k of FILLS) col[k] = css(`--fill-${k}`);
  const fg = css('--fg'), muted = css('--muted');
  if (!e) { ctx.clearRect(0, 0, canvas.width, canvas.height); return setText($('timeline-summary'), 'No run selected.'); }
  const r = e.data, now = serverNow(), live = str(r.state) !== 'done';
  // x: the whole run when it is done, else its last 5 minutes; at least 30 s from its start
  let end = num(r.ended_ms) ?? now, start = num(r.started_ms) ?? end - WINDOW_MS;
  if (live && end - start > WINDOW_MS) start = end - WINDOW_MS;
  if (end - start < 30000) end = start + 30000;
  // rows: the lanes of every worker with a span or a running test of this run
  const lanes = new Map();
  const lane = (w, n) => {
    let L = lanes.get(w);
    if (!L) lanes.set(w, L = {n: 1, laneEnd: []});
    L.n = Math.max(L.n, n);
    return L;
  };
  for (const s of TL.spans) {
    const L = lane(s.w, s.lane + 1);
    if (!(L.laneEnd[s.lane] >= s.b)) L.laneEnd[s.lane] = s.b;
  }
  const running = [];
  for (const we of S.workers.values()) {
    const all = arr(we.data.running), mine = all.filter((x) => isObj(x) && str(x.run) === TL.run);
    if (!mine.length && !lanes.has(we.name)) continue;
    lane(we.name, Math.max(int0(we.data.slots), all.length));
    for (const x of mine) running.push({w: we.name, test: str(x.test), a: num(x.since_ms) ?? now});
  }
  const names = [...lanes.keys()].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const base = new Map();
  let total = 0;
  for (const n of names) { base.set(n, total); total += lanes.get(n).n; }
  const rowH = total <= 40 ? 12 : Math.max(0.25, Math.min(12, 480 / total));
  const gutter = 86, top = 4, plotW = cssW - gutter - 8, plotH = Math.max(12, total * rowH);
  const cssH = Math.ceil(top + plotH + 22), dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(cssW * dpr) || canvas.height !== Math.round(cssH * dpr)) {
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
  }
  canvas.style.height = cssH + 'px';
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssW, cssH);
  const X = (t) => gutter + ((t - start) / (end - start)) * plotW;
  const xr = (t) => Math.round(Math.min(gutter + plotW, Math.max(gutter, X(t))));
  const gap = rowH >= 4 ? 1 : 0;
  const laneY = (w, l) => { // whole pixels: no anti-aliasing
    const i = base.get(w) + l, y0 = Math.round(top + i * rowH);
    return [y0, Math.max(1, Math.round(top + (i + 1) * rowH) - gap - y0)];
  };
  ctx.font = '11px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  const every = Math.max(1, Math.ceil(13 / Math.max(0.1, (total / Math.max(1, names.length)) * rowH)));
  names.forEach((n, i) => { // worker bands, named (every few when dense)
    const y = top + base.get(n) * rowH, hgt = lanes.get(n).n * rowH;
    if (i % 2) { ctx.fillStyle = css('--band'); ctx.fillRect(gutter, y, plotW, hgt); }
    if (hgt >= 10 || i % every === 0) { ctx.fillStyle = fg; ctx.fillText(n, 2, y + Math.min(hgt, 12) / 2, gutter - 8); }
  });
  if (!hatch) {
    const p = h('canvas', {width: 6, height: 6}), c = p.getContext('2d');
    c.strokeStyle = 'rgba(0,0,0,0.55)';
    c.lineWidth = 1.5;
    c.beginPath(); c.moveTo(0, 6); c.lineTo(6, 0); c.stroke();
    hatch = ctx.createPattern(p, 'repeat');
  }
  // finished attempts: one path per status; failed and lost also hatched
  const buckets = new Map(), counts = {};
  let shown = 0;
  for (const s of TL.spans) {
    if (s.b < start || s.a > end) continue;
    shown++;
    counts[s.st] = (counts[s.st] || 0) + 1;
    if (!buckets.has(s.st)) buckets.set(s.st, []);
    buckets.get(s.st).push(s);
  }
  for (const [st, list] of buckets) {
    ctx.beginPath();
    for (const s of list) {
      const [y, hh] = laneY(s.w, s.lane), x0 = xr(s.a);
      ctx.rect(x0, y, Math.max(1, xr(s.b) - x0), hh);
    }
    ctx.fillStyle = col[st] || muted;
    ctx.fill();
    if ((st === 'failed' || st === 'lost') && rowH >= 5 && hatch) { ctx.fillStyle = hatch; ctx.fill(); }
  }
  // running tests: open-ended bars up to now, each on a lane that was free when it started
  running.sort((x, y) => x.a - y.a);
  const used = new Map(), xNow = xr(now);
  ctx.beginPath();
  for (const x of running) {
    const L = lanes.get(x.w), u = used.get(x.w) || new Set();
    used.set(x.w, u);
    let l = -1;
    for (let i = 0; i < L.n && l < 0; i++) if (!u.has(i) && !(L.laneEnd[i] > x.a + 50)) l = i;
    for (let i = 0; i < L.n && l < 0; i++) if (!u.has(i)) l = i;
    u.add(x.lane = Math.max(0, l));
    const [y, hh] = laneY(x.w, x.lane), x0 = xr(x.a);
    ctx.rect(x0, y, Math.max(1, xNow - x0), hh);
  }
  ctx.fillStyle = col.running;
  ctx.globalAlpha = 0.6;
  ctx.fill();
  ctx.globalAlpha = 1;
  // time axis, and a dashed line at now
  const axisY = top + plotH + 0.5;
  ctx.strokeStyle = ctx.fillStyle = muted;
  ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(gutter, axisY); ctx.lineTo(gutter + plotW, axisY); ctx.stroke();
  const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400]
    .map((s) => s * 1000).find((s) => (s / (end - start)) * plotW >= 80) || 86400000;
  ctx.textBaseline = 'top';
  ctx.textAlign = 'center';
  for (let t = Math.ceil(start / step) * step; t <= end; t += step) {
    const x = Math.round(X(t)) + 0.5;
    ctx.beginPath(); ctx.moveTo(x, axisY); ctx.lineTo(x, axisY + 4); ctx.stroke();
    ctx.fillText(fmtClock(t), Math.min(Math.max(x, gutter + 24), gutter + plotW - 24), axisY + 6);
  }
  ctx.textAlign = 'left';
  if (live) {
    ctx.strokeStyle = fg;
    ctx.setLineDash([3, 3]);
    ctx.beginPath(); ctx.moveTo(xNow + 0.5, top); ctx.lineTo(xNow + 0.5, axisY); ctx.stroke();
    ctx.setLineDash([]);
  }
  const parts = Object.keys(counts).sort().map((k) => `${counts[k]} ${words(k)}`);
  setText($('timeline-summary'), `Run #${TL.run}, ${fmtClock(start)}–${fmtClock(end)}: ${shown} finished attempts shown` +
    (parts.length ? ` (${parts.join(', ')})` : '') + `, ${running.length} running, on ${names.length} workers (${total} slots).` +
    (TL.spans.length >= MAX_SPANS ? ` Only the last ${MAX_SPANS} attempts are kept.` : ''));
  setAttr(canvas, 'aria-label', `Timeline of run ${TL.run}`);
}
if (window.ResizeObserver) new ResizeObserver(() => drawSoon(true)).observe(tlBox);
for (const k of FILLS) {
  $('timeline-legend').append(h('span.key', null, h(`span.swatch.fill-${k}`, {'aria-hidden': 'true'}), words(k)));
}

// --- history
const HIST = {on: null, seq: 0, trendSeq: 0};
function setHistory(on) {
  HIST.on = on;
  $('history-body').hidden = !on;
  $('history-note').hidden = on;
  if (on) loadFlaky(); else setText($('history-note'), 'This testfarm keeps no run history.');
}
async function loadFlaky() {
  const seq = ++HIST.seq;
  let d;
  try { d = await api('/api/v1/history/flaky?days=30&limit=50'); } catch (e) { if (seq === HIST.seq) reportError(e); return; }
  if (seq !== HIST.seq) return;
  const rows = arr(isObj(d) ? d.tests : null).filter(isObj), now = serverNow();
  if (!rows.length) return $('flaky-body').replaceChildren(h('tr', null, h('td.empty', {colspan: '4', text: 'No flaky tests.'})));
  $('flaky-body').replaceChildren(...rows.map((t) => {
    const name = str(t.test), rate = num(t.flake_rate), seen = num(t.last_seen_ms);
    return h('tr', {data: {test: name}},
      h('th', {scope: 'row'}, h('button.link', {type: 'button', text: name, onclick: () => { $('trend-test').value = name; loadTrend(name); }})),
      h('td.num', rate === null ? '–' : `${(rate * 100).toFixed(1)}%`),
      h('td.num', `${str(num(t.flaky_runs) ?? '–')}/${str(num(t.runs) ?? '–')}`),
      h('td', {title: seen === null ? null : new Date(seen).toLocaleString(), text: seen === null ? '–' : `${fmtSecs(now - seen)} ago`}));
  }));
}
const refreshFlaky = throttle(() => { if (HIST.on) loadFlaky(); }, 3000);
$('trend-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = $('trend-test').value.trim();
  if (name) loadTrend(name);
});
async function loadTrend(name) {
  const seq = ++HIST.trendSeq, box = $('trend-body');
  box.replaceChildren(h('p.muted', `Loading the trend of ${name}…`));
  let d;
  try {
    d = await api(`/api/v1/history/trend?test=${enc(name)}&days=30`);
  } catch (e) {
    if (seq !== HIST.trendSeq) return;
    reportError(e);
    return box.replaceChildren(h('p.error-inline', `Could not load the trend: ${e.message || e}`));
  }
  if (seq !== HIST.trendSeq) return;
  const days = arr(isObj(d) ? d.days : null).filter(isObj), title = h('h3.trend-title', name);
  if (!days.length) return box.replaceChildren(title, h('p.empty', 'No history for this test in the last 30 days.'));
  box.replaceChildren(title,
    chart({id: 'trend-duration', title: `Duration per day of ${name}`, days, yTitle: 'duration', fmt: fmtDur,
      series: [{key: 'max_ms', label: 'max', bar: true, cls: 'c-max'}, {key: 'mean_ms', label: 'mean', cls: 'c-mean'}],
      tip: (x) => `${str(x.day)}: mean ${fmtDur(x.mean_ms)}, max ${fmtDur(x.max_ms)} (${int0(x.attempts)} attempts)`}),
    chart({id: 'trend-fail', title: `Fail rate per day of ${name}`, days, max: 1, yTitle: 'fail rate',
      series: [{key: 'fail_rate', label: 'fail rate', bar: true, cls: 'c-fail'}], fmt: (v) => `${Math.round(v * 100)}%`,
      tip: (x) => `${str(x.day)}: ${int0(x.failed)} of ${int0(x.attempts)} attempts failed (${Math.round((num(x.fail_rate) ?? 0) * 100)}%)`}));
}
function svg(tag, attrs, ...kids) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const k of Object.keys(attrs)) if (k === 'text') e.textContent = attrs[k]; else e.setAttribute(k, String(attrs[k]));
  e.append(...kids);
  return e;
}
function chart(o) { // inline SVG: a bar or a point per day
  const W = 460, H = 190, ml = 56, mt = 10, pw = W - ml - 8, ph = H - mt - 40, n = o.days.length;
  let max = o.max || 0;
  if (!max) for (const x of o.days) for (const s of o.series) max = Math.max(max, num(x[s.key]) ?? 0);
  if (!o.max) { // a round top
    const p = Math.pow(10, Math.floor(Math.log10(max || 1)));
    max = [1, 2, 2.5, 5, 10].map((m) => m * p).find((v) => v >= max) || 1;
  }
  const bw = pw / n, X = (i) => ml + bw * (i + 0.5);
  const Y = (v) => mt + ph - (Math.min(max, Math.max(0, num(v) ?? 0)) / max) * ph;
  const root = svg('svg', {viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': `${o.id}-t`, class: 'chart', id: o.id},
    svg('title', {id: `${o.id}-t`, text: `${o.title}, ${str(o.days[0].day)} to ${str(o.days[n - 1].day)}`}));
  for (const f of [0, 0.5, 1]) {
    root.append(svg('line', {x1: ml, x2: ml + pw, y1: Y(max * f), y2: Y(max * f), class: 'grid'}),
      svg('text', {x: ml - 4, y: Y(max * f) + 4, 'text-anchor': 'end', class: 'tick', text: o.fmt(max * f)}));
  }
  root.append(svg('line', {x1: ml, x2: ml + pw, y1: mt + ph, y2: mt + ph, class: 'axis'}),
    svg('line', {x1: ml, x2: ml, y1: mt, y2: mt + ph, class: 'axis'}),
    svg('text', {x: ml + pw / 2, y: H - 6, 'text-anchor': 'middle', class: 'tick', text: 'day (UTC)'}),
    svg('text', {x: 12, y: mt + ph / 2, 'text-anchor': 'middle', class: 'tick', transform: `rotate(-90 12 ${mt + ph / 2})`, text: o.yTitle}));
  for (const i of new Set([0, Math.floor((n - 1) / 2), n - 1])) {
    root.append(svg('text', {x: X(i), y: mt + ph + 14, 'text-anchor': 'middle', class: 'tick', text: str(o.days[i].day).slice(5)}));
  }
  for (const s of o.series) {
    if (!s.bar) root.append(svg('polyline', {points: o.days.map((x, i) => `${X(i).toFixed(1)},${Y(x[s.key]).toFixed(1)}`).join(' '), class: s.cls, fill: 'none'}));
    o.days.forEach((x, i) => {
      const tt = svg('title', {text: o.tip(x)}), y = Y(x[s.key]);
      root.append(s.bar ? svg('rect', {x: X(i) - bw * 0.38, y, width: Math.max(1, bw * 0.76), height: mt + ph - y, class: s.cls}, tt)
        : svg('circle', {cx: X(i), cy: y, r: 2.5, class: s.cls}, tt));
    });
  }
  const legend = o.series.map((s) => h('span.key', null, h(`span.swatch.${s.cls}`, {'aria-hidden': 'true'}), s.label));
  return h('figure.chart-fig', null, root, h('figcaption', null, o.title + ' ', ...legend));
}

// --- events
function applyState(d, snapshot) {
  const at = Date.now();
  if (isObj(d.farm)) setFarm(d.farm);
  const seen = new Set();
  for (const w of arr(d.workers)) { upsertWorker(w, at); if (isObj(w)) seen.add(str(w.name)); }
  if (snapshot) { for (const n of [...S.workers.keys()]) if (!seen.has(n)) removeWorker(n); }
  else for (const n of arr(d.removed_workers)) removeWorker(str(n));
  $('fleet-empty').hidden = S.workers.size > 0;
  let runDone = false, selChanged = false;
  seen.clear();
  for (const r of arr(d.runs)) {
    const prev = upsertRun(r, at);
    if (prev === null) continue;
    seen.add(str(r.id));
    if (str(r.state) === 'done' && prev !== 'done' && (prev !== '' || !snapshot)) runDone = true;
    if (str(r.id) === S.selected) selChanged = true;
  }
  if (snapshot) for (const [id, e] of [...S.runs]) if (!seen.has(id)) { e.li.remove(); S.runs.delete(id); }
  if (!snapshot) for (const id of arr(d.removed_runs)) {
    const e = S.runs.get(str(id));
    if (e && str(id) !== S.selected) { e.li.remove(); S.runs.delete(str(id)); }
  }
  orderRuns();
  const before = S.selected;
  autoSelect();
  if (S.selected !== null && S.selected === before) {
    if (snapshot && S.ready) { loadTimeline(S.selected); loadRunFailures(S.selected); refreshTests(); } // reconnected
    else if (selChanged) refreshTests();
  }
  for (const f of arr(d.failures)) addFailure(f, true);
  noteFailuresMore(int0(d.failures_more));
  addSpans(arr(d.spans));
  if (int0(d.spans_more)) reloadTimeline();
  if (runDone) refreshFlaky();
  drawSoon();
  if (num(d.version) !== null) document.body.dataset.version = String(d.version);
  if (snapshot && HIST.on === null && !(isObj(d.farm) && typeof d.farm.history === 'boolean')) setHistory(false);
  if (snapshot && !S.ready) { S.ready = true; document.body.dataset.ready = '1'; }
}
function handleEvent(type, text) {
  if (type !== 'snapshot' && type !== 'update') return;
  let d;
  try { d = JSON.parse(text); } catch (e) { return showError(`bad ${type} event from /api/v1/events: ${e.message}`); }
  if (!isObj(d)) return;
  try { applyState(d, type === 'snapshot'); } catch (e) { showError(`could not apply a ${type} event: ${e.message}`); console.error(e); }
}
// Reads text/event-stream; aborts after 45 s of silence.
async function readEvents(body, ctl, onEvent) {
  const reader = body.getReader(), dec = new TextDecoder(), re = /\r\n|\r|\n/g;
  let buf = '', scan = 0, type = '', data = [], watchdog = 0;
  const kick = () => { clearTimeout(watchdog); watchdog = setTimeout(() => ctl.abort(), 45000); };
  const line = (l) => {
    if (l === '') {
      if (data.length) onEvent(type || 'message', data.join('\n'));
      type = ''; data = [];
    } else if (l[0] !== ':') { // not a comment (keep-alive)
      const c = l.indexOf(':'), field = c < 0 ? l : l.slice(0, c);
      let val = c < 0 ? '' : l.slice(c + 1);
      if (val[0] === ' ') val = val.slice(1);
      if (field === 'event') type = val; else if (field === 'data') data.push(val);
    }
  };
  kick();
  try {
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      kick();
      buf += dec.decode(value, {stream: true});
      re.lastIndex = scan;
      let pos = 0, m;
      while ((m = re.exec(buf))) {
        if (m[0] === '\r' && m.index === buf.length - 1) break; // maybe half a CRLF
        line(buf.slice(pos, m.index));
        pos = re.lastIndex;
      }
      buf = buf.slice(pos);
      scan = Math.max(0, buf.length - 1);
    }
  } finally {
    clearTimeout(watchdog);
    reader.cancel().catch(() => {});
  }
}
async function streamLoop() {
  let delay = 1000;
  for (;;) {
    const ctl = new AbortController();
    let reason = 'the stream ended';
    try {
      setConn(S.ready ? 'reconnecting' : 'connecting', S.ready ? 'reconnecting…' : 'connecting…');
      const sent = token;
      const res = await fetch('/api/v1/events', {headers: {Accept: 'text/event-stream', ...authHeaders()}, signal: ctl.signal, cache: 'no-store'});
      if (res.status === 401) {
        const msg = await errorText(res);
        setConn('auth', 'access token needed');
        await needToken(sent, msg);
        continue;
      }
      if (!res.ok || !res.body) {
        reason = res.ok ? 'this browser cannot read a stream' : `${await errorText(res)} (HTTP ${res.status})`;
        showError(`/api/v1/events: ${reason}`); // e.g. 503, retried below
      } else {
        await readEvents(res.body, ctl, (type, text) => {
          if (type === 'snapshot') { delay = 1000; setConn('live', 'live'); }
          handleEvent(type, text);
        });
        if (ctl.signal.aborted) reason = 'no data for 45 s';
      }
    } catch (e) {
      reason = ctl.signal.aborted ? 'no data for 45 s' : (e && e.message) || String(e);
    }
    ctl.abort();
    const wait = Math.round(delay * (0.75 + Math.random() * 0.5));
    delay = Math.min(delay * 2, 30000);
    setConn('reconnecting', `disconnected — retrying in ${Math.max(1, Math.round(wait / 1000))} s`, reason);
    await sleep(wait);
  }
}

// --- a clock: redraws, never fetches
let ticks = 0;
function tick() {
  if (document.hidden) return;
  const now = serverNow(), slots = ++ticks % 2 === 0;
  for (const e of S.workers.values()) {
    renderHeard(e);
    if (slots && arr(e.data.running).length) renderSlots(e, now);
  }
  for (const e of S.runs.values()) renderRunTimes(e);
  const sel = S.runs.get(S.selected);
  if (sel && str(sel.data.state) !== 'done') drawSoon();
}
setInterval(tick, 1000);
document.addEventListener('visibilitychange', tick);

testsMessage('No run selected.');
api('/api/v1/farm').then(setFarm, reportError);
streamLoop();
