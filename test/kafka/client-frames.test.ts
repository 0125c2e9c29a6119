import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ApiVersionsRequest, FetchRequest, ProduceRequest } from '../../broker/src/kafka/protocol/messages.ts';
import { SPECS } from '../../broker/src/kafka/protocol/messages.ts';
import { decodeMessage, encodeMessage, inRange } from '../../broker/src/kafka/protocol/schema.ts';
import { Reader, Writer } from '../../broker/src/kafka/protocol/wire.ts';
import { decodeRecordBatches, validateRecordSet } from '../../broker/src/kafka/records.ts';

/**
 * Fixed byte vectors: request frames kafkajs 2.2.4 and kcat 1.7.1 / librdkafka 2.0.2 actually sent (captured by
 * capture.test.ts with LANCE_WRITE_KAFKA_FIXTURES=1). Decoding them needs no broker and no client installed.
 */
interface Fixture {
  client: string;
  apiKey: number;
  version: number;
  hex: string;
}
const fixtures = JSON.parse(readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/client-frames.json'), 'utf8')) as Fixture[];

function decode<T>(fx: Fixture): { body: T; reencoded: Buffer; frame: Buffer } {
  const frame = Buffer.from(fx.hex, 'hex');
  const r = new Reader(frame);
  const apiKey = r.int16();
  const version = r.int16();
  const correlationId = r.int32();
  const clientId = r.string();
  const spec = SPECS.get(apiKey)!.request;
  const flexible = inRange(version, spec.flexible);
  if (flexible) expect(r.uvarint()).toBe(0);
  const body = decodeMessage<T>(spec, r, version);
  expect(r.remaining()).toBe(0);
  const w = new Writer();
  w.int16(apiKey).int16(version).int32(correlationId).string(clientId);
  if (flexible) w.uvarint(0);
  encodeMessage(spec, w, body as object, version);
  return { body, reencoded: w.toBuffer(), frame };
}

const find = (client: string, apiKey: number): Fixture => {
  const f = fixtures.find((x) => x.client === client && x.apiKey === apiKey);
  if (!f) throw new Error(`no fixture for ${client} API ${apiKey}`);
  return f;
};

describe('real client request frames (fixtures)', () => {
  it('every captured frame decodes completely and re-encodes to the same bytes', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(14);
    for (const fx of fixtures) {
      const { reencoded, frame } = decode(fx);
      expect(reencoded.toString('hex'), `${fx.client} API ${fx.apiKey} v${fx.version}`).toBe(frame.toString('hex'));
    }
  });

  it('librdkafka ApiVersions v3 is flexible and names the client software', () => {
    const fx = find('rdkafka', 18);
    expect(fx.version).toBe(3);
    const { body } = decode<ApiVersionsRequest>(fx);
    expect(body.clientSoftwareName).toBe('librdkafka');
    expect(body.clientSoftwareVersion).toMatch(/^2\./);
  });

  it('Produce frames from both clients carry RecordBatch v2 that passes CRC32C validation', () => {
    for (const client of ['capture-kafkajs', 'rdkafka']) {
      const { body } = decode<ProduceRequest>(find(client, 0));
      const records = body.topicData[0]!.partitionData[0]!.records!;
      const batches = validateRecordSet(records);
      expect(batches.length).toBeGreaterThan(0);
      expect(decodeRecordBatches(records).length).toBe(batches.reduce((n, b) => n + b.recordCount, 0));
    }
  });

  it('Fetch v11 from both clients: replica -1, per-partition limits and offsets as sent', () => {
    for (const client of ['capture-kafkajs', 'rdkafka']) {
      const { body } = decode<FetchRequest>(find(client, 1));
      expect(body.replicaId).toBe(-1);
      expect(body.topics[0]!.topic).toBe('cap');
      expect(body.topics[0]!.partitions[0]!.partitionMaxBytes).toBeGreaterThan(0);
    }
  });
});
