/**
 * `lance dev-cluster` (what `npm start` runs): a 3-node local cluster on 127.0.0.1 with distinct ports, one child
 * `lance` process per node (data under ./.data-cluster/node-N/, or $LANCE_DATA_DIR/node-N/, logs beside them).
 * Prints the bootstrap servers once all three are ready. Ctrl-C (SIGINT) or SIGTERM stops all three cleanly: each
 * child gets SIGTERM (graceful shutdown) and the launcher exits when all have exited. Children run in their own
 * process group so the terminal's Ctrl-C reaches only the launcher (one orderly stop, not a double signal).
 *
 * Ports (node N = 1..3): Kafka 9091+N (9092, 9093, 9094), admin 19910+N, raft 19930+N; LANCE_KAFKA_PORT,
 * LANCE_ADMIN_PORT, LANCE_RAFT_PORT move node 1's port (the others follow).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const LANCE = fileURLToPath(new URL('../../../bin/lance.js', import.meta.url));

export interface DevNode { nodeId: number; kafkaPort: number; adminPort: number; raftPort: number }

/** Pure: the dev cluster's ports (node 1's ports as given, node N's + N-1). */
export function devNodes(n = 3, base = { kafka: 9092, admin: 19911, raft: 19931 }): DevNode[] {
  return Array.from({ length: n }, (_, i) => ({ nodeId: i + 1, kafkaPort: base.kafka + i, adminPort: base.admin + i, raftPort: base.raft + i }));
}

function envPort(name: string, def: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65533) {
    process.stderr.write(`lance: INVALID_CONFIG: ${name}: expected a port number 1-65533 (node 1's port; nodes 2 and 3 use the next two), got ${JSON.stringify(v)}\n`);
    process.exit(2);
  }
  return n;
}

export function devClusterYaml(nodes: readonly DevNode[]): string {
  return [
    '# written by `lance dev-cluster` (npm start)',
    'listeners:',
    '  kafka: {host: 127.0.0.1}',
    '  admin: {host: 127.0.0.1}',
    '  raft: {host: 127.0.0.1}',
    'cluster:',
    '  peers:',
    ...nodes.map((x) => `    - {nodeId: ${x.nodeId}, host: 127.0.0.1, raftPort: ${x.raftPort}, kafkaPort: ${x.kafkaPort}, adminPort: ${x.adminPort}}`),
    '',
  ].join('\n');
}

export async function runDevCluster(version: string): Promise<void> {
  const base = path.resolve(process.env.LANCE_DATA_DIR ?? '.data-cluster');
  await mkdir(base, { recursive: true });
  const nodes = devNodes(3, { kafka: envPort('LANCE_KAFKA_PORT', 9092), admin: envPort('LANCE_ADMIN_PORT', 19911), raft: envPort('LANCE_RAFT_PORT', 19931) });
  const configFile = path.join(base, 'lance-cluster.yaml');
  await writeFile(configFile, devClusterYaml(nodes));
  const children = new Map<number, ChildProcess>();
  let stopping = false;

  const stopAll = (code: number): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write('\nstopping the 3 nodes...\n');
    const alive = [...children.values()].filter((c) => c.exitCode === null && c.signalCode === null);
    if (alive.length === 0) process.exit(code);
    let left = alive.length;
    for (const c of alive) {
      c.once('exit', () => {
        if (--left === 0) {
          process.stderr.write('all nodes stopped\n');
          process.exit(code);
        }
      });
      c.kill('SIGTERM');
    }
  };
  process.on('SIGINT', () => stopAll(0));
  process.on('SIGTERM', () => stopAll(0));
  // the launcher dying for another reason must not leave the nodes running
  process.on('exit', () => { for (const c of children.values()) if (c.exitCode === null) c.kill('SIGKILL'); });

  const ready = nodes.map((x) => new Promise<void>((resolve) => {
    const dataDir = path.join(base, `node-${x.nodeId}`);
    const logFile = path.join(base, `node-${x.nodeId}.log`);
    const out = createWriteStream(logFile, { flags: 'a' });
    const child = spawn(process.execPath, [LANCE, '--config', configFile], {
      env: { ...process.env, LANCE_NODE_ID: String(x.nodeId), LANCE_DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    children.set(x.nodeId, child);
    let buf = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out.write(chunk);
      buf += chunk.toString('utf8');
      if (buf.includes('"msg":"lance ready"')) {
        buf = '';
        resolve();
      } else if (buf.length > 1 << 16) buf = buf.slice(-1024);
    });
    child.stderr!.on('data', (chunk: Buffer) => out.write(chunk));
    child.once('exit', (code, signal) => {
      if (stopping) return;
      void readFile(logFile, 'utf8').catch(() => '').then((text) => {
        const tail = text.trim().split('\n').slice(-5).join('\n');
        process.stderr.write(`lance dev-cluster: node ${x.nodeId} exited (${signal ?? code}); its log ${logFile} ends with:\n${tail}\n`);
        stopAll(2);
      });
    });
  }));
  await Promise.all(ready);
  if (stopping) return;
  const bootstrap = nodes.map((x) => `127.0.0.1:${x.kafkaPort}`).join(',');
  process.stderr.write([
    '',
    `Lance ${version} — 3-node cluster on 127.0.0.1, data in ${base}/node-{1,2,3} (logs: ${base}/node-N.log)`,
    `  Kafka bootstrap servers: ${bootstrap}`,
    ...nodes.map((x) => `  node ${x.nodeId}: kafka 127.0.0.1:${x.kafkaPort}  admin http://127.0.0.1:${x.adminPort}  raft 127.0.0.1:${x.raftPort}`),
    `  status: curl -s http://127.0.0.1:${nodes[0]!.adminPort}/v1/cluster`,
    '  stop with Ctrl-C (stops all three)',
    '',
  ].join('\n') + '\n');
}
