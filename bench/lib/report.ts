/**
 * The bench's result model (what bench/results/latest.json holds) and its markdown rendering. Pure: data in, text out.
 */
import type { LatencySummary } from './hist.ts';

export interface Limits {
  ddFdatasyncMBps: number;
  fdatasync4kOpsPerSec: number;
  fdatasync4kP50Ms: number;
  loopbackTcpMBps: number;
}

export interface LoadPoint {
  /** offered load in records/s (open loop) */
  offeredRecordsPerSec: number;
  achievedRecordsPerSec: number;
  errors: number;
  latency: LatencySummary;
  /** the load generator's own lateness; large values mean the figure is the generator's, not the system's */
  sendLag: LatencySummary;
}

export interface ProduceFigure {
  /** system key, e.g. lance-1-acks1 */
  system: string;
  recordBytes: number;
  recordsPerUnit: number;
  peakRecordsPerSec: number;
  peakMBps: number;
  /** requests in flight at the peak */
  peakConcurrency?: number;
  /** produce requests retried after NOT_LEADER / a lost connection (Lance driver), over all phases */
  retries?: number;
  /** Lance: Raft elections (leader epoch increments) in the topic's partitions during the measurement */
  elections?: number;
  at50?: LoadPoint;
  at90?: LoadPoint;
  error?: string;
}

export interface SystemInfo {
  key: string;
  label: string;
  durability: string;
}

export interface BenchResults {
  meta: {
    startedAt: string;
    finishedAt: string;
    quick: boolean;
    node: string;
    cpus: number;
    loadAvgStart: number[];
    loadAvgEnd: number[];
    seconds: number;
    notes: string[];
  };
  limits: Limits;
  systems: SystemInfo[];
  produce: ProduceFigure[];
  e2e: Array<{ recordBytes: number; ratePerSec: number; latency: LatencySummary; system: string } | { system: string; error: string }>;
  consume?: { recordBytes: number; bytes: number; coldMBps: number; warmMBps: number; coldRecordsPerSec: number; warmRecordsPerSec: number; cacheDrop: string } | { error: string };
  failover?: { samplesMs: number[]; p50Ms: number; p99Ms: number; maxMs: number } | { error: string };
  restore: { measured: false; reason: string } | { measured: true; mib: number; restoreMiBps: number; plainGetMiBps: number; ratio: number };
  profile?: ProfileResult;
  profileStandalone?: ProfileResult;
}

export type ProfileResult = { system: string; recordBytes: number; totalMs: number; busyPct: number; top: Array<{ fn: string; where: string; selfPct: number }>; files: Array<{ file: string; selfPct: number }> } | { error: string };

export interface Goal {
  goal: string;
  value: string;
  target: string;
  met: boolean | null;
}

const fmtN = (n: number): string => (!Number.isFinite(n) ? 'n/a' : n >= 100 ? Math.round(n).toLocaleString('en-US') : n >= 10 ? n.toFixed(1) : n.toFixed(2));
export const fmt = fmtN;

/** a GitHub markdown table; cells are escaped for `|` */
export function mdTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const out = [`| ${headers.map(esc).join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`];
  for (const r of rows) {
    if (r.length !== headers.length) throw new RangeError(`row has ${r.length} cells, table has ${headers.length} columns`);
    out.push(`| ${r.map(esc).join(' | ')} |`);
  }
  return out.join('\n');
}

function fig(r: BenchResults, system: string, size: number): ProduceFigure | undefined {
  return r.produce.find((p) => p.system === system && p.recordBytes === size && !p.error);
}

function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a !== undefined && b !== undefined && b > 0 ? a / b : undefined;
}

/** Goals of issue 10, evaluated on the results (null = not measured). Throughput goals use 1 KiB records. */
export function evaluateGoals(r: BenchResults, goalSize = 1024): Goal[] {
  const goals: Goal[] = [];
  const rf3 = fig(r, 'lance-3-acksall', goalSize);
  const js3 = fig(r, 'jetstream-r3', goalSize);
  const vsJs = ratio(rf3?.peakRecordsPerSec, js3?.peakRecordsPerSec);
  goals.push({ goal: `RF=3 acks=all throughput ≥ 1.5× JetStream R3 (${goalSize} B records)`, value: vsJs === undefined ? 'not measured' : `${vsJs.toFixed(2)}×`, target: '≥ 1.5×', met: vsJs === undefined ? null : vsJs >= 1.5 });
  const third = r.limits.ddFdatasyncMBps / 3;
  const vsDd = ratio(rf3?.peakMBps, third);
  goals.push({ goal: `RF=3 acks=all MB/s ≥ 40 % of (dd fdatasync ÷ 3) (${goalSize} B records)`, value: vsDd === undefined ? 'not measured' : `${(vsDd * 100).toFixed(1)} % (${fmtN(rf3!.peakMBps)} of ${fmtN(third)} MB/s)`, target: '≥ 40 %', met: vsDd === undefined ? null : vsDd >= 0.4 });
  for (const sys of ['lance-1-acks1', 'lance-3-acksall']) {
    const f = fig(r, sys, goalSize);
    const p99 = f?.at50?.latency.p99;
    goals.push({ goal: `${sys}: produce p99 at 50 % of peak ≤ 5 ms (${goalSize} B records)`, value: p99 === undefined ? 'not measured' : `${p99.toFixed(2)} ms`, target: '≤ 5 ms', met: p99 === undefined ? null : p99 <= 5 });
  }
  const fo = r.failover && 'p99Ms' in r.failover ? r.failover : undefined;
  goals.push({ goal: 'failover: leader SIGKILL → next acked write, p99', value: fo ? `${fo.p99Ms.toFixed(0)} ms (n=${fo.samplesMs.length})` : 'not measured', target: '≤ 500 ms', met: fo ? fo.p99Ms <= 500 : null });
  return goals;
}

const lat = (p: LoadPoint | undefined): string => (p ? `${p.latency.p50.toFixed(2)} / ${p.latency.p99.toFixed(2)} / ${p.latency.p999.toFixed(2)}${p.errors ? ` (${p.errors} err)` : ''}` : 'n/a');

export function renderMarkdown(r: BenchResults): string {
  const parts: string[] = [];
  const m = r.meta;
  parts.push(`Run ${m.startedAt} → ${m.finishedAt} (${Math.round(m.seconds)} s${m.quick ? ', QUICK mode' : ''}), Node ${m.node}, ${m.cpus} CPUs, load average ${m.loadAvgStart.map((x) => x.toFixed(1)).join(' ')} at start, ${m.loadAvgEnd.map((x) => x.toFixed(1)).join(' ')} at end.`);
  // notes may carry error text: one line each, bounded
  for (const n of m.notes) parts.push(`- ${n.replace(/\s+/g, ' ').slice(0, 800)}`);
  parts.push('');
  parts.push('### Physical limits (measured at the start of the run)');
  parts.push(mdTable(['limit', 'value'], [
    ['dd sequential write, bs=1M conv=fdatasync', `${fmtN(r.limits.ddFdatasyncMBps)} MB/s`],
    ['dd fdatasync ÷ 3 (each RF=3 write lands on 3 disks — here the same disk)', `${fmtN(r.limits.ddFdatasyncMBps / 3)} MB/s`],
    ['4 KiB write + fdatasync loop', `${fmtN(r.limits.fdatasync4kOpsPerSec)} ops/s (p50 ${r.limits.fdatasync4kP50Ms.toFixed(2)} ms)`],
    ['loopback TCP, Node → Node (64 KiB writes)', `${fmtN(r.limits.loopbackTcpMBps)} MB/s`],
  ]));
  parts.push('');
  parts.push('### Goals (issue 10)');
  parts.push(mdTable(['goal', 'measured', 'target', 'met?'], evaluateGoals(r).map((g) => [g.goal, g.value, g.target, g.met === null ? 'not measured' : g.met ? 'met' : '**not met**'])));
  parts.push('');
  parts.push('### Produce: peak throughput (closed loop) and latency under open-loop load');
  parts.push('Latency p50 / p99 / p99.9 in ms of one produce request (a batch of `recs/req` records), measured from its intended send time.');
  const sizes = [...new Set(r.produce.map((p) => p.recordBytes))].sort((a, b) => a - b);
  const rows: string[][] = [];
  for (const size of sizes) {
    for (const s of r.systems) {
      const p = r.produce.find((x) => x.system === s.key && x.recordBytes === size);
      if (!p) continue;
      if (p.error) {
        rows.push([`${size}`, s.label, s.durability, 'error', p.error.slice(0, 80), '', '', '', '']);
        continue;
      }
      rows.push([`${size}`, s.label, s.durability, `${p.recordsPerUnit} × ${p.peakConcurrency ?? '?'}`, fmtN(p.peakRecordsPerSec), fmtN(p.peakMBps), lat(p.at50), lat(p.at90), p.elections === undefined ? '' : `${p.elections} / ${p.retries ?? 0}`]);
    }
  }
  parts.push(mdTable(['record B', 'system', 'durability at ack', 'recs/req × in flight', 'peak records/s', 'peak MB/s', 'p50/p99/p99.9 @50 %', 'p50/p99/p99.9 @90 %', 'elections / retries'], rows));
  parts.push('');
  parts.push('### Ratios (same run, same machine)');
  const rr: string[][] = [];
  for (const size of sizes) {
    const g = (k: string): ProduceFigure | undefined => fig(r, k, size);
    const x = (v: number | undefined): string => (v === undefined ? 'n/a' : `${v.toFixed(2)}×`);
    rr.push([
      `${size}`,
      x(ratio(g('lance-3-acksall')?.peakRecordsPerSec, g('jetstream-r3')?.peakRecordsPerSec)),
      x(ratio(g('lance-3-acksall')?.peakMBps, r.limits.ddFdatasyncMBps / 3)),
      x(ratio(g('lance-1-acks1')?.peakRecordsPerSec, g('redis-always')?.peakRecordsPerSec)),
      x(ratio(g('lance-1-acks1')?.peakRecordsPerSec, g('jetstream-r1')?.peakRecordsPerSec)),
      x(ratio(g('lance-1-acks1')?.peakMBps, r.limits.ddFdatasyncMBps)),
    ]);
  }
  parts.push(mdTable(['record B', 'Lance RF3 acks=all ÷ JetStream R3', 'Lance RF3 MB/s ÷ (dd÷3)', 'Lance acks=1 ÷ Redis always', 'Lance acks=1 ÷ JetStream R1', 'Lance acks=1 MB/s ÷ dd'], rr));
  parts.push('');
  parts.push('### Other figures');
  const other: string[][] = [];
  for (const e of r.e2e) {
    if ('latency' in e) other.push([`end-to-end produce → consume, ${e.system}, ${e.recordBytes} B records at ${e.ratePerSec}/s (open loop)`, `p50 ${e.latency.p50.toFixed(2)} / p99 ${e.latency.p99.toFixed(2)} / p99.9 ${e.latency.p999.toFixed(2)} ms (n=${e.latency.count})`]);
    else other.push([`end-to-end produce → consume, ${e.system}`, `error: ${e.error}`]);
  }
  if (r.e2e.length === 0) other.push(['end-to-end produce → consume', 'not measured']);
  if (r.consume && 'coldMBps' in r.consume) {
    other.push([`consumer, cold log (new broker process, page cache dropped via ${r.consume.cacheDrop}), ${r.consume.recordBytes} B records, ${fmtN(r.consume.bytes / 1e6)} MB`, `${fmtN(r.consume.coldMBps)} MB/s, ${fmtN(r.consume.coldRecordsPerSec)} records/s`]);
    other.push(['consumer, warm log (same data again)', `${fmtN(r.consume.warmMBps)} MB/s, ${fmtN(r.consume.warmRecordsPerSec)} records/s`]);
  } else other.push(['consumer throughput', r.consume ? `error: ${(r.consume as { error: string }).error}` : 'not measured']);
  if (r.failover && 'p99Ms' in r.failover) other.push([`failover: leader SIGKILL → next acked write (RF=3, acks=all), n=${r.failover.samplesMs.length}`, `p50 ${r.failover.p50Ms.toFixed(0)} ms, p99 ${r.failover.p99Ms.toFixed(0)} ms, max ${r.failover.maxMs.toFixed(0)} ms`]);
  else other.push(['failover', r.failover ? `error: ${(r.failover as { error: string }).error}` : 'not measured']);
  other.push([r.restore.measured ? `restore from s3rver (lnc restore's code path, bench:restore, ${r.restore.mib} MiB)` : 'restore throughput from s3rver', r.restore.measured ? `${fmtN(r.restore.restoreMiBps)} MiB/s = ${r.restore.ratio.toFixed(2)} × plain parallel GetObject (${fmtN(r.restore.plainGetMiBps)} MiB/s, the limit)` : `not measured (${r.restore.reason})`]);
  parts.push(mdTable(['figure', 'value'], other));
  for (const pr of [r.profile, r.profileStandalone]) {
    if (!pr || !('top' in pr)) continue;
    parts.push('');
    parts.push(`### CPU profile of the broker${pr.system.startsWith('lance-3') ? 's' : ''} (${pr.system}, ${pr.recordBytes} B records at peak, load window only)`);
    parts.push(`${pr.totalMs} samples; busy in ${pr.busyPct.toFixed(0)} % of them. Self time as % of busy samples:`);
    parts.push('');
    parts.push(mdTable(['self %', 'function', 'where'], pr.top.map((t) => [t.selfPct.toFixed(1), t.fn, t.where])));
    parts.push('');
    parts.push(mdTable(['self %', 'file'], pr.files.map((t) => [t.selfPct.toFixed(1), t.file])));
  }
  return parts.join('\n') + '\n';
}

/** H5's `bench:restore` (lnc restore's code path from s3rver vs plain parallel GetObject), parsed from its text */
export function parseRestoreOutput(text: string): { mib: number; restoreMiBps: number; plainGetMiBps: number; ratio: number } | undefined {
  const mib = /restore bench: (\d+) MiB/.exec(text);
  const plain = /plain parallel GetObject[^(]*\((\d+(?:\.\d+)?) MiB\/s\)/.exec(text);
  const rest = /lnc restore \(restoreDataDir\):[^(]*\((\d+(?:\.\d+)?) MiB\/s\)/.exec(text);
  const ratio = /ratio restore \/ plain GetObject throughput: ([\d.]+)/.exec(text);
  if (!mib || !plain || !rest || !ratio) return undefined;
  return { mib: Number(mib[1]), restoreMiBps: Number(rest[1]), plainGetMiBps: Number(plain[1]), ratio: Number(ratio[1]) };
}
