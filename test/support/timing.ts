// Timing assertions that hold on a loaded machine (two cores shared by Celery
// workers, databases and test files running side by side). A timer never
// fires early, but it may fire seconds late, and so may an answer. So a test
// asserts the lower bound of a wait exactly, gives its upper bound LATE_MS of
// slack, and tells "answered at once" from "waited out its timeout" by giving
// the call a timeout (NEVER_MS) far longer than any answer takes.

/** How late a timer or an answer may come on a loaded machine. */
export const LATE_MS = 5_000;

/** A timeout no answer comes near: a call that waits it out is a bug. */
export const NEVER_MS = 15_000;

/** Below this, a call with a NEVER_MS timeout did not wait it out. */
export const AT_ONCE_MS = NEVER_MS - LATE_MS;
