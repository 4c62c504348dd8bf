// Stalk's only script besides htmx (and its idiomorph extension): tabs on
// the worker page, live panels that morph and skip unchanged polls, and times
// in the reader's own zone or UTC, as the reader chose (or "3 min ago" where
// natural time is on).
(() => {
  function relative(seconds) {
    var abs = Math.abs(seconds),
      units = [
        [86400, 'day'],
        [3600, 'hour'],
        [60, 'minute'],
        [1, 'second'],
      ];
    for (let i = 0; i < units.length; i++) {
      if (abs >= units[i][0] || i === units.length - 1) {
        const n = Math.floor(abs / units[i][0]);
        return `${n} ${units[i][1]}${n === 1 ? '' : 's'}${seconds >= 0 ? ' ago' : ' from now'}`;
      }
    }
  }
  function pad(n, w) {
    return String(n).padStart(w || 2, '0');
  }
  // Times: the server writes UTC in <time datetime>; they are shown in the
  // zone the reader chose with the toggle (their own or UTC, kept in
  // localStorage), labelled. The received-time inputs of the tasks page are
  // shown in that zone too, and sent to the server as UTC ('...Z').
  var ZONE_KEY = 'stalk-times';
  function zoneMode() {
    try {
      return localStorage.getItem(ZONE_KEY) === 'utc' ? 'utc' : 'local';
    } catch (_) {
      return 'local';
    }
  }
  // [year, month (1-12), day, hours, minutes, seconds, ms] of d in the mode's zone.
  function parts(d, mode) {
    return mode === 'utc'
      ? [
          d.getUTCFullYear(),
          d.getUTCMonth() + 1,
          d.getUTCDate(),
          d.getUTCHours(),
          d.getUTCMinutes(),
          d.getUTCSeconds(),
          d.getUTCMilliseconds(),
        ]
      : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()];
  }
  function stamp(d, mode) {
    var p = parts(d, mode);
    return `${pad(p[0], 4)}-${pad(p[1])}-${pad(p[2])} ${pad(p[3])}:${pad(p[4])}:${pad(p[5])}.${pad(p[6], 3)}`;
  }
  // The zone's short name at d ("EST", "GMT+5:30"), or UTC; `generic`, its
  // name all year round ("ET", "India Time"), for a column header over times
  // on both sides of a daylight saving change.
  function zoneName(d, mode, generic) {
    if (mode === 'utc') return 'UTC';
    try {
      const name = new Intl.DateTimeFormat('en-US', { timeZoneName: generic ? 'shortGeneric' : 'short' })
        .formatToParts(d)
        .find((x) => x.type === 'timeZoneName');
      if (name) return name.value;
    } catch (_) {
      // No such name (an older browser): the specific one, else the offset below.
      if (generic) return zoneName(d, mode, false);
    }
    var offset = -d.getTimezoneOffset();
    return `UTC${offset < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
  }
  function times(root) {
    var mode = zoneMode();
    root.querySelectorAll('time[datetime]').forEach((el) => {
      var d = new Date(el.getAttribute('datetime'));
      if (Number.isNaN(d.getTime())) return;
      var text = stamp(d, mode);
      var zone = zoneName(d, mode);
      el.title = `${text} ${zone}`;
      if (el.dataset.natural) el.textContent = relative((Date.now() - d.getTime()) / 1000);
      else el.textContent = el.dataset.bare ? text : `${text} ${zone}`;
    });
    root.querySelectorAll('[data-zone]').forEach((el) => {
      el.textContent = zoneName(new Date(), mode, true);
    });
    chartTimes(root, mode);
  }
  // Chart labels and hover titles (SVG <text>, <title>: no <time> there):
  // epoch seconds in data-t, the format in data-tf (hm, md, mdhm, or full:
  // date, time and zone), the rest of the text in data-ts.
  function chartTimes(root, mode) {
    root.querySelectorAll('[data-t][data-tf]').forEach((el) => {
      var d = new Date(Number(el.getAttribute('data-t')) * 1000);
      if (Number.isNaN(d.getTime())) return;
      var p = parts(d, mode);
      var md = `${pad(p[1])}-${pad(p[2])}`;
      var hm = `${pad(p[3])}:${pad(p[4])}`;
      var format = el.getAttribute('data-tf');
      var text =
        format === 'hm'
          ? hm
          : format === 'md'
            ? md
            : format === 'mdhm'
              ? `${md} ${hm}`
              : `${pad(p[0], 4)}-${md} ${hm} ${zoneName(d, mode)}`;
      el.textContent = text + (el.getAttribute('data-ts') || '');
    });
  }
  // A datetime-local value ('YYYY-MM-DDTHH:MM') read in the mode's zone, as a Date; null if it is not one.
  function fromInput(value, mode) {
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(value || '');
    if (!m) return null;
    var n = m.slice(1).map(Number);
    var d = mode === 'utc' ? new Date(Date.UTC(n[0], n[1] - 1, n[2], n[3], n[4])) : new Date(n[0], n[1] - 1, n[2], n[3], n[4]);
    return Number.isNaN(d.getTime()) ? null : d;
  }
  function toInput(d, mode) {
    var p = parts(d, mode);
    return `${pad(p[0], 4)}-${pad(p[1])}-${pad(p[2])}T${pad(p[3])}:${pad(p[4])}`;
  }
  // The inputs as the server filled them (UTC, with the instant in data-utc), shown in the mode's zone.
  function zoneInputs(root) {
    var mode = zoneMode();
    root.querySelectorAll('input[data-zone-input][data-utc]').forEach((input) => {
      var d = new Date(input.dataset.utc);
      if (!Number.isNaN(d.getTime())) input.value = toInput(d, mode);
      input.removeAttribute('data-utc');
    });
  }
  // Sent by htmx: each received-time input's value as UTC, marked 'Z'.
  document.addEventListener('htmx:configRequest', (e) => {
    var elt = e.detail?.elt;
    var form = elt && (elt.tagName === 'FORM' ? elt : elt.closest?.('form'));
    if (!form) return;
    var mode = zoneMode();
    form.querySelectorAll('input[data-zone-input]').forEach((input) => {
      // (parameters is htmx's proxy of the form data: it has no `in`.)
      if (!input.name || e.detail.parameters[input.name] === undefined) return;
      var d = fromInput(input.value, mode);
      if (d) e.detail.parameters[input.name] = `${toInput(d, 'utc')}Z`;
    });
  });
  function zoneToggle() {
    var button = document.getElementById('zone-toggle');
    if (!button) return;
    var mode = zoneMode();
    button.hidden = false;
    button.textContent = mode === 'utc' ? 'Times: UTC' : `Times: local (${zoneName(new Date(), 'local', true)})`;
    button.setAttribute('aria-pressed', mode === 'utc' ? 'true' : 'false');
    button.title = mode === 'utc' ? 'Show times in your own zone' : 'Show times in UTC';
  }
  // Entered times keep their instant: re-read in the old zone, shown in the new one.
  function moveInputs(from, to) {
    document.querySelectorAll('input[data-zone-input]').forEach((input) => {
      var d = fromInput(input.value, from);
      if (d) input.value = toInput(d, to);
    });
  }
  function switchZone() {
    var from = zoneMode();
    var to = from === 'utc' ? 'local' : 'utc';
    moveInputs(from, to);
    try {
      localStorage.setItem(ZONE_KEY, to);
    } catch (_) {
      // Private mode: this page only.
    }
    times(document);
    zoneToggle();
  }
  document.addEventListener('click', (e) => {
    if (e.target instanceof Element && e.target.closest('#zone-toggle')) switchZone();
  });
  // Another tab switched: follow it.
  window.addEventListener('storage', (e) => {
    if (e.key === ZONE_KEY) {
      moveInputs(e.oldValue === 'utc' ? 'utc' : 'local', zoneMode());
      times(document);
      zoneToggle();
    }
  });
  // Tab boxes are replaced by htmx swaps (the worker page's inspect
  // refresh), so every call looks them up afresh.
  function tabs() {
    var id = location.hash.replace('#', '') || 'tab-overview';
    document.querySelectorAll('.tabs').forEach((box) => {
      box.classList.add('js');
      var current = box.querySelector(`#${CSS.escape(id)}`) ? id : 'tab-overview';
      box.querySelectorAll('.tab-panel').forEach((p) => {
        p.classList.toggle('current', p.id === current);
      });
      box.querySelectorAll('.tab-bar a').forEach((a) => {
        a.classList.toggle('current', a.getAttribute('href') === `#${current}`);
      });
    });
  }
  window.addEventListener('hashchange', tabs);
  // Live panels poll (hx-trigger="every Ns"); a hidden tab skips its polls,
  // and so does a worker page's tab that is not the one open.
  function refreshing(detail) {
    var event = detail?.triggeringEvent || detail?.requestConfig?.triggeringEvent;
    return Boolean(event && event.type === 'stalk-refresh');
  }
  document.addEventListener('htmx:beforeRequest', (e) => {
    var elt = e.detail?.elt;
    var trigger = elt?.getAttribute('hx-trigger');
    if (!trigger || !/^every /.test(trigger)) return;
    if (document.visibilityState !== 'visible') e.preventDefault();
    else if (!refreshing(e.detail)) {
      const panel = elt.closest('.tab-panel');
      if (panel?.closest('.tabs.js') && !panel.classList.contains('current')) e.preventDefault();
    }
  });
  // A worker page's action changes what a tab shows: that tab asks the
  // worker again at once (fresh=1), whether or not it is the one open.
  var ACTION_TABS = [
    [/\/api\/worker\/queue\//, 'queues'],
    [/\/api\/task\/(rate-limit|timeout)\//, 'limits'],
    [/\/api\/worker\/pool\//, 'pool'],
  ];
  document.addEventListener('htmx:configRequest', (e) => {
    if (refreshing(e.detail)) e.detail.parameters.fresh = '1';
  });
  document.addEventListener('htmx:afterRequest', (e) => {
    var form = actionForm(e.detail.elt);
    if (!form || !e.detail.successful || !form.closest('#worker-tabs') || !window.htmx) return;
    var path = form.getAttribute('action') || '';
    ACTION_TABS.forEach((pair) => {
      var live = pair[0].test(path) && document.getElementById(`live-${pair[1]}`);
      if (live) window.htmx.trigger(live, 'stalk-refresh');
    });
  });
  // Live panels swap by morphing (idiomorph), which keeps focus, selection
  // and scroll; an open <details> stays open. A poll sends the ETag of what
  // its panel shows, and a 304 (nothing new) leaves the panel alone.
  var panelTags = {};
  function livePanels() {
    var htmx = window.htmx;
    if (htmx && !htmx.config.responseHandling.some((r) => r.code === '304')) {
      htmx.config.responseHandling = [{ code: '304', swap: false }].concat(htmx.config.responseHandling);
    }
    var morph = window.Idiomorph;
    if (morph) {
      // What the reader typed into an action's form (a queue name, a rate limit) stays too.
      morph.defaults.callbacks.beforeAttributeUpdated = (name, el) =>
        !(name === 'open' && el.tagName === 'DETAILS') && !(name === 'value' && el.type !== 'hidden' && actionForm(el));
      // What the reader made (an action's answer, a chosen signal) survives a live page's morph.
      morph.defaults.callbacks.beforeNodeMorphed = (old) =>
        !(old instanceof Element && (old.hasAttribute('data-keep') || (old.tagName === 'OUTPUT' && actionForm(old))));
    }
  }
  // An action the server refused or failed on (4xx/5xx: no API access, a
  // bad CSRF token, a server error) or that got no answer: htmx swaps
  // nothing then, so its message is written where the action answers.
  function actionForm(elt) {
    return elt instanceof Element ? elt.closest('form.action') : null;
  }
  function showRefusal(target, text) {
    var output = document.createElement('output');
    output.className = 'outcome bad';
    output.textContent = text;
    if (target && target.tagName === 'OUTPUT') target.replaceWith(output);
    else if (target) target.replaceChildren(output);
  }
  function refusalText(xhr) {
    var body = (xhr.responseText || '').trim();
    var type = xhr.getResponseHeader('Content-Type') || '';
    var reason = body;
    if (type.includes('json')) {
      try {
        const json = JSON.parse(body);
        reason = String(json.error || json.message || body);
      } catch (_) {
        // Not JSON after all: the text as it is.
      }
    } else if (type.includes('html')) {
      const doc = new DOMParser().parseFromString(body, 'text/html');
      const main = doc.querySelector('main') || doc.body;
      reason = (main ? main.textContent || '' : '').replace(/\s+/g, ' ').trim();
    }
    if (reason.length > 300) reason = `${reason.slice(0, 300)}…`;
    var what = xhr.status >= 500 ? 'Failed' : 'Refused';
    return `${what} (HTTP ${xhr.status}${xhr.statusText ? ` ${xhr.statusText}` : ''})${reason ? `: ${reason}` : ''}`;
  }
  document.addEventListener('htmx:responseError', (e) => {
    if (actionForm(e.detail.elt)) showRefusal(e.detail.target, refusalText(e.detail.xhr));
  });
  document.addEventListener('htmx:sendError', (e) => {
    if (actionForm(e.detail.elt)) showRefusal(e.detail.target, 'No answer from Stalk (network error): try again');
  });
  function polled(elt, target) {
    var trigger = elt?.getAttribute('hx-trigger');
    return elt === target && target.id && trigger && /^every /.test(trigger);
  }
  document.addEventListener('htmx:configRequest', (e) => {
    var target = e.detail.target;
    if (e.detail.verb === 'get' && polled(e.target, target) && panelTags[target.id])
      e.detail.headers['If-None-Match'] = panelTags[target.id];
  });
  document.addEventListener('htmx:afterRequest', (e) => {
    var xhr = e.detail.xhr;
    var panel = e.detail.target;
    if (!xhr || !panel?.id) return;
    if (xhr.status === 304) {
      // Checked just now: the panel's "Updated" time says so.
      const now = new Date();
      panel.querySelectorAll('time[data-updated]').forEach((el) => {
        el.setAttribute('data-updated', String(now.getTime() / 1000));
        el.setAttribute('datetime', now.toISOString());
      });
      times(panel);
      return;
    }
    var tag = xhr.status === 200 ? xhr.getResponseHeader('ETag') : null;
    if (tag) panelTags[panel.id] = tag;
    else delete panelTags[panel.id];
  });
  document.addEventListener('DOMContentLoaded', () => {
    restoreColumns();
    livePanels();
    times(document);
    zoneInputs(document);
    zoneToggle();
    tabs();
  });
  document.addEventListener('htmx:afterSwap', (e) => {
    times(e.target);
    zoneInputs(e.target);
  });
  // After settling: htmx puts back the new element's own class then, dropping 'js'.
  document.addEventListener('htmx:afterSettle', tabs);
  // The tasks table's chosen columns persist (localStorage): saved when the
  // picker changes, added to links to the tasks page that choose none, and
  // put back on a tasks page loaded without them (a typed or bookmarked URL).
  var COLUMNS_KEY = 'stalk.columns';
  function savedColumns() {
    try {
      const saved = localStorage.getItem(COLUMNS_KEY);
      return saved ? saved.split(',').filter((c) => /^[a-z_]+$/.test(c)) : [];
    } catch (_) {
      return [];
    }
  }
  function withColumns(href) {
    var url = new URL(href, location.href);
    var columns = savedColumns();
    if (url.origin !== location.origin || !/\/tasks$/.test(url.pathname) || url.searchParams.has('columns') || columns.length === 0)
      return null;
    columns.forEach((c) => {
      url.searchParams.append('columns', c);
    });
    return url;
  }
  document.addEventListener('change', (e) => {
    var box = e.target;
    if (!(box instanceof HTMLInputElement) || box.name !== 'columns' || !box.form || box.form.id !== 'task-filters') return;
    var chosen = Array.from(box.form.querySelectorAll('input[name="columns"]:checked')).map((c) => c.value);
    try {
      if (chosen.length > 0) localStorage.setItem(COLUMNS_KEY, chosen.join(','));
      else localStorage.removeItem(COLUMNS_KEY);
    } catch (_) {
      // Private mode: chosen for this page only.
    }
  });
  // Capture: before htmx or the browser follows the link.
  document.addEventListener(
    'click',
    (e) => {
      var link = e.target instanceof Element ? e.target.closest('a[href]') : null;
      var url = link && withColumns(link.getAttribute('href'));
      if (url) link.setAttribute('href', url.pathname + url.search + url.hash);
    },
    true,
  );
  // Columns are sent only when the reader chose them (saved, in the URL, or
  // being chosen now): otherwise the server picks (a list of failures shows
  // their exception), and the picker follows what the table shows.
  function pickingColumns(event) {
    return event?.target instanceof HTMLInputElement && event.target.name === 'columns';
  }
  function chosenColumns() {
    return savedColumns().length > 0 || new URL(location.href).searchParams.has('columns');
  }
  document.addEventListener('htmx:configRequest', (e) => {
    if (e.detail.elt?.id !== 'task-filters') return;
    if (!pickingColumns(e.detail.triggeringEvent) && !chosenColumns()) delete e.detail.parameters.columns;
  });
  document.addEventListener('htmx:afterSwap', (e) => {
    var panel = document.getElementById('tasks-panel');
    var form = document.getElementById('task-filters');
    // Not while the reader is at the picker (a box just changed): their clicks stand.
    var event = e.detail.requestConfig?.triggeringEvent;
    if (!panel || !form || !panel.contains(e.target) || chosenColumns() || pickingColumns(event)) return;
    var shown = (panel.getAttribute('data-columns') || '').split(',');
    form.querySelectorAll('input[name="columns"]').forEach((box) => {
      box.checked = shown.includes(box.value);
    });
  });
  // The sort control lives in the panel but belongs to the filter form (form=): a change submits the form.
  document.addEventListener('change', (e) => {
    var select = e.target;
    if (select instanceof HTMLSelectElement && select.hasAttribute('data-sort') && select.form) select.form.requestSubmit();
  });
  function restoreColumns() {
    if (!document.getElementById('task-filters')) return;
    var url = withColumns(location.href);
    if (url) location.replace(url.href);
  }
  setInterval(() => {
    document.querySelectorAll('time[data-natural]').forEach((el) => {
      times(el.parentNode);
    });
  }, 15000);
})();
