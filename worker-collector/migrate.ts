// `npm run migrate`: the database's schema by hand, for deployments where the
// programs start with `--migrate check` (PlanetScale production) or `off`.
//
//   npm run migrate                      apply pending migrations (recording those already in the schema)
//   npm run migrate -- --status          list each migration as applied or pending
//   npm run migrate -- --print           print the pending migrations' SQL (runs nothing)
//   npm run migrate -- --print --all     print every migration's SQL, without touching any database
//
// The database comes from --db or STALK_DB, as for `npm start`.

import { errorMessage } from '../src/shared/log';
import { OptionError, parseOptions } from '../src/options';
import { migrateToLatest, pendingMigrations, readMigrationStatus } from './migrations';
import { fullPlan, pendingPlan, printMigrations } from './migrations/print';
import { openDatabase, parseDatabaseTarget } from './store/db';

const USAGE = `usage: npm run migrate -- [--status | --print [--all]] [--db URL]

  (no flag)      apply pending migrations; a migration whose schema is already
                 there (applied by a deploy request) is recorded, not run again
  --status       list each migration as applied or pending; changes nothing
  --print        print the SQL of the pending migrations for the database's
                 dialect (a PlanetScale deploy request); runs nothing
  --print --all  print every migration, as for an empty database, without
                 connecting: the dialect comes from --db (mysql://... for MySQL)
  --db URL       the database, as for npm start (also STALK_DB)`;

type Command = 'apply' | 'status' | 'print';

function parseArguments(argv: string[]): { command: Command; all: boolean; rest: string[] } {
  const own = new Set(['--status', '--print', '--all']);
  const flags = new Set(argv.filter((a) => own.has(a)));
  const rest = argv.filter((a) => !own.has(a));
  if (flags.has('--status') && flags.has('--print')) throw new OptionError('--status and --print do not go together');
  if (flags.has('--all') && !flags.has('--print')) throw new OptionError('--all goes with --print');
  return { command: flags.has('--print') ? 'print' : flags.has('--status') ? 'status' : 'apply', all: flags.has('--all'), rest };
}

async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  const { command, all, rest } = parseArguments(argv);
  const options = parseOptions(rest, process.env);

  if (command === 'print' && all) {
    process.stdout.write(await printMigrations(parseDatabaseTarget(options.db).dialect, fullPlan()));
    return 0;
  }

  const database = await openDatabase(options.db);
  try {
    if (command === 'print') {
      process.stdout.write(await printMigrations(database.dialect, await pendingPlan(database.db)));
      return 0;
    }
    if (command === 'status') {
      const states = await readMigrationStatus(database.db);
      const width = Math.max(...states.map((s) => s.name.length));
      for (const s of states) {
        const state = s.recorded ? 'applied' : s.present ? 'applied (schema present, not recorded yet)' : 'pending';
        console.log(`${s.name.padEnd(width)}  ${state}`);
      }
      const pending = pendingMigrations(states);
      console.log(
        pending.length === 0
          ? `schema up to date (${database.dialect} ${database.description})`
          : `${pending.length} pending: apply with \`npm run migrate\`, or print their SQL with \`npm run migrate -- --print\``,
      );
      return 0;
    }
    const report = await migrateToLatest(database.db);
    for (const name of report.recorded) console.log(`recorded ${name} (its schema was already applied)`);
    for (const name of report.applied) console.log(`applied ${name}`);
    if (report.applied.length + report.recorded.length === 0)
      console.log(`schema up to date (${database.dialect} ${database.description})`);
    return 0;
  } finally {
    await database.close();
  }
}

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`stalk-migrate: ${errorMessage(error)}`);
    process.exitCode = error instanceof OptionError ? 2 : 1;
  },
);
