/**
 * Wires informers → work queue → reconciler, gated by leader election. Informers run on every replica (warm caches
 * for a fast takeover); only the leader reconciles. Owned objects map to their LanceCluster's key through the
 * controller owner reference, pods and PVCs (owned by the StatefulSet) through the instance label.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../../../broker/src/common/log.ts';
import { silentLogger } from '../../../broker/src/common/log.ts';
import { LANCECLUSTER_KIND } from '../api/lancecluster.ts';
import { APP_NAME, LABEL_INSTANCE, LABEL_NAME } from '../resources/names.ts';
import { EventRecorder } from '../kube/apply.ts';
import { Informer } from '../kube/informer.ts';
import { KINDS } from '../kube/kinds.ts';
import { LeaderElector } from '../kube/leader.ts';
import { KubeRest, type Kind, type KubeObject } from '../kube/rest.ts';
import { WorkQueue } from '../kube/workqueue.ts';
import { adminClientFactory, type BrokerAdminFactory } from './broker-admin.ts';
import { LanceClusterReconciler } from './lancecluster.ts';
import { OperatorMetrics } from './metrics.ts';
import { RestoreController } from './restore-controller.ts';

export interface ManagerOptions {
  kubeConfig: KubeConfig;
  /** Namespaces to watch; empty = all. */
  namespaces?: string[];
  leaderElection?: { namespace: string; name: string; identity: string; leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number };
  workers?: number;
  resyncMs?: number;
  stallFactor?: number;
  bindAddress?: 'any' | 'podIP';
  admin?: BrokerAdminFactory;
  busyRequeueMs?: number;
  idleRequeueMs?: number;
  /** A broker pod whose node is unreachable this long is replaced (LanceClusterReconciler option). */
  nodeLostGraceMs?: number;
  log?: Logger;
  metrics?: OperatorMetrics;
}

/** The LanceCluster key (ns/name) an object belongs to, if any. */
export function clusterKeyOf(kind: string, o: KubeObject): string | undefined {
  const ns = o.metadata?.namespace;
  if (!ns) return undefined;
  if (kind === LANCECLUSTER_KIND) return `${ns}/${o.metadata?.name}`;
  const owner = o.metadata?.ownerReferences?.find((r) => r.controller && r.kind === LANCECLUSTER_KIND);
  if (owner) return `${ns}/${owner.name}`;
  const labels = o.metadata?.labels;
  if (labels?.[LABEL_NAME] === APP_NAME && labels[LABEL_INSTANCE]) return `${ns}/${labels[LABEL_INSTANCE]}`;
  return undefined;
}

export class Manager {
  readonly metrics: OperatorMetrics;
  readonly rest: KubeRest;
  private readonly informers: Informer<KubeObject>[] = [];
  private readonly queue: WorkQueue;
  private readonly elector: LeaderElector | undefined;
  private readonly reconciler: LanceClusterReconciler;
  /** LanceRestores: own informers and queue (restore-controller.ts), same leadership gate. */
  readonly restores: RestoreController;
  private readonly log: Logger;
  private leading: boolean;
  private running: Promise<void> | undefined;

  constructor(private readonly o: ManagerOptions) {
    this.log = o.log ?? silentLogger;
    this.metrics = o.metrics ?? new OperatorMetrics();
    this.rest = new KubeRest(o.kubeConfig);
    this.queue = new WorkQueue({ baseDelayMs: 200, maxDelayMs: 60_000 });
    this.reconciler = new LanceClusterReconciler({
      rest: this.rest, events: new EventRecorder(this.rest, 'lance-operator', this.log), admin: o.admin ?? adminClientFactory, metrics: this.metrics, log: this.log,
      ...(o.bindAddress ? { bindAddress: o.bindAddress } : {}),
      ...(o.busyRequeueMs ? { busyRequeueMs: o.busyRequeueMs } : {}),
      ...(o.idleRequeueMs ? { idleRequeueMs: o.idleRequeueMs } : {}),
      ...(o.nodeLostGraceMs !== undefined ? { nodeLostGraceMs: o.nodeLostGraceMs } : {}),
    });
    this.restores = new RestoreController({
      rest: this.rest, events: new EventRecorder(this.rest, 'lance-operator', this.log), log: this.log, isLeader: () => this.leading,
      ...(o.namespaces ? { namespaces: o.namespaces } : {}), ...(o.resyncMs ? { resyncMs: o.resyncMs } : {}), ...(o.stallFactor ? { stallFactor: o.stallFactor } : {}),
      ...(o.busyRequeueMs ? { busyRequeueMs: o.busyRequeueMs } : {}), ...(o.idleRequeueMs ? { idleRequeueMs: o.idleRequeueMs } : {}),
      onStall: (k) => this.metrics.watchStalls.inc({ kind: k }), onRelist: (k) => this.metrics.watchRelists.inc({ kind: k }),
    });
    this.leading = !o.leaderElection;
    if (o.leaderElection) {
      this.elector = new LeaderElector(this.rest, {
        ...o.leaderElection, log: this.log,
        onStartedLeading: () => {
          this.leading = true;
          this.metrics.isLeader.set(1);
          this.enqueueAll();
          this.restores.enqueueAll();
        },
        onStoppedLeading: () => {
          this.leading = false;
          this.metrics.isLeader.set(0);
        },
      });
    } else {
      this.metrics.isLeader.set(1);
    }
  }

  isLeader(): boolean {
    return this.leading;
  }

  ready(): boolean {
    return this.informers.every((i) => i.hasSynced()) && this.restores.ready();
  }

  async start(): Promise<void> {
    const kinds: Kind[] = [KINDS.LanceCluster, KINDS.StatefulSet, KINDS.Pod, KINDS.PersistentVolumeClaim, KINDS.Service, KINDS.ConfigMap, KINDS.PodDisruptionBudget];
    const namespaces = this.o.namespaces?.length ? this.o.namespaces : [undefined];
    for (const ns of namespaces) {
      for (const kind of kinds) {
        // Only the operator's own objects: the broker label, except the LanceClusters themselves.
        const labelSelector = kind === KINDS.LanceCluster ? undefined : `${LABEL_NAME}=${APP_NAME}`;
        const inf = new Informer<KubeObject>(this.rest, kind, {
          ...(ns ? { namespace: ns } : {}), ...(labelSelector ? { labelSelector } : {}),
          resyncMs: this.o.resyncMs ?? 30_000, stallFactor: this.o.stallFactor ?? 3, log: this.log,
          onStall: (k) => this.metrics.watchStalls.inc({ kind: k }),
          onRelist: (k) => this.metrics.watchRelists.inc({ kind: k }),
        });
        inf.on((event, obj) => {
          // Resync only re-queues the clusters themselves (owned objects would only duplicate those keys).
          if (event === 'resync' && kind !== KINDS.LanceCluster) return;
          const key = clusterKeyOf(kind.kind, obj);
          if (key && this.leading) this.queue.add(key);
        });
        this.informers.push(inf);
        inf.start();
      }
    }
    this.restores.start();
    await Promise.all(this.informers.map((i) => i.waitForSync()));
    this.elector?.start();
    this.enqueueAll();
    this.running = this.queue.run(this.o.workers ?? 2, async (key) => {
      if (!this.leading) return 'ok'; // lost the lease: stop reconciling (the new leader re-queues everything)
      return this.reconciler.reconcile(key);
    }, (key, err) => this.log.warn({ key, err }, 'reconcile error; retrying with backoff'));
  }

  private enqueueAll(): void {
    if (!this.leading) return;
    for (const inf of this.informers) {
      if (inf.kind !== KINDS.LanceCluster) continue;
      for (const o of inf.list()) {
        const key = clusterKeyOf(LANCECLUSTER_KIND, o);
        if (key) this.queue.add(key);
      }
    }
  }

  async stop(): Promise<void> {
    this.queue.shutdown();
    await this.elector?.stop();
    this.leading = false;
    await Promise.all(this.informers.map((i) => i.stop()));
    await this.restores.stop();
    await this.running;
  }
}
