// From a route to the collector: every control and task action is a command
// the collector carries out (the web app never talks to the broker). Shared
// by Flower's control API (control.tsx) and the pages' actions.

import type { Context } from 'hono';
import { AppError } from '../errors';
import type { AppEnv } from '../services';
import { type CommandKind, type CommandOutcome, type CommandResults, type ControlCommand, MAX_COMMAND_SECONDS } from '../shared/control';

type C = Context<AppEnv>;

/** Commands that change nothing, allowed in read-only mode. */
const READS: readonly CommandKind[] = ['inspect', 'result', 'queues'];

/**
 * Run a command through the collector, waiting `waitSeconds` (default: the
 * inspect timeout and 5 s for the round trip; at most MAX_COMMAND_SECONDS).
 */
export async function runCommand<K extends ControlCommand>(c: C, command: K, waitSeconds?: number): Promise<CommandOutcome<K['kind']>> {
  const { control, readOnly, inspectTimeoutMs } = c.var.services;
  if (readOnly && !READS.includes(command.kind)) throw new AppError('FORBIDDEN', 'Read only mode is enabled');
  if (!control)
    throw new AppError(
      'UNAVAILABLE',
      'No collector is reachable for commands (start Stalk with its collector, or configure the command channel)',
    );
  const wait = Math.min(MAX_COMMAND_SECONDS, waitSeconds ?? inspectTimeoutMs / 1000 + 5);
  return control.run(command, c.var.user ?? 'anonymous', wait);
}

/** Answer like Flower: JSON {message} on success, the reason as text with the failure's status otherwise; htmx gets an inline message. */
export function answer<K extends CommandKind>(
  c: C,
  outcome: CommandOutcome<K>,
  success: (result: CommandResults[K]) => string,
  failure: (reason: string) => string,
): Response | Promise<Response> {
  const htmx = Boolean(c.req.header('HX-Request'));
  if (outcome.ok) {
    const message = success(outcome.result);
    return htmx ? c.html(<output class="outcome ok">{message}</output>) : c.json({ message });
  }
  const status = outcome.status === 504 ? 403 : outcome.status;
  const message = outcome.status === 403 || outcome.status === 504 ? failure(outcome.error) : outcome.error;
  // htmx 2 does not swap error responses: the action's message arrives with 200.
  if (htmx) return c.html(<output class="outcome bad">{message}</output>);
  return c.text(message, status);
}
