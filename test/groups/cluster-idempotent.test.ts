/**
 * Idempotent producer in CLUSTER mode: the partition's new leader knows every producer's sequences from the
 * replicated batches (their headers carry producer id/epoch/sequence), so a retry after a leader kill writes no
 * duplicate. Real 3-node clusters; the wire-level test sends exact batches, kafkajs and kcat are the real clients.
 */
import { crc32c } from '@node-rs/crc32';
import { Kafka, logLevel } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { KafkaWireClient } from '../../broker/src/kafka/client.ts';
import type { InitProducerIdResponse } from '../../broker/src/kafka/protocol/groups.ts';
import type { ProduceResponse } from '../../broker/src/kafka/protocol/messages.ts';
import { buildRecordBatch } from '../../broker/src/kafka/records.ts';
import { TestCluster, waitUntil } from '../cluster/harness.ts';
import { kcat } from '../kafka/helpers/kcat.ts';
import { controllerOf, duplicates, partitionLeaderOf, replicasAgree, startNodes, topicReady } from './helpers/cluster.ts';

let cluster: TestCluster | undefined;
const clients: KafkaWireClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await cluster?.cleanup();
  cluster = undefined;
});

async function wire(c: TestCluster, node: number): Promise<KafkaWireClient> {
  const w = await KafkaWireClient.connect('127.0.0.1', c.node(node).kafkaPort);
  clients.push(w);
  return w;
}

function batch(pid: number, epoch: number, seq: number, values: string[]): Buffer {
  return buildRecordBatch(values.map((v) => ({ key: null, value: Buffer.from(v), headers: [], timestamp: Date.now() })), { producerId: pid, producerEpoch: epoch, baseSequence: seq });
}

/** the same batch with the transactional attribute bit (0x10) set, CRC recomputed */
function transactional(b: Buffer): Buffer {
  const out = Buffer.from(b);
  out.writeInt16BE(out.readInt16BE(21) | 0x10, 21);
  out.writeUInt32BE(crc32c(out.subarray(21)) >>> 0, 17);
  return out;
}

async function produce(w: KafkaWireClient, topic: string, records: Buffer): Promise<{ errorCode: number; baseOffset: number }> {
  const r = await w.request<ProduceResponse>(0, 9, { transactionalId: null, acks: -1, timeoutMs: 20_000, topicData: [{ name: topic, partitionData: [{ index: 0, records }] }] });
  const p = r.responses[0]!.partitionResponses[0]!;
  return { errorCode: p.errorCode, baseOffset: Number(p.baseOffset) };
}

/** produce to whichever node leads the partition now (NOT_LEADER → look again) */
async function produceToLeader(c: TestCluster, topic: string, records: Buffer): Promise<{ errorCode: number; baseOffset: number }> {
  return waitUntil(`an answer from the leader of ${topic}-0`, async () => {
    const l = await partitionLeaderOf(c, topic, 0);
    const r = await produce(await wire(c, l), topic, records);
    return r.errorCode === 6 ? undefined : r; // NOT_LEADER_OR_FOLLOWER: leadership moved meanwhile
  }, 90_000);
}

/** every value of the topic, read with kcat once every running replica agrees on the high watermarks */
async function readAll(c: TestCluster, topic: string, partitions: number): Promise<string[]> {
  await replicasAgree(c, topic, partitions);
  let last = '';
  const out = await waitUntil(`kcat reads ${topic}`, async () => {
    const r = await kcat(['-C', '-b', c.bootstrap().join(','), '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%s\n'], undefined, 120_000);
    last = r.stderr;
    return r.code === 0 ? r.stdout : undefined; // a node still applying its metadata may not know the topic yet
  }, 120_000).catch((e: unknown) => { throw new Error(`${String(e)}; kcat: ${last}`); });
  return out.split('\n').filter((l) => l !== '');
}

describe('idempotent producer on a 3-node cluster', () => {
  it('a new leader (after a kill, after a full restart) answers a retried batch with its original offset; gaps → OUT_OF_ORDER_SEQUENCE_NUMBER, old epoch → INVALID_PRODUCER_EPOCH; producer ids unique across nodes', async () => {
    cluster = await TestCluster.start(3);
    const c = cluster;
    const ctl = await controllerOf(c);
    const other = [1, 2, 3].find((n) => n !== ctl)!;
    const admin = new Kafka({ brokers: c.bootstrap(), clientId: 'idem-admin', logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'seq', numPartitions: 1 }] });
    await admin.disconnect();
    await topicReady(c, 'seq', 1);

    // InitProducerId on a non-controller and on the controller: ids from disjoint blocks of the metadata log
    const init = async (node: number, transactionalId: string | null = null): Promise<InitProducerIdResponse> =>
      (await wire(c, node)).request<InitProducerIdResponse>(22, 4, { transactionalId, transactionTimeoutMs: 60_000, producerId: -1, producerEpoch: -1 });
    const a = await init(other);
    const b = await init(ctl);
    expect(a.errorCode).toBe(0);
    expect(b.errorCode).toBe(0);
    expect(Number(a.producerId)).not.toBe(Number(b.producerId));
    expect((await init(other, 'tx-1')).errorCode).toBe(53); // transactions are not supported: non-retriable error
    const pid = Number(a.producerId);

    expect(await produceToLeader(c, 'seq', batch(pid, 0, 0, ['r0', 'r1', 'r2']))).toEqual({ errorCode: 0, baseOffset: 0 });
    expect(await produceToLeader(c, 'seq', batch(pid, 0, 3, ['r3', 'r4']))).toEqual({ errorCode: 0, baseOffset: 3 });

    // the leader dies; the new leader has the sequences from the replicated batches
    const l1 = await partitionLeaderOf(c, 'seq', 0);
    await c.kill(l1);
    expect(await produceToLeader(c, 'seq', batch(pid, 0, 3, ['r3', 'r4']))).toEqual({ errorCode: 0, baseOffset: 3 }); // retry: duplicate
    expect((await produceToLeader(c, 'seq', batch(pid, 0, 9, ['gap']))).errorCode).toBe(45); // OUT_OF_ORDER_SEQUENCE_NUMBER
    expect(await produceToLeader(c, 'seq', batch(pid, 0, 5, ['r5']))).toEqual({ errorCode: 0, baseOffset: 5 });
    expect(await produceToLeader(c, 'seq', batch(pid, 1, 0, ['e1']))).toEqual({ errorCode: 0, baseOffset: 6 }); // epoch bump starts at 0
    expect((await produceToLeader(c, 'seq', batch(pid, 0, 6, ['stale']))).errorCode).toBe(47); // INVALID_PRODUCER_EPOCH
    expect((await produceToLeader(c, 'seq', transactional(batch(pid, 1, 1, ['tx'])))).errorCode).toBe(87); // transactions: INVALID_RECORD
    await c.startNode(l1);

    // full restart: every node rebuilds the state while Raft re-applies its log
    for (const w of clients.splice(0)) w.close();
    await c.stop();
    await startNodes(c, [1, 2, 3]);
    expect(await produceToLeader(c, 'seq', batch(pid, 1, 0, ['e1']))).toEqual({ errorCode: 0, baseOffset: 6 }); // still a duplicate
    expect(await produceToLeader(c, 'seq', batch(pid, 1, 1, ['e2']))).toEqual({ errorCode: 0, baseOffset: 7 });
    const after = await init(other);
    expect([Number(a.producerId), Number(b.producerId)]).not.toContain(Number(after.producerId)); // ids are never reused

    expect(await readAll(c, 'seq', 1)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'e1', 'e2']);
  }, 600_000);

  it('producer state older than the Raft snapshot floor (sealed segments, not re-applied after a restart) is read back from the log', async () => {
    // tiny segments: the snapshot floor moves past producer A's batches while producer B writes
    process.env.LANCE_SEGMENT_BYTES = '4096';
    try {
      cluster = await TestCluster.start(3);
      const c = cluster;
      const ctl = await controllerOf(c);
      const admin = new Kafka({ brokers: c.bootstrap(), clientId: 'floor-admin', logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic: 'floor', numPartitions: 1 }] });
      await admin.disconnect();
      await topicReady(c, 'floor', 1);
      const init = async (): Promise<number> => Number((await (await wire(c, ctl)).request<InitProducerIdResponse>(22, 4, { transactionalId: null, transactionTimeoutMs: 60_000, producerId: -1, producerEpoch: -1 })).producerId);
      const pa = await init();
      const pb = await init();
      const big = (tag: string): string[] => [`${tag}:${'x'.repeat(1500)}`];
      const aOffsets: number[] = [];
      for (let i = 0; i < 5; i++) aOffsets.push((await produceToLeader(c, 'floor', batch(pa, 0, i, big(`a${i}`)))).baseOffset);
      for (let i = 0; i < 40; i++) expect((await produceToLeader(c, 'floor', batch(pb, 0, i, big(`b${i}`)))).errorCode).toBe(0);
      // every replica has sealed segments below its floor now
      await waitUntil('segments sealed on every node', async () => (await c.views()).every((v) => (v.topics.find((t) => t.name === 'floor')?.partitions[0]?.segments ?? 0) >= 5), 60_000);
      for (const w of clients.splice(0)) w.close();
      await c.stop();
      await startNodes(c, [1, 2, 3]);
      // A retries its last batch: the new leader knows it from the log scan, not from re-applied entries
      expect(await produceToLeader(c, 'floor', batch(pa, 0, 4, big('a4')))).toEqual({ errorCode: 0, baseOffset: aOffsets[4] });
      expect((await produceToLeader(c, 'floor', batch(pa, 0, 7, big('gap')))).errorCode).toBe(45);
      expect(await produceToLeader(c, 'floor', batch(pb, 0, 39, big('b39')))).toMatchObject({ errorCode: 0 });
      const vals = (await readAll(c, 'floor', 1)).map((v) => v.split(':')[0]!);
      expect(duplicates(vals)).toEqual([]);
      expect(vals).toHaveLength(45);
    } finally {
      delete process.env.LANCE_SEGMENT_BYTES;
    }
  }, 600_000);

  it('kafkajs idempotent: true across a partition-leader SIGKILL: every record once', async () => {
    cluster = await TestCluster.start(3);
    const c = cluster;
    await controllerOf(c);
    const kafka = new Kafka({ brokers: c.bootstrap(), clientId: 'idem-kill', logLevel: logLevel.NOTHING, requestTimeout: 5000, retry: { retries: 40, initialRetryTime: 200, maxRetryTime: 2000 } });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'kill', numPartitions: 2 }] });
    await admin.disconnect();
    await topicReady(c, 'kill', 2);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    let sent = 0;
    const sender = (async () => {
      for (let i = 0; i < 300; i++) {
        await producer.send({ topic: 'kill', acks: -1, messages: [{ partition: i % 2, value: `u${i}` }] });
        sent = i + 1;
      }
    })();
    await waitUntil('a third sent', async () => sent >= 100, 120_000);
    const leader = await partitionLeaderOf(c, 'kill', 0);
    await c.kill(leader);
    await waitUntil('two thirds sent', async () => sent >= 200, 180_000);
    await c.startNode(leader);
    await sender;
    await producer.disconnect();
    const vals = await readAll(c, 'kill', 2);
    expect(duplicates(vals)).toEqual([]);
    expect(new Set(vals)).toEqual(new Set(Array.from({ length: 300 }, (_, i) => `u${i}`)));
  }, 600_000);

  it('kcat (librdkafka) enable.idempotence=true across a partition-leader SIGKILL: every record once', async () => {
    cluster = await TestCluster.start(3);
    const c = cluster;
    await controllerOf(c);
    const admin = new Kafka({ brokers: c.bootstrap(), clientId: 'kidem-admin', logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'kidem', numPartitions: 1 }] });
    await admin.disconnect();
    await topicReady(c, 'kidem', 1);
    const leader = await partitionLeaderOf(c, 'kidem', 0);
    // the records trickle in through stdin so the kill lands mid-stream
    const { spawn } = await import('node:child_process');
    const p = spawn('kcat', ['-P', '-b', c.bootstrap().join(','), '-t', 'kidem', '-X', 'enable.idempotence=true', '-X', 'linger.ms=5', '-X', 'batch.num.messages=50',
      '-X', 'max.in.flight.requests.per.connection=5', '-X', 'message.timeout.ms=120000'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    const write = (from: number, to: number): void => { p.stdin.write(Array.from({ length: to - from }, (_, i) => `k${from + i}`).join('\n') + '\n'); };
    write(0, 1000);
    await waitUntil('the first records committed', async () => {
      const v = (await c.node(leader).admin.cluster()).topics.find((t) => t.name === 'kidem')?.partitions[0]?.highWatermark ?? 0;
      return v >= 500;
    }, 120_000);
    await c.kill(leader);
    write(1000, 2000);
    p.stdin.end();
    const code = await exited;
    expect(code, stderr).toBe(0);
    await c.startNode(leader);
    const vals = await readAll(c, 'kidem', 1);
    expect(duplicates(vals)).toEqual([]);
    expect(new Set(vals).size).toBe(2000);
  }, 600_000);
});
