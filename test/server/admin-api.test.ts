/**
 * The admin HTTP API over real sockets (broker started in-process on free ports) through the typed AdminClient
 * and raw fetch: zod-validated bodies with field-named errors, HTTP status mapping, limits, graceful close.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '../../broker/src/common/log.ts';
import { LanceError } from '../../broker/src/common/errors.ts';
import { AdminClient, parseServerAddress } from '../../broker/src/admin/client.ts';
import { validateConfig } from '../../broker/src/server/config.ts';
import { startBroker, type RunningBroker } from '../../broker/src/server/runtime.ts';

let dir: string;
let running: RunningBroker;
let base: string;
let client: AdminClient;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'lance-admin-'));
  const config = validateConfig({
    dataDir: dir, clusterId: 'admin-test',
    listeners: { kafka: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 } },
  });
  running = await startBroker(config, silentLogger, 'test');
  base = `http://127.0.0.1:${running.admin.port}`;
  client = new AdminClient(`127.0.0.1:${running.admin.port}`);
});

afterAll(async () => {
  await running?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function raw(method: string, p: string, body?: string): Promise<{ status: number; json: { code?: string; message?: string } }> {
  const res = await fetch(base + p, { method, body, headers: body === undefined ? {} : { 'content-type': 'application/json' } });
  return { status: res.status, json: (await res.json()) as { code?: string; message?: string } };
}

describe('admin API', () => {
  it('parses --server addresses', () => {
    expect(parseServerAddress('localhost:1992')).toBe('http://localhost:1992');
    expect(parseServerAddress('10.0.0.5')).toBe('http://10.0.0.5:1992');
    expect(parseServerAddress('[::1]:2000')).toBe('http://[::1]:2000');
    expect(parseServerAddress('https://lance.example:443/x')).toBe('https://lance.example');
    expect(() => parseServerAddress('a b')).toThrow(/--server: expected host:port/);
    expect(() => parseServerAddress('h:99999')).toThrow(/out of range/);
  });

  it('reports readiness and this node\'s view through the typed client', async () => {
    expect(await client.live()).toEqual({ status: 'ok' });
    expect(await client.ready()).toEqual({ status: 'ready', checks: { storage: true, kafka: true } });
    const view = await client.cluster();
    expect(view).toMatchObject({ clusterId: 'admin-test', nodeId: 1, role: 'standalone', readOnly: false, version: 'test' });
    expect(view.listeners.kafka).toEqual({ host: '127.0.0.1', port: running.kafka.port });
    expect(view.brokers).toEqual([{ nodeId: 1, host: '127.0.0.1', port: running.kafka.port }]);
  });

  it('creates, lists, describes and deletes topics; errors carry the Lance code', async () => {
    const t = await client.createTopic({ name: 'payments', partitions: 2, config: { retentionMs: 0 } });
    expect(t).toMatchObject({ id: 1, name: 'payments', partitions: 2, config: { retentionMs: 0, retentionBytes: 0 } });
    expect((await client.listTopics()).map((x) => x.name)).toEqual(['payments']);
    const detail = await client.getTopic('payments');
    expect(detail.partitionStates.map((p) => [p.partition, p.logEndOffset, p.highWatermark])).toEqual([[0, 0, 0], [1, 0, 0]]);
    const conflict = await client.createTopic({ name: 'payments' }).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(LanceError);
    expect(conflict).toMatchObject({ code: 'CONFLICT', message: 'topic "payments" already exists' });
    await expect(client.getTopic('missing')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const p = await client.produce('payments', { records: [{ value: 'v1', partition: 1 }, { value: 'djE=', partition: 1 }] });
    expect(p.partitions).toEqual([{ partition: 1, baseOffset: 0, count: 2 }]);
    const b64 = await client.fetchRecords('payments', 1, { encoding: 'base64' });
    expect(b64.records.map((r) => Buffer.from(r.value!, 'base64').toString())).toEqual(['v1', 'djE=']);
    await expect(client.fetchRecords('payments', 1, { offset: 99 })).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
    expect(await client.deleteTopic('payments')).toEqual({ deleted: 'payments', id: 1 });
    expect(await client.listTopics()).toEqual([]);
  });

  it('validates request bodies and queries, naming the field', async () => {
    expect(await raw('POST', '/v1/topics', '{"name":"bad name"}')).toEqual({ status: 400, json: { code: 'INVALID_ARGUMENT', message: 'create topic: name: topic name may contain only [A-Za-z0-9._-]', details: { field: 'name' } } });
    expect((await raw('POST', '/v1/topics', '{"name":"ok","partitons":3}')).json.message).toBe('create topic: partitons: unknown field');
    expect((await raw('POST', '/v1/topics', '{"name":"ok","partitions":0}')).json.message).toMatch(/^create topic: partitions: /);
    expect((await raw('POST', '/v1/topics', '{nope')).json.message).toMatch(/^request body: not valid JSON/);
    expect((await raw('POST', '/v1/topics', '')).status).toBe(400);
    await client.createTopic({ name: 'v' });
    expect((await raw('POST', '/v1/topics/v/records', '{"records":[]}')).json.message).toBe('produce: records: records must not be empty');
    expect((await raw('POST', '/v1/topics/v/records', '{"records":[{"value":1}]}')).json.message).toMatch(/^produce: records\.0\.value: /);
    expect((await raw('GET', '/v1/topics/v/partitions/0/records?max=0')).json.message).toMatch(/^fetch query: max: /);
    expect((await raw('GET', '/v1/topics/v/partitions/x/records')).json.message).toMatch(/^partition: expected a non-negative integer/);
    expect((await raw('GET', '/v1/topics/v/partitions/5/records')).status).toBe(404);
    const huge = JSON.stringify({ records: [{ value: 'x'.repeat(17 * 1024 * 1024) }] });
    expect((await raw('POST', '/v1/topics/v/records', huge)).status).toBe(413);
    expect(await raw('GET', '/v2/nothing')).toEqual({ status: 404, json: { code: 'NOT_FOUND', message: 'no such endpoint: /v2/nothing' } });
    expect((await raw('PUT', '/v1/topics')).status).toBe(405);
  });

  it('shuts down gracefully: a waiting fetch ends, storage closes, ready turns off', async () => {
    await client.createTopic({ name: 'w' });
    const waiting = client.fetchRecords('w', 0, { offset: 0, waitMs: 30_000 });
    // wait (on a condition) until the long poll is parked server-side
    while (running.broker.pendingWaits() === 0) await new Promise((r) => setTimeout(r, 10));
    await running.close();
    // the wait is cut short and answered (empty) instead of hanging for 30 s or being reset
    expect((await waiting).records).toEqual([]);
    expect(running.broker.pendingWaits()).toBe(0);
    expect(running.broker.readiness()).toEqual({ storage: false, kafka: false });
    await expect(client.live()).rejects.toMatchObject({ code: 'IO' });
  });
});
