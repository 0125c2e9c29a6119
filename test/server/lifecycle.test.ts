/**
 * The real `lance` process end to end with the real `lnc`: ready → create topic → produce/consume → list-topics
 * JSON (the runbook's jq loop) → metrics → SIGTERM exits 0 and data survives → SIGKILL after acknowledged
 * produce loses nothing → node.json guards the data dir.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { httpGet, killAll, lnc, runLanceToExit, startLance } from './helpers.ts';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'lance-server-'));
  dirs.push(d);
  return d;
}

afterEach(() => killAll());
afterAll(async () => {
  killAll();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('lance server lifecycle', () => {
  it('serves lnc create/produce/consume/list-topics, exposes metrics, and keeps data across SIGTERM and SIGKILL', async () => {
    const data = path.join(await tempDir(), 'data');
    let lance = await startLance(data);

    // ready only when storage is open and the Kafka listener is up
    const ready = await httpGet(lance.admin, '/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ready', checks: { storage: true, kafka: true } });
    expect((await httpGet(lance.admin, '/health/live')).status).toBe(200);

    const created = await lnc(['create-topic', '--server', lance.admin, '--name', 'orders', '--partitions', '2']);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(created.stdout).toContain('created topic orders (id 1, 2 partitions)');
    expect((await lnc(['create-topic', '--server', lance.admin, '--name', 'audit'])).code).toBe(0);

    const lines = Array.from({ length: 50 }, (_, i) => `k${i % 5}:value-${i}`);
    const produced = await lnc(['produce', '--server', lance.admin, '--topic', 'orders', '--key-separator', ':', '--json'], lines.join('\n') + '\n');
    expect(produced.code).toBe(0);
    const summary = JSON.parse(produced.stdout) as { records: number; partitions: Array<{ partition: number; count: number }> };
    expect(summary.records).toBe(50);
    expect(summary.partitions.reduce((n, p) => n + p.count, 0)).toBe(50);

    // list-topics prints a JSON array the runbook pipes to `jq -r '.[] .id'`
    const listed = await lnc(['list-topics', '--server', lance.admin]);
    expect(listed.code).toBe(0);
    const topics = JSON.parse(listed.stdout) as Array<{ id: number; name: string; partitions: number }>;
    expect(topics).toEqual([{ id: 1, name: 'orders', partitions: 2 }, { id: 2, name: 'audit', partitions: 1 }]);
    expect(topics.map((t) => String(t.id)).join('\n')).toBe('1\n2');

    const consumeAll = async (): Promise<string[]> => {
      const c = await lnc(['consume', '--server', lance.admin, '--topic', 'orders', '--from-beginning', '--print-key', '--key-separator', ':']);
      expect(c.stderr).toBe('');
      expect(c.code).toBe(0);
      return c.stdout.split('\n').filter(Boolean);
    };
    const consumed = await consumeAll();
    expect([...consumed].sort()).toEqual([...lines].sort());
    // per key (= per partition) the order is the produce order
    for (let k = 0; k < 5; k++) {
      expect(consumed.filter((l) => l.startsWith(`k${k}:`))).toEqual(lines.filter((l) => l.startsWith(`k${k}:`)));
    }

    const metrics = await httpGet(lance.admin, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/^lance_log_end_offset\{topic="orders",partition="0"\} \d+$/m);
    expect(metrics.text).toMatch(/^lance_records_in_total\{topic="orders"\} 50$/m);
    expect(metrics.text).toMatch(/^lance_fsync_duration_seconds_count [1-9]\d*$/m);
    expect(metrics.text).toMatch(/^lance_admin_requests_total\{route="\/v1\/topics\/:name\/records",status="200"\} [1-9]/m);
    expect(metrics.text).toContain('lance_process_resident_memory_bytes');
    expect(metrics.text).toMatch(/^lance_build_info\{version="[^"]+",node="v\d+\.\d+\.\d+"\} 1$/m);
    expect(metrics.text).toContain('# TYPE lance_kafka_requests_total counter');

    // SIGTERM: graceful, exit 0, data survives the restart
    process.kill(lance.pid, 'SIGTERM');
    expect(await lance.exited).toBe(0);
    expect(lance.logs.some((l) => l.includes('"lance stopped"'))).toBe(true);
    lance = await startLance(data);
    expect(await consumeAll()).toEqual(consumed);

    // SIGKILL right after an acknowledged produce: everything acknowledged is there after restart
    const more = Array.from({ length: 200 }, (_, i) => `k${i % 5}:after-${i}`);
    const acked = await lnc(['produce', '--server', lance.admin, '--topic', 'orders', '--key-separator', ':', '--batch-size', '37'], more.join('\n') + '\n');
    expect(acked.code).toBe(0);
    process.kill(lance.pid, 'SIGKILL');
    expect(await lance.exited).toBe('SIGKILL');
    lance = await startLance(data);
    const afterKill = await consumeAll();
    expect([...afterKill].sort()).toEqual([...lines, ...more].sort());

    const node = JSON.parse(await readFile(path.join(data, 'node.json'), 'utf8')) as { clusterId: string; nodeId: number };
    expect(node.nodeId).toBe(1);
    // one broker per data dir: a second one is refused while the first runs (after SIGKILL above, the stale lock
    // was taken over)
    const second = await runLanceToExit(['--standalone', '--data-dir', data, '--host', '127.0.0.1', '--kafka-port', '0', '--admin-port', '0']);
    expect(second.code).toBe(2);
    expect(second.stderr.trim()).toMatch(new RegExp(`^lance: CONFLICT: ${data.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by another lance process \\(pid ${lance.pid} `));
    process.kill(lance.pid, 'SIGTERM');
    expect(await lance.exited).toBe(0);

    // the data dir belongs to its cluster: another configured cluster id is refused with one line, exit 2
    const wrong = await runLanceToExit(['--standalone', '--data-dir', data, '--host', '127.0.0.1', '--kafka-port', '0', '--admin-port', '0', '--cluster-id', 'other-cluster']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr.trim().split('\n')).toHaveLength(1);
    expect(wrong.stderr).toContain(`lance: CONFLICT: ${path.join(data, 'node.json')}: data dir belongs to cluster "${node.clusterId}"`);
  }, 240000); // spawns real processes: generous on a loaded box (a wait bound, not a speed assertion)
});
