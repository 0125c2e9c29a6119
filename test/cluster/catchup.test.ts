/**
 * Catch-up by segment transfer between real broker processes: a follower whose data dir was wiped refills from the
 * leader's sealed segment files (not entry by entry), ends with byte-identical segments and records; the same after
 * retention deleted the leader's early segments (the refilled node starts at the leader's log start).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { ConfigResourceTypes, Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaWireClient } from '../../broker/src/kafka/client.ts';
import { KafkaError } from '../../broker/src/kafka/errors.ts';
import { ApiKey, type FetchRequest, type FetchResponse } from '../../broker/src/kafka/protocol/messages.ts';
import { decodeRecordBatches } from '../../broker/src/kafka/records.ts';
import { TestCluster, waitUntil, type ClusterNode } from './harness.ts';

const SEGMENT_BYTES = 64 * 1024;
const TOPIC = 'catchup';

// the harness passes process.env on to the brokers: small segments, frequent retention passes
const ENV = { LANCE_SEGMENT_BYTES: String(SEGMENT_BYTES), LANCE_RETENTION_CHECK_INTERVAL_MS: '300' };
const saved: Record<string, string | undefined> = {};

function metric(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

async function transfers(x: ClusterNode, direction: 'in' | 'out'): Promise<{ segments: number; bytes: number }> {
  const t = await x.admin.metricsText();
  return { segments: metric(t, 'lance_segment_transfers_total', `direction="${direction}"`), bytes: metric(t, 'lance_segment_transfer_bytes_total', `direction="${direction}"`) };
}

describe('segment transfer catch-up (real processes)', () => {
  let c: TestCluster;
  let kafka: Kafka;
  let group = '';
  let partitionDir = '';
  let produced = 0;

  beforeAll(async () => {
    for (const [k, v] of Object.entries(ENV)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
    c = await TestCluster.start(3);
    kafka = new Kafka({ clientId: 'catchup', brokers: c.bootstrap(), logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 } });
  }, 120_000);

  afterAll(async () => {
    await c?.cleanup();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  async function produce(batches: number, valueBytes = 400): Promise<void> {
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      for (let b = 0; b < batches; b++) {
        await producer.send({
          topic: TOPIC, acks: -1,
          messages: Array.from({ length: 40 }, () => ({ key: `k${produced}`, value: `value-${produced++}-${'x'.repeat(valueBytes)}` })),
        });
      }
    } finally {
      await producer.disconnect();
    }
  }

  async function leaderOf(): Promise<number> {
    return (await waitUntil(`agreed leader of ${group}`, () => c.agreedLeader(group), 60_000)).leader;
  }

  async function groupOn(x: ClusterNode): Promise<{ lastIndex: number; commitIndex: number } | undefined> {
    return (await x.admin.cluster()).groups?.find((g) => g.group === group);
  }

  /** every record of the partition as node x serves it (from its log start) */
  async function records(x: ClusterNode): Promise<{ logStart: number; values: string[] }> {
    let offset = (await x.admin.getTopic(TOPIC)).partitionStates.find((p) => p.partition === 0)!.logStartOffset;
    const logStart = offset;
    const values: string[] = [];
    for (;;) {
      const r = await x.admin.fetchRecords(TOPIC, 0, { offset, max: 5000 });
      values.push(...r.records.map((rec) => rec.value!));
      if (r.records.length === 0 || r.nextOffset >= r.highWatermark) break;
      offset = r.nextOffset;
    }
    return { logStart, values };
  }

  /** one Kafka Fetch (v11, partition 0) on a connection of its own */
  async function fetchOnce(x: ClusterNode, offset: number): Promise<{ errorCode: number; values: string[] }> {
    const wire = await KafkaWireClient.connect(x.host, x.kafkaPort);
    try {
      const req: FetchRequest = {
        replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
        topics: [{ topic: TOPIC, topicId: '00000000-0000-0000-0000-000000000000', partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset: offset, lastFetchedEpoch: -1, logStartOffset: -1, partitionMaxBytes: 1 << 20 }] }],
        forgottenTopicsData: [], rackId: '',
      };
      const r = await wire.request<FetchResponse>(ApiKey.Fetch, 11, req);
      const p = r.responses[0]!.partitions[0]!;
      return { errorCode: p.errorCode, values: p.records && p.records.length > 0 ? decodeRecordBatches(p.records).map((rec) => String(rec.value)) : [] };
    } finally {
      wire.close();
    }
  }

  /** the partition's segment files on node x (name → bytes) */
  async function segments(x: ClusterNode): Promise<Map<string, Buffer>> {
    const dir = path.join(x.dataDir, partitionDir);
    const out = new Map<string, Buffer>();
    for (const n of (await readdir(dir)).filter((f) => f.endsWith('.lnc')).sort()) out.set(n, await readFile(path.join(dir, n)));
    return out;
  }

  /** segments served by every node but the victim (leadership may move meanwhile) */
  async function servedBy(others: number[]): Promise<number> {
    let n = 0;
    for (const id of others) n += (await transfers(c.node(id), 'out')).segments;
    return n;
  }

  async function wipeAndRefill(victim: number, leader: number): Promise<void> {
    const others = [1, 2, 3].filter((n) => n !== victim);
    const before = await servedBy(others);
    await c.kill(victim);
    await produce(40); // more data while it is down
    await c.wipe(victim);
    const skip = (await readFile(c.node(victim).logFile, 'utf8').catch(() => '')).split('\n').length;
    await c.startNode(victim);
    const want = await waitUntil('leader log end', async () => (await groupOn(c.node((await leaderOf()) ?? leader)))?.lastIndex);
    await waitUntil(`node ${victim} refilled to index ${want}`, async () => ((await groupOn(c.node(victim)))?.lastIndex ?? 0) >= want, 120_000);
    // the view's last index jumps to the snapshot point (and on with queued appends) before the segments arrive:
    // wait for the install itself to complete before counting what went over the wire
    await waitUntil(`node ${victim} completed its segment install`, async () => (await readFile(c.node(victim).logFile, 'utf8')).split('\n').slice(skip).some((l) => l.includes('segment install complete')), 120_000);
    const after = await servedBy(others);
    const got = await transfers(c.node(victim), 'in');
    // segments, not only entries: whole sealed files went over the wire
    expect(after - before, `segments served by nodes ${others.join(', ')}`).toBeGreaterThanOrEqual(3);
    expect(got.segments, `segments received by node ${victim}`).toBeGreaterThanOrEqual(3);
    expect(got.bytes, `bytes received by node ${victim}`).toBeGreaterThanOrEqual(3 * SEGMENT_BYTES / 2);
  }

  async function expectIdentical(victim: number, leader: number): Promise<void> {
    const segsL = await segments(c.node(leader));
    const segsV = await waitUntil('same segment files on both', async () => {
      const s = await segments(c.node(victim));
      return [...s.keys()].join() === [...segsL.keys()].join() ? s : undefined;
    });
    // sealed segments (all but the active one) are byte-identical files
    const sealed = [...segsL.keys()].slice(0, -1);
    expect(sealed.length).toBeGreaterThanOrEqual(3);
    for (const n of sealed) expect(segsV.get(n)!.equals(segsL.get(n)!), `segment ${n}`).toBe(true);
    const recL = await records(c.node(leader));
    const recV = await waitUntil(`node ${victim} serves every committed record`, async () => {
      const r = await records(c.node(victim));
      return r.values.length === recL.values.length ? r : undefined;
    }, 60_000);
    expect(recV.logStart).toBe(recL.logStart);
    expect(recV.values).toEqual(recL.values);
  }

  it('a wiped follower refills by segment transfer and holds byte-identical segments and records', async () => {
    await waitUntil('controller', () => c.agreedLeader('__meta'), 60_000);
    const admin = kafka.admin();
    await admin.connect();
    try {
      expect(await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 1, replicationFactor: 3 }], waitForLeaders: true })).toBe(true);
    } finally {
      await admin.disconnect();
    }
    const g = await waitUntil('partition group', async () => (await c.node(1).admin.cluster()).groups?.find((x) => x.topic === TOPIC));
    group = g.group;
    partitionDir = group; // topic_<id>/<partition>
    await produce(60); // ~60 entries of ~17 KiB: many 64 KiB segments
    const leader = await leaderOf();
    const victim = [1, 2, 3].find((n) => n !== leader)!;
    await wipeAndRefill(victim, leader);
    await expectIdentical(victim, await leaderOf());
  }, 300_000);

  it('a follower that was down while the log grew gets only the missing segments (keeps its identical prefix)', async () => {
    const leader = await leaderOf();
    const victim = [1, 2, 3].find((n) => n !== leader)!;
    const x = c.node(victim);
    await c.kill(victim);
    await produce(40);
    await c.startNode(victim); // same data dir
    const want = await waitUntil('leader log end', async () => (await groupOn(c.node(await leaderOf())))?.lastIndex);
    await waitUntil(`node ${victim} caught up to ${want}`, async () => ((await groupOn(x))?.lastIndex ?? 0) >= want, 120_000);
    // counters restart with the process: everything counted here came after the restart
    expect((await transfers(x, 'in')).segments).toBeGreaterThanOrEqual(1);
    // the install kept the segments the node already had (log line of this start)
    const lines = (await readFile(x.logFile, 'utf8')).split('\n').filter((l) => l.includes('segment install: fetching'));
    const last = JSON.parse(lines[lines.length - 1]!) as { keep: number; fetch: number };
    expect(last.keep).toBeGreaterThan(0);
    await expectIdentical(victim, await leaderOf());
  }, 300_000);

  it('a follower killed in the middle of a segment install restarts it and ends identical', async () => {
    const leader = await leaderOf();
    const victim = [1, 2, 3].find((n) => n !== leader)!;
    const x = c.node(victim);
    await c.kill(victim);
    await produce(50, 3000); // ~120 KiB entries: one segment each, a long install
    await c.wipe(victim);
    const logLines = async (): Promise<string[]> => (await readFile(x.logFile, 'utf8').catch(() => '')).split('\n');
    const skip = (await logLines()).length;
    await c.startNode(victim);
    await waitUntil(`node ${victim} starts an install`, async () => (await logLines()).slice(skip).some((l) => l.includes('segment install: fetching')), 60_000);
    // a Kafka Fetch served by the follower while it installs: a retriable NOT_LEADER_OR_FOLLOWER, or (if the install
    // already completed) committed records identical to the leader's — never an unknown error or a closed socket
    const probe = await fetchOnce(x, 0);
    await c.kill(victim);
    expect([KafkaError.NOT_LEADER_OR_FOLLOWER, KafkaError.NONE], `fetch during the install answered error ${probe.errorCode}`).toContain(probe.errorCode);
    if (probe.errorCode === KafkaError.NONE && probe.values.length > 0) {
      const lead = await records(c.node(await leaderOf()));
      expect(probe.values).toEqual(lead.values.slice(0, probe.values.length));
    }
    process.stdout.write(`fetch from node ${victim} during its segment install: error ${probe.errorCode}, ${probe.values.length} records\n`);
    const during = (await logLines()).slice(skip);
    // killed mid-transfer: the install never completed and its files were only in the staging dir
    expect(during.some((l) => l.includes('segment install complete'))).toBe(false);
    expect((await stat(path.join(x.dataDir, partitionDir, 'incoming'))).isDirectory()).toBe(true);
    await c.startNode(victim);
    const want = await waitUntil('leader log end', async () => (await groupOn(c.node(await leaderOf())))?.lastIndex);
    await waitUntil(`node ${victim} caught up to ${want}`, async () => ((await groupOn(x))?.lastIndex ?? 0) >= want, 120_000);
    await expectIdentical(victim, await leaderOf());
  }, 300_000);

  it('after retention deleted the leader\'s early segments, a wiped follower starts at the leader\'s log start', async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: TOPIC, configEntries: [{ name: 'retention.bytes', value: String(8 * SEGMENT_BYTES) }] }] });
    } finally {
      await admin.disconnect();
    }
    const leader = await leaderOf();
    // retention runs on every replica independently
    await waitUntil('retention deleted early segments on every node', async () => {
      const starts = await Promise.all(c.nodes.map(async (x) => (await segments(x)).keys().next().value));
      return starts.every((s) => s !== undefined && s !== '00000000000000000000.lnc');
    }, 60_000);
    const victim = [1, 2, 3].find((n) => n !== leader)!;
    await wipeAndRefill(victim, leader);
    const l2 = await leaderOf();
    const recL = await records(c.node(l2));
    expect(recL.logStart).toBeGreaterThan(0);
    await expectIdentical(victim, l2);
    // nothing below the log start on the refilled node
    expect([...(await segments(c.node(victim))).keys()][0]).toBe([...(await segments(c.node(l2))).keys()][0]);
  }, 300_000);
});
