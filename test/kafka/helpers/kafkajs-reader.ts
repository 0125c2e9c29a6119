import { Kafka, logLevel } from 'kafkajs';

/** A record as kafkajs decoded it from the broker's Fetch response. */
export interface ReadRecord {
  offset: number;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
  timestamp: number;
}

interface KafkajsMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, Buffer | Buffer[] | undefined>;
  timestamp: string;
}
interface KafkajsFetchResponse {
  responses: Array<{ topicName: string; partitions: Array<{ partition: number; errorCode: number; highWatermark: string; messages: KafkajsMessage[] }> }>;
}
interface KafkajsBroker {
  fetch(args: {
    maxWaitTime: number;
    minBytes: number;
    maxBytes: number;
    isolationLevel?: number;
    topics: Array<{ topic: string; partitions: Array<{ partition: number; fetchOffset: string; maxBytes: number }> }>;
  }): Promise<KafkajsFetchResponse>;
}
interface KafkajsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  findLeaderForPartitions(topic: string, partitions: number[]): Promise<Record<string, number[]>>;
  findBroker(q: { nodeId: string }): Promise<KafkajsBroker>;
}

/**
 * Reads a partition without a consumer group (groups have their own suite in test/groups/). It uses kafkajs's own
 * cluster/broker objects (its real Fetch encoder and RecordBatch decoder) to fetch a partition without a group:
 * the bytes the broker returns are decoded by kafkajs, not by Lance's code.
 */
export class KafkajsPartitionReader {
  private cluster: KafkajsCluster;

  constructor(brokers: string[], clientId = 'lance-test-reader') {
    const kafka = new Kafka({ brokers, clientId, logLevel: logLevel.NOTHING });
    const sym = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster');
    if (!sym) throw new Error('kafkajs internals changed: createCluster symbol not found');
    const create = (kafka as unknown as Record<symbol, (o: object) => KafkajsCluster>)[sym]!;
    this.cluster = create({ allowAutoTopicCreation: false });
  }

  async connect(): Promise<void> {
    await this.cluster.connect();
  }

  async disconnect(): Promise<void> {
    await this.cluster.disconnect();
  }

  /** One Fetch; returns kafkajs-decoded records at offsets >= fromOffset and the high watermark. */
  async fetchOnce(topic: string, partition: number, fromOffset: number, opts: { maxWaitTime?: number; maxBytes?: number } = {}): Promise<{ records: ReadRecord[]; highWatermark: number }> {
    await this.cluster.addTargetTopic(topic);
    const leaders = await this.cluster.findLeaderForPartitions(topic, [partition]);
    const nodeId = Object.keys(leaders)[0];
    if (nodeId === undefined) throw new Error(`no leader for ${topic}/${partition}`);
    const broker = await this.cluster.findBroker({ nodeId });
    const res = await broker.fetch({
      maxWaitTime: opts.maxWaitTime ?? 100,
      minBytes: 1,
      maxBytes: opts.maxBytes ?? 10 * 1024 * 1024,
      topics: [{ topic, partitions: [{ partition, fetchOffset: String(fromOffset), maxBytes: opts.maxBytes ?? 1024 * 1024 }] }],
    });
    const p = res.responses[0]!.partitions[0]!;
    if (p.errorCode !== 0) throw new Error(`fetch ${topic}/${partition}@${fromOffset}: error code ${p.errorCode}`);
    const records = p.messages
      .map((m) => ({
        offset: Number(m.offset),
        key: m.key === null ? null : m.key.toString(),
        value: m.value === null ? null : m.value.toString(),
        headers: Object.fromEntries(Object.entries(m.headers ?? {}).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString() : String(v)])),
        timestamp: Number(m.timestamp),
      }))
      .filter((r) => r.offset >= fromOffset);
    return { records, highWatermark: Number(p.highWatermark) };
  }

  /** Reads from `fromOffset` up to the high watermark at the time of the last fetch. */
  async readToEnd(topic: string, partition: number, fromOffset: number): Promise<ReadRecord[]> {
    const out: ReadRecord[] = [];
    let next = fromOffset;
    for (;;) {
      const { records, highWatermark } = await this.fetchOnce(topic, partition, next);
      for (const r of records) {
        out.push(r);
        next = r.offset + 1;
      }
      if (next >= highWatermark) return out;
      if (records.length === 0) throw new Error(`fetch at ${next} returned nothing below high watermark ${highWatermark}`);
    }
  }
}
