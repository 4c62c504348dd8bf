// Stalk's only script besides htmx (and its idiomorph extension): tabs on
// the worker page, live panels that morph and skip unchanged polls, and times in
// the reader's own zone (or "3 min ago" where natural time is on).
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
  function local(d) {
    return (
      d.getFullYear() +
      '-' +
      pad(d.getMonth() + 1) +
      '-' +
      pad(d.getDate()) +
      ' ' +
      pad(d.getHours()) +
      ':' +
      pad(d.getMinutes()) +
      ':' +
      pad(d.getSeconds()) +
      '.' +
      pad(d.getMilliseconds(), 3)
    );
  }
  function times(root) {
    root.querySelectorAll('time[datetime]').forEach((el) => {
      var d = new Date(el.getAttribute('datetime'));
      if (Number.isNaN(d.getTime())) return;
      el.textContent = el.dataset.natural ? relative((Date.now() - d.getTime()) / 1000) : local(d);
    });
  }
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
  // Live panels poll (hx-trigger="every Ns"); a hidden tab skips its polls.
  document.addEventListener('htmx:beforeRequest', (e) => {
    var trigger = e.detail?.elt?.getAttribute('hx-trigger');
    if (document.visibilityState !== 'visible' && trigger && /^every /.test(trigger)) e.preventDefault();
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
    if (morph) morph.defaults.callbacks.beforeAttributeUpdated = (name, el) => !(name === 'open' && el.tagName === 'DETAILS');
  }
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
    livePanels();
    times(document);
    tabs();
  });
  document.addEventListener('htmx:afterSwap', (e) => {
    times(e.target);
  });
  // After settling: htmx puts back the new element's own class then, dropping 'js'.
  document.addEventListener('htmx:afterSettle', tabs);
  setInterval(() => {
    document.querySelectorAll('time[data-natural]').forEach((el) => {
      times(el.parentNode);
    });
  }, 15000);
})();
