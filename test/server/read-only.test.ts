/**
 * The runbook's emergency read-only mode (§8.2): `echo "read_only = true" >> /etc/lance/lance.toml` + restart.
 * Produce (admin API, kafkajs, kcat) fails with a clear error; reads (lnc consume, kafkajs ListOffsets, kcat -C)
 * keep working.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { httpGet, killAll, lnc, startLance } from './helpers.ts';

const execFileP = promisify(execFile);
let dir: string;
afterEach(() => killAll());
afterAll(async () => {
  killAll();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('read-only mode', () => {
  it('refuses produce and topic changes with a clear error, while reads keep working', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lance-ro-'));
    const data = path.join(dir, 'data');

    // normal mode: a topic with three records
    let lance = await startLance(data);
    expect((await lnc(['create-topic', '--server', lance.admin, '--name', 'ledger'])).code).toBe(0);
    expect((await lnc(['produce', '--server', lance.admin, '--topic', 'ledger'], 'r1\nr2\nr3\n')).code).toBe(0);
    process.kill(lance.pid, 'SIGTERM');
    expect(await lance.exited).toBe(0);

    // the runbook's procedure: a lance.toml with a table, then `echo "read_only = true" >> lance.toml`
    const toml = path.join(dir, 'lance.toml');
    await writeFile(toml, `data_dir = "${data}"\n\n[storage]\nretention_ms = 0\n`);
    await appendFile(toml, 'read_only = true\n');
    lance = await startLance(data, ['--config', toml]);

    const cluster = await httpGet(lance.admin, '/v1/cluster');
    expect((cluster.body as { readOnly: boolean }).readOnly).toBe(true);
    expect((await httpGet(lance.admin, '/metrics')).text).toMatch(/^lance_read_only 1$/m);

    // admin API: writes refused with READ_ONLY, reads work
    const produce = await lnc(['produce', '--server', lance.admin, '--topic', 'ledger'], 'nope\n');
    expect(produce.code).toBe(2);
    expect(produce.stderr.trim()).toMatch(/^lnc: READ_ONLY: broker is in read-only mode .*produce to ledger refused; reads keep working$/);
    const create = await lnc(['create-topic', '--server', lance.admin, '--name', 'other']);
    expect(create.code).toBe(2);
    expect(create.stderr).toContain('lnc: READ_ONLY:');
    const consumed = await lnc(['consume', '--server', lance.admin, '--topic', 'ledger', '--from-beginning']);
    expect(consumed.code).toBe(0);
    expect(consumed.stdout).toBe('r1\nr2\nr3\n');

    // Kafka protocol: kafkajs producer fails fast with POLICY_VIOLATION and the broker's message
    const kafka = new Kafka({ clientId: 'ro-test', brokers: [`127.0.0.1:${lance.kafkaPort}`], logLevel: logLevel.NOTHING, retry: { retries: 0 } });
    const producer = kafka.producer({ retry: { retries: 0 } });
    const admin = kafka.admin();
    await producer.connect();
    await admin.connect();
    try {
      const err = await producer.send({ topic: 'ledger', acks: 1, messages: [{ value: 'blocked' }] }).then(() => null, (e: unknown) => e as Error & { type?: string });
      expect(err).not.toBeNull();
      const text = `${err!.message} ${err!.type ?? ''} ${String((err as { cause?: unknown }).cause ?? '')}`;
      expect(text).toMatch(/POLICY_VIOLATION|read-only/i);
      const offsets = await admin.fetchTopicOffsets('ledger');
      expect(offsets).toEqual([expect.objectContaining({ partition: 0, high: '3', low: '0' })]);
      await expect(admin.createTopics({ topics: [{ topic: 'blocked' }], waitForLeaders: false })).rejects.toThrow();
    } finally {
      await producer.disconnect();
      await admin.disconnect();
    }

    // the Kafka traffic shows up in the metrics, per API
    const m = (await httpGet(lance.admin, '/metrics')).text;
    expect(m).toMatch(/^lance_kafka_requests_total\{api="Produce"\} [1-9]\d*$/m);
    expect(m).toMatch(/^lance_kafka_requests_total\{api="Metadata"\} [1-9]\d*$/m);
    expect(m).toMatch(/^lance_kafka_request_duration_seconds_count\{api="ListOffsets"\} [1-9]\d*$/m);
    expect(m).toMatch(/^lance_kafka_bytes_in_total [1-9]\d*$/m);
    expect(m).toMatch(/^lance_kafka_bytes_out_total [1-9]\d*$/m);
    expect(m).toMatch(/^lance_kafka_connections \d+$/m);

    // kcat (installed by npm test's pretest): -C reads, -P is refused with the broker's policy error
    const c = await execFileP('kcat', ['-C', '-b', `127.0.0.1:${lance.kafkaPort}`, '-t', 'ledger', '-e', '-o', 'beginning', '-q'], { timeout: 30_000 });
    expect(c.stdout).toBe('r1\nr2\nr3\n');
    const p = await execFileP('sh', ['-c', `printf 'x\\n' | kcat -P -b 127.0.0.1:${lance.kafkaPort} -t ledger -X message.send.max.retries=0; echo "exit=$?"`], { timeout: 30_000 });
    expect(p.stdout).toContain('exit=1');
    expect(p.stderr).toMatch(/policy|read-only/i);

    // nothing was written while read-only
    process.kill(lance.pid, 'SIGTERM');
    expect(await lance.exited).toBe(0);
    lance = await startLance(data);
    expect((await lnc(['consume', '--server', lance.admin, '--topic', 'ledger', '--from-beginning'])).stdout).toBe('r1\nr2\nr3\n');
  }, 180000); // spawns real processes: generous on a loaded box (a wait bound, not a speed assertion)
});
