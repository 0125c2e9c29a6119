import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaWireClient } from '../../broker/src/kafka/client.ts';
import type { ApiVersionsResponse, CreateTopicsResponse, FetchResponse, ProduceResponse } from '../../broker/src/kafka/protocol/messages.ts';
import { buildRecordBatch, decodeRecordBatches } from '../../broker/src/kafka/records.ts';
import { removeDir, startLance, waitFor, type LanceProcess } from './helpers/broker.ts';

/**
 * Protocol fuzzing against a LIVE broker process: ≥100 000 mutated frames (bit flips, byte smashes, truncations,
 * random size prefixes, random API keys/versions, garbage, appended junk) from a seeded PRNG, over many
 * connections. Afterwards the broker must still answer valid requests, must not leak sockets, and its RSS must stay
 * bounded.
 */

const FRAMES = Number(process.env['LANCE_FUZZ_FRAMES'] ?? 100_000);
const SEED = Number(process.env['LANCE_FUZZ_SEED'] ?? 0x1a2ce);
const WORKERS = 16;
/** how long a worker waits for an answer before assuming none will come (acks=0, long fetch, short frame) */
const QUIET_MS = 200;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function seedCorpus(): Buffer[] {
  const out: Buffer[] = [];
  const enc = (k: number, v: number, body: object): void => {
    out.push(KafkaWireClient.encodeRequest(k, v, 1, body));
  };
  for (let v = 0; v <= 3; v++) enc(18, v, { clientSoftwareName: 'fuzz', clientSoftwareVersion: '1' });
  for (let v = 0; v <= 12; v++) enc(3, v, { topics: v === 0 ? [] : [{ name: 'fuzz', topicId: '00000000-0000-0000-0000-000000000000' }], allowAutoTopicCreation: false });
  const batch = buildRecordBatch([
    { key: Buffer.from('k'), value: Buffer.from('fuzz-value'), headers: [{ key: 'h', value: Buffer.from('v') }], timestamp: 1_700_000_000_000 },
    { key: null, value: Buffer.from('second'), headers: [], timestamp: 1_700_000_000_001 },
  ]);
  for (let v = 3; v <= 9; v++) enc(0, v, { transactionalId: null, acks: 1, timeoutMs: 1000, topicData: [{ name: 'fuzz', partitionData: [{ index: v % 2, records: batch }] }] });
  for (let v = 4; v <= 13; v++) {
    enc(1, v, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1 << 16,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [{ topic: 'fuzz', topicId: '00000000-0000-0000-0000-000000000000', partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 16, currentLeaderEpoch: -1, lastFetchedEpoch: -1, logStartOffset: -1 }] }],
      forgottenTopicsData: [],
      rackId: '',
    });
  }
  for (let v = 1; v <= 7; v++) enc(2, v, { replicaId: -1, isolationLevel: 0, topics: [{ name: 'fuzz', partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1 }] }] });
  for (let v = 0; v <= 4; v++) enc(32, v, { resources: [{ resourceType: 2, resourceName: 'fuzz', configurationKeys: null }], includeSynonyms: true, includeDocumentation: true });
  for (let v = 0; v <= 1; v++) enc(60, v, { includeClusterAuthorizedOperations: false, endpointType: 1 });
  for (let v = 0; v <= 4; v++) enc(10, v, { key: 'g', keyType: 0, coordinatorKeys: ['g'] });
  return out;
}

type Mutated = { bytes: Buffer; expectsNoMoreInput: boolean };

function mutate(seed: Buffer, rnd: () => number): Mutated {
  const int = (n: number): number => Math.floor(rnd() * n);
  const f = Buffer.from(seed);
  const fixSize = (b: Buffer): Buffer => {
    b.writeInt32BE(b.length - 4, 0);
    return b;
  };
  switch (int(8)) {
    case 0: {
      // bit flips in header or body
      const flips = 1 + int(8);
      for (let i = 0; i < flips; i++) {
        const at = 4 + int(f.length - 4);
        f[at]! ^= 1 << int(8);
      }
      return { bytes: f, expectsNoMoreInput: false };
    }
    case 1: {
      // smash bytes with boundary values
      const n = 1 + int(4);
      const vals = [0x00, 0xff, 0x7f, 0x80, int(256)];
      for (let i = 0; i < n; i++) f[4 + int(f.length - 4)] = vals[int(vals.length)]!;
      return { bytes: f, expectsNoMoreInput: false };
    }
    case 2:
      // truncated body, consistent size prefix
      return { bytes: fixSize(Buffer.from(f.subarray(0, 4 + int(f.length - 4)))), expectsNoMoreInput: false };
    case 3: {
      // random size prefix: negative, zero, huge, or a few bytes more than what follows (then the client leaves)
      const choices = [-1 - int(1000), 0, int(8), 0x7fffffff, 100 * 1024 * 1024 + 1 + int(1 << 20), f.length - 4 + 1 + int(64)];
      f.writeInt32BE(choices[int(choices.length)]!, 0);
      return { bytes: f, expectsNoMoreInput: true };
    }
    case 4: {
      // random API key / version, body of another API
      f.writeInt16BE(rnd() < 0.5 ? int(70) : int(65536) - 32768, 4);
      f.writeInt16BE(rnd() < 0.5 ? int(16) : int(65536) - 32768, 6);
      return { bytes: f, expectsNoMoreInput: false };
    }
    case 5: {
      // keep a valid API key/version but replace the body with garbage of random length
      const body = Buffer.from(Array.from({ length: int(300) }, () => int(256)));
      return { bytes: fixSize(Buffer.concat([f.subarray(0, 14), body])), expectsNoMoreInput: false };
    }
    case 6: {
      // append junk after a valid body
      const junk = Buffer.from(Array.from({ length: 1 + int(64) }, () => int(256)));
      return { bytes: fixSize(Buffer.concat([f, junk])), expectsNoMoreInput: false };
    }
    default: {
      // pure garbage frame
      const body = Buffer.from(Array.from({ length: int(64) }, () => int(256)));
      return { bytes: fixSize(Buffer.concat([Buffer.alloc(4), body])), expectsNoMoreInput: false };
    }
  }
}

/** Sends frames one at a time on a connection; reconnects whenever the broker closes it. */
async function worker(port: number, next: () => Mutated | null, stats: { sent: number; closes: number; answered: number; quiet: number }): Promise<void> {
  let sock: net.Socket | null = null;
  let buf = Buffer.alloc(0);
  let waiter: ((what: 'answer' | 'closed') => void) | null = null;
  const open = (): Promise<net.Socket> =>
    new Promise((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1', noDelay: true });
      s.once('connect', () => resolve(s));
      s.once('error', reject);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        let got = false;
        while (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) {
          buf = buf.subarray(4 + buf.readInt32BE(0));
          got = true;
        }
        if (got && waiter) waiter('answer');
      });
      s.on('close', () => {
        if (sock === s) sock = null;
        if (waiter) waiter('closed');
      });
      s.on('error', () => undefined);
    });
  for (let m = next(); m !== null; m = next()) {
    if (!sock) {
      buf = Buffer.alloc(0);
      sock = await open();
    }
    const s: net.Socket = sock;
    const outcome = await new Promise<'answer' | 'closed' | 'quiet'>((resolve) => {
      const timer = setTimeout(() => {
        waiter = null;
        resolve('quiet');
      }, QUIET_MS);
      waiter = (w) => {
        clearTimeout(timer);
        waiter = null;
        resolve(w);
      };
      s.write(m.bytes);
      stats.sent++;
      if (m.expectsNoMoreInput) s.end();
    });
    if (outcome === 'answer') stats.answered++;
    else if (outcome === 'closed') stats.closes++;
    else {
      stats.quiet++;
      s.destroy();
      sock = null;
    }
    if (m.expectsNoMoreInput && sock === s) {
      s.destroy();
      sock = null;
    }
  }
  (sock as net.Socket | null)?.destroy();
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

describe('fuzzing a live broker', () => {
  let lance: LanceProcess;

  beforeAll(async () => {
    lance = await startLance({ env: { LANCE_LOG_LEVEL: 'error' } });
    const c = await KafkaWireClient.connect('127.0.0.1', lance.kafkaPort);
    const ct = await c.request<CreateTopicsResponse>(19, 4, { topics: [{ name: 'fuzz', numPartitions: 2, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 5000, validateOnly: false });
    expect(ct.topics[0]!.errorCode).toBe(0);
    c.close();
  });

  afterAll(async () => {
    await lance?.stop('SIGKILL');
    if (lance) removeDir(lance.dataDir);
  });

  it(`survives ${FRAMES} mutated frames with bounded memory and no leaked sockets`, { timeout: 240_000 }, async () => {
    const corpus = seedCorpus();
    const rnd = mulberry32(SEED);
    const run = async (count: number) => {
      let left = count;
      const stats = { sent: 0, closes: 0, answered: 0, quiet: 0 };
      const next = (): Mutated | null => (left-- > 0 ? mutate(corpus[Math.floor(rnd() * corpus.length)]!, rnd) : null);
      await Promise.all(Array.from({ length: WORKERS }, () => worker(lance.kafkaPort, next, stats)));
      return stats;
    };
    // warm-up so the baseline includes JIT, pools and buffers that legitimately stay allocated
    await run(5_000);
    await waitFor('warm-up connections to close', () => openFds(lance.pid) < 200);
    const fdsBefore = openFds(lance.pid);
    const rssBefore = lance.rssBytes();
    const cpu = (): number => {
      const f = readFileSync(`/proc/${lance.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, clock ticks at 100 Hz
    };
    const cpuBefore = cpu();
    const selfBefore = process.cpuUsage();
    // a well-behaved client keeps producing on its own long-lived connection during the whole fuzz run
    const steady = await KafkaWireClient.connect('127.0.0.1', lance.kafkaPort, 'steady');
    let fuzzing = true;
    let steadyOk = 0;
    const steadyLoop = (async () => {
      const b = buildRecordBatch([{ key: null, value: Buffer.from('steady'), headers: [], timestamp: Date.now() }]);
      while (fuzzing) {
        const r = await steady.request<ProduceResponse>(0, 9, { transactionalId: null, acks: 1, timeoutMs: 10_000, topicData: [{ name: 'fuzz', partitionData: [{ index: 1, records: b }] }] });
        if (r.responses[0]!.partitionResponses[0]!.errorCode !== 0) throw new Error(`steady produce failed: ${JSON.stringify(r)}`);
        steadyOk++;
      }
    })();
    const started = Date.now();
    const stats = await run(FRAMES);
    fuzzing = false;
    await steadyLoop;
    steady.close();
    const brokerCpu = cpu() - cpuBefore;
    const selfCpu = (process.cpuUsage(selfBefore).user + process.cpuUsage(selfBefore).system) / 1e6;
    const seconds = (Date.now() - started) / 1000;
    const rssAfter = lance.rssBytes();
    console.log(
      `fuzz: ${stats.sent} frames in ${seconds.toFixed(1)} s (${Math.round(stats.sent / seconds)}/s); answered ${stats.answered}, ` +
        `closed by broker ${stats.closes}, quiet ${stats.quiet}; RSS ${(rssBefore / 2 ** 20).toFixed(0)} → ${(rssAfter / 2 ** 20).toFixed(0)} MiB; fds before ${fdsBefore}; CPU s broker ${brokerCpu.toFixed(1)}, fuzzer ${selfCpu.toFixed(1)}; steady client produced ${steadyOk} batches meanwhile`,
    );
    expect(stats.sent).toBeGreaterThanOrEqual(FRAMES);
    expect(steadyOk).toBeGreaterThan(0); // the other connection kept being served (any failure threw above)
    expect(stats.closes).toBeGreaterThan(FRAMES / 10); // the broker really rejected malformed input
    expect(stats.answered).toBeGreaterThan(FRAMES / 20); // and really answered what still parsed

    // still alive and correct
    expect(lance.proc.exitCode).toBeNull();
    const c = await KafkaWireClient.connect('127.0.0.1', lance.kafkaPort);
    const av = await c.request<ApiVersionsResponse>(18, 3, { clientSoftwareName: 'after-fuzz', clientSoftwareVersion: '1' });
    expect(av.errorCode).toBe(0);
    const batch = buildRecordBatch([{ key: null, value: Buffer.from('after-fuzz'), headers: [], timestamp: Date.now() }]);
    const p = await c.request<ProduceResponse>(0, 9, { transactionalId: null, acks: -1, timeoutMs: 5000, topicData: [{ name: 'fuzz', partitionData: [{ index: 0, records: batch }] }] });
    const pr = p.responses[0]!.partitionResponses[0]!;
    expect(pr.errorCode).toBe(0);
    const f = await c.request<FetchResponse>(1, 12, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1 << 20,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [{ topic: 'fuzz', partitions: [{ partition: 0, fetchOffset: pr.baseOffset, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1, lastFetchedEpoch: -1, logStartOffset: -1 }] }],
      forgottenTopicsData: [],
      rackId: '',
    });
    expect(decodeRecordBatches(f.responses[0]!.partitions[0]!.records!).find((r) => r.offset === pr.baseOffset)?.value?.toString()).toBe('after-fuzz');
    c.close();

    // no leaked sockets once every fuzz connection is gone; memory bounded (generous: allocator caches, GC timing)
    await waitFor('fuzz connections to be released', () => openFds(lance.pid) <= fdsBefore + 5);
    expect(rssAfter - rssBefore).toBeLessThan(256 * 2 ** 20);
  });
});
