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
import { freePort } from '../ports.ts';

const LANCE = fileURLToPath(new URL('../../bin/lance.js', import.meta.url));

/** Ports below the ephemeral range: a killed node restarts on its own ports (see test/ports.ts). */
export { freePort };

export interface LogLine { node: number; t: number; msg: string; [k: string]: unknown }

export interface NodeSpec { nodeId: number; kafkaPort: number; adminPort: number; raftPort: number; dataDir: string }

/**
 * How the brokers are addressed:
 * - default: every node on 127.0.0.1 with its own ports (one shared config file).
 * - `ipBase` "127.a.b.": node i listens (kafka, admin, raft) on `127.a.b.i` and dials its peers from that address
 *   (the transport binds outgoing connections to the raft listener's IP), so packet filters can cut node pairs.
 * - `raftProxies`: node i's raft port is fronted by a RaftProxy on 127.0.0.1:<its raftPort> (the address in the
 *   peers list, so also the one the metadata advertises); the node itself binds the same port on a private
 *   loopback address (`127.a.b.i`, no root needed), where only its proxy reaches it. The proxy reads each
 *   connection's HELLO to learn the dialling node, so a partition can stop exactly the connections that touch
 *   the isolated node. The fallback partition mechanism when packet filtering is unavailable.
 */
export interface ClusterOptions { ipBase?: string; raftProxies?: boolean }

/**
 * TCP proxy in front of one broker's raft listener. Stopping a connection pauses both directions without closing
 * anything (a silent partition: like dropped packets; the bytes wait, as TCP retransmissions would, and flow on
 * when healed — unless the brokers' keepalive gave up on the connection first).
 */
export class RaftProxy {
  private server: net.Server | null = null;
  private readonly conns = new Set<{ from: number | null; client: net.Socket; upstream: net.Socket; paused: boolean; held: Buffer | null }>();

  constructor(
    readonly to: number,
    private readonly targetHost: string,
    private readonly targetPort: number,
    private readonly isCut: (from: number, to: number) => boolean,
  ) {}

  async listen(port: number): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect({ host: this.targetHost, port: this.targetPort });
      const conn = { from: null as number | null, client, upstream, paused: false, held: null as Buffer | null };
      this.conns.add(conn);
      for (const sock of [client, upstream]) {
        sock.on('error', () => undefined);
        sock.once('close', () => { this.conns.delete(conn); client.destroy(); upstream.destroy(); });
      }
      // the dialler's first frame is HELLO (u32 length | kind | JSON {nodeId, clusterId}): it names the dialler
      let head = Buffer.alloc(0);
      const onFirst = (d: Buffer): void => {
        head = Buffer.concat([head, d]);
        if (head.length < 4 || head.length < 4 + head.readUInt32BE(0)) return;
        try {
          conn.from = Number((JSON.parse(head.toString('utf8', 5, 4 + head.readUInt32BE(0))) as { nodeId: unknown }).nodeId);
        } catch {
          client.destroy();
          return;
        }
        client.off('data', onFirst);
        client.on('data', (x: Buffer) => upstream.write(x));
        // even the HELLO waits while the connection is cut (the acceptor must not see a live peer)
        conn.held = head;
        this.apply();
      };
      client.on('data', onFirst);
      upstream.on('data', (x: Buffer) => client.write(x));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  /** pause or resume every identified connection according to isCut */
  apply(): void {
    for (const c of this.conns) {
      if (c.from === null) continue;
      const cut = this.isCut(c.from, this.to);
      if (cut && !c.paused) { c.client.pause(); c.upstream.pause(); }
      if (!cut && c.paused) { c.client.resume(); c.upstream.resume(); }
      c.paused = cut;
      if (!cut && c.held) {
        c.upstream.write(c.held);
        c.held = null;
      }
    }
  }

  async close(): Promise<void> {
    for (const c of this.conns) { c.client.destroy(); c.upstream.destroy(); }
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
  /** the raft listener's bind address: `host`, or a private address behind the node's RaftProxy */
  raftBindHost: string;
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
  /** the config file (shared by every node) */
  configFile = '';
  /** raftProxies mode: node id → the proxy in front of its raft listener */
  readonly proxies = new Map<number, RaftProxy>();
  /** raftProxies mode: nodes whose connections the proxies stop */
  private readonly cutNodes = new Set<number>();

  static async start(n = 3, opts: ClusterOptions = {}): Promise<TestCluster> {
    const c = new TestCluster();
    c.dir = await mkdtemp(path.join(tmpdir(), 'lance-cluster-'));
    c.configFile = path.join(c.dir, 'lance.yaml');
    const privateBase = `127.${100 + Math.floor(Math.random() * 150)}.${1 + Math.floor(Math.random() * 250)}.`;
    for (let i = 1; i <= n; i++) {
      const host = opts.ipBase !== undefined ? `${opts.ipBase}${i}` : '127.0.0.1';
      const spec: NodeSpec = { nodeId: i, kafkaPort: await freePort(), adminPort: await freePort(), raftPort: await freePort(), dataDir: path.join(c.dir, `node-${i}`) };
      c.nodes.push({
        ...spec, proc: null, admin: new AdminClient(`${host}:${spec.adminPort}`), logFile: path.join(c.dir, `node-${i}.log`), starts: 0,
        host, configFile: c.configFile, raftBindHost: opts.raftProxies ? `${privateBase}${i}` : host,
      });
    }
    const entry = (x: ClusterNode, raftPort: number): string => `    - {nodeId: ${x.nodeId}, host: ${x.host}, raftPort: ${raftPort}, kafkaPort: ${x.kafkaPort}, adminPort: ${x.adminPort}}`;
    const listeners = 'listeners:\n  kafka: {host: 127.0.0.1}\n  admin: {host: 127.0.0.1}\n  raft: {host: 127.0.0.1}\n';
    if (opts.raftProxies) {
      for (const x of c.nodes) {
        const p = new RaftProxy(x.nodeId, x.raftBindHost, x.raftPort, (from, to) => c.cutNodes.has(from) || c.cutNodes.has(to));
        await p.listen(x.raftPort);
        c.proxies.set(x.nodeId, p);
      }
    }
    await writeFile(c.configFile, `${listeners}cluster:\n  peers:\n${c.nodes.map((x) => entry(x, x.raftPort)).join('\n')}\n`);
    await Promise.all(c.nodes.map((x) => c.startNode(x.nodeId)));
    return c;
  }

  /** raftProxies mode: stop (or let flow again) every connection between `id` and the other nodes */
  setProxiesCut(id: number, cut: boolean): void {
    if (cut) this.cutNodes.add(id);
    else this.cutNodes.delete(id);
    for (const p of this.proxies.values()) p.apply();
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
        LANCE_KAFKA_HOST: x.host, LANCE_ADMIN_HOST: x.host, LANCE_RAFT_HOST: x.raftBindHost,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    x.proc = proc;
    x.starts++;
    proc.stdout!.pipe(out);
    proc.stderr!.pipe(out);
    await waitUntil(`node ${id} admin`, async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`node ${id} exited (${proc.exitCode ?? proc.signalCode}) while starting`);
      return (await x.admin.live()).status === 'ok';
    }, 60_000).catch(async (e: unknown) => {
      // say why: the node's own last log lines (a crash at startup, a port clash...)
      const tail = (await readFile(x.logFile, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n');
      throw new Error(`${String(e)}\n--- ${x.logFile} (tail) ---\n${tail}`);
    });
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
