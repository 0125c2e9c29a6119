/**
 * LanceRestore controller: observe (the restore, its target LanceCluster, the target's PVCs, the restore Jobs and
 * their pods' output, the restored brokers' topics over the admin API) → planRestore (pure, restore-plan.ts) →
 * carry out that one step → write status → Event. Nothing is kept in memory between reconciles: Jobs are found by
 * label + owner uid, PVCs by label + uid annotation, the target by its `lance.dev/restored-by` annotation, so a
 * restarted operator adopts what an earlier one started.
 *
 * `RestoreController` is the shell the Manager starts: its own informers (LanceRestores, restore Jobs), work queue
 * and workers, reconciling only while `isLeader()`.
 */
import type { V1Job, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { Logger } from '../../../broker/src/common/log.ts';
import { silentLogger } from '../../../broker/src/common/log.ts';
import { AdminClient } from '../../../broker/src/admin/client.ts';
import { GROUP, SpecError, VERSION } from '../api/common.ts';
import { safeParseLanceCluster, type LanceCluster } from '../api/lancecluster.ts';
import { LANCERESTORE_KIND, LANCERESTORE_PLURAL, safeParseLanceRestore, type LanceRestore, type LanceRestoreStatus } from '../api/lancerestore.ts';
import { LABEL_RESTORE, names, selectorLabels, selectorString } from '../resources/names.ts';
import { ANNOTATION_RESTORED_BY, ANNOTATION_RESTORE_UID, resolveRestoreSource, restoreResources, restoreTargetCluster, type ResolvedSource } from '../resources/restore-job.ts';
import { writeStatus, type EventRecorder, type EventType } from '../kube/apply.ts';
import { Informer } from '../kube/informer.ts';
import { KINDS } from '../kube/kinds.ts';
import { isConflict, isNotFound, resourcePath, type Kind, type KubeObject, type KubeRest } from '../kube/rest.ts';
import { WorkQueue, type WorkResult } from '../kube/workqueue.ts';
import { ANNOTATION_RECONCILE } from './decisions.ts';
import {
  failureDetail, isTerminal, nextStatus, parseRestoreSummary, planRestore, stepMessage,
  type ObservedJob, type ObservedPvc, type ObservedTarget, type RestoreObservation, type RestorePlan,
} from './restore-plan.ts';

export const RESTORE_KINDS = {
  LanceRestore: { group: GROUP, version: VERSION, plural: LANCERESTORE_PLURAL, kind: LANCERESTORE_KIND, namespaced: true },
  Job: { group: 'batch', version: 'v1', plural: 'jobs', kind: 'Job', namespaced: true },
} as const satisfies Record<string, Kind>;

const LABEL_ORDINAL = 'lance.dev/ordinal';

/** Topics (name, bytes on disk) a restored broker reports through its admin API; internal `__*` topics excluded. */
export type TopicsReader = (baseUrl: string) => Promise<{ name: string; bytes?: number }[]>;

export const adminTopicsReader: TopicsReader = async (baseUrl) => {
  const admin = new AdminClient(baseUrl, { timeoutMs: 5_000 });
  const topics = (await admin.listTopics()).filter((t) => !t.name.startsWith('__'));
  return Promise.all(topics.map(async (t) => {
    try {
      const d = await admin.getTopic(t.name);
      return { name: t.name, bytes: d.partitionStates.reduce((a, p) => a + p.sizeBytes, 0) };
    } catch {
      return { name: t.name };
    }
  }));
};

interface RestoreObject extends KubeObject { spec?: unknown; status?: LanceRestoreStatus }
interface ClusterObject extends KubeObject { spec?: unknown; status?: { conditions?: { type: string; status: string }[] } }
interface JobObject extends KubeObject { status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] } }
interface PodObject extends KubeObject {
  status?: {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { state?: { terminated?: { message?: string; exitCode?: number; reason?: string } } }[];
  };
}

export interface RestoreReconcilerOptions {
  rest: KubeRest;
  events: EventRecorder;
  log?: Logger;
  topics?: TopicsReader;
  /** Requeue while a restore is in progress / while it is refused (waiting for the user). */
  busyRequeueMs?: number;
  idleRequeueMs?: number;
  /** Pod retries of a restore Job before it fails. */
  backoffLimit?: number;
  now?: () => Date;
}

export class LanceRestoreReconciler {
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly topics: TopicsReader;

  constructor(private readonly o: RestoreReconcilerOptions) {
    this.log = o.log ?? silentLogger;
    this.now = o.now ?? (() => new Date());
    this.topics = o.topics ?? adminTopicsReader;
  }

  async reconcile(key: string): Promise<WorkResult> {
    const [namespace, name] = key.split('/') as [string, string];
    const log = this.log.child({ namespace, restore: name });
    try {
      return await this.reconcileOnce(namespace, name, log);
    } catch (e) {
      if (isConflict(e)) log.debug({ err: e }, 'conflict; requeue');
      else log.warn({ err: e }, 'restore reconcile failed');
      throw e;
    }
  }

  private async reconcileOnce(namespace: string, name: string, log: Logger): Promise<WorkResult> {
    const { rest } = this.o;
    let raw: RestoreObject;
    try {
      raw = await rest.get<RestoreObject>(RESTORE_KINDS.LanceRestore, namespace, name);
    } catch (e) {
      if (isNotFound(e)) return 'ok'; // deleted: its Jobs go by garbage collection
      throw e;
    }
    if (raw.metadata?.deletionTimestamp) return 'ok';
    // A finished restore is a record: nothing to observe or change (its spec is immutable).
    if (isTerminal(raw.status?.phase)) return 'ok';
    const generation = raw.metadata?.generation ?? 0;
    const uid = raw.metadata?.uid ?? '';
    const involved = { kind: LANCERESTORE_KIND, apiVersion: raw.apiVersion ?? `${GROUP}/${VERSION}`, name, namespace, uid };
    const event = (type: EventType, reason: string, message: string): Promise<void> => {
      log.info({ reason, type }, message);
      return this.o.events.record({ involved, type, reason, message });
    };

    const parsed = safeParseLanceRestore(raw);
    if (!parsed.ok) {
      const obs = this.emptyObservation(name, generation, raw.status, parsed.error.message);
      return this.finish(raw, obs, planRestore(obs), event);
    }
    const restore: LanceRestore = parsed.value;
    const spec = restore.spec;
    const targetName = spec.target.clusterName;
    const mode = spec.target.spec ? 'new' : 'existing';

    // Source: the restore's own, or the referenced cluster's object store.
    let source: ResolvedSource | undefined;
    let sourceError: string | undefined;
    try {
      let referenced: LanceCluster | undefined;
      if (spec.clusterRef) {
        const ref = await this.getOrUndefined<ClusterObject>(KINDS.LanceCluster, namespace, spec.clusterRef.name);
        const p = ref ? safeParseLanceCluster(ref) : undefined;
        referenced = p?.ok ? p.value : undefined;
      }
      source = resolveRestoreSource(restore, referenced);
    } catch (e) {
      if (!(e instanceof SpecError)) throw e;
      sourceError = e.message;
    }

    // Target cluster: observed as it is; the cluster the resources are rendered for is the new spec or the existing one.
    const targetRaw = await this.getOrUndefined<ClusterObject>(KINDS.LanceCluster, namespace, targetName);
    let targetCluster: LanceCluster | undefined = restoreTargetCluster(restore);
    if (!targetCluster && targetRaw) {
      const p = safeParseLanceCluster(targetRaw);
      if (p.ok) targetCluster = p.value;
    }
    const replicas = targetCluster?.spec.replicas ?? 0;
    const target = await this.observeTarget(namespace, name, targetName, targetRaw, targetCluster, replicas);

    // PVCs of the target's brokers.
    const pvcs: ObservedPvc[] = [];
    for (let o = 0; o < replicas; o++) {
      const p = await this.getOrUndefined<KubeObject>(KINDS.PersistentVolumeClaim, namespace, names.pvc(targetName, o));
      if (p) pvcs.push({ name: p.metadata!.name!, ordinal: o, ownedByThis: p.metadata?.annotations?.[ANNOTATION_RESTORE_UID] === uid && uid !== '', deleting: !!p.metadata?.deletionTimestamp });
    }

    const jobs = await this.observeJobs(namespace, name, uid);
    const jobNames = Array.from({ length: replicas }, (_, o) => names.restoreJob(name, o));
    const obs: RestoreObservation = {
      name, generation, status: raw.status, mode, targetName, replicas, target, pvcs, jobs, jobNames,
      ...(sourceError ? { sourceError } : {}),
      ...(spec.topics?.length ? { requestedTopics: spec.topics } : {}),
    };
    const plan = planRestore(obs);
    log.debug({ phase: plan.phase, step: plan.step.type }, 'restore plan');

    // Carry out the step. Creates tolerate AlreadyExists (an earlier attempt got that far).
    const s = plan.step;
    if (s.type === 'stop-target') {
      await rest.mergePatch(KINDS.LanceCluster, namespace, targetName, { metadata: { annotations: { [ANNOTATION_RESTORED_BY]: name, [ANNOTATION_RECONCILE]: 'disabled' } } });
      await this.deleteIfExists(KINDS.StatefulSet, namespace, names.statefulSet(targetName));
      await event('Normal', 'StoppingTarget', stepMessage(obs, s));
    } else if (s.type === 'delete-pvcs') {
      for (const n of s.names) await this.deleteIfExists(KINDS.PersistentVolumeClaim, namespace, n);
      await event('Normal', 'ReplacingPvcs', stepMessage(obs, s));
    } else if (s.type === 'create-pvcs' || s.type === 'create-jobs') {
      const res = restoreResources({ restore, source: source!, target: targetCluster!, ...(this.o.backoffLimit !== undefined ? { backoffLimit: this.o.backoffLimit } : {}) });
      if (s.type === 'create-pvcs') {
        for (const o of s.ordinals) await this.createIfMissing(KINDS.PersistentVolumeClaim, res.pvcs[o]! as V1PersistentVolumeClaim & KubeObject);
        await event('Normal', 'CreatedPvcs', stepMessage(obs, s));
      } else {
        for (const o of s.ordinals) await this.createIfMissing(RESTORE_KINDS.Job, res.jobs[o]! as V1Job & KubeObject);
        await event('Normal', 'CreatedJobs', stepMessage(obs, s));
      }
    } else if (s.type === 'start-target') {
      if (mode === 'new') await this.createIfMissing(KINDS.LanceCluster, restoreTargetCluster(restore)! as unknown as KubeObject);
      else await rest.mergePatch(KINDS.LanceCluster, namespace, targetName, { metadata: { annotations: { [ANNOTATION_RECONCILE]: null } } });
      await event('Normal', 'StartingTarget', stepMessage(obs, s));
    } else if (s.type === 'fail' && s.reason === 'JobFailed' && mode === 'new') {
      // The PVCs hold a partial restore only: remove them so a new attempt starts from empty volumes.
      for (const p of pvcs.filter((x) => x.ownedByThis)) await this.deleteIfExists(KINDS.PersistentVolumeClaim, namespace, p.name);
    }
    return this.finish(raw, obs, plan, event);
  }

  /** Status write (only when changed), phase/decision Events, requeue. */
  private async finish(raw: RestoreObject, obs: RestoreObservation, plan: RestorePlan, event: (t: EventType, r: string, m: string) => Promise<void>): Promise<WorkResult> {
    const s = plan.step;
    if (s.type === 'none') return 'ok';
    const status = nextStatus(obs, plan, this.now());
    if (s.type === 'refuse') await event('Warning', s.reason, s.message);
    if (s.type === 'fail') await event('Warning', 'RestoreFailed', s.message);
    if (s.type === 'succeed') await event('Normal', 'RestoreSucceeded', s.message);
    if (raw.status?.phase !== status.phase) {
      await event(status.phase === 'Failed' ? 'Warning' : 'Normal', `Phase${status.phase}`, `phase ${raw.status?.phase ?? '(none)'} → ${status.phase}`);
    }
    if (canonical(raw.status ?? {}) !== canonical(status)) await writeStatus(this.o.rest, RESTORE_KINDS.LanceRestore, raw, status);
    if (isTerminal(status.phase)) return 'ok';
    return { afterMs: s.type === 'refuse' ? this.o.idleRequeueMs ?? 10_000 : this.o.busyRequeueMs ?? 2_000 };
  }

  private emptyObservation(name: string, generation: number, status: LanceRestoreStatus | undefined, specError: string): RestoreObservation {
    return {
      name, generation, status, specError, mode: 'new', targetName: '', replicas: 0, pvcs: [], jobs: [], jobNames: [],
      target: { exists: false, restoredByThis: false, paused: false, statefulSetExists: false, ready: false, pods: 0 },
    };
  }

  private async observeTarget(namespace: string, restoreName: string, targetName: string, raw: ClusterObject | undefined, cluster: LanceCluster | undefined, replicas: number): Promise<ObservedTarget> {
    const sts = await this.getOrUndefined<KubeObject>(KINDS.StatefulSet, namespace, names.statefulSet(targetName));
    const pods = (await this.o.rest.list<PodObject>(KINDS.Pod, namespace, { labelSelector: selectorString(selectorLabels(targetName)) })).items;
    const readyPods = pods.filter((p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    const condReady = raw?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    // A paused cluster's status is stale: readiness is judged on its pods as well.
    const ready = !!raw && condReady && replicas > 0 && readyPods.length >= replicas;
    let topics: ObservedTarget['topics'];
    const pod = readyPods.find((p) => p.status?.podIP);
    if (raw && cluster && pod) {
      try {
        topics = await this.topics(`http://${pod.status!.podIP}:${cluster.spec.listeners.adminPort}`);
      } catch (e) {
        this.log.debug({ err: e, pod: pod.metadata?.name }, 'target broker did not list topics');
      }
    }
    return {
      exists: !!raw,
      restoredByThis: raw?.metadata?.annotations?.[ANNOTATION_RESTORED_BY] === restoreName,
      paused: raw?.metadata?.annotations?.[ANNOTATION_RECONCILE] === 'disabled',
      statefulSetExists: !!sts,
      ready,
      pods: pods.length,
      ...(topics ? { topics } : {}),
    };
  }

  private async observeJobs(namespace: string, restoreName: string, uid: string): Promise<ObservedJob[]> {
    const { rest } = this.o;
    const selector = `${LABEL_RESTORE}=${restoreName}`;
    const jobs = (await rest.list<JobObject>(RESTORE_KINDS.Job, namespace, { labelSelector: selector })).items
      .filter((j) => j.metadata?.ownerReferences?.some((r) => r.uid === uid) && !j.metadata?.deletionTimestamp);
    if (jobs.length === 0) return [];
    const pods = (await rest.list<PodObject>(KINDS.Pod, namespace, { labelSelector: selector })).items;
    const out: ObservedJob[] = [];
    for (const j of jobs) {
      const ordinal = Number(j.metadata?.labels?.[LABEL_ORDINAL] ?? NaN);
      if (!Number.isInteger(ordinal) || ordinal < 0) continue;
      const conds = j.status?.conditions ?? [];
      const failed = conds.find((c) => c.type === 'Failed' && c.status === 'True');
      const complete = conds.some((c) => c.type === 'Complete' && c.status === 'True');
      const mine = pods.filter((p) => p.metadata?.ownerReferences?.some((r) => r.uid === j.metadata?.uid))
        .sort((a, b) => String(a.metadata?.creationTimestamp ?? '').localeCompare(String(b.metadata?.creationTimestamp ?? '')));
      const job: ObservedJob = { name: j.metadata!.name!, ordinal, state: failed ? 'failed' : complete ? 'succeeded' : 'active' };
      if (failed) {
        if (failed.reason) job.reason = failed.reason;
        if (failed.message) job.message = failed.message;
        const pod = mine.filter((p) => p.status?.phase === 'Failed').pop();
        const detail = pod ? await this.failedOutput(namespace, pod) : undefined;
        if (detail) job.detail = detail;
      } else if (complete) {
        const pod = mine.filter((p) => p.status?.phase === 'Succeeded').pop();
        const text = pod ? await this.podLog(namespace, pod, 5_000) : undefined;
        const summary = text ? parseRestoreSummary(text) : undefined;
        if (summary) job.summary = summary;
      }
      out.push(job);
    }
    return out;
  }

  /** A failed restore container's own words: its termination message, else the tail of its log. */
  private async failedOutput(namespace: string, pod: PodObject): Promise<string | undefined> {
    const msg = pod.status?.containerStatuses?.[0]?.state?.terminated?.message;
    if (msg && msg.trim()) return failureDetail(msg);
    const log = await this.podLog(namespace, pod);
    return log !== undefined ? failureDetail(log) : undefined;
  }

  private async podLog(namespace: string, pod: PodObject, tailLines = 50): Promise<string | undefined> {
    try {
      return await this.o.rest.getText(`${resourcePath(KINDS.Pod, namespace, pod.metadata!.name!)}/log`, { tailLines }, 10_000);
    } catch (e) {
      this.log.debug({ err: e, pod: pod.metadata?.name }, 'could not read restore pod log');
      return undefined;
    }
  }

  private async getOrUndefined<T extends KubeObject>(kind: Kind, namespace: string, name: string): Promise<T | undefined> {
    try {
      return await this.o.rest.get<T>(kind, namespace, name);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  private async createIfMissing(kind: Kind, obj: KubeObject): Promise<void> {
    try {
      await this.o.rest.create(kind, obj.metadata?.namespace, { apiVersion: kind.group ? `${kind.group}/${kind.version}` : kind.version, kind: kind.kind, ...obj });
    } catch (e) {
      if (!isConflict(e)) throw e; // AlreadyExists: created by an earlier attempt
    }
  }

  private async deleteIfExists(kind: Kind, namespace: string, name: string): Promise<void> {
    try {
      await this.o.rest.delete(kind, namespace, name);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}

function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (x && typeof x === 'object' && !Array.isArray(x)) {
      return Object.fromEntries(Object.entries(x as Record<string, unknown>).filter(([, y]) => y !== undefined).sort(([a], [b]) => a.localeCompare(b)));
    }
    return x;
  });
}

export interface RestoreControllerOptions extends RestoreReconcilerOptions {
  /** Namespaces to watch; empty = all. */
  namespaces?: string[];
  /** Reconcile only while this is true (leader election). */
  isLeader: () => boolean;
  workers?: number;
  resyncMs?: number;
  stallFactor?: number;
  onStall?: (kind: string) => void;
  onRelist?: (kind: string) => void;
}

/** The key (ns/name) of the LanceRestore an object belongs to: the restore itself, or a Job/pod labelled with it. */
export function restoreKeyOf(kind: string, o: KubeObject): string | undefined {
  const ns = o.metadata?.namespace;
  if (!ns) return undefined;
  if (kind === LANCERESTORE_KIND) return `${ns}/${o.metadata?.name}`;
  const owner = o.metadata?.labels?.[LABEL_RESTORE];
  return owner ? `${ns}/${owner}` : undefined;
}

/** Informers (LanceRestores, restore Jobs) → work queue → LanceRestoreReconciler, gated on leadership. */
export class RestoreController {
  readonly reconciler: LanceRestoreReconciler;
  private readonly informers: Informer<KubeObject>[] = [];
  private readonly queue = new WorkQueue({ baseDelayMs: 200, maxDelayMs: 60_000 });
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly log: Logger;

  constructor(private readonly o: RestoreControllerOptions) {
    this.log = o.log ?? silentLogger;
    this.reconciler = new LanceRestoreReconciler(o);
  }

  start(): void {
    const namespaces = this.o.namespaces?.length ? this.o.namespaces : [undefined];
    for (const ns of namespaces) {
      for (const kind of [RESTORE_KINDS.LanceRestore, RESTORE_KINDS.Job] as Kind[]) {
        const inf = new Informer<KubeObject>(this.o.rest, kind, {
          ...(ns ? { namespace: ns } : {}),
          ...(kind === RESTORE_KINDS.Job ? { labelSelector: LABEL_RESTORE } : {}),
          resyncMs: this.o.resyncMs ?? 30_000, stallFactor: this.o.stallFactor ?? 3, log: this.log,
          ...(this.o.onStall ? { onStall: this.o.onStall } : {}),
          ...(this.o.onRelist ? { onRelist: this.o.onRelist } : {}),
        });
        inf.on((event, obj) => {
          if (event === 'resync' && kind !== RESTORE_KINDS.LanceRestore) return;
          const key = restoreKeyOf(kind.kind, obj);
          if (key && this.o.isLeader()) this.queue.add(key);
        });
        this.informers.push(inf);
        inf.start();
      }
    }
    // Not awaited: a cluster without the LanceRestore CRD must not hold up the LanceCluster controller (ready()
    // stays false until the informers synced).
    this.running = Promise.all(this.informers.map((i) => i.waitForSync())).then(() => {
      if (this.stopped) return;
      this.enqueueAll();
      return this.queue.run(this.o.workers ?? 2, async (key) => {
        if (!this.o.isLeader()) return 'ok';
        return this.reconciler.reconcile(key);
      }, (key, err) => this.log.warn({ key, err }, 'restore reconcile error; retrying with backoff'));
    });
  }

  ready(): boolean {
    return this.informers.every((i) => i.hasSynced());
  }

  /** Every known LanceRestore (after gaining leadership). */
  enqueueAll(): void {
    if (!this.o.isLeader()) return;
    for (const inf of this.informers) {
      if (inf.kind !== RESTORE_KINDS.LanceRestore) continue;
      for (const obj of inf.list()) {
        const key = restoreKeyOf(LANCERESTORE_KIND, obj);
        if (key) this.queue.add(key);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.queue.shutdown();
    await Promise.all(this.informers.map((i) => i.stop()));
    // Never synced (no CRD): the workers never started, and the sync wait would never end.
    if (this.ready()) await this.running;
  }
}
