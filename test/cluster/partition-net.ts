/**
 * Network partitions between real broker processes, two mechanisms:
 * - `nftables` (root and `nft` present): each broker has its own loopback IP (TestCluster ipBase) and dials its
 *   peers from it; a dedicated table `lance_test_<pid>` gets an input-hook chain that DROPS packets between the
 *   victim's IP and the others, both directions. A silent partition: nothing is reset, TCP retransmits until healed.
 *   The table is deleted on heal/cleanup; tables left by dead test processes are removed on the next start.
 * - `proxy` (otherwise): every broker's raft listener is fronted by a RaftProxy (harness.ts); the proxies stop
 *   forwarding on every connection that touches the isolated node.
 * LANCE_PARTITION_MECHANISM=proxy|nftables forces one.
 */
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { TestCluster, type ClusterOptions } from './harness.ts';

export type Mechanism = 'nftables' | 'proxy';

function run(cmd: string, args: string[], input?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = execFile(cmd, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? Number((err as { code: number }).code) : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
    if (input !== undefined) p.stdin!.end(input);
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** root + a working `nft` → nftables, else proxy (or what LANCE_PARTITION_MECHANISM says) */
export async function chooseMechanism(): Promise<{ mechanism: Mechanism; why: string }> {
  const forced = process.env.LANCE_PARTITION_MECHANISM;
  if (forced === 'proxy' || forced === 'nftables') return { mechanism: forced, why: 'LANCE_PARTITION_MECHANISM' };
  if (process.getuid?.() !== 0) return { mechanism: 'proxy', why: 'not root' };
  const probe = await run('nft', ['list', 'tables']);
  if (probe.code !== 0) return { mechanism: 'proxy', why: `nft unusable: ${probe.out.trim().slice(0, 200) || 'not installed'}` };
  return { mechanism: 'nftables', why: 'root and nft available' };
}

export class Partitioner {
  readonly table = `lance_test_${process.pid}`;
  private tableExists = false;

  private constructor(readonly mechanism: Mechanism, readonly cluster: TestCluster) {}

  /** starts a cluster wired for the mechanism (its own random 127.a.b.x subnet for nftables) */
  static async start(n: number, mechanism: Mechanism): Promise<Partitioner> {
    let opts: ClusterOptions;
    if (mechanism === 'nftables') {
      await Partitioner.removeStaleTables();
      // a random subnet: parallel runs (and other tests using 127.0.0.x) never share addresses with these rules
      opts = { ipBase: `127.${randomInt(100, 250)}.${randomInt(1, 250)}.` };
    } else {
      opts = { raftProxies: true };
    }
    return new Partitioner(mechanism, await TestCluster.start(n, opts));
  }

  private static async removeStaleTables(): Promise<void> {
    const r = await run('nft', ['list', 'tables']);
    for (const m of r.out.matchAll(/table inet (lance_test_(\d+))/g)) {
      if (!alive(Number(m[2]))) await run('nft', ['delete', 'table', 'inet', m[1]!]);
    }
  }

  /** cut `id` off from every other node (both directions) */
  async isolate(id: number): Promise<void> {
    if (this.mechanism === 'proxy') {
      this.cluster.setProxiesCut(id, true);
      return;
    }
    const me = this.cluster.node(id).host;
    const others = this.cluster.nodes.filter((x) => x.nodeId !== id).map((x) => x.host).join(', ');
    const script = [
      `table inet ${this.table} {`,
      '  chain input {',
      '    type filter hook input priority 0; policy accept;',
      `    ip saddr ${me} ip daddr { ${others} } drop`,
      `    ip saddr { ${others} } ip daddr ${me} drop`,
      '  }',
      '}',
      '',
    ].join('\n');
    const r = await run('nft', ['-f', '-'], script);
    if (r.code !== 0) throw new Error(`nft -f failed (${r.code}): ${r.out}\n${script}`);
    this.tableExists = true;
  }

  async heal(): Promise<void> {
    if (this.mechanism === 'proxy') {
      for (const x of this.cluster.nodes) this.cluster.setProxiesCut(x.nodeId, false);
      return;
    }
    if (!this.tableExists) return;
    const r = await run('nft', ['delete', 'table', 'inet', this.table]);
    if (r.code !== 0) throw new Error(`nft delete table ${this.table} failed (${r.code}): ${r.out}`);
    this.tableExists = false;
  }

  /** the rules as the kernel has them (for the test's log) */
  async describe(): Promise<string> {
    if (this.mechanism === 'proxy') return `raft proxies in front of nodes ${[...this.cluster.proxies.keys()].join(', ')}`;
    const r = await run('nft', ['list', 'table', 'inet', this.table]);
    return r.code === 0 ? r.out.trim() : '(no table)';
  }

  async cleanup(): Promise<void> {
    try {
      if (this.mechanism === 'nftables') {
        // even when tableExists says otherwise: a failed heal may have left it
        await run('nft', ['delete', 'table', 'inet', this.table]);
        this.tableExists = false;
      }
    } finally {
      await this.cluster.cleanup();
    }
  }
}
