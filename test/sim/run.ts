/**
 * Simulator CLI: `npm run sim -- --seeds 10000` (or `--seed 1234 --nodes 5 ...` to replay one seed).
 * Prints failing seeds with the command that replays them and a trace tail, then totals and the simulated
 * failover time distribution. Exit code 1 if any seed failed, 2 on bad arguments.
 */
import { z } from 'zod';
import { defaultSimOptions, runSim, type SimOptions, type SimResult } from './sim.ts';

const USAGE = `usage: npm run sim -- [--seeds N] [--start S] [--seed X] [--nodes 3|5] [--groups G]
       [--fault-ms MS] [--liveness-ms MS] [--no-crashes] [--no-wipes] [--no-vote-hold] [--no-partitions]
       [--no-membership] [--no-failover]
       [--trace N] [--max-failures N] [--verbose] [--lying-fsync]
  --seeds N     run seeds S..S+N-1 (default 100; nodes alternate 3/5 unless --nodes is given)
  --seed X      run exactly one seed (prints its trace tail even when it passes with --verbose)
  --lying-fsync self-check: the driver acknowledges fsyncs it never did; seeds are expected to FAIL
  --no-wipes    no 'wipe' faults (a node losing all its storage and restarting fresh under its id)
  --no-vote-hold negative control: wipes without the vote hold; seeds are expected to FAIL (lost acks, two leaders)`;

const argsSchema = z.object({
  seeds: z.number().int().positive().default(100),
  start: z.number().int().nonnegative().default(1),
  seed: z.number().int().nonnegative().optional(),
  nodes: z.union([z.literal(3), z.literal(5)]).optional(),
  groups: z.number().int().min(1).max(16).default(defaultSimOptions.groups),
  faultMs: z.number().int().min(0).default(defaultSimOptions.faultMs),
  livenessMs: z.number().int().positive().default(defaultSimOptions.livenessMs),
  crashes: z.boolean().default(true),
  wipes: z.boolean().default(true),
  voteHold: z.boolean().default(true),
  partitions: z.boolean().default(true),
  membership: z.boolean().default(true),
  failover: z.boolean().default(true),
  trace: z.number().int().min(0).default(40),
  maxFailures: z.number().int().positive().default(5),
  verbose: z.boolean().default(false),
  lyingFsync: z.boolean().default(false),
});

function parseArgs(argv: string[]): z.infer<typeof argsSchema> {
  const raw: Record<string, unknown> = {};
  const numeric = new Set(['seeds', 'start', 'seed', 'nodes', 'groups', 'fault-ms', 'liveness-ms', 'trace', 'max-failures']);
  const camel = (s: string): string => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    }
    if (!a.startsWith('--')) fail(`unexpected argument "${a}"`);
    const name = a.slice(2);
    if (name.startsWith('no-')) { raw[camel(name.slice(3))] = false; continue; }
    if (name === 'verbose' || name === 'lying-fsync') { raw[camel(name)] = true; continue; }
    if (!numeric.has(name)) fail(`unknown option --${name}`);
    const v = argv[++i];
    if (v === undefined || !/^\d+$/.test(v)) fail(`--${name} needs a non-negative integer, got ${v === undefined ? 'nothing' : `"${v}"`}`);
    raw[camel(name)] = Number(v);
  }
  const parsed = argsSchema.safeParse(raw);
  if (!parsed.success) fail(parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; '));
  return parsed.data;
}

function fail(msg: string): never {
  console.error(`sim: USAGE: ${msg}\n${USAGE}`);
  process.exit(2);
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function report(r: SimResult): void {
  console.log(`\nFAIL seed ${r.seed}: ${r.error}`);
  console.log(`  replay: ${r.replay}`);
  console.log(`  network: ${JSON.stringify(r.network)}`);
  console.log('  trace tail:');
  for (const l of r.traceTail) console.log(`    ${l}`);
}

const args = parseArgs(process.argv.slice(2));
const seeds = args.seed !== undefined ? [args.seed] : Array.from({ length: args.seeds }, (_, i) => args.start + i);
const started = Date.now();
let failed = 0;
const failover: number[] = [];
const failoverNotified: number[] = [];
const failoverByDelay = new Map<number, number[]>();
const totals = { wipes: 0, holdReleasedCaughtUp: 0, holdReleasedBootstrap: 0, acked: 0, crashes: 0, partitions: 0, messages: 0, leadersElected: 0, snapshotsInstalled: 0, configChanges: 0, transfers: 0, duplicateAcks: 0, duplicateEntries: 0, retries: 0, simulatedMs: 0, peerDowns: 0 };
for (const seed of seeds) {
  const opts: SimOptions = {
    seed, nodes: args.nodes ?? (seed % 2 === 0 ? 5 : 3), groups: args.groups, faultMs: args.faultMs, livenessMs: args.livenessMs,
    crashes: args.crashes, wipes: args.wipes, voteHold: args.voteHold, partitions: args.partitions, membership: args.membership, measureFailover: args.failover, traceSize: args.trace,
    ...(args.lyingFsync ? { driverBug: 'lying-fsync' as const } : {}),
  };
  const r = runSim(opts);
  for (const k of Object.keys(totals) as Array<keyof typeof totals>) totals[k] += r.stats[k];
  failover.push(...r.failoverMs);
  failoverNotified.push(...r.failoverNotifiedMs);
  const byDelay = failoverByDelay.get(r.network.maxDelayMs) ?? [];
  byDelay.push(...r.failoverMs);
  failoverByDelay.set(r.network.maxDelayMs, byDelay);
  if (!r.ok) {
    failed++;
    if (failed <= args.maxFailures) report(r);
  } else if (args.verbose && seeds.length === 1) {
    console.log(r.traceTail.join('\n'));
    console.log(JSON.stringify({ stats: r.stats, network: r.network, failoverMs: r.failoverMs }, null, 2));
  }
  if (seeds.length >= 100 && (seeds.indexOf(seed) + 1) % 1000 === 0) {
    console.log(`... ${seeds.indexOf(seed) + 1}/${seeds.length} seeds, ${failed} failed, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
}
failover.sort((a, b) => a - b);
const secs = ((Date.now() - started) / 1000).toFixed(1);
console.log(`\nseeds: ${seeds.length} run, ${seeds.length - failed} passed, ${failed} failed (${secs} s wall)`);
console.log(`totals: ${JSON.stringify(totals)}`);
console.log(`failover (silent leader crash -> new leader's first commit, simulated, election timeout 150-300 ms, heartbeat 50 ms): ` +
  `n=${failover.length} p50=${pct(failover, 50)} ms p90=${pct(failover, 90)} ms p99=${pct(failover, 99)} ms max=${failover[failover.length - 1] ?? NaN} ms`);
failoverNotified.sort((a, b) => a - b);
console.log(`failover when the survivors are told the leader's connections closed (peerDisconnected, a killed process): ` +
  `n=${failoverNotified.length} p50=${pct(failoverNotified, 50)} ms p90=${pct(failoverNotified, 90)} ms p99=${pct(failoverNotified, 99)} ms max=${failoverNotified[failoverNotified.length - 1] ?? NaN} ms`);
for (const [d, xs] of [...failoverByDelay.entries()].sort((a, b) => a[0] - b[0])) {
  xs.sort((a, b) => a - b);
  console.log(`  one-way delay 1-${d} ms: n=${xs.length} p50=${pct(xs, 50)} ms p99=${pct(xs, 99)} ms max=${xs[xs.length - 1] ?? NaN} ms`);
}
process.exit(failed > 0 ? 1 : 0);
