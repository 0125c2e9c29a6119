/**
 * A lean Kafka client for the bench on the repo's own codecs (broker/src/kafka/protocol): pipelined requests over
 * one socket, responses matched by correlation id, incoming bytes gathered without quadratic copying (Fetch answers
 * are megabytes). Produce frames are encoded once per (partition, batch) and only the correlation id is patched,
 * so the generator spends its CPU on the socket, not on encoding.
 */
import * as net from 'node:net';
import { KafkaWireClient } from '../../broker/src/kafka/client.ts';
import type { CreateTopicsResponse, FetchResponse, MetadataResponse, ProduceResponse } from '../../broker/src/kafka/protocol/messages.ts';

const PRODUCE_V = 9;
const FETCH_V = 11;
const METADATA_V = 9;

export class LeanConn {
  private readonly pending = new Map<number, { resolve: (f: Buffer) => void; reject: (e: Error) => void }>();
  private chunks: Buffer[] = [];
  private have = 0;
  private nextCorr = 1;
  private closed: Error | null = null;

  private constructor(private readonly sock: net.Socket, readonly addr: string) {
    sock.on('data', (d: Buffer) => this.onData(d));
    const fail = (e: Error): void => {
      this.closed ??= e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error(`connection to ${addr} closed`)));
  }

  static connect(host: string, port: number): Promise<LeanConn> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port, noDelay: true });
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new LeanConn(s, `${host}:${port}`));
      });
      s.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.closed !== null;
  }

  private onData(d: Buffer): void {
    this.chunks.push(d);
    this.have += d.length;
    for (;;) {
      if (this.have < 4) return;
      if (this.chunks[0]!.length < 4) this.flatten();
      const n = this.chunks[0]!.readInt32BE(0);
      if (this.have < 4 + n) return;
      this.flatten();
      const all = this.chunks[0]!;
      const frame = all.subarray(4, 4 + n);
      const rest = all.subarray(4 + n);
      this.chunks = rest.length ? [rest] : [];
      this.have = rest.length;
      const p = this.pending.get(frame.readInt32BE(0));
      if (p) {
        this.pending.delete(frame.readInt32BE(0));
        p.resolve(frame);
      }
    }
  }

  private flatten(): void {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.have)];
  }

  /** sends a pre-encoded request frame (its correlation id is overwritten); resolves with the response frame */
  sendFrame(template: Buffer): Promise<Buffer> {
    if (this.closed) return Promise.reject(this.closed);
    const corr = this.nextCorr++;
    const frame = Buffer.from(template); // the socket may still hold the previous copy
    frame.writeInt32BE(corr, 8);
    return new Promise((resolve, reject) => {
      this.pending.set(corr, { resolve, reject });
      this.sock.write(frame);
    });
  }

  async request<T>(apiKey: number, version: number, body: object): Promise<T> {
    const frame = await this.sendFrame(KafkaWireClient.encodeRequest(apiKey, version, 0, body, 'lance-bench'));
    return KafkaWireClient.decodeResponse<T>(apiKey, version, frame);
  }

  close(): void {
    this.sock.destroy();
  }
}

export function produceTemplate(topic: string, partition: number, batch: Buffer, acks: number): Buffer {
  return KafkaWireClient.encodeRequest(0, PRODUCE_V, 0, { transactionalId: null, acks, timeoutMs: 30_000, topicData: [{ name: topic, partitionData: [{ index: partition, records: batch }] }] }, 'lance-bench');
}

/** error code of a single-partition produce answer */
export function produceError(frame: Buffer): number {
  const r = KafkaWireClient.decodeResponse<ProduceResponse>(0, PRODUCE_V, frame);
  return r.responses[0]?.partitionResponses[0]?.errorCode ?? -1;
}

export async function createTopic(c: LeanConn, name: string, partitions: number, rf: number): Promise<number> {
  const r = await c.request<CreateTopicsResponse>(19, 4, { topics: [{ name, numPartitions: partitions, replicationFactor: rf, assignments: [], configs: [] }], timeoutMs: 30_000, validateOnly: false });
  return r.topics[0]!.errorCode;
}

export interface PartitionLeader { partition: number; leaderId: number; host: string; port: number; epoch: number }

/** leaders of every partition of `topic`, or undefined while any partition has none */
export async function leaders(c: LeanConn, topic: string): Promise<PartitionLeader[] | undefined> {
  const md = await c.request<MetadataResponse>(3, METADATA_V, { topics: [{ topicId: '00000000-0000-0000-0000-000000000000', name: topic }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
  const t = md.topics[0];
  if (!t || t.errorCode !== 0 || t.partitions.length === 0) return undefined;
  const out: PartitionLeader[] = [];
  for (const p of t.partitions) {
    const b = md.brokers.find((x) => x.nodeId === p.leaderId);
    if (p.errorCode !== 0 || p.leaderId < 0 || !b) return undefined;
    out.push({ partition: p.partitionIndex, leaderId: p.leaderId, host: b.host, port: b.port, epoch: p.leaderEpoch });
  }
  return out.sort((a, b) => a.partition - b.partition);
}

export function fetchRequest(topic: string, partition: number, offset: number, maxBytes: number, maxWaitMs: number): object {
  return {
    replicaId: -1, maxWaitMs, minBytes: 1, maxBytes, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
    topics: [{ topic, topicId: '00000000-0000-0000-0000-000000000000', partitions: [{ partition, currentLeaderEpoch: -1, fetchOffset: offset, lastFetchedEpoch: -1, logStartOffset: -1, partitionMaxBytes: maxBytes }] }],
    forgottenTopicsData: [], rackId: '',
  };
}

export async function fetchOnce(c: LeanConn, topic: string, partition: number, offset: number, maxBytes: number, maxWaitMs: number): Promise<{ errorCode: number; highWatermark: number; records: Buffer | null }> {
  const r = await c.request<FetchResponse>(1, FETCH_V, fetchRequest(topic, partition, offset, maxBytes, maxWaitMs));
  const p = r.responses[0]?.partitions[0];
  if (!p) return { errorCode: r.errorCode || -1, highWatermark: -1, records: null };
  return { errorCode: p.errorCode, highWatermark: p.highWatermark, records: p.records };
}

/** walks RecordBatch headers: records in the buffer and the offset after the last complete batch */
export function scanBatches(buf: Buffer): { records: number; nextOffset: number; bytes: number } {
  let pos = 0;
  let records = 0;
  let nextOffset = -1;
  while (pos + 61 <= buf.length) {
    const len = buf.readInt32BE(pos + 8);
    if (pos + 12 + len > buf.length) break;
    const base = Number(buf.readBigInt64BE(pos));
    const lastDelta = buf.readInt32BE(pos + 23);
    records += buf.readInt32BE(pos + 57);
    nextOffset = base + lastDelta + 1;
    pos += 12 + len;
  }
  return { records, nextOffset, bytes: pos };
}
