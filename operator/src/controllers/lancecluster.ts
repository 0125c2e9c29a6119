/**
 * LanceCluster reconcile: an ordered guard chain with early returns. Each guard asks a pure function in
 * decisions.ts what to do; this file does the I/O (read the cluster, apply manifests, call brokers, write status,
 * record Events). Progress (rollout order, pending pods) lives in status, never in memory, so a restarted or
 * newly elected operator resumes where the last one stopped.
 */
import type { Logger } from '../../../broker/src/common/log.ts';
import { silentLogger } from '../../../broker/src/common/log.ts';
import { LanceError } from '../../../broker/src/common/errors.ts';
import { safeParseLanceCluster, type LanceCluster, type LanceClusterStatus, readyText } from '../api/lancecluster.ts';
import { bootstrapVoters, configMap } from '../resources/configmap.ts';
import { desiredResources } from '../resources/desired.ts';
import { ANNOTATION_CONFIG_HASH, LABEL_FENCED, names, selectorLabels, selectorString, statusSelector } from '../resources/names.ts';
import { BROKER_CONTAINER } from '../resources/statefulset.ts';
import { createOrUpdate, writeStatus, type EventRecorder, type EventType } from '../kube/apply.ts';
import { KINDS } from '../kube/kinds.ts';
import { isConflict, isNotFound, type KubeObject, type KubeRest } from '../kube/rest.ts';
import type { WorkResult } from '../kube/workqueue.ts';
import { isUnsupported, type BrokerAdmin, type BrokerAdminFactory } from './broker-admin.ts';
import {
  detectSplitBrain, detectStale, fencingPlan, withLags, isPaused, leaderOf, members, nextRolloutStep, observePod, parseFencedAnnotation, phaseOf, planRollout,
  replaceStep, scaleStep, statusChanged, volumeLost, withCondition, maxReplicationFactor, type MemberState, ANNOTATION_FENCED, type BrokerView, type PodLike, type PodObservation,
  allocateNodeId, nodeIdOf, nodeIdTable, nodeLost, replacementStep, type NodeIdMap, type ReplacementState,
} from './decisions.ts';

/** Node ids as recorded in status: ordinal → id, the next free id, a replacement in progress. */
interface NodeIds {
  nodeIds: Record<string, number> | undefined;
  nextNodeId: number | undefined;
  replacement: ReplacementState | undefined;
}
import type { OperatorMetrics } from './metrics.ts';

interface ClusterObject extends KubeObject { spec?: unknown; status?: LanceClusterStatus }
interface StatefulSetObject extends KubeObject {
  spec?: { replicas?: number; template?: { metadata?: { annotations?: Record<string, string> } } };
}
type PodObject = KubeObject & PodLike;

export interface ReconcilerOptions {
  rest: KubeRest;
  events: EventRecorder;
  admin: BrokerAdminFactory;
  metrics: OperatorMetrics;
  log?: Logger;
  /** 'podIP' where pods share one network namespace (the test/kube stand-in). */
  bindAddress?: 'any' | 'podIP';
  /** Requeue while something is in progress / when settled (split-brain polling). */
  busyRequeueMs?: number;
  idleRequeueMs?: number;
  /** A broker seen behind the majority's term is fenced only if it still is after this long (an election settles in well under it). */
  staleConfirmMs?: number;
  /** Lag (entries) up to which a broker counts as caught up (rollout steps, unfencing); replication under load is never exactly 0. */
  maxLagEntries?: number;
  /** A pod whose node is unreachable this long is replaced (new id, new volume); default 5 min (Kubernetes' eviction default). */
  nodeLostGraceMs?: number;
  now?: () => Date;
}

export class LanceClusterReconciler {
  private readonly log: Logger;
  private readonly busy: number;
  private readonly idle: number;
  private readonly now: () => Date;
  private readonly staleConfirmMs: number;
  private readonly maxLag: number;
  private readonly nodeLostGraceMs: number;

  constructor(private readonly o: ReconcilerOptions) {
    this.log = o.log ?? silentLogger;
    this.staleConfirmMs = o.staleConfirmMs ?? 1_000;
    this.maxLag = o.maxLagEntries ?? 1_000;
    this.nodeLostGraceMs = o.nodeLostGraceMs ?? 300_000;
    this.busy = o.busyRequeueMs ?? 2_000;
    this.idle = o.idleRequeueMs ?? 10_000;
    this.now = o.now ?? (() => new Date());
  }

  async reconcile(key: string): Promise<WorkResult> {
    const [namespace, name] = key.split('/') as [string, string];
    const log = this.log.child({ namespace, cluster: name });
    const end = this.o.metrics.reconcileDuration.startTimer({ namespace, cluster: name });
    this.o.metrics.reconcileTotal.inc({ namespace, cluster: name });
    try {
      return await this.reconcileOnce(namespace, name, log);
    } catch (e) {
      this.o.metrics.reconcileErrors.inc({ namespace, cluster: name });
      if (isConflict(e)) {
        log.debug({ err: e }, 'conflict; requeue');
      } else {
        log.warn({ err: e }, 'reconcile failed');
      }
      throw e;
    } finally {
      end();
    }
  }

  private async reconcileOnce(namespace: string, name: string, log: Logger): Promise<WorkResult> {
    const { rest } = this.o;
    // Guard 0: the object (fresh from the apiserver, so the status write's resourceVersion guard is meaningful).
    let raw: ClusterObject;
    try {
      raw = await rest.get<ClusterObject>(KINDS.LanceCluster, namespace, name);
    } catch (e) {
      if (isNotFound(e)) {
        this.o.metrics.forget(namespace, name);
        return 'ok'; // deleted: owned objects go by garbage collection
      }
      throw e;
    }
    if (raw.metadata?.deletionTimestamp) return 'ok';
    const generation = raw.metadata?.generation ?? 0;
    const involved = { kind: 'LanceCluster', apiVersion: raw.apiVersion ?? 'lance.dev/v1alpha1', name, namespace, uid: raw.metadata?.uid ?? '' };
    const event = (type: EventType, reason: string, message: string): Promise<void> => {
      log.info({ reason, type }, message);
      return this.o.events.record({ involved, type, reason, message });
    };
    const old = raw.status;
    const commit = async (status: LanceClusterStatus): Promise<void> => {
      this.o.metrics.setPhase(namespace, name, status.phase);
      if (!statusChanged(old, status)) return;
      raw = await writeStatus(rest, KINDS.LanceCluster, raw, status);
    };

    // Guard 1: paused.
    if (isPaused(raw.metadata?.annotations)) {
      await event('Normal', 'ReconcilePaused', 'reconciliation disabled by annotation lance.dev/reconcile=disabled');
      return 'ok';
    }

    // Guard 2: valid spec (the CRD's validation should have refused it; an older CRD or a direct write might not).
    const parsed = safeParseLanceCluster(raw);
    if (!parsed.ok) {
      const message = parsed.error.message;
      await event('Warning', 'InvalidSpec', message);
      await commit({ ...old, phase: 'Failed', observedGeneration: generation, conditions: withCondition(old?.conditions, 'Degraded', 'True', 'InvalidSpec', message, generation, this.now()) });
      return 'ok'; // nothing to retry until the object changes
    }
    const cluster: LanceCluster = parsed.value;
    const spec = cluster.spec;
    let conditions = old?.conditions;
    let progressingSet = false;
    const cond = (type: Parameters<typeof withCondition>[1], status: 'True' | 'False', reason: string, message: string): void => {
      if (type === 'Progressing') progressingSet = true;
      conditions = withCondition(conditions, type, status, reason, message, generation, this.now());
    };
    cond('Degraded', 'False', 'SpecValid', 'spec is valid');

    // Observe.
    const sts = await this.getOrUndefined<StatefulSetObject>(KINDS.StatefulSet, namespace, names.statefulSet(name));
    const podList = await rest.list<PodObject>(KINDS.Pod, namespace, { labelSelector: selectorString(selectorLabels(name)) });
    const pods = podList.items.map((p) => observePod(p, BROKER_CONTAINER)).filter((p) => p.ordinal >= 0);
    const pvcList = await rest.list<KubeObject>(KINDS.PersistentVolumeClaim, namespace);
    const claims = new Map(pvcList.items.map((p) => [p.metadata?.name, { deletionTimestamp: isoTime(p.metadata?.deletionTimestamp) }]));
    let views = await this.brokerViews(cluster, pods);
    const leader = leaderOf(views)?.pod;
    const anyAdmin = this.adminFor(cluster, pods.find((p) => p.podIP) ?? pods[0]);

    // Node ids (status.nodeIds/nextNodeId): a replaced or added broker gets an id never used before. Every new id
    // is written to status (resourceVersion-guarded) before the pod that uses it can exist.
    let ids: NodeIds = { nodeIds: old?.nodeIds, nextNodeId: old?.nextNodeId, replacement: old?.replacement };
    const persistIds = async (next: NodeIds): Promise<void> => {
      const { nodeIds: _n, nextNodeId: _x, replacement: _r, ...rest0 } = raw.status ?? {};
      raw = await writeStatus(rest, KINDS.LanceCluster, raw, { ...rest0, ...(next.nodeIds ? { nodeIds: next.nodeIds } : {}), ...(next.nextNodeId !== undefined ? { nextNodeId: next.nextNodeId } : {}), ...(next.replacement ? { replacement: next.replacement } : {}) });
      ids = next;
    };
    // The founders are recorded once (status.bootstrapVoters): brokers added later join instead of bootstrapping.
    const founders = old?.bootstrapVoters ?? bootstrapVoters(cluster);

    // Guard 3: scaling, one member at a time through the admin API (the StatefulSet's replicas is the current step).
    const current = sts?.spec?.replicas ?? spec.replicas;
    let stsReplicas = current;
    let scaling = false;
    // Membership calls go to the metadata leader (any broker forwards them; the leader answers first-hand).
    const leaderAdmin = this.adminFor(cluster, pods.find((p) => p.name === leader));
    const membershipSupported = (leaderAdmin ?? anyAdmin)?.supports.membership ?? false;
    let membership: MemberState[] | undefined;
    // Pods to replace: the annotation, or a lost volume (the claim deleted under it).
    const pvcMissing = pods.filter((p) => volumeLost(p, claims.get(names.pvc(name, p.ordinal)))).map((p) => p.name);
    const lostNode = pods.filter((p) => nodeLost(p, this.now(), this.nodeLostGraceMs)).map((p) => p.name);
    if ((current !== spec.replicas || ids.replacement || pods.some((p) => p.replaceRequested) || pvcMissing.length > 0 || lostNode.length > 0) && leaderAdmin && membershipSupported && current > 1) {
      membership = await leaderAdmin.listMembers().catch((e: unknown) => { log.info({ err: e }, 'members list failed'); return undefined; });
    }
    const known = membership?.map((m) => m.nodeId);
    // An id already allocated for the next ordinal (a grow step interrupted before the StatefulSet grew).
    const pendingId = current < spec.replicas ? ids.nodeIds?.[String(current)] : undefined;
    const growId = pendingId ?? (known ? allocateNodeId({ nextNodeId: ids.nextNodeId, nodeIds: ids.nodeIds, founders, ordinalsInUse: current, known }).nodeId : undefined);
    const maxRf = maxReplicationFactor(views) ?? (anyAdmin?.supports.replicationFactor ? await anyAdmin.maxReplicationFactor().catch(() => undefined) : undefined);
    const scale = current === 1 && spec.replicas !== 1
      ? { type: 'refuse' as const, reason: `scaling ${current} → ${spec.replicas}: a single broker runs standalone and cannot be grown into a Raft cluster in place (restore into a new cluster)` }
      : ids.replacement && current !== spec.replicas
        ? { type: 'wait' as const, reason: `waiting for the replacement of ${ids.replacement.pod} to finish` }
        : scaleStep({
          current, desired: spec.replicas, readyPods: pods.filter((p) => p.ready).length, maxReplicationFactor: maxRf, membershipSupported, membership,
          nodeIdOf: (o) => (o === current && growId !== undefined ? growId : nodeIdOf(ids.nodeIds, o)), pendingNodeId: pendingId,
        });
    if (scale.type === 'refuse') {
      cond('Progressing', 'False', 'ScaleRefused', scale.reason);
      await event('Warning', 'ScaleRefused', scale.reason);
    } else if (scale.type === 'wait') {
      scaling = true;
      cond('Progressing', 'True', 'Scaling', scale.reason);
    } else if (scale.type === 'grow') {
      scaling = true;
      const claimName = names.pvc(name, current);
      const staleClaim = claims.get(claimName);
      if (staleClaim) {
        // Left by an earlier scale-down: it holds a retired node's data (node.json names the old id), and the new
        // broker at this ordinal gets a new id. The StatefulSet creates a fresh claim once this one is gone.
        if (!staleClaim.deletionTimestamp) {
          await rest.delete(KINDS.PersistentVolumeClaim, namespace, claimName).catch((e: unknown) => { if (!isNotFound(e)) throw e; });
          await event('Normal', 'StaleClaimDeleted', `scaling ${current} → ${spec.replicas}: deleted ${claimName}, left by a retired broker, before ${names.pod(name, current)} starts with a new node id`);
        }
        cond('Progressing', 'True', 'Scaling', `scaling ${current} → ${spec.replicas}: waiting for ${claimName} (a retired broker's) to be deleted`);
      } else {
        if (pendingId === undefined) {
          // Recorded before the member is added and before the StatefulSet grows: no pod ever runs an unrecorded id.
          await persistIds({ ...ids, nodeIds: { ...nodeIdTable(ids.nodeIds, current), [String(current)]: scale.nodeId }, nextNodeId: Math.max(ids.nextNodeId ?? 0, scale.nodeId + 1) });
        }
        const l = spec.listeners;
        await leaderAdmin!.addMember(scale.nodeId, { host: names.podHost(name, namespace, current), kafkaPort: l.kafkaPort, adminPort: l.adminPort, raftPort: l.raftPort });
        await event('Normal', 'MemberAdded', `scaling ${current} → ${spec.replicas}: node ${scale.nodeId} (${names.pod(name, current)}) added; it joins as a learner and is promoted once caught up`);
        stsReplicas = scale.to;
        cond('Progressing', 'True', 'Scaling', `scaling ${current} → ${spec.replicas} (step to ${stsReplicas})`);
      }
    } else if (scale.type === 'remove') {
      scaling = true;
      await leaderAdmin!.removeMember(scale.nodeId);
      await event('Normal', 'MemberRemoving', `scaling ${current} → ${spec.replicas}: retiring node ${scale.nodeId} (${names.pod(name, current - 1)}); its replicas move to the others`);
      cond('Progressing', 'True', 'Scaling', `scaling ${current} → ${spec.replicas}: waiting for node ${scale.nodeId} to leave every group`);
    } else if (scale.type === 'shrink') {
      scaling = true;
      stsReplicas = scale.to;
      await event('Normal', 'MemberRemoved', `scaling ${current} → ${spec.replicas}: node ${scale.nodeId} left every group; removing ${names.pod(name, current - 1)}`);
      cond('Progressing', 'True', 'Scaling', `scaling ${current} → ${spec.replicas} (step to ${stsReplicas})`);
    }

    // Guard 4: owned objects (ServiceAccount, ConfigMap, Services, PDB, StatefulSet).
    // Rendered for the member count actually in effect: a refused or unfinished scale must not change the brokers'
    // config (lance.yaml's standalone flag and peers follow the replicas the builders see).
    const effective: LanceCluster = { ...cluster, spec: { ...spec, replicas: stsReplicas } };
    // Ordinals beyond the StatefulSet lose their ids (retired), except one allocated for the next grow step.
    ids = {
      ...ids,
      nodeIds: nodeIdTable(ids.nodeIds, stsReplicas, stsReplicas < spec.replicas ? [stsReplicas] : []),
    };
    ids.nextNodeId = allocateNodeId({ nextNodeId: ids.nextNodeId, nodeIds: ids.nodeIds, founders, ordinalsInUse: stsReplicas, known: known ?? [] }).nodeId;
    const renderOptions = (nodeIds: NodeIdMap) => ({ replicas: stsReplicas, nodeIds, ...(founders ? { bootstrapVoters: founders } : {}), ...(this.o.bindAddress ? { bindAddress: this.o.bindAddress } : {}) });
    for (const r of desiredResources(effective, renderOptions(ids.nodeIds!))) {
      const kind = KINDS[r.kind as keyof typeof KINDS];
      const res = await createOrUpdate(rest, kind, r as KubeObject);
      if (res.action !== 'unchanged') await event('Normal', res.action === 'created' ? 'Created' : 'Updated', `${res.action} ${r.kind} ${r.metadata?.name}`);
    }
    const templateHash = (await this.getOrUndefined<StatefulSetObject>(KINDS.StatefulSet, namespace, names.statefulSet(name)))?.spec?.template?.metadata?.annotations?.[ANNOTATION_CONFIG_HASH] ?? '';

    // Guard 5: fencing — split brain (lower term loses), brokers cut off from the majority, the manual annotation.
    const manual = parseFencedAnnotation(raw.metadata?.annotations?.[ANNOTATION_FENCED]);
    if (!manual.ok) await event('Warning', 'InvalidAnnotation', manual.error);
    const split = detectSplitBrain(views);
    let stale = detectStale(views).stale;
    if (stale.length > 0) {
      // Confirm: a broker that merely had not heard of a new leader yet catches up within milliseconds.
      await new Promise((r) => setTimeout(r, this.staleConfirmMs));
      views = await this.brokerViews(cluster, pods);
      const still = new Set(detectStale(views).stale.map((x) => x.pod));
      stale = stale.filter((x) => still.has(x.pod));
    }
    const staleNotFenced = stale.filter((x) => !pods.find((p) => p.name === x.pod)?.fencedLabel);
    const splitLosers = split.flatMap((s) => s.fence);
    const losers = [...new Set([...splitLosers, ...stale.map((x) => x.pod)])];
    if (split.length > 0 || stale.length > 0) {
      const parts = split.map((s) => `${s.group} claimed by ${s.claimants.map((c) => `${c.pod}(term ${c.term ?? '?'})`).join(', ')}`);
      const leaderView = detectStale(views).leader;
      if (stale.length > 0) parts.push(`cut off from the majority (leader ${leaderView?.pod ?? '?'}, term ${leaderView?.term ?? '?'}): ${stale.map((x) => `${x.pod}(term ${x.term ?? '?'}, sees leader ${x.leaderId ?? 'none'})`).join(', ')}`);
      const msg = parts.join('; ');
      cond('SplitBrain', 'True', splitLosers.length ? 'LowerTermFenced' : stale.length ? 'PartitionedMemberFenced' : 'TermUnknown', msg);
      if (split.length > 0 || staleNotFenced.length > 0) await event('Warning', 'SplitBrain', losers.length ? `${msg}: fencing ${losers.join(', ')}` : `${msg}: terms unknown, not fencing automatically`);
    } else {
      cond('SplitBrain', 'False', 'SingleLeader', 'every broker follows the leader a majority agrees on');
    }
    const metaVoters = detectStale(views).leader?.groups?.find((g) => g.group === 'metadata')?.voters.length;
    const fencing = fencingPlan({ pods, manual: manual.ok ? manual.pods : [], splitBrainLosers: losers, views, maxLag: this.maxLag, ...(metaVoters ? { voters: metaVoters } : {}) });
    if (fencing.refused.length > 0) await event('Warning', 'FenceRefused', `not fencing ${fencing.refused.join(', ')}: the unfenced brokers would be fewer than a majority of the metadata group`);
    for (const p of fencing.fence) await this.setFenced(cluster, pods, p, true, event);
    for (const p of fencing.unfence) await this.setFenced(cluster, pods, p, false, event);
    const fencedNow = pods.filter((p) => (p.fencedLabel || fencing.fence.includes(p.name)) && !fencing.unfence.includes(p.name)).map((p) => p.name);
    cond('Fenced', fencedNow.length ? 'True' : 'False', fencedNow.length ? 'PodsFenced' : 'NoneFenced', fencedNow.length ? `fenced: ${fencedNow.join(', ')}` : 'no pod is fenced');
    for (const p of pods) p.fencedLabel = fencedNow.includes(p.name);

    // Guard 6: node replacement (annotation or lost PVC), never the leader. In a Raft cluster the broker gets a NEW
    // node id: old id removed (transfer first) → ordinal mapped to a new id → pod + PVC deleted → successor added.
    if (!ids.replacement && !scaling) {
      const repl = replaceStep({ pods, pvcMissing, nodeLost: lostNode, leader, replicas: spec.replicas });
      if (repl.type === 'transfer-leader') {
        await this.transferLeadership(cluster, pods, views, repl.pod, event, 'replacement');
      } else if (repl.type === 'replace') {
        const victim = pods.find((p) => p.name === repl.pod)!;
        if (spec.replicas === 1 && repl.reason === 'annotation') {
          await event('Warning', 'ReplaceRefused', `${repl.pod}: replacing the only broker of a single-broker cluster would lose all data`);
        } else if (spec.replicas === 1 && repl.reason === 'node-lost') {
          // Nowhere to copy the data from: the single broker waits for its node (or a restore).
          await event('Warning', 'ReplaceRefused', `${repl.pod}: its node is lost, but replacing the only broker of a single-broker cluster would lose all data; restore it, or delete its PVC to start empty`);
        } else if (spec.replicas === 1) {
          // Standalone: no membership to change; the new disk starts empty under the same id.
          await this.replaceStandalone(cluster, victim, repl.reason, event);
          cond('Progressing', 'True', 'ReplacingNode', `replacing ${repl.pod} (${repl.reason})`);
          await commit(this.buildStatus({ founders, ids, cluster, old, conditions, pods, views, leader, stsReplicas, rollout: old?.rollout, generation, scaling, rollingOut: false, split: split.length > 0, templateHash, progressingSet }));
          return { afterMs: this.busy };
        } else if (!known || !victim.uid) {
          cond('Progressing', 'True', 'ReplacingNode', `replacing ${repl.pod} (${repl.reason}): waiting for the controller to report the membership`);
        } else {
          const alloc = allocateNodeId({ nextNodeId: ids.nextNodeId, nodeIds: ids.nodeIds, founders, ordinalsInUse: stsReplicas, known });
          const oldNodeId = nodeIdOf(ids.nodeIds, victim.ordinal);
          await persistIds({ ...ids, nextNodeId: alloc.nextNodeId, replacement: { pod: victim.name, ordinal: victim.ordinal, podUid: victim.uid, oldNodeId, newNodeId: alloc.nodeId, reason: repl.reason, phase: 'removing' } });
          await event('Warning', 'ReplacingNode', `replacing ${victim.name} (${repl.reason}): node ${oldNodeId} → new node ${alloc.nodeId}; removing node ${oldNodeId} from the membership first`);
        }
      }
    }
    if (ids.replacement) {
      const r = ids.replacement;
      const step = replacementStep({ state: r, pods, membership, leader, views });
      // Membership calls through a broker other than the one being replaced (any broker forwards to the controller).
      const admin = (leader !== r.pod ? leaderAdmin : undefined) ?? this.adminFor(cluster, pods.find((p) => p.name !== r.pod && p.podIP && p.ready));
      let settled = false;
      if (step.type === 'wait') {
        cond('Progressing', 'True', 'ReplacingNode', `replacing ${r.pod}: ${step.reason}`);
      } else if (step.type === 'transfer-leader') {
        await this.transferLeadership(cluster, pods, views, step.pod, event, 'replacement');
        cond('Progressing', 'True', 'ReplacingNode', `replacing ${r.pod}: transferring leadership away first`);
      } else if (step.type === 'remove' || step.type === 'add') {
        if (!admin) {
          cond('Progressing', 'True', 'ReplacingNode', `replacing ${r.pod}: no reachable broker to change the membership through`);
        } else {
          try {
            if (step.type === 'remove') {
              await admin.removeMember(step.nodeId);
              await event('Normal', 'MemberRemoving', `replacing ${r.pod}: removing node ${step.nodeId}; its replicas move to the others and it leaves every group`);
              cond('Progressing', 'True', 'ReplacingNode', `replacing ${r.pod}: waiting for node ${step.nodeId} to leave every group`);
            } else {
              const l = spec.listeners;
              await admin.addMember(step.nodeId, { host: names.podHost(name, namespace, r.ordinal), kafkaPort: l.kafkaPort, adminPort: l.adminPort, raftPort: l.raftPort });
              await event('Normal', 'MemberAdded', `replacing ${r.pod}: node ${step.nodeId} (${r.pod}) added; it joins as a learner and is promoted once caught up`);
              cond('Progressing', 'True', 'ReplacingNode', `replacing ${r.pod}: node ${step.nodeId} catching up`);
            }
          } catch (e) {
            // The broker refuses a removal that would break a group's majority (or a membership change in flight):
            // a condition + Event, and the next reconcile retries.
            if (!(e instanceof LanceError && e.code === 'CONFLICT')) throw e;
            cond('Progressing', 'False', 'ReplaceRefused', `replacing ${r.pod}: ${e.message}`);
            await event('Warning', 'ReplaceRefused', `replacing ${r.pod}: members ${step.type} ${step.nodeId} refused: ${e.message}; retrying`);
          }
        }
      } else if (step.type === 'recreate') {
        // The ordinal's new id goes to status, then to peers.yaml, and only then are the pod and its PVC deleted: the
        // StatefulSet's successor pod reads its id (by pod name) from the updated peers.yaml at start.
        const nodeIds = { ...ids.nodeIds, [String(r.ordinal)]: r.newNodeId };
        await persistIds({ ...ids, nodeIds, replacement: { ...r, phase: 'joining' } });
        const cm = await createOrUpdate(rest, KINDS.ConfigMap, configMap(effective, renderOptions(nodeIds)) as KubeObject);
        if (cm.action !== 'unchanged') await event('Normal', 'Updated', `updated ConfigMap ${names.configMap(name)}: ${r.pod} is node ${r.newNodeId}`);
        try {
          await rest.delete(KINDS.PersistentVolumeClaim, namespace, names.pvc(name, r.ordinal));
        } catch (e) {
          if (!isNotFound(e)) throw e;
        }
        if (step.deletePod) await rest.delete(KINDS.Pod, namespace, r.pod, { propagationPolicy: 'Background', ...(step.force ? { gracePeriodSeconds: 0 } : {}) }).catch((e: unknown) => { if (!isNotFound(e)) throw e; });
        if (step.wrongId !== undefined) await event('Warning', 'ReplacingNode', `replacing ${r.pod}: it started as node ${step.wrongId} instead of ${r.newNodeId} (stale peers.yaml); deleting its pod and PVC again`);
        else await event('Normal', 'ReplacingNode', `replacing ${r.pod}: node ${r.oldNodeId} left every group; deleted ${r.pod} and its PVC, the StatefulSet recreates them as node ${r.newNodeId}`);
        cond('Progressing', 'True', 'ReplacingNode', `replacing ${r.pod}: waiting for ${r.pod} to start as node ${r.newNodeId}`);
      } else {
        await persistIds({ ...ids, replacement: undefined });
        await event('Normal', 'NodeReplaced', `${r.pod} replaced: node ${r.oldNodeId} removed, node ${r.newNodeId} is a voter`);
        settled = true;
      }
      if (!settled) {
        await commit(this.buildStatus({ founders, ids, cluster, old, conditions, pods, views, leader, stsReplicas, rollout: old?.rollout, generation, scaling, rollingOut: false, split: split.length > 0, templateHash, progressingSet }));
        return { afterMs: this.busy };
      }
    }

    // Guard 7: rolling update (OnDelete StatefulSet: the operator picks who restarts, one at a time, leader last).
    let rollout = old?.rollout;
    let rollingOut = false;
    if (spec.updateStrategy.type === 'Auto' && templateHash) {
      const target = { image: spec.image, configHash: templateHash };
      // A pod being deleted is already restarting; a new target (image/config) starts a new recorded order.
      const newTarget = old?.targetImage !== spec.image || old?.targetConfigHash !== templateHash;
      const plan = planRollout(pods.filter((p) => !p.deleting), target, leader, newTarget ? undefined : rollout);
      if (plan.podsPending.length > 0) {
        rollingOut = true;
        if (newTarget || !rollout || (rollout.podsPending.length === 0 && rollout.order.length === 0)) {
          plan.order = [];
          await event('Normal', 'RolloutStarted', `rolling out image ${spec.image} / config ${templateHash.slice(0, 12)}: order ${plan.podsPending.join(', ')}`);
        }
        rollout = plan;
        const step = nextRolloutStep({ plan, pods, replicas: stsReplicas, leader, views, transferSupported: anyAdmin?.supports.transferLeader ?? false, maxLag: this.maxLag });
        if (step.type === 'wait') {
          cond('Progressing', 'True', 'RollingUpdate', step.reason);
        } else if (step.type === 'transfer-leader') {
          await this.transferLeadership(cluster, pods, views, step.pod, event, 'rolling update');
          cond('Progressing', 'True', 'RollingUpdate', `transferring leadership away from ${step.pod}`);
        } else if (step.type === 'restart') {
          if (step.leaderNotTransferred) await event('Warning', 'LeaderRestartedWithoutTransfer', `${step.pod} is the leader; the broker admin API cannot transfer leadership yet, restarting it last anyway`);
          // Record the step in status BEFORE deleting the pod: a crash in between re-plans from status.
          rollout = { podsPending: plan.podsPending.slice(1), order: [...plan.order, step.pod] };
          cond('Progressing', 'True', 'RollingUpdate', `restarting ${step.pod}`);
          await commit(this.buildStatus({ founders, ids, cluster, old, conditions, pods, views, leader, stsReplicas, rollout, generation, scaling, rollingOut: true, split: split.length > 0, templateHash, progressingSet }));
          await rest.delete(KINDS.Pod, namespace, step.pod);
          await event('Normal', 'RestartingPod', `rolling update: restarting ${step.pod} (${rollout.order.length} of ${rollout.order.length + rollout.podsPending.length})`);
          return { afterMs: this.busy };
        }
      } else {
        const settledOnTarget = pods.length >= stsReplicas && pods.every((p) => p.ready && !p.deleting);
        const changed = old?.currentImage !== spec.image || old?.currentConfigHash !== templateHash;
        if (rollout && rollout.order.length > 0 && changed) {
          // The last restarted pod is still coming up: the rollout is not over until it is Ready.
          if (settledOnTarget) await event('Normal', 'RolloutComplete', `every pod runs ${spec.image} / config ${templateHash.slice(0, 12)}; restart order ${rollout.order.join(', ')}`);
          else rollingOut = true;
        }
        if (rollout) rollout = { podsPending: [], order: rollout.order };
      }
    }

    const status = this.buildStatus({ founders, ids, cluster, old, conditions, pods, views, leader, stsReplicas, rollout, generation, scaling, rollingOut, split: split.length > 0, templateHash, progressingSet });
    if (old?.phase !== status.phase) await event(status.phase === 'Degraded' || status.phase === 'Failed' ? 'Warning' : 'Normal', `Phase${status.phase}`, `phase ${old?.phase ?? '(none)'} → ${status.phase}`);
    await commit(status);
    const settled = status.phase === 'Running' && !scaling && !rollingOut;
    return { afterMs: settled ? this.idle : this.busy };
  }

  private buildStatus(a: {
    cluster: LanceCluster; old: LanceClusterStatus | undefined; conditions: LanceClusterStatus['conditions']; pods: PodObservation[]; views: BrokerView[];
    leader: string | undefined; stsReplicas: number; rollout: LanceClusterStatus['rollout']; generation: number; templateHash?: string; progressingSet?: boolean; scaling: boolean; rollingOut: boolean; split: boolean;
    founders?: number[] | undefined;
    ids: NodeIds;
  }): LanceClusterStatus {
    const { cluster, pods, views } = a;
    const replicas = cluster.spec.replicas;
    const readyPods = pods.filter((p) => p.ready && !p.deleting).length;
    const everRunning = a.old?.phase !== undefined && !['Pending', 'Creating', 'Failed'].includes(a.old.phase);
    const phase = phaseOf({ specValid: true, podsExist: pods.length, readyPods, replicas, rollingOut: a.rollingOut, scaling: a.scaling, splitBrain: a.split, everRunning });
    const degraded = phase === 'Degraded';
    let conditions = withCondition(a.conditions, 'Degraded', degraded ? 'True' : 'False', degraded ? (a.split ? 'SplitBrain' : 'PodsNotReady') : 'Healthy',
      degraded ? (a.split ? 'two brokers claim leadership of a replication group' : `${readyText(readyPods, replicas)} pods ready`) : 'spec valid, no split brain, pods not lost', a.generation, this.now());
    conditions = withCondition(conditions, 'Ready', readyPods >= replicas ? 'True' : 'False', readyPods >= replicas ? 'AllPodsReady' : 'PodsNotReady', `${readyText(readyPods, replicas)} pods ready`, a.generation, this.now());
    if (!a.progressingSet && !a.scaling && !a.rollingOut && phase === 'Running') conditions = withCondition(conditions, 'Progressing', 'False', 'Settled', 'nothing in progress', a.generation, this.now());
    const leaderView = views.find((v) => v.pod === a.leader);
    const allOnTarget = pods.length > 0 && pods.every((p) => p.image === cluster.spec.image);
    const status: LanceClusterStatus = {
      phase,
      conditions,
      observedGeneration: a.generation,
      replicas: pods.length,
      readyReplicas: readyPods,
      ready: readyText(readyPods, replicas),
      selector: statusSelector(cluster.metadata.name),
      members: members(pods, views, a.ids.nodeIds),
      ...(a.leader ? { leader: a.leader } : {}),
      ...(leaderView?.term !== undefined ? { controllerTerm: leaderView.term } : {}),
      ...(a.founders ? { bootstrapVoters: a.founders } : {}),
      ...(a.ids.nodeIds ? { nodeIds: a.ids.nodeIds } : {}),
      ...(a.ids.nextNodeId !== undefined ? { nextNodeId: a.ids.nextNodeId } : {}),
      ...(a.ids.replacement ? { replacement: a.ids.replacement } : {}),
      ...(a.old?.lastRestorePoint ? { lastRestorePoint: a.old.lastRestorePoint } : {}),
      targetImage: cluster.spec.image,
      ...(allOnTarget && !a.rollingOut ? { currentImage: cluster.spec.image } : a.old?.currentImage ? { currentImage: a.old.currentImage } : {}),
      ...(a.templateHash ? { targetConfigHash: a.templateHash } : {}),
      ...(allOnTarget && !a.rollingOut && a.templateHash && pods.every((p) => p.configHash === a.templateHash) ? { currentConfigHash: a.templateHash } : a.old?.currentConfigHash ? { currentConfigHash: a.old.currentConfigHash } : {}),
      ...(a.rollout ? { rollout: a.rollout } : {}),
    };
    return status;
  }

  private async getOrUndefined<T extends KubeObject>(kind: (typeof KINDS)[keyof typeof KINDS], namespace: string, name: string): Promise<T | undefined> {
    try {
      return await this.o.rest.get<T>(kind, namespace, name);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  private adminFor(cluster: LanceCluster, pod: PodObservation | undefined): BrokerAdmin | undefined {
    if (!pod?.podIP) return undefined;
    return this.o.admin(pod.name, `http://${pod.podIP}:${cluster.spec.listeners.adminPort}`);
  }

  /** Every Ready pod's /v1/cluster; an unreachable broker simply has no view (its pod is not Ready then, usually). */
  private async brokerViews(cluster: LanceCluster, pods: PodObservation[]): Promise<BrokerView[]> {
    const out = await Promise.all(pods.filter((p) => p.podIP && !p.deleting).map(async (p) => {
      try {
        return await this.adminFor(cluster, p)!.clusterStatus();
      } catch {
        return undefined;
      }
    }));
    return withLags(out.filter((v): v is BrokerView => v !== undefined));
  }

  private async setFenced(cluster: LanceCluster, pods: PodObservation[], pod: string, fenced: boolean, event: (t: EventType, r: string, m: string) => Promise<void>): Promise<void> {
    const admin = this.adminFor(cluster, pods.find((p) => p.name === pod));
    if (admin) {
      try {
        if (fenced) await admin.fence();
        else await admin.unfence();
      } catch (e) {
        // The label below still takes the pod out of (or back into) the client Service; an unreachable broker is
        // retried on the next reconcile (its view then shows whether it is fenced).
        if (isUnsupported(e)) await event('Warning', fenced ? 'FenceUnsupported' : 'UnfenceUnsupported', `${pod}: ${(e as Error).message}; only the Service label is changed`);
        else await event('Warning', fenced ? 'FenceFailed' : 'UnfenceFailed', `${pod}: admin ${fenced ? 'fence' : 'unfence'} failed: ${(e as Error).message}; only the Service label is changed`);
      }
    }
    // The label drops the pod from (or returns it to) the client Service's endpoints.
    await this.o.rest.mergePatch(KINDS.Pod, cluster.metadata.namespace, pod, { metadata: { labels: { [LABEL_FENCED]: fenced ? 'true' : 'false' } } });
    await event(fenced ? 'Warning' : 'Normal', fenced ? 'Fenced' : 'Unfenced', `${pod} ${fenced ? 'fenced: removed from the client Service' : 'unfenced: back in the client Service'}`);
  }

  private async transferLeadership(cluster: LanceCluster, pods: PodObservation[], views: BrokerView[], from: string, event: (t: EventType, r: string, m: string) => Promise<void>, why: string): Promise<void> {
    const log = this.log.child({ namespace: cluster.metadata.namespace, cluster: cluster.metadata.name });
    // The most caught-up follower takes over.
    const target = views.filter((v) => v.pod !== from && v.role === 'Follower' && !pods.find((p) => p.name === v.pod)?.fencedLabel).sort((a, b) => (a.lag ?? Infinity) - (b.lag ?? Infinity))[0];
    const admin = this.adminFor(cluster, pods.find((p) => p.name === from));
    if (!admin || !target) {
      await event('Warning', 'TransferLeaderBlocked', `${why}: no caught-up follower to take leadership from ${from}`);
      return;
    }
    try {
      // The metadata group first, then every partition the broker leads (so its restart moves no leadership by election).
      await admin.transferLeader(target.nodeId);
      const partitions = views.find((v) => v.pod === from)?.leads.filter((l) => l.group !== 'metadata') ?? [];
      for (const l of partitions) await admin.transferLeader(target.nodeId, l.group).catch((e: unknown) => log.warn({ err: e, group: l.group }, 'partition leadership transfer failed; it moves by election'));
      await event('Normal', 'LeaderTransfer', `${why}: leadership ${from} → ${target.pod}${partitions.length ? ` (and ${partitions.length} partition group(s))` : ''}`);
    } catch (e) {
      if (!isUnsupported(e)) throw e;
      await event('Warning', 'TransferLeaderUnsupported', `${why}: ${(e as Error).message}`);
    }
  }

  /** A single (standalone) broker whose volume is lost: delete PVC + pod; it starts empty under the same id. */
  private async replaceStandalone(cluster: LanceCluster, p: PodObservation, reason: string, event: (t: EventType, r: string, m: string) => Promise<void>): Promise<void> {
    const ns = cluster.metadata.namespace!;
    await event('Warning', 'ReplacingNode', `replacing ${p.name} (${reason}): deleting its PVC and pod; the StatefulSet recreates both`);
    try {
      await this.o.rest.delete(KINDS.PersistentVolumeClaim, ns, names.pvc(cluster.metadata.name, p.ordinal));
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    await this.o.rest.delete(KINDS.Pod, ns, p.name);
  }
}

function isoTime(v: string | Date | undefined): string | undefined {
  return v instanceof Date ? v.toISOString() : v;
}
