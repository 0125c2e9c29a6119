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

/**
 * How the brokers are addressed:
 * - default: every node on 127.0.0.1 with its own ports (one shared config file).
 * - `ipBase` "127.a.b.": node i listens (kafka, admin, raft) on `127.a.b.i` and dials its peers from that address
 *   (the transport binds outgoing connections to the raft listener's IP), so packet filters can cut node pairs.
 * - `raftProxies`: every inter-broker connection goes through a cuttable TCP proxy (`RaftProxy`) on 127.0.0.1; each
 *   node gets its own config file whose peer entries point at the proxies (clusterId fixed, since the derived id
 *   would differ per file). The fallback partition mechanism when packet filtering is unavailable.
 */
export interface ClusterOptions { ipBase?: string; raftProxies?: boolean }

/**
 * A TCP proxy for one dialling direction (lower id → higher id) between two brokers. cut() stops forwarding in both
 * directions without closing anything (a silent partition: like dropped packets, nothing is reset; TCP would
 * retransmit, here the bytes wait); heal() delivers what waited and resumes.
 */
export class RaftProxy {
  private server: net.Server | null = null;
  private readonly conns = new Set<net.Socket>();
  private isCut = false;
  port = 0;
  constructor(readonly from: number, readonly to: number, private readonly target: () => number) {}

  async listen(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect({ host: '127.0.0.1', port: this.target() });
      for (const s of [client, upstream]) {
        this.conns.add(s);
        s.on('error', () => undefined);
        s.once('close', () => { this.conns.delete(s); client.destroy(); upstream.destroy(); });
        if (this.isCut) s.pause();
      }
      client.on('data', (d) => upstream.write(d));
      upstream.on('data', (d) => client.write(d));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
  }

  cut(): void {
    this.isCut = true;
    for (const s of this.conns) s.pause();
  }

  heal(): void {
    this.isCut = false;
    for (const s of this.conns) s.resume();
  }

  async close(): Promise<void> {
    for (const s of this.conns) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

export interface ClusterNode extends NodeSpec {
  proc: ChildProcess | null;
  admin: AdminClient;
  logFile: string;
  starts: number;
  /** the address every listener of this node binds (and its outgoing raft connections use) */
  host: string;
  configFile: string;
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
  /** the shared config file (per-node files in raftProxies mode: ClusterNode.configFile) */
  configFile = '';
  /** raftProxies mode: `${from}>${to}` → proxy */
  readonly proxies = new Map<string, RaftProxy>();

  static async start(n = 3, opts: ClusterOptions = {}): Promise<TestCluster> {
    const c = new TestCluster();
    c.dir = await mkdtemp(path.join(tmpdir(), 'lance-cluster-'));
    c.configFile = path.join(c.dir, 'lance.yaml');
    for (let i = 1; i <= n; i++) {
      const host = opts.ipBase !== undefined ? `${opts.ipBase}${i}` : '127.0.0.1';
      const spec: NodeSpec = { nodeId: i, kafkaPort: await freePort(), adminPort: await freePort(), raftPort: await freePort(), dataDir: path.join(c.dir, `node-${i}`) };
      c.nodes.push({
        ...spec, proc: null, admin: new AdminClient(`${host}:${spec.adminPort}`), logFile: path.join(c.dir, `node-${i}.log`), starts: 0,
        host, configFile: opts.raftProxies ? path.join(c.dir, `lance-${i}.yaml`) : c.configFile,
      });
    }
    const entry = (x: ClusterNode, raftPort: number): string => `    - {nodeId: ${x.nodeId}, host: ${x.host}, raftPort: ${raftPort}, kafkaPort: ${x.kafkaPort}, adminPort: ${x.adminPort}}`;
    const listeners = 'listeners:\n  kafka: {host: 127.0.0.1}\n  admin: {host: 127.0.0.1}\n  raft: {host: 127.0.0.1}\n';
    if (opts.raftProxies) {
      for (const a of c.nodes) {
        for (const b of c.nodes) {
          if (a.nodeId >= b.nodeId) continue; // the lower id dials
          const p = new RaftProxy(a.nodeId, b.nodeId, () => b.raftPort);
          await p.listen();
          c.proxies.set(`${a.nodeId}>${b.nodeId}`, p);
        }
      }
      for (const me of c.nodes) {
        // my own entry is real (I listen there); a higher peer is reached through my proxy towards it
        const peers = c.nodes.map((x) => entry(x, x.nodeId > me.nodeId ? c.proxies.get(`${me.nodeId}>${x.nodeId}`)!.port : x.raftPort)).join('\n');
        await writeFile(me.configFile, `clusterId: lance-proxied-test\n${listeners}cluster:\n  peers:\n${peers}\n`);
      }
    } else {
      await writeFile(c.configFile, `${listeners}cluster:\n  peers:\n${c.nodes.map((x) => entry(x, x.raftPort)).join('\n')}\n`);
    }
    await Promise.all(c.nodes.map((x) => c.startNode(x.nodeId)));
    return c;
  }

  /** raftProxies mode: cut (or heal) every proxied connection between `id` and the other nodes */
  setProxiesCut(id: number, cut: boolean): void {
    for (const p of this.proxies.values()) {
      if (p.from !== id && p.to !== id) continue;
      if (cut) p.cut();
      else p.heal();
    }
  }

  node(id: number): ClusterNode {
    return this.nodes.find((x) => x.nodeId === id)!;
  }

  bootstrap(): string[] {
    return this.nodes.map((x) => `${x.host}:${x.kafkaPort}`);
  }

  async startNode(id: number): Promise<void> {
    const x = this.node(id);
    await mkdir(x.dataDir, { recursive: true });
    const out = createWriteStream(x.logFile, { flags: 'a' });
    const proc = spawn(process.execPath, [LANCE, '--config', x.configFile], {
      env: {
        ...process.env, LANCE_NODE_ID: String(id), LANCE_DATA_DIR: x.dataDir, LANCE_LOG_LEVEL: 'info',
        LANCE_KAFKA_HOST: x.host, LANCE_ADMIN_HOST: x.host, LANCE_RAFT_HOST: x.host,
      },
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
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
    if (!process.env.KEEP_CLUSTER_DIR) await rm(this.dir, { recursive: true, force: true });
  }
}
