// Stalk's only script besides htmx: tabs on the worker page, and times in
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
  document.addEventListener('DOMContentLoaded', () => {
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
