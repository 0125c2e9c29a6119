/**
 * Lance figures beyond produce throughput: end-to-end latency, consumer throughput (cold and warm log), failover
 * (leader SIGKILL → next acked write), and a CPU profile of the brokers at peak.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { buildRecordBatch, decodeRecordBatches } from '../../broker/src/kafka/records.ts';
import type { MetadataResponse } from '../../broker/src/kafka/protocol/messages.ts';
import { LatencyHistogram, type LatencySummary } from './hist.ts';
import { fetchOnce, LeanConn, produceError, produceTemplate, scanBatches } from './kafka-lean.ts';
import { LanceSystem, lanceDriver } from './lance.ts';
import { runClosedLoop, runOpenLoop } from './openloop.ts';
import { waitFor } from './procs.ts';

/**
 * Producer and consumer in this process (one clock): each record's value starts with its send time
 * (performance.now(), float64); a long-polling Fetch loop on the leader receives it. Latency = receive − send.
 */
export async function endToEnd(sys: LanceSystem, topic: string, acks: number, recordBytes: number, ratePerSec: number, durationMs: number): Promise<LatencySummary> {
  const [l] = await sys.createTopic(topic, 1, sys.nodes.length);
  const prod = await LeanConn.connect(l!.host, l!.port);
  const cons = await LeanConn.connect(l!.host, l!.port);
  const h = new LatencyHistogram();
  let stop = false;
  let offset = 0;
  const consumer = (async () => {
    while (!stop) {
      const r = await fetchOnce(cons, topic, 0, offset, 1 << 20, 200);
      if (r.errorCode !== 0) throw new Error(`fetch error ${r.errorCode}`);
      if (!r.records || r.records.length === 0) continue;
      const now = performance.now();
      for (const rec of decodeRecordBatches(r.records)) {
        h.recordMs(now - rec.value!.readDoubleLE(0));
        offset = rec.offset + 1;
      }
    }
  })();
  const value = Buffer.alloc(recordBytes, 0x61);
  try {
    await runOpenLoop({
      ratePerSec,
      durationMs,
      send: async () => {
        value.writeDoubleLE(performance.now(), 0);
        const batch = buildRecordBatch([{ key: null, value, headers: [], timestamp: Date.now() }]);
        const code = produceError(await prod.sendFrame(produceTemplate(topic, 0, batch, acks)));
        if (code !== 0) throw new Error(`produce error ${code}`);
      },
    });
    const sent = Math.floor((durationMs * ratePerSec) / 1000);
    await waitFor('consumer to receive every record', () => h.count >= sent, 30_000, 20);
  } finally {
    stop = true;
    await consumer.catch(() => undefined);
    prod.close();
    cons.close();
  }
  return h.summary();
}

function dropCaches(files: string[]): string {
  try {
    execFileSync('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '1');
    return 'drop_caches';
  } catch {
    for (const f of files) spawnSync('dd', [`if=${f}`, 'iflag=nocache', 'count=0', 'status=none']);
    return 'dd iflag=nocache';
  }
}

function segmentFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.lnc')) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** reads every partition from offset 0 to its high watermark, one Fetch in flight per partition (like a consumer) */
async function readAll(sys: LanceSystem, topic: string, partitions: number): Promise<{ bytes: number; records: number; secs: number }> {
  const ls = await sys.leaders(topic);
  let bytes = 0;
  let records = 0;
  const t0 = performance.now();
  await Promise.all(ls.map(async (l) => {
    const c = await LeanConn.connect(l.host, l.port);
    try {
      let off = 0;
      for (;;) {
        const r = await fetchOnce(c, topic, l.partition, off, 8 << 20, 0);
        if (r.errorCode !== 0) throw new Error(`fetch error ${r.errorCode} at ${topic}/${l.partition}@${off}`);
        if (!r.records || r.records.length === 0) {
          if (off >= r.highWatermark) break;
          continue;
        }
        const s = scanBatches(r.records);
        bytes += s.bytes;
        records += s.records;
        off = s.nextOffset;
        if (off >= r.highWatermark) break;
      }
    } finally {
      c.close();
    }
  }));
  if (ls.length !== partitions) throw new Error(`expected ${partitions} partitions, metadata has ${ls.length}`);
  return { bytes, records, secs: (performance.now() - t0) / 1000 };
}

/** consumer throughput: fill `totalMB`, restart the broker with the page cache dropped (cold), read, read again (warm) */
export async function consumeThroughput(dir: string, totalMB: number, recordBytes: number): Promise<{ recordBytes: number; bytes: number; coldMBps: number; warmMBps: number; coldRecordsPerSec: number; warmRecordsPerSec: number; cacheDrop: string }> {
  const sys = await LanceSystem.start(dir, 1);
  try {
    const partitions = 3;
    const ls = await sys.createTopic('consume', partitions, 1);
    const rpu = Math.max(1, Math.round(65536 / recordBytes));
    const d = await lanceDriver('consume', ls, recordBytes, rpu, 1);
    const units = Math.ceil((totalMB * 1e6) / (rpu * recordBytes));
    let issued = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (issued++ < units) await d.send();
    }));
    await d.close();
    await sys.stop('SIGTERM');
    const cacheDrop = dropCaches(segmentFiles(dir));
    await sys.startNode(1);
    const cold = await readAll(sys, 'consume', partitions);
    const warm = await readAll(sys, 'consume', partitions);
    const payload = (n: number): number => n * recordBytes;
    return {
      recordBytes,
      bytes: payload(cold.records),
      coldMBps: payload(cold.records) / 1e6 / cold.secs,
      warmMBps: payload(warm.records) / 1e6 / warm.secs,
      coldRecordsPerSec: cold.records / cold.secs,
      warmRecordsPerSec: warm.records / warm.secs,
      cacheDrop,
    };
  } finally {
    await sys.stop('SIGKILL');
  }
}

async function isr(c: LeanConn, topic: string): Promise<{ leader: number; isr: number[] } | undefined> {
  const md = await c.request<MetadataResponse>(3, 9, { topics: [{ topicId: '00000000-0000-0000-0000-000000000000', name: topic }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
  const p = md.topics[0]?.partitions[0];
  if (!p || p.errorCode !== 0 || p.leaderId < 0) return undefined;
  return { leader: p.leaderId, isr: p.isrNodes };
}

/**
 * Failover on a 3-node cluster, RF=3, acks=all, one partition: SIGKILL the leader, then write (acks=all) to
 * whatever the surviving nodes name as leader until one write is acknowledged. Sample = kill → that ack.
 * The killed node is restarted and back in the ISR before the next round.
 */
export async function failover(dir: string, rounds: number, log: (s: string) => void): Promise<number[]> {
  const sys = await LanceSystem.start(dir, 3);
  const samples: number[] = [];
  try {
    await sys.createTopic('failover', 1, 3);
    const batch = buildRecordBatch([{ key: null, value: Buffer.alloc(100, 0x61), headers: [], timestamp: Date.now() }]);
    const frame = produceTemplate('failover', 0, batch, -1);
    const conns = new Map<number, LeanConn>();
    const connTo = async (id: number): Promise<LeanConn> => {
      let c = conns.get(id);
      if (!c || c.isClosed) {
        c = await LeanConn.connect('127.0.0.1', sys.node(id).kafkaPort);
        conns.set(id, c);
      }
      return c;
    };
    const write = async (id: number): Promise<number> => produceError(await (await connTo(id)).sendFrame(frame));
    for (let round = 0; round < rounds; round++) {
      // steady state: every node up, all three in the ISR, a write acknowledged
      const st = await waitFor('3 replicas in sync', async () => {
        for (const x of sys.nodes) {
          const s = await isr(await connTo(x.nodeId), 'failover').catch(() => undefined);
          if (s && s.isr.length === 3 && (await write(s.leader)) === 0) return s;
        }
        return undefined;
      }, 120_000, 100);
      const victim = st.leader;
      const survivors = sys.nodes.filter((x) => x.nodeId !== victim).map((x) => x.nodeId);
      const t0 = performance.now();
      sys.node(victim).child!.proc.kill('SIGKILL');
      const ackAt = await waitFor('an acknowledged write after the leader was killed', async () => {
        for (const id of survivors) {
          const s = await isr(await connTo(id), 'failover').catch(() => undefined);
          if (!s || s.leader === victim) continue;
          if ((await write(s.leader).catch(() => -1)) === 0) return performance.now();
        }
        return undefined;
      }, 60_000, 5);
      samples.push(ackAt - t0);
      log(`  failover round ${round + 1}/${rounds}: ${(ackAt - t0).toFixed(0)} ms (killed node ${victim})`);
      await sys.kill(victim, 'SIGKILL');
      conns.get(victim)?.close();
      conns.delete(victim);
      await sys.startNode(victim);
    }
    for (const c of conns.values()) c.close();
    return samples;
  } finally {
    await sys.stop('SIGKILL');
  }
}

interface CpuProfile { startTime: number; nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>; samples: number[]; timeDeltas: number[] }

export interface ProfileSummary {
  /** sampled ms inside the window, over all profiles */
  totalMs: number;
  /** share of samples the brokers were busy (not idle) */
  busyPct: number;
  /** self time per frame, % of busy samples */
  top: Array<{ fn: string; where: string; selfPct: number }>;
  /** self time per source file, % of busy samples */
  files: Array<{ file: string; selfPct: number }>;
}

/**
 * Self time per frame over the given .cpuprofile files, counting only samples whose timestamp (µs, V8's monotonic
 * clock = process.hrtime's) lies in [fromUs, toUs] — the load window, not the broker's start-up and shutdown.
 */
export function summariseProfiles(files: string[], fromUs = 0, toUs = Infinity, n = 15): ProfileSummary {
  const self = new Map<string, number>();
  const perFile = new Map<string, number>();
  let all = 0;
  let idle = 0;
  for (const f of files) {
    const p = JSON.parse(readFileSync(f, 'utf8')) as CpuProfile;
    const byId = new Map(p.nodes.map((x) => [x.id, x]));
    let t = p.startTime;
    for (let i = 0; i < p.samples.length; i++) {
      t += p.timeDeltas[i] ?? 0;
      if (t < fromUs || t > toUs) continue;
      const node = byId.get(p.samples[i]!);
      if (!node) continue;
      all++;
      const cf = node.callFrame;
      if (cf.functionName === '(idle)') {
        idle++;
        continue;
      }
      const file = cf.url ? cf.url.replace(/^file:\/\/.*?\/(broker|node_modules)\//, '$1/') : '(native)';
      // tsx-compiled sources report line 0: then the file alone
      const key = `${cf.functionName || '(anonymous)'}\t${file}${cf.lineNumber > 0 ? `:${cf.lineNumber + 1}` : ''}`;
      self.set(key, (self.get(key) ?? 0) + 1);
      perFile.set(file, (perFile.get(file) ?? 0) + 1);
    }
  }
  const busy = Math.max(1, all - idle);
  const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, hits]) => {
    const [fn, where] = k.split('\t') as [string, string];
    return { fn, where, selfPct: (100 * hits) / busy };
  });
  const filesTop = [...perFile.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([file, hits]) => ({ file, selfPct: (100 * hits) / busy }));
  // sampling interval is ~1 ms by default; report sampled time from the counts
  return { totalMs: all, busyPct: (100 * (all - idle)) / Math.max(1, all), top, files: filesTop };
}

const hrUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** `nodes` brokers (1: standalone acks=1, 3: RF=3 acks=all) with --cpu-prof, peak load for `durationMs`, graceful stop, summary */
export async function profileCluster(dir: string, recordBytes: number, durationMs: number, nodes = 3): Promise<ProfileSummary> {
  const profDir = path.join(dir, 'prof');
  const sys = await LanceSystem.start(dir, nodes, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
  let from = 0;
  let to = 0;
  try {
    await sys.createTopic('prof', 3, nodes);
    const ls = await sys.spreadLeaders('prof');
    const d = await lanceDriver('prof', ls, recordBytes, Math.max(1, Math.round(65536 / recordBytes)), nodes > 1 ? -1 : 1, 2, () => sys.leaders('prof', 30_000));
    from = hrUs();
    await runClosedLoop({ concurrency: 16, warmupMs: 0, durationMs, send: () => d.send() });
    to = hrUs();
    await d.close();
  } finally {
    await sys.stop('SIGTERM');
  }
  const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(profDir, f));
  if (files.length === 0) throw new Error(`no .cpuprofile written in ${profDir}`);
  return summariseProfiles(files, from, to);
}
