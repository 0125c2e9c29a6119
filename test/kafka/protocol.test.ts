import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaWireClient } from '../../broker/src/kafka/client.ts';
import { KafkaError } from '../../broker/src/kafka/errors.ts';
import type {
  AlterConfigsResponse,
  ApiVersionsResponse,
  CreatePartitionsResponse,
  CreateTopicsResponse,
  DeleteTopicsResponse,
  DescribeClusterResponse,
  DescribeConfigsResponse,
  FetchResponse,
  FindCoordinatorResponse,
  ListOffsetsResponse,
  MetadataResponse,
  ProduceResponse,
} from '../../broker/src/kafka/protocol/messages.ts';
import { buildRecordBatch, decodeRecordBatches, type KafkaRecord } from '../../broker/src/kafka/records.ts';
import { removeDir, startLance, waitFor, type LanceProcess } from './helpers/broker.ts';

/**
 * The protocol edge of the real broker process, driven with exact bytes: every API at its highest (flexible)
 * version — real clients here negotiate older ones — framing errors, pipelining, Fetch long-poll semantics.
 */

const rec = (i: number, ts = 1_700_000_000_000 + i): KafkaRecord => ({
  key: Buffer.from(`k${i}`),
  value: Buffer.from(`value-${i}`),
  headers: [{ key: 'idx', value: Buffer.from(String(i)) }],
  timestamp: ts,
});

function produceBody(topic: string, partition: number, records: Buffer, acks = 1): object {
  return { transactionalId: null, acks, timeoutMs: 10_000, topicData: [{ name: topic, partitionData: [{ index: partition, records }] }] };
}

/** Sends raw bytes on a fresh socket; resolves with everything received until the broker closes it. */
function rawExchange(port: number, bytes: Buffer, endAfterWrite = false): Promise<{ received: Buffer; closedByBroker: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', () => undefined);
    s.on('close', () => resolve({ received: Buffer.concat(chunks), closedByBroker: true }));
    s.on('connect', () => {
      s.write(bytes);
      if (endAfterWrite) s.end();
    });
    s.setTimeout(30_000, () => {
      s.destroy();
      reject(new Error('broker neither answered nor closed the connection within 30 s'));
    });
  });
}

describe('Kafka protocol against the real lance process', () => {
  let lance: LanceProcess;
  let c: KafkaWireClient;
  let topicId = '';

  beforeAll(async () => {
    lance = await startLance();
    c = await KafkaWireClient.connect('127.0.0.1', lance.kafkaPort);
  });
  afterAll(async () => {
    c?.close();
    await lance?.stop('SIGKILL');
    if (lance) removeDir(lance.dataDir);
  });

  it('ApiVersions v3 (flexible) lists the supported APIs; an unknown ApiVersions version gets a v0 answer with UNSUPPORTED_VERSION', async () => {
    const r = await c.request<ApiVersionsResponse>(18, 3, { clientSoftwareName: 'lance-test', clientSoftwareVersion: '1.0' });
    expect(r.errorCode).toBe(0);
    const byKey = new Map(r.apiKeys.map((k) => [k.apiKey, [k.minVersion, k.maxVersion]]));
    expect(byKey.get(0)).toEqual([3, 9]);
    expect(byKey.get(1)).toEqual([4, 13]);
    expect(byKey.get(3)).toEqual([0, 12]);
    expect(byKey.get(60)).toEqual([0, 1]);

    // ApiVersions v99 (a future client): the body layout is unknown, the answer is v0 with error 35 and our ranges.
    const frame = Buffer.alloc(4 + 10 + 3);
    frame.writeInt32BE(frame.length - 4, 0);
    frame.writeInt16BE(18, 4);
    frame.writeInt16BE(99, 6);
    frame.writeInt32BE(777, 8);
    frame.writeInt16BE(-1, 12);
    const s = net.connect(lance.kafkaPort, '127.0.0.1');
    const resp = await new Promise<Buffer>((resolve) => {
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) resolve(buf.subarray(4, 4 + buf.readInt32BE(0)));
      });
      s.write(frame);
    });
    s.destroy();
    const v0 = KafkaWireClient.decodeResponse<ApiVersionsResponse>(18, 0, resp);
    expect(resp.readInt32BE(0)).toBe(777);
    expect(v0.errorCode).toBe(KafkaError.UNSUPPORTED_VERSION);
    expect(v0.apiKeys.find((k) => k.apiKey === 18)).toEqual({ apiKey: 18, minVersion: 0, maxVersion: 3 });
  });

  it('CreateTopics v7 returns the topic id and configs; Metadata v12 by name and by id; DescribeCluster v1', async () => {
    const ct = await c.request<CreateTopicsResponse>(19, 7, {
      topics: [{ name: 'proto', numPartitions: 2, replicationFactor: 1, assignments: [], configs: [{ name: 'retention.ms', value: '86400000' }] }],
      timeoutMs: 10_000,
      validateOnly: false,
    });
    const t = ct.topics[0]!;
    expect(t.errorCode).toBe(0);
    expect(t.numPartitions).toBe(2);
    expect(t.topicId).not.toBe('00000000-0000-0000-0000-000000000000');
    expect(t.configs?.find((x) => x.name === 'retention.ms')?.value).toBe('86400000');
    topicId = t.topicId;

    const dup = await c.request<CreateTopicsResponse>(19, 7, {
      topics: [{ name: 'proto', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }],
      timeoutMs: 10_000,
      validateOnly: false,
    });
    expect(dup.topics[0]!.errorCode).toBe(KafkaError.TOPIC_ALREADY_EXISTS);
    expect(dup.topics[0]!.errorMessage).toMatch(/proto/);

    const bad = await c.request<CreateTopicsResponse>(19, 4, {
      topics: [{ name: 'bad/name', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }],
      timeoutMs: 10_000,
      validateOnly: false,
    });
    expect(bad.topics[0]!.errorCode).not.toBe(0);

    const md = await c.request<MetadataResponse>(3, 12, { topics: [{ topicId, name: null }], allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false });
    expect(md.topics[0]!.name).toBe('proto');
    expect(md.topics[0]!.partitions.map((p) => p.partitionIndex)).toEqual([0, 1]);
    expect(md.brokers[0]!.port).toBe(lance.kafkaPort);
    const md0 = await c.request<MetadataResponse>(3, 0, { topics: [] });
    expect(md0.topics.map((x) => x.name)).toContain('proto');
    const missing = await c.request<MetadataResponse>(3, 9, { topics: [{ name: 'nope' }], allowAutoTopicCreation: false });
    expect(missing.topics[0]!.errorCode).toBe(KafkaError.UNKNOWN_TOPIC_OR_PARTITION);

    const dc = await c.request<DescribeClusterResponse>(60, 1, { includeClusterAuthorizedOperations: false, endpointType: 1 });
    expect(dc.errorCode).toBe(0);
    expect(dc.brokers).toHaveLength(1);
    expect(dc.clusterId).toBe(md.clusterId);
  });

  it('Produce v9 → Fetch v13 (topic ids) → ListOffsets v7 round trip with keys, headers, timestamps', async () => {
    const batch1 = buildRecordBatch([rec(0), rec(1), rec(2)]);
    const batch2 = buildRecordBatch([rec(3), rec(4)], { compression: 'gzip' });
    const p1 = await c.request<ProduceResponse>(0, 9, produceBody('proto', 0, batch1, -1));
    expect(p1.responses[0]!.partitionResponses[0]).toMatchObject({ errorCode: 0, baseOffset: 0 });
    const p2 = await c.request<ProduceResponse>(0, 9, produceBody('proto', 0, batch2, 1));
    expect(p2.responses[0]!.partitionResponses[0]).toMatchObject({ errorCode: 0, baseOffset: 3 });

    const f = await c.request<FetchResponse>(1, 13, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1 << 20,
      isolationLevel: 1,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [{ topicId, partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset: 0, lastFetchedEpoch: -1, logStartOffset: -1, partitionMaxBytes: 1 << 20 }] }],
      forgottenTopicsData: [],
      rackId: '',
    });
    const part = f.responses[0]!.partitions[0]!;
    expect(part.errorCode).toBe(0);
    expect(part.highWatermark).toBe(5);
    expect(part.lastStableOffset).toBe(5);
    const got = decodeRecordBatches(part.records!);
    expect(got.map((r) => r.offset)).toEqual([0, 1, 2, 3, 4]);
    expect(got.map(({ offset: _o, ...r }) => r)).toEqual([0, 1, 2, 3, 4].map((i) => rec(i)));
    // gzip batch stored as sent: attributes codec bits still 1 in what Fetch returns
    const secondBatchAt = batch1.length;
    expect(part.records!.readInt16BE(secondBatchAt + 21) & 7).toBe(1);

    const lo = await c.request<ListOffsetsResponse>(2, 7, {
      replicaId: -1,
      isolationLevel: 0,
      topics: [{ name: 'proto', partitions: [-2, -1, 1_700_000_000_003, 1_800_000_000_000].map((ts, i) => ({ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: ts, _i: i })) }],
    });
    expect(lo.topics[0]!.partitions.map((p) => [p.errorCode, p.offset])).toEqual([
      [0, 0],
      [0, 5],
      [0, 3],
      [0, -1],
    ]);
  });

  it('Produce with a corrupt batch gets CORRUPT_MESSAGE naming the byte; an unknown partition gets UNKNOWN_TOPIC_OR_PARTITION', async () => {
    const batch = buildRecordBatch([rec(9)]);
    batch[batch.length - 1]! ^= 0xff;
    const r = await c.request<ProduceResponse>(0, 8, produceBody('proto', 1, batch));
    expect(r.responses[0]!.partitionResponses[0]!.errorCode).toBe(KafkaError.CORRUPT_MESSAGE);
    expect(r.responses[0]!.partitionResponses[0]!.errorMessage).toMatch(/CRC32C mismatch/);
    const u = await c.request<ProduceResponse>(0, 9, produceBody('proto', 7, buildRecordBatch([rec(1)])));
    expect(u.responses[0]!.partitionResponses[0]!.errorCode).toBe(KafkaError.UNKNOWN_TOPIC_OR_PARTITION);
    const acks = await c.request<ProduceResponse>(0, 9, produceBody('proto', 1, buildRecordBatch([rec(1)]), 2));
    expect(acks.responses[0]!.partitionResponses[0]!.errorCode).toBe(KafkaError.INVALID_REQUIRED_ACKS);
  });

  it('Fetch waits for data (max_wait/min_bytes) and wakes when a produce commits', async () => {
    const fetch = c.request<FetchResponse>(1, 11, {
      replicaId: -1,
      maxWaitMs: 30_000,
      minBytes: 1,
      maxBytes: 1 << 20,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [{ topic: 'proto', partitions: [{ partition: 1, currentLeaderEpoch: -1, fetchOffset: 0, logStartOffset: -1, partitionMaxBytes: 1 << 20 }] }],
      forgottenTopicsData: [],
      rackId: '',
    });
    let settled = false;
    void fetch.then(() => (settled = true));
    // A second connection produces; the long-poll must be answered with that record (not time out empty).
    const producer = await KafkaWireClient.connect('127.0.0.1', lance.kafkaPort);
    await waitFor('the fetch to be parked', () => c.inFlight() === 1);
    expect(settled).toBe(false);
    await producer.request<ProduceResponse>(0, 9, produceBody('proto', 1, buildRecordBatch([rec(42)])));
    producer.close();
    const r = await fetch;
    const recs = decodeRecordBatches(r.responses[0]!.partitions[0]!.records!);
    expect(recs.map((x) => x.value?.toString())).toEqual(['value-42']);
  });

  it('Fetch honours partition max bytes but always returns at least one whole batch (KIP-74)', async () => {
    const big = buildRecordBatch([{ key: null, value: Buffer.alloc(5000, 1), headers: [], timestamp: 1 }]);
    await c.request<ProduceResponse>(0, 9, produceBody('proto', 1, big));
    await c.request<ProduceResponse>(0, 9, produceBody('proto', 1, big));
    const f = await c.request<FetchResponse>(1, 11, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 100,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [{ topic: 'proto', partitions: [{ partition: 1, currentLeaderEpoch: -1, fetchOffset: 1, logStartOffset: -1, partitionMaxBytes: 100 }] }],
      forgottenTopicsData: [],
      rackId: '',
    });
    const recs = decodeRecordBatches(f.responses[0]!.partitions[0]!.records!);
    expect(recs.map((x) => x.offset)).toEqual([1]);
  });

  it('Fetch max_bytes is a budget across partitions, applied in request order (first batch always whole)', async () => {
    await c.request<CreateTopicsResponse>(19, 4, { topics: [{ name: 'budget', numPartitions: 3, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 5000, validateOnly: false });
    const big = buildRecordBatch([{ key: null, value: Buffer.alloc(5000, 2), headers: [], timestamp: 1 }]);
    for (const p of [0, 1, 2]) await c.request<ProduceResponse>(0, 9, produceBody('budget', p, big));
    const f = await c.request<FetchResponse>(1, 11, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 6000, // room for one 5 KB batch, not two
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [{ topic: 'budget', partitions: [2, 0, 1].map((partition) => ({ partition, currentLeaderEpoch: -1, fetchOffset: 0, logStartOffset: -1, partitionMaxBytes: 1 << 20 })) }],
      forgottenTopicsData: [],
      rackId: '',
    });
    const parts = f.responses[0]!.partitions;
    expect(parts.map((x) => [x.partitionIndex, x.errorCode, x.highWatermark, x.records!.length])).toEqual([
      [2, 0, 1, big.length],
      [0, 0, 1, 0],
      [1, 0, 1, 0],
    ]);
  });

  it('DescribeConfigs v4, AlterConfigs v2 (validate-only and real), CreatePartitions v3, DeleteTopics v6 by id', async () => {
    const dc = await c.request<DescribeConfigsResponse>(32, 4, {
      resources: [{ resourceType: 2, resourceName: 'proto', configurationKeys: null }],
      includeSynonyms: true,
      includeDocumentation: true,
    });
    const cfg = new Map(dc.results[0]!.configs.map((x) => [x.name, x]));
    expect(cfg.get('retention.ms')?.value).toBe('86400000');
    expect(cfg.get('cleanup.policy')).toMatchObject({ value: 'delete', readOnly: true });

    const bad = await c.request<AlterConfigsResponse>(33, 2, {
      resources: [{ resourceType: 2, resourceName: 'proto', configs: [{ name: 'retention.ms', value: 'soon' }] }],
      validateOnly: false,
    });
    expect(bad.responses[0]!.errorCode).toBe(KafkaError.INVALID_CONFIG);
    expect(bad.responses[0]!.errorMessage).toMatch(/retention\.ms/);
    const ok = await c.request<AlterConfigsResponse>(33, 2, {
      resources: [{ resourceType: 2, resourceName: 'proto', configs: [{ name: 'retention.bytes', value: '1048576' }] }],
      validateOnly: false,
    });
    expect(ok.responses[0]!.errorCode).toBe(0);
    const after = await c.request<DescribeConfigsResponse>(32, 1, {
      resources: [{ resourceType: 2, resourceName: 'proto', configurationKeys: ['retention.bytes'] }],
      includeSynonyms: false,
    });
    expect(after.results[0]!.configs.map((x) => [x.name, x.value])).toEqual([['retention.bytes', '1048576']]);

    const cp = await c.request<CreatePartitionsResponse>(37, 3, { topics: [{ name: 'proto', count: 1, assignments: null }], timeoutMs: 1000, validateOnly: false });
    // shrinking is never allowed: INVALID_PARTITIONS with a message naming the current count
    expect(cp.results[0]!.errorCode).toBe(KafkaError.INVALID_PARTITIONS);
    expect(cp.results[0]!.errorMessage).toMatch(/numPartitions: topic "proto" has 2 partitions/);

    const del = await c.request<DeleteTopicsResponse>(20, 6, { topics: [{ name: null, topicId }], timeoutMs: 10_000 });
    expect(del.responses[0]).toMatchObject({ name: 'proto', errorCode: 0 });
    const again = await c.request<DeleteTopicsResponse>(20, 1, { topicNames: ['proto'], timeoutMs: 10_000 });
    expect(again.responses[0]!.errorCode).toBe(KafkaError.UNKNOWN_TOPIC_OR_PARTITION);
  });

  it('FindCoordinator names this node for groups (v2 and v4 batch); transactions get UNSUPPORTED_VERSION', async () => {
    const r = await c.request<FindCoordinatorResponse>(10, 2, { key: 'my-group', keyType: 0 });
    expect(r).toMatchObject({ errorCode: 0, host: '127.0.0.1', port: lance.kafkaPort });
    const r4 = await c.request<FindCoordinatorResponse>(10, 4, { keyType: 0, coordinatorKeys: ['g1', 'g2'] });
    expect(r4.coordinators.map((x) => [x.key, x.errorCode, x.port])).toEqual([
      ['g1', 0, lance.kafkaPort],
      ['g2', 0, lance.kafkaPort],
    ]);
    const txn = await c.request<FindCoordinatorResponse>(10, 4, { keyType: 1, coordinatorKeys: ['tx'] });
    expect(txn.coordinators[0]!.errorCode).toBe(KafkaError.UNSUPPORTED_VERSION);
  });

  it('pipelined requests are answered in order on one connection', async () => {
    const frames: Buffer[] = [];
    const expected: number[] = [];
    for (let i = 0; i < 60; i++) {
      const kind = i % 3;
      const id = 1000 + i;
      expected.push(id);
      if (kind === 0) frames.push(KafkaWireClient.encodeRequest(18, 2, id, {}));
      else if (kind === 1) frames.push(KafkaWireClient.encodeRequest(3, 9, id, { topics: null, allowAutoTopicCreation: false }));
      // a Fetch with a short wait: finishes later than the cheap requests around it, must still come back in order
      else
        frames.push(
          KafkaWireClient.encodeRequest(1, 11, id, {
            replicaId: -1,
            maxWaitMs: 20,
            minBytes: 1 << 20,
            maxBytes: 1 << 20,
            isolationLevel: 0,
            sessionId: 0,
            sessionEpoch: -1,
            topics: [],
            forgottenTopicsData: [],
            rackId: '',
          }),
        );
    }
    const ids: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const s = net.connect(lance.kafkaPort, '127.0.0.1');
      let buf = Buffer.alloc(0);
      s.on('error', reject);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) {
          ids.push(buf.readInt32BE(4));
          buf = buf.subarray(4 + buf.readInt32BE(0));
        }
        if (ids.length === expected.length) {
          s.destroy();
          resolve();
        }
      });
      s.write(Buffer.concat(frames));
    });
    expect(ids).toEqual(expected);
  });

  it('bad frames close only their own connection, with the reason logged; other connections keep working', async () => {
    const sizes = [Buffer.from('7fffffff', 'hex'), Buffer.from('ffffffff', 'hex'), Buffer.from('00000003abcdef', 'hex')];
    for (const b of sizes) {
      const r = await rawExchange(lance.kafkaPort, b);
      expect(r.closedByBroker).toBe(true);
      expect(r.received.length).toBe(0);
    }
    // unknown API key 999 and an unsupported Produce version (v1) are closed as well
    for (const [key, ver] of [
      [999, 0],
      [0, 1],
    ] as const) {
      const f = Buffer.alloc(4 + 10);
      f.writeInt32BE(10, 0);
      f.writeInt16BE(key, 4);
      f.writeInt16BE(ver, 6);
      f.writeInt32BE(5, 8);
      f.writeInt16BE(-1, 12);
      expect((await rawExchange(lance.kafkaPort, f)).closedByBroker).toBe(true);
    }
    // a frame whose body is garbage for its API: Metadata v1 with an array length beyond the frame
    const g = Buffer.alloc(4 + 10 + 4);
    g.writeInt32BE(g.length - 4, 0);
    g.writeInt16BE(3, 4);
    g.writeInt16BE(1, 6);
    g.writeInt32BE(7, 8);
    g.writeInt16BE(-1, 12);
    g.writeInt32BE(0x7fffffff, 14);
    expect((await rawExchange(lance.kafkaPort, g)).closedByBroker).toBe(true);
    // a truncated frame followed by the client closing: the broker must drop the partial buffer
    expect((await rawExchange(lance.kafkaPort, Buffer.from('000100000003', 'hex'), true)).closedByBroker).toBe(true);
    // a client that sends two requests and half-closes still gets both answers, then the broker closes
    const two = Buffer.concat([KafkaWireClient.encodeRequest(18, 1, 11, {}), KafkaWireClient.encodeRequest(18, 2, 12, {})]);
    const half = await rawExchange(lance.kafkaPort, two, true);
    expect(half.received.readInt32BE(4)).toBe(11);
    expect(half.received.readInt32BE(4 + 4 + half.received.readInt32BE(0))).toBe(12);

    // Each reason is logged when the broker notices the close, which may be after the client saw it: wait for all.
    const reasons = [/exceeds max frame size/, /unknown or unsupported API key 999/, /frame size -1 is below/, /malformed MetadataRequest v1/, /client closed mid-frame: 6 bytes/];
    await waitFor('the reasons in the broker log', () => reasons.every((r) => r.test(lance.output())));
    for (const r of reasons) expect(lance.output()).toMatch(r);
    // the long-lived client connection is untouched
    const r = await c.request<ApiVersionsResponse>(18, 3, { clientSoftwareName: 'x', clientSoftwareVersion: '1' });
    expect(r.errorCode).toBe(0);
  });
});

describe('read-only mode over Kafka', () => {
  it('produce fails with POLICY_VIOLATION and a message saying read-only; fetch keeps working', async () => {
    const first = await startLance();
    const dataDir = first.dataDir;
    try {
      const w = await KafkaWireClient.connect('127.0.0.1', first.kafkaPort);
      await w.request<CreateTopicsResponse>(19, 4, { topics: [{ name: 'ro', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 5000, validateOnly: false });
      const p = await w.request<ProduceResponse>(0, 9, produceBody('ro', 0, buildRecordBatch([rec(1), rec(2)])));
      expect(p.responses[0]!.partitionResponses[0]!.errorCode).toBe(0);
      w.close();
      expect(await first.stop('SIGTERM')).toBe(0);

      const ro = await startLance({ dataDir, readOnly: true });
      try {
        const c = await KafkaWireClient.connect('127.0.0.1', ro.kafkaPort);
        const denied = await c.request<ProduceResponse>(0, 9, produceBody('ro', 0, buildRecordBatch([rec(3)])));
        const pr = denied.responses[0]!.partitionResponses[0]!;
        expect(pr.errorCode).toBe(KafkaError.POLICY_VIOLATION);
        expect(pr.errorMessage).toMatch(/read.only/i);
        const create = await c.request<CreateTopicsResponse>(19, 7, { topics: [{ name: 'ro2', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 5000, validateOnly: false });
        expect(create.topics[0]!.errorCode).toBe(KafkaError.POLICY_VIOLATION);
        const f = await c.request<FetchResponse>(1, 12, {
          replicaId: -1,
          maxWaitMs: 0,
          minBytes: 1,
          maxBytes: 1 << 20,
          isolationLevel: 0,
          sessionId: 0,
          sessionEpoch: -1,
          topics: [{ topic: 'ro', partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset: 0, lastFetchedEpoch: -1, logStartOffset: -1, partitionMaxBytes: 1 << 20 }] }],
          forgottenTopicsData: [],
          rackId: '',
        });
        expect(decodeRecordBatches(f.responses[0]!.partitions[0]!.records!).map((r) => r.value?.toString())).toEqual(['value-1', 'value-2']);
        c.close();
        // acks=0 gets no response; like Kafka, the failure closes the connection (after earlier answers)
        const z = await KafkaWireClient.connect('127.0.0.1', ro.kafkaPort);
        const before = z.request<ApiVersionsResponse>(18, 2, {});
        await z.request(0, 9, produceBody('ro', 0, buildRecordBatch([rec(4)]), 0), false);
        const after = z.request<ApiVersionsResponse>(18, 2, {});
        expect((await before).errorCode).toBe(0);
        await expect(after).rejects.toThrow(/closed/);
        await waitFor('the close reason in the log', () => /acks=0 produce to ro\/0 failed with Kafka error 44/.test(ro.output()));
      } finally {
        await ro.stop('SIGKILL');
      }
    } finally {
      await first.stop('SIGKILL');
      removeDir(dataDir);
    }
  });
});
