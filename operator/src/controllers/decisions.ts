/**
 * The LanceCluster controller's decisions, as pure functions over observed state. The reconciler (lancecluster.ts)
 * gathers the observations, calls these in guard order and performs the returned action; nothing here does I/O.
 */
import { setCondition, type Condition } from '../api/conditions.ts';
import type { LanceClusterCondition, LanceClusterConditionType, LanceClusterPhase, LanceClusterStatus, Member } from '../api/lancecluster.ts';
import { ANNOTATION_CONFIG_HASH, LABEL_FENCED, LABEL_POD_INDEX } from '../resources/names.ts';

export const ANNOTATION_RECONCILE = 'lance.dev/reconcile';
export const ANNOTATION_FENCED = 'lance.dev/fenced';
export const ANNOTATION_REPLACE = 'lance.dev/replace';

// ---- guards on the cluster object ----

export function isPaused(annotations: Record<string, string> | undefined): boolean {
  return annotations?.[ANNOTATION_RECONCILE] === 'disabled';
}

/** `lance.dev/fenced: '["demo-1"]'` (CNPG style). An error names the annotation and what is wrong. */
export function parseFencedAnnotation(value: string | undefined): { ok: true; pods: string[] } | { ok: false; error: string } {
  if (value === undefined || value.trim() === '') return { ok: true, pods: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return { ok: false, error: `annotation ${ANNOTATION_FENCED}: not JSON (expected a list of pod names such as ["demo-1"])` };
  }
  if (!Array.isArray(parsed) || !parsed.every((p) => typeof p === 'string' && p.length > 0)) {
    return { ok: false, error: `annotation ${ANNOTATION_FENCED}: must be a JSON list of pod names, got ${value.slice(0, 100)}` };
  }
  return { ok: true, pods: [...new Set(parsed as string[])] };
}

// ---- observations ----

export interface PodLike {
  metadata?: { name?: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: unknown; creationTimestamp?: unknown };
  spec?: { nodeName?: string; containers?: { name?: string; image?: string }[]; volumes?: { name?: string; persistentVolumeClaim?: { claimName?: string } }[] };
  status?: { phase?: string; reason?: string; podIP?: string; conditions?: { type?: string; status?: string; reason?: string; lastTransitionTime?: unknown }[] };
}

export interface PodObservation {
  name: string;
  /** metadata.uid: tells a replaced pod from its successor of the same name */
  uid?: string | undefined;
  ordinal: number;
  ready: boolean;
  image: string | undefined;
  configHash: string | undefined;
  fencedLabel: boolean;
  replaceRequested: boolean;
  deleting: boolean;
  podIP: string | undefined;
  /** metadata.creationTimestamp (ISO), when known */
  created?: string | undefined;
  scheduled?: boolean | undefined;
  /** Since when (ISO) the pod's node is unreachable (phase Unknown / reason NodeLost / Ready=False for NodeLost or NodeNotReady), if it is. */
  nodeLostSince?: string | undefined;
}

export function observePod(pod: PodLike, container: string): PodObservation {
  const name = pod.metadata?.name ?? '';
  const idx = pod.metadata?.labels?.[LABEL_POD_INDEX] ?? /-(\d+)$/.exec(name)?.[1];
  return {
    name,
    uid: pod.metadata?.uid,
    ordinal: idx === undefined ? -1 : Number(idx),
    ready: pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    image: pod.spec?.containers?.find((c) => c.name === container)?.image,
    configHash: pod.metadata?.annotations?.[ANNOTATION_CONFIG_HASH],
    fencedLabel: pod.metadata?.labels?.[LABEL_FENCED] === 'true',
    replaceRequested: pod.metadata?.annotations?.[ANNOTATION_REPLACE] === 'true',
    deleting: pod.metadata?.deletionTimestamp !== undefined && pod.metadata?.deletionTimestamp !== null,
    podIP: pod.status?.podIP,
    created: timestamp(pod.metadata?.creationTimestamp),
    scheduled: pod.spec?.nodeName !== undefined && pod.spec.nodeName !== '',
    nodeLostSince: nodeLostSince(pod),
  };
}

/** The kubelet stopped reporting: the node lifecycle controller marks the pod (phase Unknown, reason NodeLost, or Ready=False because of the node). */
function nodeLostSince(pod: PodLike): string | undefined {
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
  const lost = pod.status?.phase === 'Unknown' || pod.status?.reason === 'NodeLost' || (ready?.status === 'False' && (ready.reason === 'NodeLost' || ready.reason === 'NodeNotReady'));
  if (!lost) return undefined;
  return timestamp(ready?.lastTransitionTime) ?? new Date(0).toISOString();
}

/** A pod whose node has been unreachable for at least `graceMs`: its broker is replaced (new id, new volume elsewhere). */
export function nodeLost(pod: PodObservation, now: Date, graceMs: number): boolean {
  if (pod.nodeLostSince === undefined) return false;
  return now.getTime() - Date.parse(pod.nodeLostSince) >= graceMs;
}

function timestamp(v: unknown): string | undefined {
  if (v instanceof Date) return v.toISOString();
  return typeof v === 'string' ? v : undefined;
}

/**
 * Whether a pod's data volume is lost, so the node must be replaced: its claim is being deleted while this pod (created
 * before the deletion) still holds it, or the claim is gone under a scheduled pod that is not Ready. A pod created
 * after the claim's deletion began is the replacement already waiting for its new claim: not lost.
 */
export function volumeLost(pod: PodObservation, claim: { deletionTimestamp?: string | undefined } | undefined): boolean {
  if (pod.deleting) return false;
  if (!claim) return pod.scheduled === true && !pod.ready;
  if (!claim.deletionTimestamp) return false;
  return pod.created === undefined || Date.parse(pod.created) <= Date.parse(claim.deletionTimestamp);
}

/** What one broker's admin API said, normalised (term is undefined while the broker does not report it). */
export interface BrokerView {
  pod: string;
  nodeId: number;
  role: 'Leader' | 'Follower' | 'Learner' | 'Standalone';
  term?: number | undefined;
  lag?: number | undefined;
  /** Replication groups this broker claims to lead ("metadata", "topic/partition"), with the term it claims. */
  leads: { group: string; term?: number | undefined }[];
  /** The metadata group's leader as this broker sees it (null: none known); cluster mode only. */
  leaderId?: number | null | undefined;
  /** The broker says it is fenced (cluster mode only). */
  fenced?: boolean | undefined;
  /** Every Raft group on the broker (cluster mode only): what lag and staleness are computed from. */
  groups?: BrokerGroupView[] | undefined;
}

export interface BrokerGroupView {
  group: string;
  leader: number | null;
  term: number;
  voters: number[];
  /** Only on the group's leader: each follower's lag in entries. */
  followers: { nodeId: number; lag: number }[];
}

/**
 * Each broker's lag: the largest, over the groups it follows, of what that group's leader reports for it (entries
 * behind). A broker leading or following groups whose leader reported nothing has lag undefined for them; a broker
 * whose every group is led by itself has lag 0. Views without group detail are returned unchanged.
 */
export function withLags(views: BrokerView[]): BrokerView[] {
  return views.map((v) => {
    if (!v.groups) return v;
    let lag: number | undefined = 0;
    for (const g of v.groups) {
      if (g.leader === v.nodeId) continue;
      const leaderGroup = views.find((x) => x.nodeId === g.leader)?.groups?.find((x) => x.group === g.group && x.leader === g.leader);
      const f = leaderGroup?.followers.find((x) => x.nodeId === v.nodeId);
      if (!f) { lag = undefined; break; }
      lag = Math.max(lag, f.lag);
    }
    return { ...v, lag };
  });
}

export interface StaleMembers {
  /** The metadata leader a majority of the brokers agrees on (undefined: no such agreement right now). */
  leader: BrokerView | undefined;
  /** Brokers cut off from that majority: a lower metadata term than the agreed leader's. */
  stale: { pod: string; term: number | undefined; leaderId: number | null | undefined }[];
}

/**
 * Brokers partitioned from the majority. After a partition the isolated old leader steps down (check-quorum) but
 * keeps its old term (pre-vote), so "two leaders at once" is rarely observable; "a broker behind the term a majority
 * agrees on" is. Needs a leader confirmed by a majority of the metadata voters, so an election in progress (nobody
 * agreed yet) never makes anyone stale. The reconciler re-checks after a short delay before fencing.
 */
export function detectStale(views: BrokerView[]): StaleMembers {
  const leaders = views.filter((v) => v.role === 'Leader' && v.term !== undefined).sort((a, b) => b.term! - a.term!);
  const top = leaders[0];
  if (!top) return { leader: undefined, stale: [] };
  const voters = top.groups?.find((g) => g.group === 'metadata')?.voters.length ?? views.length;
  const agree = views.filter((v) => v.term === top.term && v.leaderId === top.nodeId).length;
  if (agree < Math.floor(voters / 2) + 1) return { leader: undefined, stale: [] };
  const stale = views
    // Strictly behind only: a follower at the leader's term that has not learned its id yet is healthy.
    .filter((v) => v.pod !== top.pod && v.term !== undefined && v.term < top.term!)
    .map((v) => ({ pod: v.pod, term: v.term, leaderId: v.leaderId }));
  return { leader: top, stale };
}

export interface Target {
  image: string;
  configHash: string;
}

export function isStale(p: PodObservation, t: Target): boolean {
  return p.image !== t.image || p.configHash !== t.configHash;
}

// ---- rolling update ----

export interface RolloutState {
  podsPending: string[];
  order: string[];
}

/**
 * Order of restarts for a rollout: stale followers by descending ordinal (like a StatefulSet), the leader last.
 * An existing plan for the same target is kept (an operator restart resumes it) minus pods that are up to date.
 */
export function planRollout(pods: PodObservation[], target: Target, leader: string | undefined, existing: RolloutState | undefined): RolloutState {
  const stale = new Set(pods.filter((p) => isStale(p, target)).map((p) => p.name));
  if (existing && existing.podsPending.length > 0) {
    const kept = existing.podsPending.filter((p) => stale.has(p));
    const extra = [...stale].filter((p) => !kept.includes(p));
    return { podsPending: leaderLast([...kept, ...extra], leader), order: existing.order };
  }
  const sorted = pods.filter((p) => stale.has(p.name)).sort((a, b) => b.ordinal - a.ordinal).map((p) => p.name);
  return { podsPending: leaderLast(sorted, leader), order: existing?.order ?? [] };
}

function leaderLast(pods: string[], leader: string | undefined): string[] {
  if (!leader || !pods.includes(leader)) return pods;
  return [...pods.filter((p) => p !== leader), leader];
}

export type RolloutStep =
  | { type: 'done' }
  | { type: 'wait'; reason: string }
  | { type: 'transfer-leader'; pod: string }
  | { type: 'restart'; pod: string; leaderNotTransferred?: boolean };

/**
 * The next step of a rollout. Gate: every pod Ready and, where lag is known, caught up (≤ maxLag). The leader is
 * restarted only after a transfer, unless the admin API cannot transfer (then it goes last anyway, recorded).
 */
export function nextRolloutStep(args: {
  plan: RolloutState;
  pods: PodObservation[];
  replicas: number;
  leader: string | undefined;
  views: BrokerView[];
  transferSupported: boolean;
  maxLag?: number;
}): RolloutStep {
  const { plan, pods, replicas, leader, views } = args;
  const next = plan.podsPending[0];
  if (next === undefined) return { type: 'done' };
  const notReady = pods.filter((p) => !p.ready || p.deleting).map((p) => p.name);
  if (pods.length < replicas || notReady.length > 0) return { type: 'wait', reason: `waiting for all pods Ready (not ready: ${notReady.join(', ') || `${pods.length}/${replicas} exist`})` };
  const maxLag = args.maxLag ?? 0;
  const lagging = views.filter((v) => v.lag !== undefined && v.lag > maxLag).map((v) => v.pod);
  if (lagging.length > 0) return { type: 'wait', reason: `waiting for brokers to catch up: ${lagging.join(', ')}` };
  if (next === leader && replicas > 1) {
    if (args.transferSupported) return { type: 'transfer-leader', pod: next };
    return { type: 'restart', pod: next, leaderNotTransferred: true };
  }
  return { type: 'restart', pod: next };
}

// ---- scaling ----

/** A member as the controller's registry reports it (admin GET /v1/members). */
export interface MemberState {
  nodeId: number;
  state: 'joining' | 'active' | 'removing' | 'removed';
}

export type ScaleStep =
  | { type: 'none' }
  | { type: 'refuse'; reason: string }
  | { type: 'wait'; reason: string }
  /** add broker `nodeId` (idempotent) and grow the StatefulSet to `to` so its pod starts and catches up */
  | { type: 'grow'; to: number; nodeId: number }
  /** retire broker `nodeId` (idempotent); the StatefulSet keeps its pod until the broker is out of every group */
  | { type: 'remove'; nodeId: number }
  /** broker `nodeId` is out of every group: shrink the StatefulSet to `to` */
  | { type: 'shrink'; to: number; nodeId: number };

/**
 * One member at a time toward spec.replicas, through the admin API's membership changes (the broker runs learner →
 * catch-up → promote, and moves replicas). Refuses to go below the largest replication factor in use; grows only
 * when every pod is Ready and no membership change is in flight; shrinks the StatefulSet only after the broker left
 * every group. `nodeIdOf` maps an ordinal to its broker's node id.
 */
export function scaleStep(args: {
  current: number; desired: number; readyPods: number; maxReplicationFactor: number | undefined; membershipSupported: boolean;
  membership?: MemberState[] | undefined; nodeIdOf?: (ordinal: number) => number;
  /** The id already allocated (and added) for ordinal `current` whose pod does not exist yet: a grow interrupted before the StatefulSet grew is repeated, not waited on. */
  pendingNodeId?: number | undefined;
}): ScaleStep {
  const { current, desired, readyPods, maxReplicationFactor } = args;
  const nodeIdOf = args.nodeIdOf ?? ((o: number) => o);
  if (current === desired) return { type: 'none' };
  if (desired < current && maxReplicationFactor !== undefined && desired < maxReplicationFactor) {
    return { type: 'refuse', reason: `spec.replicas=${desired} is below the largest topic replication factor ${maxReplicationFactor}; lower the topics' replication first` };
  }
  if (!args.membershipSupported) {
    return { type: 'refuse', reason: `scaling ${current} → ${desired} needs the broker admin API's membership changes, which this broker version does not support` };
  }
  const m = args.membership;
  if (!m) return { type: 'wait', reason: 'waiting for the controller (metadata leader) to report the membership' };
  if (desired < current) {
    const leaving = nodeIdOf(current - 1);
    const state = m.find((x) => x.nodeId === leaving)?.state;
    if (state === undefined || state === 'removed') return { type: 'shrink', to: current - 1, nodeId: leaving };
    const busy = m.filter((x) => x.nodeId !== leaving && (x.state === 'joining' || x.state === 'removing'));
    if (busy.length > 0) return { type: 'wait', reason: `waiting for membership changes in flight: ${busy.map((x) => `node ${x.nodeId} ${x.state}`).join(', ')}` };
    return { type: 'remove', nodeId: leaving };
  }
  if (readyPods < current) return { type: 'wait', reason: `waiting for all ${current} pods Ready before the next membership change` };
  const busy = m.filter((x) => (x.state === 'joining' || x.state === 'removing') && x.nodeId !== args.pendingNodeId);
  if (busy.length > 0) return { type: 'wait', reason: `waiting for membership changes in flight: ${busy.map((x) => `node ${x.nodeId} ${x.state}`).join(', ')}` };
  return { type: 'grow', to: current + 1, nodeId: nodeIdOf(current) };
}

/** Largest replication factor in use: the most voters any partition group has, as the brokers report them. */
export function maxReplicationFactor(views: BrokerView[]): number | undefined {
  let max: number | undefined;
  for (const v of views) for (const g of v.groups ?? []) if (g.group !== 'metadata') max = Math.max(max ?? 0, g.voters.length);
  return max;
}

// ---- node ids ----

/** status.nodeIds: ordinal (as a string key) → node id. */
export type NodeIdMap = Readonly<Record<string, number>>;

/** The node id of the broker at `ordinal`: recorded in status.nodeIds, else the ordinal (a first-generation broker). */
export function nodeIdOf(nodeIds: NodeIdMap | undefined, ordinal: number): number {
  return nodeIds?.[String(ordinal)] ?? ordinal;
}

/**
 * The ordinal → node id table to record for ordinals 0..replicas-1 (defaults filled in), plus `extra` ordinals that
 * already have an id allocated (a scale-up step whose pod does not exist yet). Entries of ordinals beyond are
 * dropped: a scaled-down ordinal's id is retired, the next broker there gets a new one.
 */
export function nodeIdTable(nodeIds: NodeIdMap | undefined, replicas: number, extra: readonly number[] = []): Record<string, number> {
  const out: Record<string, number> = {};
  for (let o = 0; o < replicas; o++) out[String(o)] = nodeIdOf(nodeIds, o);
  for (const o of extra) if (nodeIds?.[String(o)] !== undefined) out[String(o)] = nodeIds[String(o)]!;
  return out;
}

/**
 * A node id never handed out before: above status.nextNodeId, above every id recorded per ordinal, every founder,
 * every ordinal in use (a broker without a recorded id runs as its ordinal) and every id the brokers' registry knows
 * (removed ones included: the broker refuses a removed id). Returns the id and the next nextNodeId. The caller
 * records both in status (resourceVersion-guarded) before a pod with that id can exist, so neither an operator
 * restart nor a second operator replica with a stale view can hand it out again.
 */
export function allocateNodeId(args: { nextNodeId?: number | undefined; nodeIds?: NodeIdMap | undefined; founders?: readonly number[] | undefined; ordinalsInUse: number; known: readonly number[] }): { nodeId: number; nextNodeId: number } {
  const candidates = [
    args.nextNodeId ?? 0,
    args.ordinalsInUse,
    ...Object.values(args.nodeIds ?? {}).map((id) => id + 1),
    ...(args.founders ?? []).map((id) => id + 1),
    ...args.known.map((id) => id + 1),
  ];
  const nodeId = Math.max(...candidates);
  return { nodeId, nextNodeId: nodeId + 1 };
}

/** A node replacement in progress (status.replacement). */
export interface ReplacementState {
  pod: string;
  ordinal: number;
  podUid: string;
  oldNodeId: number;
  newNodeId: number;
  reason: 'annotation' | 'pvc-lost' | 'node-lost';
  phase: 'removing' | 'joining';
}

export type ReplacementAction =
  | { type: 'wait'; reason: string }
  /** the old broker still leads the metadata group: hand leadership over before it is removed */
  | { type: 'transfer-leader'; pod: string }
  /** `members remove` of the old id (idempotent; the broker moves its replicas and drops it from every group) */
  | { type: 'remove'; nodeId: number }
  /** the old id left every group: record ordinal → new id, render peers.yaml, delete the PVC and (if `deletePod`) the old pod (`force`: at once, its kubelet is gone) */
  | { type: 'recreate'; deletePod: boolean; force?: boolean; wrongId?: number }
  /** the successor pod exists: `members add` the new id (learner → caught up → promoted by the broker) */
  | { type: 'add'; nodeId: number }
  /** the new id is an active voter: the replacement is over */
  | { type: 'done' };

/**
 * The next step of a replacement: old id out (transfer → remove → wait until removed) → ordinal mapped to the new
 * id, old pod and PVC deleted → successor added and promoted. Resumable from status alone: the old pod is told
 * from its successor by uid. `membership` is the controller's registry (undefined: unknown right now).
 */
export function replacementStep(args: { state: ReplacementState; pods: PodObservation[]; membership: MemberState[] | undefined; leader: string | undefined; views: BrokerView[] }): ReplacementAction {
  const { state, pods, membership, views } = args;
  if (!membership) return { type: 'wait', reason: 'waiting for the controller (metadata leader) to report the membership' };
  const pod = pods.find((p) => p.ordinal === state.ordinal);
  const oldPod = pod?.uid === state.podUid ? pod : undefined;
  if (state.phase === 'removing') {
    const old = membership.find((m) => m.nodeId === state.oldNodeId)?.state;
    if (old === undefined || old === 'removed') {
      // A pod on a lost node never finishes a graceful deletion: it is force-deleted (its broker is gone anyway).
      if (state.reason === 'node-lost') return { type: 'recreate', deletePod: pod !== undefined, force: true };
      // Whatever pod is at the ordinal now started before the new id was mapped (the old one, or one recreated
      // meanwhile under the old id): it goes.
      return { type: 'recreate', deletePod: pod !== undefined && !pod.deleting };
    }
    if (old === 'removing') return { type: 'wait', reason: `waiting for node ${state.oldNodeId} (${state.pod}) to leave every group` };
    if (oldPod && args.leader === oldPod.name && pods.length > 1) return { type: 'transfer-leader', pod: oldPod.name };
    return { type: 'remove', nodeId: state.oldNodeId };
  }
  // joining
  if (oldPod && state.reason === 'node-lost') return { type: 'recreate', deletePod: true, force: true };
  if (oldPod && !oldPod.deleting) return { type: 'recreate', deletePod: true };
  if (!pod || pod.deleting || oldPod) return { type: 'wait', reason: `waiting for the StatefulSet to recreate ${state.pod}` };
  const view = views.find((v) => v.pod === pod.name);
  // Started under another id (a kubelet that mounted a stale peers.yaml): its fresh volume now names that id, so
  // volume and pod go again; the next pod reads the current peers.yaml.
  if (view && view.nodeId !== state.newNodeId) return { type: 'recreate', deletePod: !pod.deleting, wrongId: view.nodeId };
  const now = membership.find((m) => m.nodeId === state.newNodeId)?.state;
  if (now === undefined) return { type: 'add', nodeId: state.newNodeId };
  if (now === 'active') return { type: 'done' };
  if (now === 'joining') return { type: 'wait', reason: `node ${state.newNodeId} (${pod.name}) is catching up as a learner` };
  return { type: 'wait', reason: `node ${state.newNodeId} (${pod.name}) is ${now}: removed by someone else; remove the replacement from status or annotate the pod again` };
}

// ---- split brain and fencing ----

export interface SplitBrain {
  group: string;
  claimants: { pod: string; term: number | undefined }[];
  /** Pods to fence: every claimant with a lower term than the highest. Empty when terms are unknown or tied. */
  fence: string[];
}

/** Groups that more than one broker claims to lead, and who loses (the lower term). */
export function detectSplitBrain(views: BrokerView[]): SplitBrain[] {
  const byGroup = new Map<string, { pod: string; term: number | undefined }[]>();
  for (const v of views) {
    for (const l of v.leads) {
      const list = byGroup.get(l.group) ?? [];
      list.push({ pod: v.pod, term: l.term });
      byGroup.set(l.group, list);
    }
  }
  const out: SplitBrain[] = [];
  for (const [group, claimants] of [...byGroup].sort(([a], [b]) => a.localeCompare(b))) {
    if (claimants.length < 2) continue;
    const known = claimants.every((c) => c.term !== undefined);
    const max = Math.max(...claimants.map((c) => c.term ?? -1));
    const winners = claimants.filter((c) => c.term === max);
    const fence = known && winners.length === 1 ? claimants.filter((c) => c.term! < max).map((c) => c.pod) : [];
    out.push({ group, claimants, fence });
  }
  return out;
}

/**
 * Which pods to fence/unfence: the union of split-brain losers and the manual annotation, compared with the pods'
 * current fence labels. `autoFenced` are pods the operator fenced automatically earlier (kept in status members)
 * and that stay fenced until the split brain is healed and they are caught up.
 */
export function fencingPlan(args: { pods: PodObservation[]; manual: string[]; splitBrainLosers: string[]; views: BrokerView[]; maxLag?: number; voters?: number }): { fence: string[]; unfence: string[]; desired: Set<string>; refused: string[] } {
  // Automatic fencing never takes away the majority: fenced brokers neither vote nor campaign, so fencing members of
  // the majority would stop the cluster electing. (Manual fencing is the user's call.)
  const voters = args.voters ?? args.pods.length;
  const unfencedAfter = args.pods.filter((p) => !args.manual.includes(p.name) && !args.splitBrainLosers.includes(p.name)).length;
  const refused = unfencedAfter < Math.floor(voters / 2) + 1 ? args.splitBrainLosers.filter((p) => !args.manual.includes(p)) : [];
  const want = new Set([...args.manual, ...args.splitBrainLosers.filter((p) => !refused.includes(p))]);
  const maxLag = args.maxLag ?? 0;
  const fence: string[] = [];
  const unfence: string[] = [];
  for (const p of args.pods) {
    // Also again when the broker says it is not fenced although labelled (an earlier admin call failed).
    if (want.has(p.name) && (!p.fencedLabel || args.views.find((x) => x.pod === p.name)?.fenced === false)) fence.push(p.name);
    if (!want.has(p.name) && p.fencedLabel) {
      // Unfence only once the broker reports itself caught up (when lag is reported at all).
      const v = args.views.find((x) => x.pod === p.name);
      if (v && v.lag !== undefined && v.lag > maxLag) continue;
      unfence.push(p.name);
    }
  }
  return { fence, unfence, desired: want, refused };
}

// ---- node replacement ----

export type ReplaceStep = { type: 'none' } | { type: 'transfer-leader'; pod: string } | { type: 'replace'; pod: string; reason: 'annotation' | 'pvc-lost' | 'node-lost' };

/**
 * One replacement at a time; never the current leader (its leadership is transferred first). `nodeLost`: pods whose
 * node has been unreachable beyond the grace period (also when already marked for deletion: it never completes).
 */
export function replaceStep(args: { pods: PodObservation[]; pvcMissing: string[]; nodeLost?: string[]; leader: string | undefined; replicas: number }): ReplaceStep {
  const lost = args.nodeLost ?? [];
  const candidates = args.pods
    .filter((p) => (!p.deleting && (p.replaceRequested || args.pvcMissing.includes(p.name))) || lost.includes(p.name))
    .sort((a, b) => a.ordinal - b.ordinal);
  const first = candidates.find((p) => p.name !== args.leader) ?? candidates[0];
  if (!first) return { type: 'none' };
  const reason = first.replaceRequested && !first.deleting ? 'annotation' : args.pvcMissing.includes(first.name) && !first.deleting ? 'pvc-lost' : 'node-lost';
  if (first.name === args.leader && args.replicas > 1) return { type: 'transfer-leader', pod: first.name };
  return { type: 'replace', pod: first.name, reason };
}

// ---- status ----

export function phaseOf(args: { specValid: boolean; podsExist: number; readyPods: number; replicas: number; rollingOut: boolean; scaling: boolean; splitBrain: boolean; everRunning: boolean }): LanceClusterPhase {
  if (!args.specValid) return 'Failed';
  if (args.splitBrain) return 'Degraded';
  if (args.scaling) return 'Scaling';
  if (args.rollingOut) return 'Updating';
  if (args.readyPods >= args.replicas && args.podsExist >= args.replicas) return 'Running';
  if (args.everRunning) return 'Degraded';
  return args.podsExist === 0 ? 'Pending' : 'Creating';
}

export function members(pods: PodObservation[], views: BrokerView[], nodeIds?: NodeIdMap): Member[] {
  return [...pods].sort((a, b) => a.ordinal - b.ordinal).map((p) => {
    const v = views.find((x) => x.pod === p.name);
    const role: Member['role'] = !v ? 'Unknown' : v.role === 'Standalone' ? 'Leader' : v.role;
    // What the broker says; else the id recorded for its ordinal.
    const nodeId = v?.nodeId ?? nodeIds?.[String(p.ordinal)];
    return {
      ordinal: p.ordinal,
      pod: p.name,
      ...(nodeId !== undefined ? { nodeId } : {}),
      role,
      ...(v?.term !== undefined ? { term: v.term } : {}),
      ...(v?.lag !== undefined ? { lag: v.lag } : {}),
      fenced: p.fencedLabel,
      ready: p.ready,
    };
  });
}

/** The metadata-group leader: the broker that says it leads (standalone counts), the highest term if several. */
export function leaderOf(views: BrokerView[]): BrokerView | undefined {
  const leaders = views.filter((v) => v.role === 'Leader' || v.role === 'Standalone');
  return leaders.sort((a, b) => (b.term ?? -1) - (a.term ?? -1))[0];
}

export function withCondition(conditions: LanceClusterCondition[] | undefined, type: LanceClusterConditionType, status: 'True' | 'False', reason: string, message: string, generation: number, now: Date): LanceClusterCondition[] {
  return setCondition(conditions as Condition<LanceClusterConditionType>[] | undefined, { type, status, reason, message, observedGeneration: generation }, now) as LanceClusterCondition[];
}

/** Deep equality of two statuses, so an unchanged status is never written (no resourceVersion churn, no event loop). */
export function statusChanged(old: LanceClusterStatus | undefined, next: LanceClusterStatus): boolean {
  return canonical(old ?? {}) !== canonical(next);
}

function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (x && typeof x === 'object' && !Array.isArray(x)) {
      return Object.fromEntries(Object.entries(x as Record<string, unknown>).filter(([, y]) => y !== undefined).sort(([a], [b]) => a.localeCompare(b)));
    }
    return x;
  });
}
