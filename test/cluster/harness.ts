/**
 * Real-process 3-node cluster harness: `node bin/lance.js --config <yaml>` per node on free ports, real data dirs.
 * Processes are tracked by pid and killed in stop(). Waits are on conditions (log lines, HTTP answers), bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdminClient } from '../../broker/src/admin/client.ts';
import type { ClusterView } from '../../broker/src/admin/schemas.ts';

const LANCE = fileURLToPath(new URL('../../bin/lance.js', import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address() as net.AddressInfo;
      s.close(() => resolve(a.port));
    });
  });
}

export interface LogLine { node: number; t: number; msg: string; [k: string]: unknown }

export interface NodeSpec { nodeId: number; kafkaPort: number; adminPort: number; raftPort: number; dataDir: string }

export interface ClusterNode extends NodeSpec {
  proc: ChildProcess | null;
  admin: AdminClient;
  logFile: string;
  starts: number;
}

export async function waitUntil<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50)); // polling interval of a condition wait, not a race fix
  }
}

export class TestCluster {
  readonly nodes: ClusterNode[] = [];
  dir = '';
  configFile = '';

  static async start(n = 3): Promise<TestCluster> {
    const c = new TestCluster();
    c.dir = await mkdtemp(path.join(tmpdir(), 'lance-cluster-'));
    for (let i = 1; i <= n; i++) {
      const spec: NodeSpec = { nodeId: i, kafkaPort: await freePort(), adminPort: await freePort(), raftPort: await freePort(), dataDir: path.join(c.dir, `node-${i}`) };
      c.nodes.push({ ...spec, proc: null, admin: new AdminClient(`127.0.0.1:${spec.adminPort}`), logFile: path.join(c.dir, `node-${i}.log`), starts: 0 });
    }
    c.configFile = path.join(c.dir, 'lance.yaml');
    const peers = c.nodes.map((x) => `    - {nodeId: ${x.nodeId}, host: 127.0.0.1, raftPort: ${x.raftPort}, kafkaPort: ${x.kafkaPort}, adminPort: ${x.adminPort}}`).join('\n');
    await writeFile(c.configFile, `listeners:\n  kafka: {host: 127.0.0.1}\n  admin: {host: 127.0.0.1}\n  raft: {host: 127.0.0.1}\ncluster:\n  peers:\n${peers}\n`);
    await Promise.all(c.nodes.map((x) => c.startNode(x.nodeId)));
    return c;
  }

  node(id: number): ClusterNode {
    return this.nodes.find((x) => x.nodeId === id)!;
  }

  bootstrap(): string[] {
    return this.nodes.map((x) => `127.0.0.1:${x.kafkaPort}`);
  }

  async startNode(id: number): Promise<void> {
    const x = this.node(id);
    await mkdir(x.dataDir, { recursive: true });
    const out = createWriteStream(x.logFile, { flags: 'a' });
    const proc = spawn(process.execPath, [LANCE, '--config', this.configFile], {
      env: { ...process.env, LANCE_NODE_ID: String(id), LANCE_DATA_DIR: x.dataDir, LANCE_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    x.proc = proc;
    x.starts++;
    proc.stdout!.pipe(out);
    proc.stderr!.pipe(out);
    await waitUntil(`node ${id} admin`, async () => (await x.admin.live()).status === 'ok', 60_000);
  }

  /** SIGKILL and wait for the exit */
  async kill(id: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const x = this.node(id);
    const p = x.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(signal);
    await exited;
    x.proc = null;
  }

  /** the node's pino log lines (every start), parsed; `t` = epoch ms */
  async logLines(id: number): Promise<LogLine[]> {
    const text = await readFile(this.node(id).logFile, 'utf8').catch(() => '');
    const out: LogLine[] = [];
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const o = JSON.parse(line) as Record<string, unknown>;
        out.push({ ...o, node: id, t: Date.parse(String(o.time)), msg: String(o.msg ?? '') });
      } catch {
        // a line cut by SIGKILL mid-write
      }
    }
    return out;
  }

  async wipe(id: number): Promise<void> {
    await rm(this.node(id).dataDir, { recursive: true, force: true });
  }

  async views(): Promise<ClusterView[]> {
    return Promise.all(this.nodes.filter((x) => x.proc).map((x) => x.admin.cluster()));
  }

  /** node id of the leader of a group, agreed by every running node, or undefined */
  async agreedLeader(group: string): Promise<{ leader: number; term: number } | undefined> {
    const vs = await this.views();
    const gs = vs.map((v) => v.groups?.find((g) => g.group === group));
    if (gs.some((g) => !g || g.leader === null)) return undefined;
    const l = gs[0]!.leader!;
    const t = gs[0]!.term;
    if (!gs.every((g) => g!.leader === l && g!.term === t)) return undefined;
    if (!this.node(l).proc) return undefined;
    return { leader: l, term: t };
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((x) => this.kill(x.nodeId, 'SIGKILL')));
  }

  async cleanup(): Promise<void> {
    await this.stop();
    if (!process.env.KEEP_CLUSTER_DIR) await rm(this.dir, { recursive: true, force: true });
  }
}
