// The browser scripts taken from npm, as scripts/vendor-assets.mjs names them
// in public/static/vendor/ (the package's version in the name: a new version
// is a new URL). test/unit/vendor-assets.test.ts checks these against the
// installed packages.

export const HTMX_SCRIPT = '/static/vendor/htmx-2.0.11.min.js';
/** htmx's idiomorph extension (hx-ext="morph", hx-swap="morph:..."). */
export const IDIOMORPH_SCRIPT = '/static/vendor/idiomorph-ext-0.8.0.min.js';
