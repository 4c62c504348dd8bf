// The collector on its own (`npm run collector`, and the container's entry):
// broker events into the database named by --db. Same options as `npm start`.

import { helpText, parseOptions } from '../src/options';
import { createLogger, errorMessage } from '../src/shared/log';
import {
  alertsFromOptions,
  checkHeapForBuffer,
  checkSpoolDir,
  collectorFromOptions,
  commandChannelFromOptions,
  onShutdownSignal,
  openMigratedDatabase,
} from './setup';
import { parseBrokerUrl } from './transport/broker-url';

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(helpText('npm run collector --'));
    return;
  }
  let options;
  try {
    options = parseOptions(argv, process.env);
    parseBrokerUrl(options.broker);
    // Checked before anything starts: one line, no stack, exit 2.
    commandChannelFromOptions(options);
    checkHeapForBuffer(options.maxBufferMb);
    checkSpoolDir(options);
    alertsFromOptions(options);
  } catch (error) {
    console.error(`stalk-collector: ${errorMessage(error)}`);
    process.exit(2);
  }
  const log = createLogger('collector', options.logLevel);
  let database;
  try {
    // This connection serves the lease, control results and the audit log; the
    // store thread writes events on its own, with its own page cache.
    database = await openMigratedDatabase(options.db, log.child('db'), options.migrate, { cacheMiB: 2 });
  } catch (error) {
    console.error(`stalk-collector: ${errorMessage(error)}`);
    process.exit(1);
  }
  const collector = collectorFromOptions(options, database, log);
  await collector.start();
  onShutdownSignal(log, async () => {
    await collector.stop();
    await database.close();
  });
}

void main();
