import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, startLance, type LanceProcess } from './helpers/broker.ts';
import { kcat } from './helpers/kcat.ts';

/** kcat (librdkafka 2.x, from apt) against the real `lance` process: -L, -P, -C -e. */

interface Consumed {
  partition: number;
  offset: number;
  key: string;
  value: string;
  headers: string;
  timestamp: number;
}

// %p partition, %o offset, %k key, %s value, %h headers, %T timestamp; fields separated by a byte that never occurs in the data
const FORMAT = '%p\x1f%o\x1f%k\x1f%s\x1f%h\x1f%T\n';

function parse(stdout: string): Consumed[] {
  return stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const [p, o, k, s, h, t] = l.split('\x1f');
      return { partition: Number(p), offset: Number(o), key: k!, value: s!, headers: h!, timestamp: Number(t) };
    });
}

describe('kcat against the real broker', () => {
  let lance: LanceProcess;
  let kb: string[];
  let admin: ReturnType<Kafka['admin']>;

  beforeAll(async () => {
    lance = await startLance();
    kb = ['-b', lance.bootstrap];
    admin = new Kafka({ brokers: [lance.bootstrap], clientId: 'kcat-test-admin', logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'lines', numPartitions: 2 }, { topic: 'codecs' }, { topic: 'stamped' }] });
  });

  afterAll(async () => {
    await admin?.disconnect().catch(() => undefined);
    await lance?.stop('SIGKILL');
    if (lance) removeDir(lance.dataDir);
  });

  it('kcat -L lists the broker and the topics with their partitions', async () => {
    const r = await kcat([...kb, '-L', '-J']);
    expect(r.code, r.stderr).toBe(0);
    const md = JSON.parse(r.stdout) as { brokers: Array<{ id: number; name: string }>; topics: Array<{ topic: string; partitions: Array<{ partition: number; leader: number }> }> };
    expect(md.brokers).toEqual([{ id: 1, name: lance.bootstrap }]);
    const lines = md.topics.find((t) => t.topic === 'lines');
    expect(lines?.partitions.map((p) => [p.partition, p.leader])).toEqual([
      [0, 1],
      [1, 1],
    ]);
  });

  it('kcat -P then kcat -C -e: every record exactly once, in order, keys and headers intact', async () => {
    const n = 1500;
    const before = Date.now();
    for (const p of [0, 1]) {
      const input = Array.from({ length: n }, (_, i) => `key-${p}-${i}:value ${p}/${i} ${'x'.repeat(i % 50)}`).join('\n') + '\n';
      const r = await kcat([...kb, '-P', '-t', 'lines', '-p', String(p), '-K:', '-H', 'origin=kcat', '-H', `part=${p}`], input);
      expect(r.code, r.stderr).toBe(0);
    }
    const after = Date.now();
    const r = await kcat([...kb, '-C', '-t', 'lines', '-o', 'beginning', '-e', '-q', '-f', FORMAT]);
    expect(r.code, r.stderr).toBe(0);
    const got = parse(r.stdout);
    expect(got).toHaveLength(2 * n);
    for (const p of [0, 1]) {
      const mine = got.filter((x) => x.partition === p);
      expect(mine.map((x) => x.offset)).toEqual(Array.from({ length: n }, (_, i) => i));
      expect(mine.map((x) => x.key)).toEqual(Array.from({ length: n }, (_, i) => `key-${p}-${i}`));
      expect(mine.map((x) => x.value)).toEqual(Array.from({ length: n }, (_, i) => `value ${p}/${i} ${'x'.repeat(i % 50)}`));
      expect(new Set(mine.map((x) => x.headers))).toEqual(new Set([`origin=kcat,part=${p}`]));
      for (const x of mine) {
        expect(x.timestamp).toBeGreaterThanOrEqual(before - 1000);
        expect(x.timestamp).toBeLessThanOrEqual(after + 1000);
      }
    }
    // consume the tail only: -o -10 (relative to the end, via ListOffsets)
    const tail = await kcat([...kb, '-C', '-t', 'lines', '-p', '0', '-o', '-10', '-e', '-q', '-f', FORMAT]);
    expect(parse(tail.stdout).map((x) => x.offset)).toEqual(Array.from({ length: 10 }, (_, i) => n - 10 + i));
  });

  it('timestamps set by the producer are returned unchanged', async () => {
    const producer = new Kafka({ brokers: [lance.bootstrap], clientId: 'kcat-test-producer', logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    const stamps = [1_600_000_000_000, 1_600_000_000_001, 1_650_000_000_000, 1_500_000_000_000];
    await producer.send({ topic: 'stamped', acks: -1, messages: stamps.map((t, i) => ({ key: `k${i}`, value: `v${i}`, timestamp: String(t), headers: { i: String(i) } })) });
    await producer.disconnect();
    const r = await kcat([...kb, '-C', '-t', 'stamped', '-o', 'beginning', '-e', '-q', '-f', FORMAT]);
    expect(parse(r.stdout).map((x) => [x.key, x.value, x.headers, x.timestamp])).toEqual(stamps.map((t, i) => [`k${i}`, `v${i}`, `i=${i}`, t]));
  });

  it('compressed batches (gzip, snappy, lz4, zstd) are stored as sent and consumed intact', async () => {
    const codecs = ['gzip', 'snappy', 'lz4', 'zstd'];
    for (const z of codecs) {
      const input = Array.from({ length: 300 }, (_, i) => `${z}:${z}-payload-${i} ${'abc'.repeat(20)}`).join('\n') + '\n';
      const r = await kcat([...kb, '-P', '-t', 'codecs', '-p', '0', '-K:', '-z', z], input);
      expect(r.code, r.stderr).toBe(0);
    }
    const r = await kcat([...kb, '-C', '-t', 'codecs', '-o', 'beginning', '-e', '-q', '-f', FORMAT]);
    const got = parse(r.stdout);
    expect(got.map((x) => x.offset)).toEqual(Array.from({ length: 1200 }, (_, i) => i));
    expect(got.map((x) => x.value)).toEqual(codecs.flatMap((z) => Array.from({ length: 300 }, (_, i) => `${z}-payload-${i} ${'abc'.repeat(20)}`)));
  });
});
