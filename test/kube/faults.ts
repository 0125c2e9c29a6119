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

/**
 * Typed fault injection for tests. Loopback-only version: partitions work on traffic routed through CuttableProxy
 * instances (register one per peer link with `proxyTo`); network namespaces + nftables are not implemented.
 */
export class Faults {
  private readonly proxies: { ns: string; pod: string; proxy: CuttableProxy }[] = [];

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

  async close(): Promise<void> {
    await Promise.all(this.proxies.map((p) => p.proxy.close()));
    this.proxies.length = 0;
  }
}
