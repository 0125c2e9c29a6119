/** 3 real broker processes form a cluster; kafkajs creates an RF-3 topic, produces with acks=-1, consumes back. */
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, waitUntil } from './harness.ts';

describe('3-node cluster (real processes)', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await TestCluster.start(3);
  }, 120_000);
  afterAll(async () => {
    await c?.cleanup();
  });

  it('elects a controller, creates an RF-3 topic, agrees on leaders and serves produce/consume', async () => {
    const meta = await waitUntil('controller agreed by all nodes', () => c.agreedLeader('__meta'), 60_000);
    expect([1, 2, 3]).toContain(meta.leader);

    const kafka = new Kafka({ clientId: 'cluster-basic', brokers: c.bootstrap(), logLevel: logLevel.NOTHING, retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 1000 } });
    const admin = kafka.admin();
    await admin.connect();
    // created through a node that is not necessarily the controller: forwarded and answered after commit
    expect(await admin.createTopics({ topics: [{ topic: 'orders', numPartitions: 3, replicationFactor: 3 }], waitForLeaders: true })).toBe(true);
    const md = await waitUntil('a leader for every partition', async () => {
      const m = await admin.fetchTopicMetadata({ topics: ['orders'] });
      const ps = m.topics[0]!.partitions;
      return ps.length === 3 && ps.every((p) => p.leader >= 1) ? ps : undefined;
    });
    for (const p of md) {
      expect([...p.replicas].sort()).toEqual([1, 2, 3]);
    }
    // every node's /v1/cluster agrees on leader and term of each partition group
    const groups = (await c.views())[0]!.groups!.filter((g) => g.topic === 'orders').map((g) => g.group);
    expect(groups).toHaveLength(3);
    for (const g of groups) await waitUntil(`agreement on ${g}`, () => c.agreedLeader(g));

    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const N = 300;
    for (let i = 0; i < N; i += 50) {
      await producer.send({ topic: 'orders', acks: -1, messages: Array.from({ length: 50 }, (_, k) => ({ key: `k${(i + k) % 7}`, value: `v${i + k}` })) });
    }
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: 'g-basic' });
    const seen: string[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic: 'orders', fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => { seen.push(message.value!.toString()); } });
    await waitUntil('all records consumed', async () => seen.length >= N, 90_000);
    await consumer.disconnect();
    await admin.disconnect();
    expect(new Set(seen).size).toBe(N);
  }, 240_000);
});
