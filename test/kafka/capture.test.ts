import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CompressionTypes, Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, SPECS } from '../../broker/src/kafka/protocol/messages.ts';
import { decodeMessage, encodeMessage, inRange } from '../../broker/src/kafka/protocol/schema.ts';
import { Reader, Writer } from '../../broker/src/kafka/protocol/wire.ts';
import { removeDir, startLance, type LanceProcess } from './helpers/broker.ts';
import { KafkajsPartitionReader } from './helpers/kafkajs-reader.ts';
import { kcat } from './helpers/kcat.ts';
import { startCaptureProxy, type CaptureProxy, type CapturedFrame } from './helpers/proxy.ts';

/**
 * Byte-for-byte codec check against real clients: kafkajs and kcat (librdkafka) talk to the real broker through a
 * capture proxy; every request frame they sent is decoded with Lance's codecs, must be consumed exactly, and must
 * re-encode to the identical bytes. Every response frame is checked the same way (the clients accepted them: the
 * operations below succeeded).
 */

interface Decoded {
  conn: number;
  apiKey: number;
  version: number;
  correlationId: number;
  clientId: string | null;
}

function decodeRequestFrame(f: CapturedFrame): { header: Decoded; body: Record<string, unknown>; reencoded: Buffer } {
  const r = new Reader(f.bytes);
  const apiKey = r.int16();
  const version = r.int16();
  const correlationId = r.int32();
  const clientId = r.string();
  const specs = SPECS.get(apiKey);
  if (!specs) throw new Error(`client sent API key ${apiKey} v${version}, which Lance has no schema for`);
  const flexible = inRange(version, specs.request.flexible);
  if (flexible) {
    const tags = r.uvarint();
    expect(tags, 'request header tagged fields').toBe(0);
  }
  const body = decodeMessage<Record<string, unknown>>(specs.request, r, version);
  expect(r.remaining(), `${specs.request.name} v${version}: undecoded trailing bytes`).toBe(0);
  const w = new Writer();
  w.int16(apiKey).int16(version).int32(correlationId).string(clientId);
  if (flexible) w.uvarint(0);
  encodeMessage(specs.request, w, body, version);
  return { header: { conn: f.conn, apiKey, version, correlationId, clientId }, body, reencoded: w.toBuffer() };
}

function checkResponseFrame(f: CapturedFrame, req: Decoded): Buffer {
  const specs = SPECS.get(req.apiKey)!;
  const r = new Reader(f.bytes);
  expect(r.int32()).toBe(req.correlationId);
  const flexibleHeader = req.apiKey !== ApiKey.ApiVersions && inRange(req.version, specs.response.flexible);
  if (flexibleHeader) expect(r.uvarint()).toBe(0);
  const body = decodeMessage<Record<string, unknown>>(specs.response, r, req.version);
  expect(r.remaining(), `${specs.response.name} v${req.version}: trailing bytes`).toBe(0);
  const w = new Writer();
  w.int32(req.correlationId);
  if (flexibleHeader) w.uvarint(0);
  encodeMessage(specs.response, w, body, req.version);
  return w.toBuffer();
}

describe('codecs against frames captured from kafkajs and kcat', () => {
  let proxy: CaptureProxy;
  let lance: LanceProcess;

  beforeAll(async () => {
    proxy = await startCaptureProxy();
    lance = await startLance({ advertisedPort: proxy.port });
    proxy.setTarget('127.0.0.1', lance.kafkaPort);
  });

  afterAll(async () => {
    await proxy?.close();
    await lance?.stop('SIGKILL');
    if (lance) removeDir(lance.dataDir);
  });

  it('decodes and re-encodes every frame exactly, for every API both clients used', async () => {
    const bootstrap = `127.0.0.1:${proxy.port}`;
    const kafka = new Kafka({ brokers: [bootstrap], clientId: 'capture-kafkajs', logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'cap', numPartitions: 2 }, { topic: 'cap-gone' }] });
    await admin.describeConfigs({ resources: [{ type: 2, name: 'cap' }], includeSynonyms: true });
    await admin.alterConfigs({ validateOnly: false, resources: [{ type: 2, name: 'cap', configEntries: [{ name: 'retention.ms', value: '3600000' }] }] });
    await admin.deleteTopics({ topics: ['cap-gone'] });
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    await producer.send({ topic: 'cap', acks: 1, messages: [{ key: 'a', value: '1', headers: { h: 'v' }, partition: 0 }] });
    await producer.send({ topic: 'cap', acks: -1, compression: CompressionTypes.GZIP, messages: [{ key: 'b', value: '2', partition: 0 }] });
    await admin.fetchTopicOffsets('cap');
    await admin.fetchTopicOffsetsByTimestamp('cap', Date.now() - 60_000);
    const reader = new KafkajsPartitionReader([bootstrap], 'capture-kafkajs');
    await reader.connect();
    expect((await reader.readToEnd('cap', 0, 0)).map((r) => r.value)).toEqual(['1', '2']);
    await reader.disconnect();
    await producer.disconnect();
    await admin.disconnect();

    const kb = ['-b', bootstrap];
    expect((await kcat([...kb, '-L'])).code).toBe(0);
    expect((await kcat([...kb, '-P', '-t', 'cap', '-p', '1', '-K:'], 'x:kcat-1\ny:kcat-2\n')).code).toBe(0);
    const consumed = await kcat([...kb, '-C', '-t', 'cap', '-p', '1', '-e', '-o', 'beginning', '-f', '%k=%s\n']);
    expect(consumed.stdout).toBe('x=kcat-1\ny=kcat-2\n');

    // ---- check every captured frame
    const requests = new Map<string, Decoded>();
    const seen = new Map<string, Set<string>>();
    let checkedRequests = 0;
    let checkedResponses = 0;
    for (const f of proxy.frames.filter((x) => x.direction === 'request')) {
      const { header, reencoded } = decodeRequestFrame(f);
      expect(reencoded.toString('hex'), `request API ${header.apiKey} v${header.version} from ${header.clientId}`).toBe(f.bytes.toString('hex'));
      requests.set(`${f.conn}/${header.correlationId}`, header);
      const client = header.clientId ?? '?';
      if (!seen.has(client)) seen.set(client, new Set());
      seen.get(client)!.add(`${header.apiKey}v${header.version}`);
      checkedRequests++;
    }
    for (const f of proxy.frames.filter((x) => x.direction === 'response')) {
      const req = requests.get(`${f.conn}/${f.bytes.readInt32BE(0)}`);
      expect(req, `response with correlation id ${f.bytes.readInt32BE(0)} has a request`).toBeDefined();
      expect(checkResponseFrame(f, req!).toString('hex')).toBe(f.bytes.toString('hex'));
      checkedResponses++;
    }
    const apis = (client: string): number[] => [...new Set([...(seen.get(client) ?? [])].map((s) => Number(s.split('v')[0])))].sort((a, b) => a - b);
    // kafkajs: ApiVersions, Metadata, Produce, Fetch, ListOffsets, CreateTopics, DeleteTopics, DescribeConfigs, AlterConfigs
    expect(apis('capture-kafkajs')).toEqual(expect.arrayContaining([0, 1, 2, 3, 18, 19, 20, 32, 33]));
    // librdkafka (kcat's default client id is "rdkafka"): ApiVersions v3 (flexible), Metadata, Produce, Fetch, ListOffsets
    expect(apis('rdkafka')).toEqual(expect.arrayContaining([0, 1, 2, 3, 18]));
    expect(seen.get('rdkafka')!.has('18v3')).toBe(true);
    expect(checkedRequests).toBeGreaterThan(20);
    expect(checkedResponses).toBeGreaterThan(20);
    if (process.env['LANCE_WRITE_KAFKA_FIXTURES'] === '1') {
      // refreshes test/kafka/fixtures/client-frames.json: the first request of each (client, API, version)
      const picked = new Map<string, { client: string; apiKey: number; version: number; hex: string }>();
      for (const f of proxy.frames.filter((x) => x.direction === 'request')) {
        const r = new Reader(f.bytes);
        const apiKey = r.int16();
        const version = r.int16();
        r.int32();
        const client = r.string() ?? '?';
        const key = `${client}/${apiKey}/${version}`;
        if (!picked.has(key)) picked.set(key, { client, apiKey, version, hex: f.bytes.toString('hex') });
      }
      const out = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/client-frames.json');
      writeFileSync(out, JSON.stringify([...picked.values()], null, 1) + '\n');
    }
    console.log('captured API versions by client:', JSON.stringify(Object.fromEntries([...seen].map(([k, v]) => [k, [...v].sort()]))));
  });
});
