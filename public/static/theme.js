// The colour theme: the system's (default), light or dark, as the reader
// chose in the header and kept in localStorage. Loaded in <head> without
// defer, so the chosen theme is on <html data-theme> before the first paint
// (the CSP allows no inline script; this file is tiny and cached). The
// stylesheet does the rest: `color-scheme` from data-theme, colours through
// light-dark(). Without this script the system's theme applies.
(() => {
  var KEY = 'stalk-theme';
  var THEMES = ['system', 'light', 'dark'];
  function chosen() {
    try {
      const value = localStorage.getItem(KEY);
      return THEMES.indexOf(value) >= 0 ? value : 'system';
    } catch (_) {
      return 'system';
    }
  }
  function apply(theme) {
    var root = document.documentElement;
    if (theme === 'system') root.removeAttribute('data-theme');
    else root.setAttribute('data-theme', theme);
    var select = document.getElementById('theme-select');
    if (select) select.value = theme;
  }
  apply(chosen());
  document.addEventListener('DOMContentLoaded', () => {
    var select = document.getElementById('theme-select');
    if (!select) return;
    select.value = chosen();
    var label = select.closest('label');
    if (label) label.hidden = false;
    select.addEventListener('change', () => {
      var theme = THEMES.indexOf(select.value) >= 0 ? select.value : 'system';
      try {
        if (theme === 'system') localStorage.removeItem(KEY);
        else localStorage.setItem(KEY, theme);
      } catch (_) {
        // Private mode: this page only.
      }
      apply(theme);
    });
  });
  // Another tab chose: follow it.
  window.addEventListener('storage', (e) => {
    if (e.key === KEY) apply(chosen());
  });
})();
