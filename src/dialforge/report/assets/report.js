/* dialforge report: browse every dialogue and strategy of the embedded data.
   Data goes into the page only through textContent / attributes, never as markup.
   State lives in the URL hash (#q=...&sim=...&reason=...&strategy=...&metric=...&min=...&max=...&sort=...),
   applied on load, so a view can be linked and tests can drive it. */
(function () {
  'use strict';
  var D = null;
  var PAGE = 100;
  var KEYS = ['q', 'sim', 'reason', 'strategy', 'metric', 'min', 'max', 'sort'];
  var SHOWN_METRICS = ['mtld', 'distinct_1', 'follow_up_rate', 'judge_mean', 'workflow_depth'];
  var state = {};
  var view = [];
  var shown = 0;
  var cols = [];
  var stratSort = {key: 'size', desc: true};

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function fmt(v, digits) {
    if (typeof v !== 'number' || !isFinite(v)) { return '\u2014'; }
    var r = Number(v.toFixed(digits));
    if (r === 0) { r = 0; }
    return r.toLocaleString('en-US', {minimumFractionDigits: digits, maximumFractionDigits: digits});
  }
  function cut(s, n) {
    s = String(s).replace(/\s+/g, ' ').trim();
    return s.length <= n ? s : s.slice(0, n - 1).trimEnd() + '\u2026';
  }
  function option(select, value, label) {
    var o = el('option', null, label);
    o.value = String(value);
    select.appendChild(o);
  }

  async function inflate(b64) {
    var bytes;
    if (Uint8Array.fromBase64) {
      bytes = Uint8Array.fromBase64(b64);
    } else {
      var bin = atob(b64);
      bytes = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    }
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Response(stream).text();
  }
  // The texts: one string T, messages separated by \x1e; ends[g] = where message g ends,
  // first[i] = conversation i's first message, owner[g] = the conversation of message g.
  var T = '';
  var ends = null;
  var first = null;
  var owner = null;
  var lowerT = null;
  var textReady = false;
  var textPromise = null;
  function indexTexts() {
    var n = 0;
    D.convs.forEach(function (c) { n += c[5].length; });
    ends = new Int32Array(n);
    owner = new Int32Array(n);
    first = new Int32Array(D.convs.length + 1);
    var pos = -1;
    var g = 0;
    D.convs.forEach(function (c, i) {
      first[i] = g;
      for (var k = 0; k < c[5].length; k++) {
        var e = T.indexOf('\x1e', pos + 1);
        ends[g] = e < 0 ? T.length : e;
        owner[g] = i;
        pos = ends[g];
        g++;
      }
    });
    first[D.convs.length] = g;
  }
  function text(g) { return T.substring(g === 0 ? 0 : ends[g - 1] + 1, ends[g]); }
  function messageAt(pos) {  // the message whose text holds offset pos (binary search)
    var lo = 0;
    var hi = ends.length - 1;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (ends[mid] < pos) { lo = mid + 1; } else { hi = mid; }
    }
    return lo;
  }
  function searchHits(q) {  // 1 for each conversation whose id or text holds q
    var hit = new Uint8Array(D.convs.length);
    D.convs.forEach(function (c, i) { if (c[1].toLowerCase().indexOf(q) >= 0) { hit[i] = 1; } });
    if (lowerT === null) { lowerT = T.toLowerCase(); }
    if (lowerT.length !== T.length) {  // lower-casing changed lengths: search message by message
      for (var g = 0; g < ends.length; g++) { if (text(g).toLowerCase().indexOf(q) >= 0) { hit[owner[g]] = 1; } }
      return hit;
    }
    var pos = lowerT.indexOf(q);
    while (pos >= 0) {
      var i = owner[messageAt(pos)];
      hit[i] = 1;
      pos = lowerT.indexOf(q, ends[first[i + 1] - 1] + 1);  // next conversation
    }
    return hit;
  }

  // -- dialogues --------------------------------------------------------------------------------
  function userTurns(c) {
    var n = 0;
    for (var i = 0; i < c[5].length; i++) { if (c[5][i] === 'u') { n++; } }
    return n;
  }
  function firstUser(i) { return D.convs[i][9] || '(no user turn)'; }
  function metricIndex(name) {
    for (var i = 0; i < D.metrics.length; i++) { if (D.metrics[i].name === name) { return i; } }
    return -1;
  }
  function sortValue(c, key) {
    if (key === 'sim') { return D.sims[c[0]]; }
    if (key === 'id') { return c[1]; }
    if (key === 'reason') { return D.reasons[c[2]]; }
    if (key === 'turns') { return userTurns(c); }
    var mi = metricIndex(key);
    return mi >= 0 ? c[4][mi] : null;
  }
  function matches(i, hits, mi, lo, hi) {
    var c = D.convs[i];
    if (state.sim !== '' && c[0] !== Number(state.sim)) { return false; }
    if (state.reason !== '' && c[2] !== Number(state.reason)) { return false; }
    if (state.strategy !== '' && c[3].indexOf(Number(state.strategy)) < 0) { return false; }
    if (mi >= 0 && (lo !== null || hi !== null)) {
      var v = c[4][mi];
      if (typeof v !== 'number') { return false; }
      if (lo !== null && v < lo) { return false; }
      if (hi !== null && v > hi) { return false; }
    }
    return hits === null || hits[i] === 1;
  }
  function num(s) { return s === '' || s === undefined || isNaN(Number(s)) ? null : Number(s); }
  function filter() {
    var q = (state.q || '').toLowerCase().trim();
    var mi = state.metric ? metricIndex(state.metric) : -1;
    var lo = num(state.min);
    var hi = num(state.max);
    if (q && !textReady) { view = []; return; }  // update() runs again once the texts are decoded
    var hits = q ? searchHits(q) : null;
    view = [];
    for (var i = 0; i < D.convs.length; i++) { if (matches(i, hits, mi, lo, hi)) { view.push(i); } }
    if (state.sort) {
      var desc = state.sort.charAt(0) === '-';
      var key = desc ? state.sort.slice(1) : state.sort;
      var vals = {};
      view.forEach(function (i) { vals[i] = sortValue(D.convs[i], key); });
      view.sort(function (a, b) {
        var x = vals[a];
        var y = vals[b];
        if (x === null || x === undefined) { return (y === null || y === undefined) ? a - b : 1; }
        if (y === null || y === undefined) { return -1; }
        if (x < y) { return desc ? 1 : -1; }
        if (x > y) { return desc ? -1 : 1; }
        return a - b;
      });
    }
  }
  function renderMessages(i) {
    var c = D.convs[i];
    var box = el('div', 'dialogue');
    c[5].split('').forEach(function (role, k) {
      var d = el('div', 'msg ' + role);
      d.appendChild(el('span', 'role', {u: 'user', a: 'assistant', s: 'system', t: 'tool'}[role] || 'other'));
      var extra = (c[7] || {})[String(k)] || {};
      var si = c[6] ? c[6][k] : -1;
      if (si >= 0) {
        var b = el('span', 'badge', cut(D.strategies[si].text, 80));
        b.title = D.strategies[si].id;
        d.appendChild(b);
      } else if (extra.label) {
        d.appendChild(el('span', 'badge', extra.label));
      }
      if (extra.step) { d.appendChild(el('span', 'badge step', 'step: ' + extra.step)); }
      if (extra.seed) { d.appendChild(el('span', 'badge seed', 'seed')); }
      d.appendChild(document.createTextNode(text(first[i] + k)));
      box.appendChild(d);
    });
    return box;
  }
  function toggle(tr, i) {
    if (!textReady) { textPromise.then(function () { toggle(tr, i); }); return; }
    var next = tr.nextSibling;
    if (next && next.className === 'open') { next.remove(); return; }
    var row = el('tr', 'open');
    var td = el('td');
    td.colSpan = cols.length + 6;
    td.appendChild(renderMessages(i));
    row.appendChild(td);
    tr.after(row);
  }
  function headerCell(label, key) {
    var th = el('th', 'sortable', label);
    if (state.sort === key) { th.className += ' asc'; }
    if (state.sort === '-' + key) { th.className += ' desc'; }
    th.addEventListener('click', function () {
      state.sort = state.sort === '-' + key ? key : '-' + key;
      update();
    });
    return th;
  }
  function renderHead() {
    var tr = el('tr');
    tr.appendChild(el('th', null, '#'));
    [['simulator', 'sim'], ['id', 'id']].forEach(function (h) { tr.appendChild(headerCell(h[0], h[1])); });
    tr.appendChild(el('th', null, 'first user turn'));
    tr.appendChild(headerCell('user turns', 'turns'));
    tr.appendChild(headerCell('ended', 'reason'));
    cols.forEach(function (mi) {
      var th = headerCell(D.metrics[mi].name, D.metrics[mi].name);
      th.title = D.metrics[mi].desc;
      tr.appendChild(th);
    });
    var head = $('dialogue-table').tHead;
    head.textContent = '';
    head.appendChild(tr);
  }
  function renderMore() {
    var body = $('dialogue-table').tBodies[0];
    var end = Math.min(shown + PAGE, view.length);
    var frag = document.createDocumentFragment();
    for (var k = shown; k < end; k++) {
      var i = view[k];
      var c = D.convs[i];
      var tr = el('tr', 'row');
      tr.setAttribute('data-id', c[1]);
      tr.appendChild(el('td', 'n', k + 1));
      tr.appendChild(el('td', null, D.sims[c[0]]));
      tr.appendChild(el('td', null, c[1]));
      tr.appendChild(el('td', 'first', firstUser(i)));
      tr.appendChild(el('td', 'n', userTurns(c)));
      tr.appendChild(el('td', null, D.reasons[c[2]]));
      cols.forEach(function (mi) { tr.appendChild(el('td', 'n', fmt(c[4][mi], D.metrics[mi].digits))); });
      tr.addEventListener('click', toggle.bind(null, tr, i));
      frag.appendChild(tr);
    }
    body.appendChild(frag);
    shown = end;
    $('more').hidden = shown >= view.length;
    $('more').textContent = 'show ' + Math.min(PAGE, view.length - shown) + ' more (' +
      (view.length - shown).toLocaleString('en-US') + ' not shown)';
  }
  function renderDialogues() {
    renderHead();
    $('dialogue-table').tBodies[0].textContent = '';
    shown = 0;
    renderMore();
    var waiting = state.q && !textReady;
    $('match-count').textContent = waiting ? '\u2026 (decoding the texts)' : view.length.toLocaleString('en-US');
    document.body.setAttribute('data-matches', waiting ? '' : String(view.length));
  }

  // -- strategies -------------------------------------------------------------------------------
  function usedTotal(s) {
    var n = 0;
    for (var k in s.used) { if (Object.prototype.hasOwnProperty.call(s.used, k)) { n += s.used[k]; } }
    return n;
  }
  function usedText(s) {
    var parts = [];
    for (var k in s.used) { if (Object.prototype.hasOwnProperty.call(s.used, k)) { parts.push(k + ': ' + s.used[k]); } }
    return parts.length ? parts.join(', ') : '\u2014';
  }
  function renderStrategies() {
    var table = $('strategy-table');
    if (!table) { return; }
    var q = $('strategy-search').value.toLowerCase().trim();
    var rows = [];
    D.strategies.forEach(function (s, i) {
      if (!q || (s.id + '\n' + s.text + '\n' + s.examples.join('\n')).toLowerCase().indexOf(q) >= 0) { rows.push(i); }
    });
    var key = stratSort.key;
    var val = function (i) {
      var s = D.strategies[i];
      return key === 'used' ? usedTotal(s) : s[key];
    };
    rows.sort(function (a, b) {
      var x = val(a);
      var y = val(b);
      var r = x < y ? -1 : (x > y ? 1 : a - b);
      return stratSort.desc ? -r : r;
    });
    var head = el('tr');
    [['id', 'id'], ['size', 'size'], ['members', 'members'], ['strategy', 'text'], ['example source turns', null],
      ['used (user turns)', 'used']].forEach(function (h) {
      var th = el('th', h[1] ? 'sortable' : null, h[0]);
      if (h[1]) {
        if (stratSort.key === h[1]) { th.className += stratSort.desc ? ' desc' : ' asc'; }
        th.addEventListener('click', function () {
          stratSort = {key: h[1], desc: stratSort.key === h[1] ? !stratSort.desc : true};
          renderStrategies();
        });
      }
      head.appendChild(th);
    });
    table.tHead.textContent = '';
    table.tHead.appendChild(head);
    var body = table.tBodies[0];
    body.textContent = '';
    var limit = Math.min(rows.length, 500);
    for (var k = 0; k < limit; k++) {
      var i = rows[k];
      var s = D.strategies[i];
      var tr = el('tr', String(i) === state.strategy ? 'sel' : null);
      tr.setAttribute('data-sid', s.id);
      tr.appendChild(el('td', null, s.id));
      tr.appendChild(el('td', 'n', s.size.toLocaleString('en-US')));
      tr.appendChild(el('td', 'n', s.members.toLocaleString('en-US')));
      tr.appendChild(el('td', null, s.text));
      var ul = el('ul', 'examples');
      s.examples.forEach(function (e) { ul.appendChild(el('li', null, e)); });
      var td = el('td');
      td.appendChild(ul);
      tr.appendChild(td);
      tr.appendChild(el('td', null, usedText(s)));
      tr.addEventListener('click', pickStrategy.bind(null, String(i)));
      body.appendChild(tr);
    }
    $('strategy-count').textContent = (limit < rows.length ? 'first ' + limit + ' of ' : '') +
      rows.length.toLocaleString('en-US') + ' of ' + D.strategies.length.toLocaleString('en-US') + ' strategies';
  }
  function pickStrategy(i) {
    state.strategy = state.strategy === i ? '' : i;
    update();
    renderStrategies();
  }
  function markMap() {
    var sid = state.strategy === '' ? null : D.strategies[Number(state.strategy)].id;
    document.querySelectorAll('circle.strategy').forEach(function (c) {
      c.classList.toggle('sel', c.getAttribute('data-sid') === sid);
    });
  }

  // -- state <-> controls <-> URL hash ------------------------------------------------------------
  function readHash() {
    var h = location.hash.replace(/^#/, '');
    if (h.indexOf('=') < 0) { return; }
    var p = new URLSearchParams(h);
    KEYS.forEach(function (k) { if (p.has(k)) { state[k] = p.get(k); } });
    if (p.has('sim') && isNaN(Number(state.sim))) { state.sim = String(D.sims.indexOf(state.sim)); }
    if (p.has('reason') && isNaN(Number(state.reason))) { state.reason = String(D.reasons.indexOf(state.reason)); }
    if (p.has('strategy') && isNaN(Number(state.strategy))) {
      state.strategy = String(D.strategies.findIndex(function (s) { return s.id === p.get('strategy'); }));
    }
  }
  function writeHash() {
    var p = new URLSearchParams();
    KEYS.forEach(function (k) { if (state[k]) { p.set(k, state[k]); } });
    var s = p.toString();
    history.replaceState(null, '', s ? '#' + s : location.pathname + location.search);
  }
  function toControls() { KEYS.forEach(function (k) { $(k).value = state[k]; }); }
  function update() {
    if (state.q && !textReady) { textPromise.then(update); }
    toControls();
    filter();
    renderDialogues();
    markMap();
    writeHash();
  }
  function fillControls() {
    D.sims.forEach(function (s, i) { option($('sim'), i, s); });
    D.reasons.forEach(function (r, i) { option($('reason'), i, r); });
    D.strategies.forEach(function (s, i) { option($('strategy'), i, cut(s.text, 60) + ' (' + s.id + ')'); });
    D.metrics.forEach(function (m) { option($('metric'), m.name, 'score range: ' + m.name); });
    [['turns', 'user turns'], ['sim', 'simulator'], ['reason', 'ending'], ['id', 'id']].concat(
      D.metrics.map(function (m) { return [m.name, m.name]; })
    ).forEach(function (s) {
      option($('sort'), s[0], 'sort: ' + s[1] + ' \u2191');
      option($('sort'), '-' + s[0], 'sort: ' + s[1] + ' \u2193');
    });
    SHOWN_METRICS.forEach(function (n) { var mi = metricIndex(n); if (mi >= 0) { cols.push(mi); } });
    KEYS.forEach(function (k) {
      state[k] = '';
      var ev = $(k).tagName === 'SELECT' ? 'change' : 'input';
      $(k).addEventListener(ev, function () { state[k] = $(k).value; update(); if (k === 'strategy') { renderStrategies(); } });
    });
    $('more').addEventListener('click', renderMore);
    $('clear').addEventListener('click', function () {
      KEYS.forEach(function (k) { state[k] = ''; });
      update();
      renderStrategies();
    });
    if ($('strategy-search')) { $('strategy-search').addEventListener('input', renderStrategies); }
    document.querySelectorAll('circle.strategy').forEach(function (c) {
      c.addEventListener('click', function () {
        var sid = c.getAttribute('data-sid');
        var i = D.strategies.findIndex(function (s) { return s.id === sid; });
        if (i >= 0) { pickStrategy(String(i)); }
      });
    });
  }

  function parsedDocument() {
    if (document.readyState !== 'loading') { return Promise.resolve(); }
    return new Promise(function (resolve) { document.addEventListener('DOMContentLoaded', resolve); });
  }

  async function main() {
    // The rows draw from the (small) rest of the data while the parser still reads the texts,
    // which follow this script in the page; they decode once the document is parsed.
    D = JSON.parse(await inflate($('report-data').textContent.trim()));
    var parsed = performance.now();
    textPromise = parsedDocument().then(function () {
      return inflate($('report-text').textContent.trim());
    }).then(function (t) { T = t; indexTexts(); textReady = true; });
    fillControls();
    readHash();
    update();
    renderStrategies();
    var rows = performance.now();
    document.body.setAttribute('data-rows-ms', String(Math.round(rows)));
    await textPromise;
    var decoded = performance.now();
    window.addEventListener('hashchange', function () {
      if (location.hash.indexOf('=') >= 0) { readHash(); update(); renderStrategies(); }
    });
    var ready = performance.now();
    document.body.setAttribute('data-ready-ms', String(Math.round(ready)));
    document.body.setAttribute('data-timing', JSON.stringify({data: Math.round(parsed), rows: Math.round(rows),
      texts: Math.round(decoded), ready: Math.round(ready)}));
    document.body.setAttribute('data-ready', 'yes');
  }
  main().catch(function (e) {
    document.body.setAttribute('data-ready', 'error');
    var p = el('p', 'warnings', 'The dialogue browser failed: ' + e);
    var sec = $('dialogues');
    if (sec) { sec.appendChild(p); }
    throw e;
  });
}());
