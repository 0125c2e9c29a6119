import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import path from 'node:path';
import { Controller, ignoreRace } from './controllers/base.ts';
import { recordEvent } from './controllers/events.ts';
import type { Store } from './store.ts';
import type { ResourceType } from './resources.ts';
import type { KObject } from './types.ts';
import { clone, deepEqual } from './types.ts';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT, containerArgv, resolveImage } from './images.ts';

const DNS_PRELOAD = path.join(REPO_ROOT, 'test', 'kube', 'images', 'dns-preload.mjs');

/* eslint-disable @typescript-eslint/no-explicit-any -- container specs are walked structurally */

export interface KubeletOptions {
  dataDir: string;
  nodes: string[];
  /** First restart delay for crashed containers (doubles per restart, capped at restartBackoffMaxMs). */
  restartBackoffMs?: number;
  restartBackoffMaxMs?: number;
  /**
   * Least time between a pod's deletionTimestamp and its removal (default 1000 ms). A real kubelet needs a sync
   * period to notice; `kubectl delete` relies on that: it GETs, then LISTs and WATCHes by name, and if the pod is
   * already gone and recreated under the same name (StatefulSets) in between, it waits forever.
   */
  minTerminationMs?: number;
}

interface ContainerRuntime {
  name: string;
  spec: any;
  proc?: ChildProcess;
  pid?: number;
  running: boolean;
  startedAt?: string;
  restartCount: number;
  lastExit?: { exitCode: number; signal?: string; finishedAt: string; startedAt?: string; reason: string };
  ready: boolean;
  liveFailures: number;
  readyFailures: number;
  readySuccesses: number;
  restartTimer?: NodeJS.Timeout;
  probeTimers: NodeJS.Timeout[];
  waitingReason?: string;
  logFile: string;
}

interface PodRuntime {
  uid: string;
  ns: string;
  name: string;
  node: string;
  ip: string;
  dir: string;
  env: Record<string, string>;
  mounts: Record<string, string>;
  containers: ContainerRuntime[];
  initDone: boolean;
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
  terminating: boolean;
  stopped: boolean;
  startedAt: string;
  pendingReason?: string;
}

/**
 * The kubelet: schedules pods onto virtual nodes, runs each container as a real local process (own loopback IP,
 * materialised volumes, env), executes probes for real, reports phase/conditions/containerStatuses, restarts by
 * restartPolicy with backoff, and terminates with SIGTERM → SIGKILL after the grace period.
 */
export class Kubelet extends Controller {
  private readonly pods = new Map<string, PodRuntime>();
  private readonly lost = new Set<string>();
  private readonly ipBase: [number, number];
  private nextIp = 0;
  private rr = 0;
  private readonly podT: ResourceType;

  constructor(store: Store, private readonly opts: KubeletOptions) {
    super(store, 300);
    // A random 127.a.b.0/24-ish range per stand-in, so parallel test suites on one machine do not share pod IPs.
    this.ipBase = [16 + Math.floor(Math.random() * 224), Math.floor(Math.random() * 250)];
    this.podT = store.type('', 'pods')!;
  }

  /** Last-resort cleanup if the hosting process exits without stop() (e.g. a crashed test worker). */
  private readonly onHostExit = (): void => { for (const pid of this.pids()) killGroup(pid, 'SIGKILL'); };

  override async start(): Promise<void> {
    process.once('exit', this.onHostExit);
    const nodeT = this.store.type('', 'nodes')!;
    for (const n of this.opts.nodes) {
      if (!this.store.tryGet(nodeT, undefined, n)) this.store.create(nodeT, undefined, { apiVersion: 'v1', kind: 'Node', metadata: { name: n, labels: { 'kubernetes.io/hostname': n, 'kubernetes.io/os': 'linux' } }, spec: {} });
      this.setNodeReady(n, 'True');
    }
    super.start();
  }

  override async stop(): Promise<void> {
    super.stop();
    process.off('exit', this.onHostExit);
    await Promise.all([...this.pods.values()].map((p) => this.killPod(p, 0)));
  }

  /** Pids of all running container processes (tests use this to prove cleanup). */
  pids(): number[] {
    return [...this.pods.values()].flatMap((p) => p.containers.filter((c) => c.running && c.pid).map((c) => c.pid!));
  }

  podRuntime(ns: string, name: string): { ip: string; dir: string; pids: number[]; node: string; mounts: Record<string, string> } | undefined {
    const p = [...this.pods.values()].find((x) => x.ns === ns && x.name === name && !x.stopped);
    return p ? { ip: p.ip, dir: p.dir, node: p.node, mounts: { ...p.mounts }, pids: p.containers.filter((c) => c.running && c.pid).map((c) => c.pid!) } : undefined;
  }

  logs(ns: string, name: string, container: string | undefined, o: { tailLines?: number }): string | undefined {
    const pod = this.store.tryGet(this.podT, ns, name);
    if (!pod) return undefined;
    const rt = this.pods.get(pod.metadata.uid!);
    if (!rt) return undefined;
    const c = container ? rt.containers.find((x) => x.name === container) : rt.containers[0];
    if (!c || !fs.existsSync(c.logFile)) return undefined;
    const text = fs.readFileSync(c.logFile, 'utf8');
    if (o.tailLines === undefined) return text;
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return lines.slice(-o.tailLines).join('\n') + (lines.length ? '\n' : '');
  }

  /** Where a container's log lives and whether more output can still come (for `logs -f`). */
  logSource(ns: string, name: string, container: string | undefined): { file: string; live: () => boolean } | undefined {
    const pod = this.store.tryGet(this.podT, ns, name);
    const rt = pod ? this.pods.get(pod.metadata.uid!) : undefined;
    const c = rt ? (container ? rt.containers.find((x) => x.name === container) : rt.containers[0]) : undefined;
    if (!rt || !c) return undefined;
    return { file: c.logFile, live: () => this.pods.get(rt.uid) === rt && !rt.stopped && (c.running || !!c.restartTimer || !rt.initDone) };
  }

  // ---------- faults ----------
  /** SIGKILLs a pod's container processes (restartPolicy then decides what happens, as after an OOM kill). */
  killPodProcesses(ns: string, name: string, signal: NodeJS.Signals = 'SIGKILL'): number[] {
    const p = [...this.pods.values()].find((x) => x.ns === ns && x.name === name && !x.stopped);
    if (!p) return [];
    const pids: number[] = [];
    for (const c of p.containers) if (c.running && c.pid) { pids.push(c.pid); killGroup(c.pid, signal); }
    return pids;
  }

  /** Sends SIGCONT first so a frozen (SIGSTOPped) pod can still be terminated and killed. */
  private thaw(rt: PodRuntime): void {
    for (const c of rt.containers) if (c.running && c.pid) killGroup(c.pid, 'SIGCONT');
  }

  /** A lost node: its processes die, its pods go Unknown/Ready=False, and nothing on it completes a deletion. */
  loseNode(node: string): void {
    this.lost.add(node);
    this.setNodeReady(node, 'Unknown');
    for (const p of this.pods.values()) {
      if (p.node !== node || p.stopped) continue;
      p.stopped = true;
      for (const c of p.containers) { clearTimers(c); if (c.pid && c.running) killGroup(c.pid, 'SIGKILL'); }
      p.phase = 'Unknown';
      const pod = this.store.tryGet(this.podT, p.ns, p.name);
      if (pod) {
        const st = clone(pod.status ?? {});
        st.phase = 'Unknown';
        st.reason = 'NodeLost';
        st.message = `Node ${node} which was running pod ${p.name} is unresponsive`;
        st.conditions = setCond(st.conditions, 'Ready', 'False', 'NodeLost');
        st.conditions = setCond(st.conditions, 'ContainersReady', 'False', 'NodeLost');
        for (const cs of st.containerStatuses ?? []) cs.ready = false;
        ignoreRace(() => this.store.update(this.podT, p.ns, p.name, { ...pod, status: st }, { subresource: 'status' }));
      }
    }
    this.kick();
  }

  restoreNode(node: string): void {
    this.lost.delete(node);
    this.setNodeReady(node, 'True');
    for (const [uid, p] of this.pods) if (p.node === node && p.phase === 'Unknown') this.pods.delete(uid);
    this.kick();
  }

  isLost(node: string): boolean { return this.lost.has(node); }

  private setNodeReady(node: string, status: string): void {
    const nodeT = this.store.type('', 'nodes')!;
    const n = this.store.tryGet(nodeT, undefined, node);
    if (!n) return;
    const st = clone(n.status ?? {});
    st.conditions = setCond(st.conditions, 'Ready', status, status === 'True' ? 'KubeletReady' : 'NodeStatusUnknown');
    st.addresses = [{ type: 'InternalIP', address: '127.0.0.1' }, { type: 'Hostname', address: node }];
    ignoreRace(() => this.store.update(nodeT, undefined, node, { ...n, status: st }, { subresource: 'status' }));
  }

  // ---------- reconcile ----------
  protected override interested(ev: { tk: string }): boolean {
    return ['/pods', '/persistentvolumeclaims', '/configmaps', '/secrets'].includes(ev.tk);
  }

  protected reconcile(): void {
    const pods = this.store.list(this.podT, undefined).items;
    const seen = new Set<string>();
    for (const pod of pods) {
      const uid = pod.metadata.uid!;
      seen.add(uid);
      if (!pod.spec?.nodeName) { this.schedule(pod); continue; }
      const node = pod.spec.nodeName as string;
      if (!this.opts.nodes.includes(node)) continue; // bound to a node no kubelet serves: stays Pending, as in kube
      if (this.lost.has(node)) continue; // nobody home: pods there neither run nor finish terminating
      let rt = this.pods.get(uid);
      if (pod.metadata.deletionTimestamp) {
        if (!rt) { this.store.finalizeDelete(this.podT, pod.metadata.namespace, pod.metadata.name!); continue; }
        if (!rt.terminating) {
          rt.terminating = true;
          const since = Date.now() - Date.parse(pod.metadata.deletionTimestamp);
          const floor = Math.max(0, (this.opts.minTerminationMs ?? 1000) - since);
          for (const c of rt.containers) if (c.running) recordEvent(this.store, pod, 'Normal', 'Killing', `Stopping container ${c.name}`, 'kubelet');
          void Promise.all([this.killPod(rt, pod.metadata.deletionGracePeriodSeconds ?? 30), delay(floor)]).then(() => {
            this.pods.delete(uid);
            const cur = this.store.tryGet(this.podT, rt!.ns, rt!.name);
            if (cur && cur.metadata.uid === uid) this.store.finalizeDelete(this.podT, rt!.ns, rt!.name);
          });
        }
        continue;
      }
      if (!rt) {
        if (['Succeeded', 'Failed'].includes(pod.status?.phase)) continue;
        rt = this.prepare(pod);
        if (!rt) continue;
      }
      if (!rt.stopped && !rt.terminating) this.syncStatus(rt);
    }
    for (const [uid, rt] of this.pods) {
      if (!seen.has(uid)) { this.pods.delete(uid); void this.killPod(rt, 0); } // force-deleted: stop at once
    }
  }

  private schedule(pod: KObject): void {
    const live = this.opts.nodes.filter((n) => !this.lost.has(n));
    if (live.length === 0) return;
    // kube-scheduler's VolumeBinding: a pod whose claim is missing or being deleted stays Pending (unschedulable).
    const pvcT = this.store.type('', 'persistentvolumeclaims')!;
    for (const v of (pod.spec?.volumes ?? []) as { persistentVolumeClaim?: { claimName: string } }[]) {
      if (!v.persistentVolumeClaim) continue;
      const claim = this.store.tryGet(pvcT, pod.metadata.namespace, v.persistentVolumeClaim.claimName);
      if (!claim || claim.metadata.deletionTimestamp) return;
    }
    let node: string | undefined = pod.spec?.nodeSelector?.['kubernetes.io/hostname'];
    if (node && !live.includes(node)) return;
    node ??= live[this.rr++ % live.length];
    const next = clone(pod);
    next.spec.nodeName = node;
    const st = clone(pod.status ?? {});
    st.conditions = setCond(st.conditions, 'PodScheduled', 'True');
    ignoreRace(() => {
      const bound = this.store.update(this.podT, pod.metadata.namespace, pod.metadata.name!, next);
      this.store.update(this.podT, pod.metadata.namespace, pod.metadata.name!, { ...bound, status: st }, { subresource: 'status' });
      recordEvent(this.store, bound, 'Normal', 'Scheduled', `Successfully assigned ${pod.metadata.namespace}/${pod.metadata.name} to ${node}`, 'default-scheduler');
    });
  }

  private allocateIp(): string {
    const n = this.nextIp++;
    const c = this.ipBase[1] + Math.floor(n / 250);
    return `127.${this.ipBase[0]}.${c % 256}.${(n % 250) + 2}`;
  }

  /** Resolves volumes and env; returns undefined (pod stays Pending) until PVCs are bound and referenced objects exist. */
  private prepare(pod: KObject): PodRuntime | undefined {
    const ns = pod.metadata.namespace!;
    const name = pod.metadata.name!;
    const uid = pod.metadata.uid!;
    const spec = pod.spec;
    const dir = path.join(this.opts.dataDir, 'pods', `${ns}_${name}_${uid.slice(0, 8)}`);
    const volumes: Record<string, string> = {};
    const waiting = (reason: string, message: string): undefined => {
      const st = clone(pod.status ?? {});
      st.conditions = setCond(st.conditions, 'PodScheduled', 'True');
      st.containerStatuses = (spec.containers ?? []).map((c: any) => ({ name: c.name, image: c.image, imageID: '', ready: false, restartCount: 0, started: false, state: { waiting: { reason, message } } }));
      st.message = message;
      if (!deepEqual(st, pod.status)) ignoreRace(() => this.store.update(this.podT, ns, name, { ...pod, status: st }, { subresource: 'status' }));
      return undefined;
    };
    for (const v of spec.volumes ?? []) {
      const vdir = path.join(dir, 'volumes', v.name);
      if (v.persistentVolumeClaim) {
        const pvc = this.store.tryGet(this.store.type('', 'persistentvolumeclaims')!, ns, v.persistentVolumeClaim.claimName);
        if (!pvc || pvc.status?.phase !== 'Bound') return waiting('ContainerCreating', `persistentvolumeclaim "${v.persistentVolumeClaim.claimName}" not bound`);
        const pv = this.store.tryGet(this.store.type('', 'persistentvolumes')!, undefined, pvc.spec.volumeName);
        const p = pv?.spec?.hostPath?.path ?? pv?.spec?.local?.path;
        if (!p) return waiting('ContainerCreating', `volume for claim "${pvc.metadata.name}" has no path`);
        fs.mkdirSync(p, { recursive: true });
        volumes[v.name] = p;
      } else if (v.configMap || v.secret) {
        const isSecret = !!v.secret;
        const ref = isSecret ? v.secret.secretName : v.configMap.name;
        const src = this.store.tryGet(this.store.type('', isSecret ? 'secrets' : 'configmaps')!, ns, ref);
        const optional = isSecret ? v.secret.optional : v.configMap.optional;
        if (!src && !optional) return waiting('ContainerCreating', `${isSecret ? 'secret' : 'configmap'} "${ref}" not found`);
        fs.rmSync(vdir, { recursive: true, force: true });
        fs.mkdirSync(vdir, { recursive: true });
        const data: Record<string, Buffer> = {};
        for (const [k, val] of Object.entries((src?.data as Record<string, string>) ?? {})) data[k] = isSecret ? Buffer.from(val, 'base64') : Buffer.from(val, 'utf8');
        for (const [k, val] of Object.entries((src?.binaryData as Record<string, string>) ?? {})) data[k] = Buffer.from(val, 'base64');
        const items: { key: string; path: string }[] | undefined = (isSecret ? v.secret.items : v.configMap.items);
        const files = items ? items.map((i) => [i.path, data[i.key]] as const) : Object.entries(data);
        for (const [p, buf] of files) {
          if (!buf) continue;
          fs.mkdirSync(path.dirname(path.join(vdir, p)), { recursive: true });
          fs.writeFileSync(path.join(vdir, p), buf);
        }
        volumes[v.name] = vdir;
      } else {
        // emptyDir (and anything else the stand-in does not model) is a fresh per-pod directory.
        fs.mkdirSync(vdir, { recursive: true });
        volumes[v.name] = vdir;
      }
    }
    const ip = this.allocateIp();
    const rt: PodRuntime = {
      uid, ns, name, node: spec.nodeName, ip, dir, env: {}, mounts: {}, containers: [], initDone: !(spec.initContainers?.length),
      phase: 'Pending', terminating: false, stopped: false, startedAt: nowTs(),
    };
    fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
    const mk = (c: any): ContainerRuntime => ({ name: c.name, spec: c, running: false, restartCount: 0, ready: false, liveFailures: 0, readyFailures: 0, readySuccesses: 0, probeTimers: [], logFile: path.join(dir, 'logs', `${c.name}.log`) });
    rt.containers = (spec.containers ?? []).map(mk);
    this.pods.set(uid, rt);
    // Pod IP and start time are reported before processes start, so fieldRef status.podIP resolves.
    const st = clone(pod.status ?? {});
    st.podIP = ip; st.podIPs = [{ ip }]; st.hostIP = '127.0.0.1'; st.hostIPs = [{ ip: '127.0.0.1' }]; st.startTime = rt.startedAt;
    delete st.message;
    ignoreRace(() => this.store.update(this.podT, ns, name, { ...pod, status: st }, { subresource: 'status' }));
    void this.runPod(rt, volumes).catch((e) => process.stderr.write(`kube stand-in kubelet: pod ${ns}/${name}: ${(e as Error).stack ?? e}\n`));
    return rt;
  }

  private async runPod(rt: PodRuntime, volumes: Record<string, string>): Promise<void> {
    const pod = this.store.tryGet(this.podT, rt.ns, rt.name);
    if (!pod) return;
    for (const ic of pod.spec.initContainers ?? []) {
      const c: ContainerRuntime = { name: ic.name, spec: ic, running: false, restartCount: 0, ready: false, liveFailures: 0, readyFailures: 0, readySuccesses: 0, probeTimers: [], logFile: path.join(rt.dir, 'logs', `${ic.name}.log`) };
      for (;;) {
        if (rt.stopped || rt.terminating) return;
        const code = await new Promise<number>((resolve) => { const p = this.spawnContainer(rt, c, pod, volumes); if (!p) resolve(127); else p.on('exit', (cd) => resolve(cd ?? 137)); });
        if (code === 0) break;
        if (pod.spec.restartPolicy === 'Never') { rt.phase = 'Failed'; this.kick(); return; }
        c.restartCount++;
        await delay(this.backoff(c.restartCount));
      }
    }
    rt.initDone = true;
    for (const c of rt.containers) this.startContainer(rt, c, pod, volumes);
    this.kick();
  }

  private backoff(restarts: number): number {
    const base = this.opts.restartBackoffMs ?? 500;
    return Math.min(base * 2 ** Math.max(0, restarts - 1), this.opts.restartBackoffMaxMs ?? 5000);
  }

  private startContainer(rt: PodRuntime, c: ContainerRuntime, pod: KObject, volumes: Record<string, string>): void {
    if (rt.stopped || rt.terminating) return;
    const proc = this.spawnContainer(rt, c, pod, volumes);
    if (!proc) { this.onExit(rt, c, pod, volumes, 127, null); return; }
    proc.on('exit', (code, signal) => this.onExit(rt, c, pod, volumes, code, signal));
    recordEvent(this.store, pod, 'Normal', 'Started', `Started container ${c.name}`, 'kubelet');
    this.startProbes(rt, c);
    this.kick();
  }

  private onExit(rt: PodRuntime, c: ContainerRuntime, pod: KObject, volumes: Record<string, string>, code: number | null, signal: NodeJS.Signals | null): void {
    clearTimers(c);
    c.running = false;
    c.ready = false;
    const exitCode = code ?? (signal === 'SIGKILL' ? 137 : signal === 'SIGTERM' ? 143 : 1);
    c.lastExit = { exitCode, ...(signal ? { signal } : {}), finishedAt: nowTs(), ...(c.startedAt ? { startedAt: c.startedAt } : {}), reason: exitCode === 0 ? 'Completed' : signal === 'SIGKILL' ? 'Error' : 'Error' };
    if (rt.stopped || rt.terminating) { this.kick(); return; }
    const policy = pod.spec.restartPolicy ?? 'Always';
    const restart = policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0);
    if (restart) {
      c.restartCount++;
      c.waitingReason = 'CrashLoopBackOff';
      c.restartTimer = setTimeout(() => { c.waitingReason = undefined; this.startContainer(rt, c, pod, volumes); }, this.backoff(c.restartCount));
    }
    this.kick();
  }

  private spawnContainer(rt: PodRuntime, c: ContainerRuntime, pod: KObject, volumes: Record<string, string>): ChildProcess | undefined {
    const spec = c.spec;
    const image = resolveImage(spec.image ?? '');
    const log = fs.openSync(c.logFile, 'a');
    if (!image) {
      fs.writeSync(log, `kube stand-in: image ${spec.image} has no mapping in test/kube/images.ts\n`);
      fs.closeSync(log);
      c.waitingReason = 'ErrImagePull';
      return undefined;
    }
    const mounts: Record<string, string> = {};
    for (const vm of spec.volumeMounts ?? []) {
      const base = volumes[vm.name];
      if (base) mounts[vm.mountPath] = vm.subPath ? path.join(base, vm.subPath) : base;
      if (vm.subPath) fs.mkdirSync(mounts[vm.mountPath], { recursive: true });
    }
    rt.mounts = { ...rt.mounts, ...mounts };
    const env = this.buildEnv(rt, spec, pod, mounts);
    const expand = (s: string) => rewriteMounts(expandVars(s, env), mounts);
    const argv = containerArgv(image, spec.command?.map(expand), spec.args?.map(expand));
    if (argv.length === 0) { fs.writeSync(log, 'kube stand-in: no command\n'); fs.closeSync(log); return undefined; }
    const cwd = spec.workingDir ? rewriteMounts(spec.workingDir, mounts) : rt.dir;
    fs.mkdirSync(cwd, { recursive: true });
    const proc = spawn(argv[0], argv.slice(1), { cwd, env, stdio: ['ignore', log, log], detached: true });
    fs.closeSync(log);
    c.proc = proc;
    c.pid = proc.pid;
    c.running = proc.pid !== undefined;
    c.startedAt = nowTs();
    c.liveFailures = 0; c.readyFailures = 0; c.readySuccesses = 0;
    proc.on('error', (e) => { fs.appendFileSync(c.logFile, `kube stand-in: spawn ${argv[0]} failed: ${e.message}\n`); });
    return proc;
  }

  /** Container env: the pod's declared env (with fieldRef/configMapKeyRef/secretKeyRef), mount paths rewritten. */
  private buildEnv(rt: PodRuntime, spec: any, pod: KObject, mounts: Record<string, string>): Record<string, string> {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: rt.dir,
      HOSTNAME: pod.metadata.name!,
      KUBE_STANDIN_POD_IP: rt.ip,
      KUBE_STANDIN_POD_NAME: pod.metadata.name!,
      KUBE_STANDIN_NAMESPACE: rt.ns,
      KUBE_STANDIN_MOUNTS: JSON.stringify(mounts),
      // Cluster DNS for Node processes (see images/dns-preload.mjs and controllers/dns.ts).
      KUBE_STANDIN_HOSTS: path.join(this.opts.dataDir, 'hosts.json'),
      NODE_OPTIONS: `--import ${pathToFileURL(DNS_PRELOAD).href}`,
    };
    const cmT = this.store.type('', 'configmaps')!;
    const secT = this.store.type('', 'secrets')!;
    for (const ef of spec.envFrom ?? []) {
      const src = ef.configMapRef ? this.store.tryGet(cmT, rt.ns, ef.configMapRef.name) : ef.secretRef ? this.store.tryGet(secT, rt.ns, ef.secretRef.name) : undefined;
      for (const [k, v] of Object.entries((src?.data as Record<string, string>) ?? {})) env[(ef.prefix ?? '') + k] = ef.secretRef ? Buffer.from(v, 'base64').toString('utf8') : v;
    }
    for (const e of spec.env ?? []) {
      let v: string | undefined;
      if (e.value !== undefined) v = expandVars(String(e.value), env);
      else if (e.valueFrom?.fieldRef) v = fieldRef(pod, rt, e.valueFrom.fieldRef.fieldPath);
      else if (e.valueFrom?.configMapKeyRef) v = (this.store.tryGet(cmT, rt.ns, e.valueFrom.configMapKeyRef.name)?.data as Record<string, string> | undefined)?.[e.valueFrom.configMapKeyRef.key];
      else if (e.valueFrom?.secretKeyRef) {
        const raw = (this.store.tryGet(secT, rt.ns, e.valueFrom.secretKeyRef.name)?.data as Record<string, string> | undefined)?.[e.valueFrom.secretKeyRef.key];
        v = raw === undefined ? undefined : Buffer.from(raw, 'base64').toString('utf8');
      } else if (e.valueFrom?.resourceFieldRef) v = '0';
      if (v !== undefined) env[e.name] = e.name === 'NODE_OPTIONS' ? `${env.NODE_OPTIONS} ${v}` : rewriteMounts(v, mounts);
    }
    return env;
  }

  // ---------- probes ----------
  private startProbes(rt: PodRuntime, c: ContainerRuntime): void {
    const ready = c.spec.readinessProbe;
    const live = c.spec.livenessProbe;
    if (!ready) c.ready = true;
    const schedule = (probe: any, onResult: (ok: boolean) => void) => {
      const period = Math.max(1, probe.periodSeconds ?? 10) * 1000;
      const tick = async () => {
        if (!c.running || rt.stopped || rt.terminating) return;
        const ok = await this.runProbe(rt, c, probe);
        if (!c.running || rt.stopped || rt.terminating) return;
        onResult(ok);
        c.probeTimers.push(setTimeout(() => void tick(), period));
      };
      c.probeTimers.push(setTimeout(() => void tick(), (probe.initialDelaySeconds ?? 0) * 1000));
    };
    if (ready) {
      schedule(ready, (ok) => {
        if (ok) { c.readyFailures = 0; c.readySuccesses++; if (c.readySuccesses >= (ready.successThreshold ?? 1) && !c.ready) { c.ready = true; this.kick(); } }
        else { c.readySuccesses = 0; c.readyFailures++; if (c.readyFailures >= (ready.failureThreshold ?? 3) && c.ready) { c.ready = false; this.kick(); } }
      });
    }
    if (live) {
      schedule(live, (ok) => {
        if (ok) { c.liveFailures = 0; return; }
        c.liveFailures++;
        if (c.liveFailures >= (live.failureThreshold ?? 3) && c.pid) {
          fs.appendFileSync(c.logFile, `kube stand-in: liveness probe failed ${c.liveFailures} times, killing container\n`);
          killGroup(c.pid, 'SIGKILL');
        }
      });
    }
  }

  private async runProbe(rt: PodRuntime, c: ContainerRuntime, probe: any): Promise<boolean> {
    const timeout = Math.max(1, probe.timeoutSeconds ?? 1) * 1000;
    const portOf = (p: unknown): number => typeof p === 'number' ? p : Number((c.spec.ports ?? []).find((x: any) => x.name === p)?.containerPort ?? p);
    if (probe.httpGet) {
      const g = probe.httpGet;
      return new Promise<boolean>((resolve) => {
        const req = http.get({ host: g.host ?? rt.ip, port: portOf(g.port), path: g.path ?? '/', timeout, agent: false, headers: Object.fromEntries((g.httpHeaders ?? []).map((h: any) => [h.name, h.value])) }, (res) => {
          res.resume();
          resolve((res.statusCode ?? 500) >= 200 && (res.statusCode ?? 500) < 400);
        });
        req.on('timeout', () => { req.destroy(); resolve(false); });
        req.on('error', () => resolve(false));
      });
    }
    if (probe.tcpSocket) {
      return new Promise<boolean>((resolve) => {
        const s = net.connect({ host: probe.tcpSocket.host ?? rt.ip, port: portOf(probe.tcpSocket.port) });
        const t = setTimeout(() => { s.destroy(); resolve(false); }, timeout);
        s.on('connect', () => { clearTimeout(t); s.destroy(); resolve(true); });
        s.on('error', () => { clearTimeout(t); resolve(false); });
      });
    }
    if (probe.exec?.command?.length) {
      const pod = this.store.tryGet(this.podT, rt.ns, rt.name);
      if (!pod) return false;
      const env = this.buildEnv(rt, c.spec, pod, rt.mounts);
      const argv = (probe.exec.command as string[]).map((a) => rewriteMounts(a, rt.mounts));
      return new Promise<boolean>((resolve) => {
        const p = spawn(argv[0], argv.slice(1), { env, cwd: rt.dir, stdio: 'ignore' });
        const t = setTimeout(() => { p.kill('SIGKILL'); resolve(false); }, timeout);
        p.on('exit', (code) => { clearTimeout(t); resolve(code === 0); });
        p.on('error', () => { clearTimeout(t); resolve(false); });
      });
    }
    return true;
  }

  // ---------- termination ----------
  private async killPod(rt: PodRuntime, graceSeconds: number): Promise<void> {
    rt.terminating = true;
    const running = rt.containers.filter((c) => c.running && c.pid);
    for (const c of rt.containers) { clearTimers(c); if (c.restartTimer) clearTimeout(c.restartTimer); }
    if (running.length === 0) return;
    const exited = Promise.all(running.map((c) => new Promise<void>((resolve) => {
      if (!c.running || !c.proc) return resolve();
      c.proc.once('exit', () => resolve());
    })));
    this.thaw(rt);
    for (const c of running) killGroup(c.pid!, graceSeconds > 0 ? 'SIGTERM' : 'SIGKILL');
    if (graceSeconds > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), graceSeconds * 1000); });
      const r = await Promise.race([exited.then(() => 'done' as const), timedOut]);
      if (timer) clearTimeout(timer);
      if (r === 'timeout') for (const c of running) if (c.running && c.pid) killGroup(c.pid, 'SIGKILL');
    }
    await exited;
    // Children of the container's process group (e.g. a shell's subprocesses) go with it.
    for (const c of running) if (c.pid) killGroup(c.pid, 'SIGKILL');
  }

  // ---------- status ----------
  private syncStatus(rt: PodRuntime): void {
    const pod = this.store.tryGet(this.podT, rt.ns, rt.name);
    if (!pod || pod.metadata.uid !== rt.uid) return;
    const policy = pod.spec.restartPolicy ?? 'Always';
    const cs = rt.containers.map((c) => {
      const state: Record<string, unknown> = c.running
        ? { running: { startedAt: c.startedAt } }
        : c.waitingReason ? { waiting: { reason: c.waitingReason, ...(c.lastExit ? { message: `back-off restarting failed container ${c.name} in pod ${rt.name}` } : {}) } }
        : c.lastExit ? { terminated: { exitCode: c.lastExit.exitCode, reason: c.lastExit.reason, startedAt: c.lastExit.startedAt, finishedAt: c.lastExit.finishedAt, ...(c.lastExit.signal ? { signal: signalNumber(c.lastExit.signal) } : {}) } }
        : { waiting: { reason: rt.initDone ? 'ContainerCreating' : 'PodInitializing' } };
      return {
        name: c.name, image: c.spec.image, imageID: `standin://${c.spec.image}`, containerID: c.pid ? `standin://${c.pid}` : '',
        ready: c.running && c.ready, restartCount: c.restartCount, started: c.running, state,
        ...(c.lastExit && (c.running || c.waitingReason) ? { lastState: { terminated: { exitCode: c.lastExit.exitCode, reason: c.lastExit.reason, finishedAt: c.lastExit.finishedAt } } } : {}),
      };
    });
    const allTerminated = rt.initDone && rt.containers.length > 0 && rt.containers.every((c) => !c.running && c.lastExit && !c.waitingReason && !c.restartTimer);
    let phase = rt.phase;
    if (rt.phase !== 'Failed') {
      if (allTerminated && policy !== 'Always') phase = rt.containers.every((c) => c.lastExit!.exitCode === 0) ? 'Succeeded' : 'Failed';
      else if (rt.containers.some((c) => c.running || c.lastExit)) phase = 'Running';
      else phase = 'Pending';
    }
    rt.phase = phase;
    const containersReady = rt.containers.every((c) => c.running && c.ready);
    const st = clone(pod.status ?? {});
    st.phase = phase;
    delete st.reason; delete st.message;
    st.podIP = rt.ip; st.podIPs = [{ ip: rt.ip }]; st.hostIP = '127.0.0.1'; st.hostIPs = [{ ip: '127.0.0.1' }];
    st.startTime = rt.startedAt;
    st.containerStatuses = cs;
    st.conditions = setCond(st.conditions, 'PodScheduled', 'True');
    st.conditions = setCond(st.conditions, 'Initialized', rt.initDone ? 'True' : 'False', rt.initDone ? undefined : 'ContainersNotInitialized');
    const finished = phase === 'Succeeded' || phase === 'Failed';
    st.conditions = setCond(st.conditions, 'ContainersReady', containersReady ? 'True' : 'False', containersReady ? undefined : finished ? 'PodCompleted' : 'ContainersNotReady');
    st.conditions = setCond(st.conditions, 'Ready', containersReady ? 'True' : 'False', containersReady ? undefined : finished ? 'PodCompleted' : 'ContainersNotReady');
    if (finished) {
      for (const c of rt.containers) clearTimers(c);
    }
    if (!deepEqual(st, pod.status)) ignoreRace(() => this.store.update(this.podT, rt.ns, rt.name, { ...pod, status: st }, { subresource: 'status' }));
  }
}

function nowTs(): string { return new Date().toISOString().replace(/\.\d+Z$/, 'Z'); }

function setCond(conds: any[] | undefined, type: string, status: string, reason?: string): any[] {
  const list = clone(conds ?? []);
  const i = list.findIndex((c: any) => c.type === type);
  const prev = i >= 0 ? list[i] : undefined;
  const next = { type, status, lastProbeTime: null, lastTransitionTime: prev && prev.status === status ? prev.lastTransitionTime : nowTs(), ...(reason ? { reason } : {}) };
  if (i >= 0) list[i] = next; else list.push(next);
  return list;
}

function clearTimers(c: ContainerRuntime): void {
  for (const t of c.probeTimers) clearTimeout(t);
  c.probeTimers = [];
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try { process.kill(-pid, signal); } catch { try { process.kill(pid, signal); } catch { /* already gone */ } }
}

function signalNumber(s: string): number { return s === 'SIGKILL' ? 9 : s === 'SIGTERM' ? 15 : 0; }

function delay(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

function fieldRef(pod: KObject, rt: PodRuntime, p: string): string | undefined {
  const m = p.match(/^metadata\.(labels|annotations)\['(.+)'\]$/);
  if (m) return (pod.metadata[m[1] as 'labels' | 'annotations'] ?? {})[m[2]];
  switch (p) {
    case 'metadata.name': return pod.metadata.name;
    case 'metadata.namespace': return pod.metadata.namespace;
    case 'metadata.uid': return pod.metadata.uid;
    case 'spec.nodeName': return pod.spec.nodeName;
    case 'spec.serviceAccountName': return pod.spec.serviceAccountName ?? 'default';
    case 'status.podIP': return rt.ip;
    case 'status.hostIP': return '127.0.0.1';
    case 'status.podIPs': return rt.ip;
  }
  return undefined;
}

/** Kubernetes `$(VAR)` expansion in command, args and env values; `$$` escapes. */
export function expandVars(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => (m === '$$' ? '$' : name !== undefined && name in env ? env[name] : m));
}

/**
 * The container's view of paths: a value equal to a mountPath, under it, or after `=` (as in `--data=/data`) is
 * rewritten to the real host directory. This is how images learn where their volumes are.
 */
export function rewriteMounts(value: string, mounts: Record<string, string>): string {
  const keys = Object.keys(mounts).sort((a, b) => b.length - a.length);
  const rewriteOne = (v: string): string => {
    for (const k of keys) {
      if (v === k) return mounts[k];
      if (v.startsWith(k.endsWith('/') ? k : k + '/')) return path.join(mounts[k], v.slice(k.length));
    }
    return v;
  };
  const eq = value.indexOf('=');
  if (eq > 0 && value.startsWith('-')) return value.slice(0, eq + 1) + rewriteOne(value.slice(eq + 1));
  return rewriteOne(value);
}
