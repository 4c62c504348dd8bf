// The tasks page's send form: publishes a task through the collector and
// answers in place (htmx swaps only a 2xx, so every answer is 200).

import { Hono } from 'hono';
import { href } from '../../templates/components/format';
import { AppError } from '../errors';
import type { AppEnv } from '../services';
import type { CommandOutcome } from '../shared/control';
import { runCommand } from './commands';
import { form } from './params';
import { sendForm } from './task-options';

export const sendFormRoutes = new Hono<AppEnv>().post('/tasks/send', async (c) => {
  let outcome: CommandOutcome<'send'>;
  try {
    const task = sendForm(await form(c), c.var.services.now());
    outcome = await runCommand(c, { kind: 'send', ...task });
  } catch (error) {
    // The form shows what was wrong in place.
    if (!(error instanceof AppError) || error.code !== 'BAD_REQUEST') throw error;
    return c.html(<output class="outcome bad">{error.message}</output>);
  }
  if (!outcome.ok) return c.html(<output class="outcome bad">{outcome.error}</output>);
  const id = outcome.result['task-id'];
  return c.html(
    <output class="outcome ok">
      Sent <a href={href(c.var.services.ui, `/task/${encodeURIComponent(id)}`)}>{id}</a>
    </output>,
  );
});
