/** The online `lnc` commands' edges against a real broker process: waiting consumers, timeouts, ids, errors. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { AdminClient } from '../../broker/src/admin/client.ts';
import { killAll, lnc, startLance, type LanceProcess } from './helpers.ts';

let dir: string;
let lance: LanceProcess;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'lance-lnc-'));
  // retention passes every 200 ms so the timer-driven retention is observable
  lance = await startLance(path.join(dir, 'data'), [], { LANCE_RETENTION_CHECK_INTERVAL_MS: '200' });
});
afterAll(async () => {
  killAll();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('lnc online commands', () => {
  it('consume --count waits for records produced later; --timeout-ms gives up with TIMEOUT', async () => {
    expect((await lnc(['create-topic', '--server', lance.admin, '--name', 'events', '--partitions', '2', '--retention-ms', '0'])).code).toBe(0);
    // started before the produce; reads from offset 0 of partition 0, so it cannot miss them
    const consumer = lnc(['consume', '--server', lance.admin, '--topic', 'events', '--partition', '0', '--offset', '0', '--count', '3', '--json']);
    const produced = await lnc(['produce', '--server', lance.admin, '--topic', 'events', '--partition', '0', '--header', 'src=test'], 'e1\ne2\ne3\ne4\n');
    expect(produced.code).toBe(0);
    const got = await consumer;
    expect(got.code).toBe(0);
    const records = JSON.parse(got.stdout) as Array<{ partition: number; offset: number; value: string; headers: Record<string, string> }>;
    expect(records.map((r) => [r.partition, r.offset, r.value, r.headers['src']])).toEqual([[0, 0, 'e1', 'test'], [0, 1, 'e2', 'test'], [0, 2, 'e3', 'test']]);

    const short = await lnc(['consume', '--server', lance.admin, '--topic', 'events', '--from-beginning', '--count', '10', '--timeout-ms', '1500']);
    expect(short.code).toBe(2);
    expect(short.stdout).toBe('e1\ne2\ne3\ne4\n');
    expect(short.stderr.trim()).toBe('lnc: TIMEOUT: consumed 4 of 10 records from events within 1500 ms');
  }, 180000); // spawns real processes: generous on a loaded box (a wait bound, not a speed assertion)

  it('the retention timer trims a topic by size (and never one with 0 = unlimited)', async () => {
    const client = new AdminClient(lance.admin);
    await client.createTopic({ name: 'trimmed', config: { segmentBytes: 4096, retentionBytes: 8192 } });
    await client.createTopic({ name: 'unlimited', config: { segmentBytes: 4096, retentionBytes: 0, retentionMs: 0 } });
    const lines = Array.from({ length: 60 }, (_, i) => `${i}:${'x'.repeat(500)}`).join('\n') + '\n';
    for (const topic of ['trimmed', 'unlimited']) {
      expect((await lnc(['produce', '--server', lance.admin, '--topic', topic, '--batch-size', '1'], lines)).code).toBe(0);
    }
    // wait on the condition: the timer's pass has run
    let start = 0;
    while (start === 0) {
      start = (await client.getTopic('trimmed')).partitionStates[0]!.logStartOffset;
      if (start === 0) await new Promise((r) => setTimeout(r, 100));
    }
    const trimmed = (await client.getTopic('trimmed')).partitionStates[0]!;
    expect(trimmed.logEndOffset).toBe(60);
    expect(trimmed.sizeBytes).toBeLessThanOrEqual(8192 + 4096 + 1024);
    const unlimited = (await client.getTopic('unlimited')).partitionStates[0]!;
    expect(unlimited.logStartOffset).toBe(0);
    expect(unlimited.segments).toBeGreaterThan(3);
    const m = await client.metricsText();
    expect(m).toMatch(/^lance_retention_deleted_segments_total\{topic="trimmed"\} [1-9]\d*$/m);
    expect(m).not.toMatch(/lance_retention_deleted_segments_total\{topic="unlimited"\}/);
  }, 180_000);

  it('list-topics --table, cluster-status, delete-topic by id, and one-line errors', async () => {
    expect((await lnc(['create-topic', '--server', lance.admin, '--name', 'tmp'])).code).toBe(0);
    const table = await lnc(['list-topics', '--server', lance.admin, '--table']);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+PARTITIONS/);
    expect(table.stdout).toMatch(/\btmp\b/);

    const status = await lnc(['cluster-status', '--server', lance.admin, '--json']);
    expect(status.code).toBe(0);
    const view = JSON.parse(status.stdout) as { role: string; ready: { status: string }; topics: Array<{ id: number; name: string }> };
    expect(view.role).toBe('standalone');
    expect(view.ready.status).toBe('ready');
    const tmp = view.topics.find((t) => t.name === 'tmp')!;

    const del = await lnc(['delete-topic', '--server', lance.admin, '--topic', String(tmp.id)]);
    expect(del.code).toBe(0);
    expect(del.stdout.trim()).toBe(`deleted topic tmp (id ${tmp.id})`);
    const again = await lnc(['delete-topic', '--server', lance.admin, '--topic', String(tmp.id)]);
    expect(again.code).toBe(2);
    expect(again.stderr.trim()).toMatch(new RegExp(`^lnc: NOT_FOUND: --topic ${tmp.id}: no topic with that id`));

    // a port that was just free: nothing listens there
    const closedPort = await new Promise<number>((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const [unreachable, badServer, noTopic, both] = await Promise.all([
      lnc(['list-topics', '--server', `127.0.0.1:${closedPort}`]),
      lnc(['list-topics', '--server', 'not a host']),
      lnc(['produce', '--server', lance.admin, '--topic', 'missing'], 'x\n'),
      lnc(['delete-topic', '--server', lance.admin, '--name', 'a', '--topic', '1']),
    ]);
    expect(unreachable.code).toBe(2);
    expect(unreachable.stderr.trim()).toBe(`lnc: IO: GET http://127.0.0.1:${closedPort}/v1/topics: cannot reach the admin API (ECONNREFUSED)`);
    expect(badServer.code).toBe(2);
    expect(badServer.stderr.trim()).toBe('lnc: USAGE: --server: expected host:port (e.g. localhost:1992), got "not a host"');
    expect(noTopic.code).toBe(2);
    expect(noTopic.stderr.trim()).toBe('lnc: NOT_FOUND: topic "missing" does not exist');
    expect(both.code).toBe(2);
    expect(both.stderr.trim()).toBe('lnc: USAGE: give exactly one of --name or --topic (see lnc delete-topic --help)');
  }, 180000); // spawns real processes: generous on a loaded box (a wait bound, not a speed assertion)
});
