// npm run bench:profile-summary -- <file.cpuprofile> [--top 20]
//
// The functions a V8 CPU profile (node --cpu-prof, e.g. the collector under
// `BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run bench:ingest`)
// spent their own time in, largest first, in ms and percent of the profile.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '20' } } });
if (positionals.length !== 1) {
  console.error('usage: npm run bench:profile-summary -- <file.cpuprofile> [--top N]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as Profile;
const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
const selfUs = new Map<string, number>();
let totalUs = 0;
profile.samples.forEach((id, i) => {
  const frame = frames.get(id)!;
  const where = `${frame.functionName || '(anonymous)'} ${frame.url.split('/').slice(-2).join('/')}:${frame.lineNumber}`;
  const delta = profile.timeDeltas[i] ?? 0;
  selfUs.set(where, (selfUs.get(where) ?? 0) + delta);
  totalUs += delta;
});
console.log(`profile: ${(totalUs / 1000).toFixed(0)} ms sampled`);
for (const [where, us] of [...selfUs].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
  console.log(`${(us / 1000).toFixed(0).padStart(8)} ms ${((100 * us) / totalUs).toFixed(1).padStart(5)} %  ${where}`);
}
