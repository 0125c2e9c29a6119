import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Store } from './store.ts';
import type { Kubelet } from './kubelet.ts';
import { LanceError } from '../../broker/src/common/errors.ts';

/** A TCP proxy that can be cut (existing connections reset, new ones refused) and healed. */
export class CuttableProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private cutFlag = false;
  host = '';
  port = 0;

  constructor(readonly target: { host: string; port: number }, readonly label: string) {}

  async listen(host = '127.0.0.1'): Promise<this> {
    this.server = net.createServer((client) => {
      if (this.cutFlag) { client.destroy(); return; }
      const upstream = net.connect(this.target);
      this.sockets.add(client); this.sockets.add(upstream);
      const drop = () => { client.destroy(); upstream.destroy(); this.sockets.delete(client); this.sockets.delete(upstream); };
      client.on('error', drop); upstream.on('error', drop); client.on('close', drop); upstream.on('close', drop);
      client.pipe(upstream); upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => { this.server!.once('error', reject); this.server!.listen(0, host, () => resolve()); });
    const a = this.server.address() as AddressInfo;
    this.host = a.address; this.port = a.port;
    return this;
  }

  get isCut(): boolean { return this.cutFlag; }

  cut(): void {
    this.cutFlag = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  heal(): void { this.cutFlag = false; }

  async close(): Promise<void> {
    this.cut();
    if (this.server) await new Promise<void>((r) => this.server!.close(() => r()));
  }
}

/** The cgroup v2 hierarchy (hybrid hosts mount it at /sys/fs/cgroup/unified), or undefined. */
function cgroup2Root(): string | undefined {
  for (const dir of ['/sys/fs/cgroup/unified', '/sys/fs/cgroup']) {
    if (fs.existsSync(path.join(dir, 'cgroup.procs')) && fs.existsSync(path.join(dir, 'cgroup.max.depth'))) return dir;
  }
  return undefined;
}

/** Every live process whose process group is one of `pgids` (a container runs as its own process group). */
function processesOfGroups(pgids: readonly number[]): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid pgrp ... — comm may contain spaces/parens, so parse after the last ')'.
      const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      if (pgids.includes(pgrp)) out.push(Number(e));
    } catch {
      // the process exited meanwhile
    }
  }
  return out;
}

interface Isolation { ns: string; pod: string; rules: string[][] }

/**
 * Typed fault injection for tests. Loopback-only version: partitions work on traffic routed through CuttableProxy
 * instances (register one per peer link with `proxyTo`); network namespaces + nftables are not implemented.
 */
export class Faults {
  private readonly proxies: { ns: string; pod: string; proxy: CuttableProxy }[] = [];
  private readonly isolations: Isolation[] = [];
  private readonly fwId = randomBytes(4).toString('hex');
  private chain: string | undefined;
  private cgroupDir: string | undefined;

  constructor(private readonly store: Store, private readonly kubelet: Kubelet | undefined, private readonly dataDir: string) {}

  private needKubelet(): Kubelet {
    if (!this.kubelet) throw new LanceError('UNSUPPORTED', 'faults: this stand-in runs without workloads (workloads: false)');
    return this.kubelet;
  }

  /** SIGKILL the pod's container processes; the kubelet restarts them per restartPolicy. Returns the killed pids. */
  killPod(ns: string, pod: string): number[] {
    const pids = this.needKubelet().killPodProcesses(ns, pod, 'SIGKILL');
    if (pids.length === 0) throw new LanceError('NOT_FOUND', `faults.killPod: pod ${ns}/${pod} has no running process`);
    return pids;
  }

  /**
   * Freezes the pod's processes (SIGSTOP to each container's process group): connections stay open but nothing is
   * answered, probes time out (Ready=False). Models a stalled node / long GC pause — the closest loopback-only
   * stand-in for isolating a node, except the frozen process cannot act (e.g. notice it lost quorum) meanwhile.
   */
  freezePod(ns: string, pod: string): number[] {
    const pids = this.needKubelet().killPodProcesses(ns, pod, 'SIGSTOP');
    if (pids.length === 0) throw new LanceError('NOT_FOUND', `faults.freezePod: pod ${ns}/${pod} has no running process`);
    return pids;
  }

  thawPod(ns: string, pod: string): number[] {
    return this.needKubelet().killPodProcesses(ns, pod, 'SIGCONT');
  }

  /** Deletes everything inside a PVC's directory (the disk is wiped; the claim and volume stay). */
  deletePvcData(ns: string, claim: string): string {
    const pvc = this.store.tryGet(this.store.type('', 'persistentvolumeclaims')!, ns, claim);
    if (!pvc?.spec?.volumeName) throw new LanceError('NOT_FOUND', `faults.deletePvcData: claim ${ns}/${claim} is not bound`);
    const pv = this.store.tryGet(this.store.type('', 'persistentvolumes')!, undefined, pvc.spec.volumeName);
    const dir: string | undefined = pv?.spec?.hostPath?.path;
    if (!dir || !dir.startsWith(path.join(this.dataDir, 'volumes'))) throw new LanceError('NOT_FOUND', `faults.deletePvcData: volume of ${ns}/${claim} has no stand-in directory`);
    for (const e of fs.readdirSync(dir)) fs.rmSync(path.join(dir, e), { recursive: true, force: true });
    return dir;
  }

  /** The node stops: its processes die, its pods go Unknown/Ready=False, deletions there never complete. */
  loseNode(node: string): void { this.needKubelet().loseNode(node); }

  restoreNode(node: string): void { this.needKubelet().restoreNode(node); }

  nodeOf(ns: string, pod: string): string {
    const p = this.store.tryGet(this.store.type('', 'pods')!, ns, pod);
    if (!p?.spec?.nodeName) throw new LanceError('NOT_FOUND', `faults.nodeOf: pod ${ns}/${pod} is not scheduled`);
    return p.spec.nodeName;
  }

  /** A cuttable proxy to `pod`'s IP:port, tagged with the pod so `partition(pod)` cuts it. */
  async proxyTo(ns: string, pod: string, port: number): Promise<CuttableProxy> {
    const rt = this.needKubelet().podRuntime(ns, pod);
    if (!rt) throw new LanceError('NOT_FOUND', `faults.proxyTo: pod ${ns}/${pod} is not running`);
    const p = await new CuttableProxy({ host: rt.ip, port }, `${ns}/${pod}:${port}`).listen();
    this.proxies.push({ ns, pod, proxy: p });
    return p;
  }

  /** Cuts every registered proxy leading to the pod. */
  partition(ns: string, pod: string): number {
    const ps = this.proxies.filter((x) => x.ns === ns && x.pod === pod);
    for (const x of ps) x.proxy.cut();
    return ps.length;
  }

  heal(ns: string, pod: string): void {
    for (const x of this.proxies) if (x.ns === ns && x.pod === pod) x.proxy.heal();
  }

  /**
   * A real network partition of one pod on the shared loopback (root only; iptables + cgroup v2): TCP from or to
   * `ports` is dropped both ways for packets to or from the pod's IP, and for every socket the pod's processes create
   * from now on (they are moved into their own cgroup: on loopback a connection dialled without binding the pod's
   * IP leaves from 127.0.0.1, so the address alone cannot identify it). Other ports (e.g.
   * the admin/probe port) keep working, like a node cut off from its peers and clients but not from the control
   * plane. Established connections stall (packets vanish), as on a real cut. A container restart while isolated
   * is NOT covered (the new process starts outside the cgroup). `healPod` removes the rules.
   */
  isolatePod(ns: string, pod: string, ports: readonly number[]): void {
    if (process.getuid?.() !== 0) throw new LanceError('UNSUPPORTED', 'faults.isolatePod: needs root (iptables, cgroups)');
    if (ports.length === 0) throw new LanceError('INVALID_ARGUMENT', 'faults.isolatePod: ports: list at least one port');
    if (this.isolations.some((i) => i.ns === ns && i.pod === pod)) throw new LanceError('CONFLICT', `faults.isolatePod: ${ns}/${pod} is already isolated`);
    const rt = this.needKubelet().podRuntime(ns, pod);
    if (!rt || rt.pids.length === 0) throw new LanceError('NOT_FOUND', `faults.isolatePod: pod ${ns}/${pod} has no running process`);
    const root = cgroup2Root();
    if (!root) throw new LanceError('UNSUPPORTED', 'faults.isolatePod: no cgroup v2 hierarchy under /sys/fs/cgroup');
    this.cgroupDir ??= path.join(root, `lance-standin-${this.fwId}`);
    const rel = `/${path.relative(root, this.cgroupDir)}/${ns}_${pod}`;
    const dir = path.join(root, rel);
    fs.mkdirSync(dir, { recursive: true });
    for (const pid of processesOfGroups(rt.pids)) {
      try {
        fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
      } catch {
        // exited meanwhile
      }
    }
    if (!this.chain) {
      const chain = `LANCE-SI-${this.fwId}`;
      iptables(['-N', chain]);
      iptables(['-I', 'OUTPUT', '-j', chain]);
      this.chain = chain;
    }
    const list = ports.join(',');
    // By address (connections the pod accepted, and the ones it dialled from its own IP) and by cgroup (sockets it
    // creates from now on whatever their source address; a socket keeps the cgroup it was created in, so the
    // address rules are what cut connections that already exist).
    const rules: string[][] = [];
    for (const dir of ['-d', '-s']) for (const ports of ['--dports', '--sports']) rules.push([dir, `${rt.ip}/32`, '-p', 'tcp', '-m', 'multiport', ports, list, '-j', 'DROP']);
    for (const ports of ['--dports', '--sports']) rules.push(['-m', 'cgroup', '--path', rel, '-p', 'tcp', '-m', 'multiport', ports, list, '-j', 'DROP']);
    for (const r of rules) iptables(['-A', this.chain, ...r]);
    this.isolations.push({ ns, pod, rules });
  }

  /** Ends `isolatePod`: the rules go, stalled connections resume (TCP retransmits) or are re-dialled. */
  healPod(ns: string, pod: string): void {
    const i = this.isolations.findIndex((x) => x.ns === ns && x.pod === pod);
    if (i < 0) return;
    const [iso] = this.isolations.splice(i, 1);
    for (const r of iso!.rules) iptables(['-D', this.chain!, ...r]);
  }

  async close(): Promise<void> {
    await Promise.all(this.proxies.map((p) => p.proxy.close()));
    this.proxies.length = 0;
    for (const iso of [...this.isolations]) {
      try { this.healPod(iso.ns, iso.pod); } catch { /* best effort: the chain goes below */ }
    }
    if (this.chain) {
      try { iptables(['-D', 'OUTPUT', '-j', this.chain]); } catch { /* already gone */ }
      try { iptables(['-F', this.chain]); iptables(['-X', this.chain]); } catch { /* already gone */ }
      this.chain = undefined;
    }
  }

  /** Removes the pods' cgroups (call after their processes are gone; leftover processes go back to the root). */
  removeCgroups(): void {
    const top = this.cgroupDir;
    if (!top || !fs.existsSync(top)) return;
    const root = path.dirname(top);
    for (const d of fs.readdirSync(top, { withFileTypes: true })) {
      if (!d.isDirectory()) continue;
      const dir = path.join(top, d.name);
      for (const pid of fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
        try { fs.writeFileSync(path.join(root, 'cgroup.procs'), pid); } catch { /* exited */ }
      }
      try { fs.rmdirSync(dir); } catch { /* still busy */ }
    }
    try { fs.rmdirSync(top); } catch { /* still busy */ }
  }
}

function iptables(args: string[]): void {
  try {
    execFileSync('iptables', ['-w', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim();
    throw new LanceError('IO', `faults: iptables ${args.join(' ')} failed: ${stderr || String(e)}`, { args: args.join(' ') });
  }
}
