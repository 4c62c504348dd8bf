// The local all-in-one mode's command channel: a direct call.

import { randomUUID } from 'node:crypto';
import { type CommandOutcome, type ControlClient, type ControlCommand, outcomeFor } from '../../src/shared/control';
import type { ControlExecutor } from './executor';

export class InProcessControl implements ControlClient {
  constructor(private readonly executor: ControlExecutor) {}

  async run<C extends ControlCommand>(command: C, user: string, waitSeconds: number): Promise<CommandOutcome<C['kind']>> {
    const deadline = Date.now() / 1000 + waitSeconds;
    const timeout = new Promise<CommandOutcome>((resolve) =>
      setTimeout(
        () => resolve({ ok: false, status: 504, error: 'the collector did not answer in time' }),
        waitSeconds * 1000 + 500,
      ).unref(),
    );
    return outcomeFor(command, await Promise.race([this.executor.execute({ id: randomUUID(), user, deadline, command }), timeout]));
  }
}
