/** `npm start` = `lance dev`: a standalone broker on 127.0.0.1 that says where to connect, or why it cannot. */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { httpGet, killAll, runLanceToExit, startLanceWith } from './helpers.ts';

let dir: string;
afterEach(() => killAll());
afterAll(async () => {
  killAll();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('lance dev (npm start)', () => {
  it('prints the bootstrap and admin addresses, keeps data in $LANCE_DATA_DIR, and names a taken port', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lance-dev-'));
    const data = path.join(dir, 'devdata');
    const lance = await startLanceWith(['dev'], { LANCE_DATA_DIR: data, LANCE_KAFKA_PORT: '0', LANCE_ADMIN_PORT: '0' });
    // the banner goes to stderr, the ready log line to stdout: wait for the banner (separate pipes, any order)
    while (!lance.stderr().includes('stop with Ctrl-C')) await new Promise((r) => setTimeout(r, 20));
    const banner = lance.stderr();
    expect(banner).toContain(`data in ${data}`);
    expect(banner).toContain(`Kafka bootstrap: 127.0.0.1:${lance.kafkaPort}`);
    expect(banner).toContain(`admin:           http://127.0.0.1:${lance.adminPort}`);
    expect((await httpGet(lance.admin, '/health/ready')).status).toBe(200);
    expect(JSON.parse(await readFile(path.join(data, 'node.json'), 'utf8'))).toMatchObject({ nodeId: 1 });

    // the Kafka port is taken (by this running broker): one clear line, exit 2
    const taken = await runLanceToExit(['dev'], { LANCE_DATA_DIR: path.join(dir, 'other'), LANCE_KAFKA_PORT: String(lance.kafkaPort), LANCE_ADMIN_PORT: '0' });
    expect(taken.code).toBe(2);
    expect(taken.stderr.trim()).toBe(`lance: IO: kafka listener: port ${lance.kafkaPort} on 127.0.0.1 is already in use (another broker running?); choose another with listeners.kafka.port / LANCE_KAFKA_PORT / --kafka-port`);
    process.kill(lance.pid, 'SIGINT');
    expect(await lance.exited).toBe(0);

    // and the admin port
    const blocker = net.createServer();
    const port = await new Promise<number>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as net.AddressInfo).port)));
    try {
      const adminTaken = await runLanceToExit(['dev'], { LANCE_DATA_DIR: data, LANCE_KAFKA_PORT: '0', LANCE_ADMIN_PORT: String(port) });
      expect(adminTaken.code).toBe(2);
      expect(adminTaken.stderr.trim()).toContain(`lance: IO: admin API: port ${port} on 127.0.0.1 is already in use`);
    } finally {
      blocker.close();
    }
  }, 120000); // spawns real processes: generous on a loaded box (a wait bound, not a speed assertion)
});
