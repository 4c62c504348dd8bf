// Local all-in-one mode: the collector and the web app in one Node process,
// on SQLite by default. `npm start` runs this.

import { serve } from '@hono/node-server';
import { collectorFromOptions, onShutdownSignal, openMigratedDatabase } from '../worker-collector/setup';
import type { Collector } from '../worker-collector/collector';
import { parseBrokerUrl } from '../worker-collector/transport/broker-url';
import { createApp } from './app';
import { helpText, OptionError, parseOptions, type StalkOptions } from './options';
import { checkHealth } from './queries/health';
import type { Services } from './services';
import { createLogger, errorMessage } from './shared/log';

function readOptions(): StalkOptions {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(helpText('npm start --'));
    process.exit(0);
  }
  try {
    const options = parseOptions(argv, process.env);
    parseBrokerUrl(options.broker);
    return options;
  } catch (error) {
    console.error(`stalk: ${errorMessage(error)}`);
    process.exit(2);
  }
}

async function main(): Promise<void> {
  const options = readOptions();
  const log = createLogger('stalk', options.logLevel);
  let database;
  try {
    database = await openMigratedDatabase(options.db, log.child('db'));
  } catch (error) {
    console.error(`stalk: ${errorMessage(error)}`);
    process.exit(1);
  }

  let collector: Collector | undefined;
  if (options.collector) {
    collector = collectorFromOptions(options, database, log.child('collector'));
    await collector.start();
  }
  const brokerDisplay = parseBrokerUrl(options.broker).display;
  const inProcess = collector && { health: () => collector.health(), brokerDisplay };

  const services: Services = {
    db: database.db,
    log: log.child('web'),
    now: () => Date.now() / 1000,
    health: () => checkHealth(database.db, Date.now() / 1000, inProcess),
  };
  const app = createApp({ services: () => services });

  const server = serve({ fetch: app.fetch, port: options.port, hostname: options.address }, (info) => {
    log.info(`Stalk at http://${options.address}:${info.port}/ (broker ${brokerDisplay}, database ${database.description})`);
  });
  server.on('error', (error: Error) => {
    console.error(`stalk: cannot listen on ${options.address}:${options.port}: ${error.message}`);
    process.exit(1);
  });

  onShutdownSignal(log, async () => {
    server.close();
    await collector?.stop();
    await database.close();
  });
}

void main();
