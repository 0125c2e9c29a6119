import { CompressionTypes, Kafka, logLevel, type Admin, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, startLance, waitFor, type LanceProcess } from './helpers/broker.ts';
import { KafkajsPartitionReader, type ReadRecord } from './helpers/kafkajs-reader.ts';

/**
 * kafkajs 2.2.4 against the real `lance` process. Consuming mostly uses kafkajs's own Fetch path without a group
 * (KafkajsPartitionReader); consumer groups have their own suite in test/groups/.
 */

const T0 = 1_700_000_000_000;

function messages(prefix: string, n: number, partition: number) {
  return Array.from({ length: n }, (_, i) => ({
    key: `${prefix}-k${i}`,
    value: `${prefix}-v${i}`,
    headers: { seq: String(i), src: prefix },
    timestamp: String(T0 + i),
    partition,
  }));
}

function expectRecords(got: ReadRecord[], prefix: string, n: number, firstOffset: number): void {
  expect(got.map((r) => r.offset)).toEqual(Array.from({ length: n }, (_, i) => firstOffset + i));
  expect(got.map((r) => [r.key, r.value, r.headers, r.timestamp])).toEqual(
    Array.from({ length: n }, (_, i) => [`${prefix}-k${i}`, `${prefix}-v${i}`, { seq: String(i), src: prefix }, T0 + i]),
  );
}

describe('kafkajs against the real broker', () => {
  let lance: LanceProcess;
  let kafka: Kafka;
  let admin: Admin;
  let producer: Producer;
  let reader: KafkajsPartitionReader;

  beforeAll(async () => {
    lance = await startLance();
    kafka = new Kafka({ brokers: [lance.bootstrap], clientId: 'kafkajs-test', logLevel: logLevel.NOTHING, retry: { retries: 2 } });
    admin = kafka.admin();
    await admin.connect();
    producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    reader = new KafkajsPartitionReader([lance.bootstrap]);
    await reader.connect();
  });

  afterAll(async () => {
    await reader?.disconnect().catch(() => undefined);
    await producer?.disconnect().catch(() => undefined);
    await admin?.disconnect().catch(() => undefined);
    await lance?.stop('SIGKILL');
    if (lance) removeDir(lance.dataDir);
  });

  it('admin creates, lists, describes and deletes topics', async () => {
    expect(await admin.createTopics({ topics: [{ topic: 'orders', numPartitions: 3 }, { topic: 'temp' }], waitForLeaders: true })).toBe(true);
    expect(await admin.createTopics({ topics: [{ topic: 'orders', numPartitions: 3 }] })).toBe(false); // already exists
    expect((await admin.listTopics()).sort()).toEqual(['orders', 'temp']);
    const md = await admin.fetchTopicMetadata({ topics: ['orders'] });
    expect(md.topics[0]!.partitions.map((p) => p.partitionId).sort()).toEqual([0, 1, 2]);
    const cfg = await admin.describeConfigs({ resources: [{ type: 2, name: 'orders' }], includeSynonyms: false });
    const names = cfg.resources[0]!.configEntries.map((e) => e.configName);
    expect(names).toEqual(expect.arrayContaining(['retention.ms', 'retention.bytes', 'segment.bytes', 'cleanup.policy']));
    await admin.deleteTopics({ topics: ['temp'] });
    expect(await admin.listTopics()).toEqual(['orders']);
    await expect(admin.deleteTopics({ topics: ['temp'] })).rejects.toThrow();
  });

  it('producer with acks=1, acks=-1 and acks=0: every record read back exactly once, in order, intact', async () => {
    await producer.send({ topic: 'orders', acks: 1, messages: messages('a1', 50, 0) });
    await producer.send({ topic: 'orders', acks: -1, messages: messages('all', 50, 1) });
    await producer.send({ topic: 'orders', acks: 0, messages: messages('a0', 50, 2) });
    // acks=0 has no response: wait until the broker's high watermark shows all 50
    await waitFor('acks=0 records to commit', async () => {
      const offs = await admin.fetchTopicOffsets('orders');
      return offs.find((o) => o.partition === 2)?.high === '50';
    });
    expectRecords(await reader.readToEnd('orders', 0, 0), 'a1', 50, 0);
    expectRecords(await reader.readToEnd('orders', 1, 0), 'all', 50, 0);
    expectRecords(await reader.readToEnd('orders', 2, 0), 'a0', 50, 0);
  });

  it('gzip batches are stored without recompression and read back intact', async () => {
    await admin.createTopics({ topics: [{ topic: 'zipped' }] });
    await producer.send({ topic: 'zipped', acks: -1, compression: CompressionTypes.GZIP, messages: messages('gz', 200, 0) });
    expectRecords(await reader.readToEnd('zipped', 0, 0), 'gz', 200, 0);
    // what the broker stored is still one gzip batch: the log end is 200 offsets and kafkajs decoded it from a gzip batch
    const offs = await admin.fetchTopicOffsets('zipped');
    expect(offs[0]).toMatchObject({ low: '0', high: '200' });
  });

  it('consumes from earliest and from latest (ListOffsets) and by timestamp', async () => {
    await admin.createTopics({ topics: [{ topic: 'tail' }] });
    await producer.send({ topic: 'tail', acks: 1, messages: messages('old', 10, 0) });
    const latest = Number((await admin.fetchTopicOffsets('tail'))[0]!.offset);
    expect(latest).toBe(10);
    await producer.send({ topic: 'tail', acks: 1, messages: messages('new', 5, 0) });
    const fromLatest = await reader.readToEnd('tail', 0, latest);
    expectRecords(fromLatest, 'new', 5, 10);
    const fromEarliest = await reader.readToEnd('tail', 0, 0);
    expect(fromEarliest.map((r) => r.value)).toEqual([...messages('old', 10, 0), ...messages('new', 5, 0)].map((m) => m.value));
    const byTime = await admin.fetchTopicOffsetsByTimestamp('tail', T0 + 3);
    expect(byTime[0]!.offset).toBe('3');
  });

  it('a group consumer reads the topic through the group coordinator (groups: test/groups/)', async () => {
    const consumer = kafka.consumer({ groupId: 'g1' });
    await consumer.connect();
    await consumer.subscribe({ topics: ['orders'], fromBeginning: true });
    let n = 0;
    await consumer.run({ eachMessage: async () => { n++; } });
    await waitFor('records through the group', () => n > 0, 60_000);
    await consumer.disconnect();
  });
});

describe('acknowledged records survive broker restarts (SIGTERM and SIGKILL)', () => {
  it('every acked record is there after a graceful stop and after a kill -9', async () => {
    let lance = await startLance();
    const dataDir = lance.dataDir;
    try {
      const connect = async (l: LanceProcess) => {
        const k = new Kafka({ brokers: [l.bootstrap], clientId: 'restart-test', logLevel: logLevel.NOTHING });
        const a = k.admin();
        const p = k.producer({ allowAutoTopicCreation: false });
        await a.connect();
        await p.connect();
        return { a, p };
      };
      let { a, p } = await connect(lance);
      await a.createTopics({ topics: [{ topic: 'durable' }] });
      await p.send({ topic: 'durable', acks: 1, messages: messages('before-term', 100, 0) });
      await p.disconnect();
      await a.disconnect();
      expect(await lance.stop('SIGTERM')).toBe(0);

      lance = await startLance({ dataDir });
      ({ a, p } = await connect(lance));
      await p.send({ topic: 'durable', acks: -1, messages: messages('before-kill', 100, 0) });
      await p.disconnect();
      await a.disconnect();
      await lance.stop('SIGKILL');

      lance = await startLance({ dataDir });
      const reader = new KafkajsPartitionReader([lance.bootstrap]);
      await reader.connect();
      const got = await reader.readToEnd('durable', 0, 0);
      await reader.disconnect();
      expect(got.map((r) => r.value)).toEqual([...messages('before-term', 100, 0), ...messages('before-kill', 100, 0)].map((m) => m.value));
      expect(new Set(got.map((r) => r.offset)).size).toBe(200);
    } finally {
      await lance.stop('SIGKILL');
      removeDir(dataDir);
    }
  });
});

describe('topic auto-creation through Metadata (topics.autoCreate)', () => {
  it('creates an unknown topic on first use when enabled, and refuses it when disabled', async () => {
    const on = await startLance({ env: { LANCE_AUTO_CREATE_TOPICS: 'true' } });
    const off = await startLance();
    try {
      const kOn = new Kafka({ brokers: [on.bootstrap], clientId: 'auto-on', logLevel: logLevel.NOTHING });
      const p = kOn.producer({ allowAutoTopicCreation: true });
      await p.connect();
      await p.send({ topic: 'born-on-demand', acks: -1, messages: messages('auto', 3, 0) });
      await p.disconnect();
      const reader = new KafkajsPartitionReader([on.bootstrap]);
      await reader.connect();
      expectRecords(await reader.readToEnd('born-on-demand', 0, 0), 'auto', 3, 0);
      await reader.disconnect();

      const kOff = new Kafka({ brokers: [off.bootstrap], clientId: 'auto-off', logLevel: logLevel.NOTHING, retry: { retries: 1, initialRetryTime: 50 } });
      const q = kOff.producer({ allowAutoTopicCreation: true });
      await q.connect();
      await expect(q.send({ topic: 'never-created', acks: 1, messages: messages('x', 1, 0) })).rejects.toThrow(/does not host this topic-partition/);
      await q.disconnect();
      const a = kOff.admin();
      await a.connect();
      expect(await a.listTopics()).not.toContain('never-created');
      await a.disconnect();
    } finally {
      await on.stop('SIGKILL');
      await off.stop('SIGKILL');
      removeDir(on.dataDir);
      removeDir(off.dataDir);
    }
  });
});

describe('CreatePartitions', () => {
  it('grows a topic with kafkajs admin; the new partition takes writes and is still there after a restart', async () => {
    let lance = await startLance();
    const dataDir = lance.dataDir;
    try {
      let kafka = new Kafka({ brokers: [lance.bootstrap], clientId: 'partitions-test', logLevel: logLevel.NOTHING, retry: { retries: 2 } });
      let admin = kafka.admin();
      const producer = kafka.producer({ allowAutoTopicCreation: false });
      await admin.connect();
      await producer.connect();
      await admin.createTopics({ topics: [{ topic: 'grow', numPartitions: 1 }] });
      await expect(admin.createPartitions({ topicPartitions: [{ topic: 'grow', count: 1 }] })).rejects.toThrow(); // not larger
      await admin.createPartitions({ topicPartitions: [{ topic: 'grow', count: 3 }] });
      const md = await admin.fetchTopicMetadata({ topics: ['grow'] });
      expect(md.topics[0]!.partitions.map((p) => p.partitionId).sort()).toEqual([0, 1, 2]);
      await producer.send({ topic: 'grow', acks: -1, messages: messages('p2', 10, 2) });
      await producer.disconnect();
      await admin.disconnect();
      expect(await lance.stop('SIGTERM')).toBe(0);

      lance = await startLance({ dataDir });
      kafka = new Kafka({ brokers: [lance.bootstrap], clientId: 'partitions-test-2', logLevel: logLevel.NOTHING });
      admin = kafka.admin();
      await admin.connect();
      const md2 = await admin.fetchTopicMetadata({ topics: ['grow'] });
      await admin.disconnect();
      expect(md2.topics[0]!.partitions).toHaveLength(3);
      const reader = new KafkajsPartitionReader([lance.bootstrap]);
      await reader.connect();
      const got = await reader.readToEnd('grow', 2, 0);
      await reader.disconnect();
      expectRecords(got, 'p2', 10, 0);
    } finally {
      await lance.stop('SIGKILL');
      removeDir(dataDir);
    }
  });
});
