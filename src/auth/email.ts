// Which emails may sign in: `--auth` is a regular expression that must match
// the WHOLE address (Flower's CVE-2022-30034 came from a partial match), and
// only a well-formed address (no whitespace, no control characters). The
// address's ASCII letters are lowered before matching, so write the pattern
// in lower case; nothing else is case-folded, because Unicode folding would
// let look-alikes through (the Kelvin sign U+212A folds to "k").

export interface EmailRule {
  source: string;
  test(email: string): boolean;
}

/** One local part, one @, a domain; no whitespace or control characters anywhere. */
const WELL_FORMED = /^[^\s@\p{Cc}]+@[^\s@\p{Cc}]+\.[^\s@\p{Cc}]+$/u;

/**
 * The address as Stalk names its user (session subject, audit log): ASCII
 * letters lowered, nothing else touched. Unicode lower-casing would turn a
 * Kelvin sign (U+212A) into "k" and name the holder of "\u212Aate@..." as
 * "kate@...".
 */
export function normalizeEmail(email: string): string {
  return email.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

export function emailRule(pattern: string, option = '--auth'): EmailRule {
  let regex: RegExp;
  try {
    regex = new RegExp(`^(?:${pattern})$`, 'u');
  } catch (error) {
    throw new Error(
      `${option}: '${pattern}' is not a valid regular expression (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  return {
    source: pattern,
    test: (email) => email.length <= 254 && WELL_FORMED.test(email) && regex.test(normalizeEmail(email)),
  };
}
