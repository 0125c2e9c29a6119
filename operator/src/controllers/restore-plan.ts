/**
 * LanceRestore decisions, as pure functions: observed state in (the restore's status, the target LanceCluster, its
 * PVCs, the restore Jobs and what the restored brokers report), one step out. The controller (restore-controller.ts)
 * does the I/O. Progress lives in the restore's status (phase) and on the target (annotation
 * `lance.dev/restored-by`), so a restarted operator resumes and adopts the Jobs it created.
 *
 * Flow: Pending (gate: the target must be new or verified empty) → Restoring (PVCs first, then one `lnc restore`
 * Job per PVC) → Starting (the target cluster created / resumed) → Succeeded once it is Ready and lists the
 * restored topics. A failed Job is terminal (Failed, with the Job's reason and the restore's own error).
 */
import type { LanceRestoreCondition, LanceRestoreConditionType, LanceRestorePhase, LanceRestoreStatus } from '../api/lancerestore.ts';
import type { RestorePoint } from '../api/lancecluster.ts';
import { setCondition, type Condition } from '../api/conditions.ts';

export type RestoreMode = 'new' | 'existing';

/** What `lnc restore` reported about the data it wrote (parsed from the Job pod's output). */
export interface RestoreSummary {
  restorePoint?: RestorePoint;
  /** Names of the restored topics, when reported. */
  topics?: string[];
  topicCount?: number;
  bytes?: number;
}

export interface ObservedJob {
  name: string;
  ordinal: number;
  state: 'active' | 'succeeded' | 'failed';
  /** The Job's Failed condition (e.g. BackoffLimitExceeded). */
  reason?: string;
  message?: string;
  /** The failed container's own words: its termination message or the tail of its log. */
  detail?: string;
  summary?: RestoreSummary;
}

export interface ObservedPvc {
  name: string;
  ordinal: number;
  /** Labelled `lance.dev/restore=<this restore>`: created by this restore, so empty or holding its output. */
  ownedByThis: boolean;
  deleting: boolean;
}

export interface ObservedTarget {
  exists: boolean;
  /** Annotation `lance.dev/restored-by` names this restore (created by it, or taken over after the empty check). */
  restoredByThis: boolean;
  /** Reconciliation paused (`lance.dev/reconcile=disabled`). */
  paused: boolean;
  statefulSetExists: boolean;
  /** LanceCluster condition Ready=True. */
  ready: boolean;
  /** Broker pods that exist (any state). */
  pods: number;
  /** Topics the brokers report (admin API); undefined when no broker answered. Internal `__*` topics excluded. */
  topics?: { name: string; bytes?: number }[];
}

export interface RestoreObservation {
  name: string;
  generation: number;
  status: LanceRestoreStatus | undefined;
  /** The spec failed validation (message names the field). */
  specError?: string;
  /** clusterRef names no cluster / a cluster without an object store (message names spec.clusterRef). */
  sourceError?: string;
  mode: RestoreMode;
  targetName: string;
  /** Brokers of the target = PVCs and restore Jobs. */
  replicas: number;
  /** `spec.topics` of the restore, when only some topics are restored. */
  requestedTopics?: string[];
  target: ObservedTarget;
  /** The target's broker PVCs (`data-<target>-<i>`) that exist. */
  pvcs: ObservedPvc[];
  /** Restore Jobs owned by this LanceRestore. */
  jobs: ObservedJob[];
  /** Expected Job name per ordinal. */
  jobNames: string[];
}

export type RestoreStep =
  /** Terminal phase reached earlier: nothing to do. */
  | { type: 'none' }
  /** Not allowed to proceed (target exists / not empty / source missing); re-checked later, nothing changed. */
  | { type: 'refuse'; condition: 'TargetNotEmpty' | 'Progressing'; reason: string; message: string }
  | { type: 'fail'; reason: string; message: string }
  | { type: 'wait'; reason: string; message: string }
  /** Existing target verified empty: annotate it restored-by + pause it, then delete its StatefulSet. */
  | { type: 'stop-target' }
  /** Existing target's old (empty) PVCs, replaced by fresh ones for the restore. */
  | { type: 'delete-pvcs'; names: string[] }
  | { type: 'create-pvcs'; ordinals: number[] }
  | { type: 'create-jobs'; ordinals: number[] }
  /** Create the new LanceCluster, or un-pause the existing one. */
  | { type: 'start-target' }
  | { type: 'succeed'; message: string };

export interface RestorePlan {
  phase: LanceRestorePhase;
  step: RestoreStep;
}

const TERMINAL: readonly LanceRestorePhase[] = ['Succeeded', 'Failed'];

export function isTerminal(phase: LanceRestorePhase | undefined): boolean {
  return phase !== undefined && TERMINAL.includes(phase);
}

const list = (xs: string[], max = 5): string => (xs.length <= max ? xs.join(', ') : `${xs.slice(0, max).join(', ')} and ${xs.length - max} more`);

/** Topics the restored cluster must list before the restore counts as Succeeded. */
export function expectedTopics(obs: Pick<RestoreObservation, 'requestedTopics' | 'jobs'>): string[] {
  if (obs.requestedTopics && obs.requestedTopics.length > 0) return [...obs.requestedTopics].sort();
  const reported = obs.jobs.find((j) => j.summary?.topics !== undefined)?.summary?.topics;
  return reported ? [...reported].sort() : [];
}

/** The one next step. Order matters: each guard returns early. */
export function planRestore(obs: RestoreObservation): RestorePlan {
  const phase = obs.status?.phase;
  if (isTerminal(phase)) return { phase: phase!, step: { type: 'none' } };
  if (obs.specError) return { phase: 'Failed', step: { type: 'fail', reason: 'InvalidSpec', message: obs.specError } };
  if (obs.sourceError) return { phase: 'Pending', step: { type: 'refuse', condition: 'Progressing', reason: 'SourceNotFound', message: obs.sourceError } };

  const t = obs.target;
  const started = phase === 'Restoring' || phase === 'Starting';
  // Gate: only a new target, or an existing one verified empty, is restored into. Once past it (phase moved on, or
  // the target carries our restored-by annotation) it is not re-checked: the restore itself fills the target.
  if (!started && !t.restoredByThis) {
    if (obs.mode === 'new') {
      if (t.exists) {
        return refuse('TargetExists', `LanceCluster ${obs.targetName} already exists; a restore with target.spec creates a new cluster: delete it, pick another target.clusterName, or set target.existing: true to restore into it when it is empty`);
      }
      const foreign = obs.pvcs.filter((p) => !p.ownedByThis).map((p) => p.name);
      if (foreign.length > 0) {
        return refuse('PvcExists', `PersistentVolumeClaim ${list(foreign)} already exists and may hold data of an earlier cluster named ${obs.targetName}; delete it or pick another target.clusterName`);
      }
    } else {
      if (!t.exists) return { phase: 'Pending', step: { type: 'refuse', condition: 'Progressing', reason: 'TargetNotFound', message: `target.existing is set but LanceCluster ${obs.targetName} does not exist` } };
      if (t.topics === undefined) {
        return { phase: 'Pending', step: { type: 'wait', reason: 'VerifyingTargetEmpty', message: `waiting for a broker of ${obs.targetName} to answer, to verify the target has no topics` } };
      }
      if (t.topics.length > 0) {
        return refuse('TargetHasTopics', `LanceCluster ${obs.targetName} is not empty: it has topic${t.topics.length > 1 ? 's' : ''} ${list(t.topics.map((x) => x.name))}; restore into a new cluster (target.spec) instead`);
      }
      return { phase: 'Restoring', step: { type: 'stop-target' } };
    }
  }

  if (obs.mode === 'existing' && !t.exists) {
    return { phase: 'Failed', step: { type: 'fail', reason: 'TargetDeleted', message: `LanceCluster ${obs.targetName} was deleted while it was being restored into` } };
  }

  if (phase !== 'Starting') {
    // Existing target: its brokers stop and its (verified empty) PVCs are replaced before the Jobs write into new ones.
    if (obs.mode === 'existing') {
      if (!t.paused || t.statefulSetExists) return { phase: 'Restoring', step: { type: 'stop-target' } };
      if (t.pods > 0) return wait('Restoring', 'StoppingTarget', `waiting for the ${t.pods} broker pod(s) of ${obs.targetName} to stop`);
      const old = obs.pvcs.filter((p) => !p.ownedByThis && !p.deleting).map((p) => p.name);
      if (old.length > 0) return { phase: 'Restoring', step: { type: 'delete-pvcs', names: old } };
    }
    const deleting = obs.pvcs.filter((p) => p.deleting).map((p) => p.name);
    if (deleting.length > 0) return wait('Restoring', 'WaitingForPvcs', `waiting for PersistentVolumeClaim ${list(deleting)} to be deleted`);
    const missingPvcs = range(obs.replicas).filter((o) => !obs.pvcs.some((p) => p.ordinal === o));
    if (missingPvcs.length > 0) return { phase: 'Restoring', step: { type: 'create-pvcs', ordinals: missingPvcs } };

    const failed = obs.jobs.filter((j) => j.state === 'failed').sort((a, b) => a.ordinal - b.ordinal);
    if (failed.length > 0) {
      const j = failed[0]!;
      const why = [j.reason, j.message].filter(Boolean).join(': ') || 'failed';
      return { phase: 'Failed', step: { type: 'fail', reason: 'JobFailed', message: `restore Job ${j.name} failed (${why})${j.detail ? `: ${j.detail}` : ''}` } };
    }
    const missingJobs = range(obs.replicas).filter((o) => !obs.jobs.some((j) => j.ordinal === o));
    if (missingJobs.length > 0) return { phase: 'Restoring', step: { type: 'create-jobs', ordinals: missingJobs } };
    const done = obs.jobs.filter((j) => j.state === 'succeeded').length;
    if (done < obs.replicas) return wait('Restoring', 'RestoreJobsRunning', `${done} of ${obs.replicas} restore Jobs done`);
  }

  // Starting: every PVC holds restored data; bring the target up and check what it serves.
  const needsStart = obs.mode === 'new' ? !t.exists : t.paused;
  if (needsStart) return { phase: 'Starting', step: { type: 'start-target' } };
  if (!t.ready) return wait('Starting', 'WaitingForTarget', `waiting for LanceCluster ${obs.targetName} to be Ready`);
  if (t.topics === undefined) return wait('Starting', 'WaitingForTopics', `waiting for a broker of ${obs.targetName} to list its topics`);
  const have = new Set(t.topics.map((x) => x.name));
  const missing = expectedTopics(obs).filter((x) => !have.has(x));
  if (missing.length > 0) return wait('Starting', 'TopicsMissing', `LanceCluster ${obs.targetName} is Ready but does not list restored topic(s) ${list(missing)} yet`);
  return { phase: 'Succeeded', step: { type: 'succeed', message: `LanceCluster ${obs.targetName} is Ready with ${t.topics.length} topic(s)${t.topics.length ? `: ${list(t.topics.map((x) => x.name).sort())}` : ''}` } };

  function refuse(reason: string, message: string): RestorePlan {
    return { phase: 'Pending', step: { type: 'refuse', condition: 'TargetNotEmpty', reason, message } };
  }
}

function wait(phase: LanceRestorePhase, reason: string, message: string): RestorePlan {
  return { phase, step: { type: 'wait', reason, message } };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/**
 * The status after `plan` was carried out: phase, conditions (Ready / Progressing / Failed / TargetNotEmpty),
 * restore point and amounts (from the Jobs' summaries; topics/bytes from the restored cluster when the restore did
 * not report them), Job names once created, start/finish times.
 */
export function nextStatus(obs: RestoreObservation, plan: RestorePlan, now: Date): LanceRestoreStatus {
  const old = obs.status ?? {};
  if (plan.step.type === 'none') return old;
  const gen = obs.generation;
  const iso = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  let conditions = old.conditions as Condition<LanceRestoreConditionType>[] | undefined;
  const cond = (type: LanceRestoreConditionType, status: 'True' | 'False', reason: string, message: string): void => {
    conditions = setCondition(conditions, { type, status, reason, message, observedGeneration: gen }, now);
  };
  const s = plan.step;
  if (s.type === 'refuse' && s.condition === 'TargetNotEmpty') cond('TargetNotEmpty', 'True', s.reason, s.message);
  else if (conditions?.some((c) => c.type === 'TargetNotEmpty')) cond('TargetNotEmpty', 'False', 'TargetUsable', `target ${obs.targetName} can be restored into`);
  switch (s.type) {
    case 'fail':
      cond('Failed', 'True', s.reason, s.message);
      cond('Progressing', 'False', s.reason, s.message);
      cond('Ready', 'False', s.reason, s.message);
      break;
    case 'succeed':
      cond('Ready', 'True', 'Restored', s.message);
      cond('Progressing', 'False', 'Restored', s.message);
      break;
    case 'refuse':
      cond('Progressing', 'False', s.reason, s.message);
      cond('Ready', 'False', s.reason, s.message);
      break;
    case 'wait':
      cond('Progressing', 'True', s.reason, s.message);
      cond('Ready', 'False', s.reason, s.message);
      break;
    default: {
      const msg = stepMessage(obs, s);
      cond('Progressing', 'True', stepReason(s), msg);
      cond('Ready', 'False', stepReason(s), msg);
    }
  }
  const summary = obs.jobs.find((j) => j.ordinal === 0 && j.summary)?.summary ?? obs.jobs.find((j) => j.summary)?.summary;
  const jobBytes = obs.jobs.reduce((a, j) => a + (j.summary?.bytes ?? 0), 0);
  const anyBytes = obs.jobs.some((j) => j.summary?.bytes !== undefined);
  const jobsCreated = obs.jobs.length > 0 || s.type === 'create-jobs' || old.jobNames !== undefined;
  const beyondGate = plan.phase !== 'Pending';
  const topicsRestored = summary?.topics?.length ?? summary?.topicCount ?? old.topicsRestored ?? (plan.phase === 'Succeeded' ? obs.target.topics?.length : undefined);
  const clusterBytes = obs.target.topics?.every((x) => x.bytes !== undefined) ? obs.target.topics.reduce((a, x) => a + (x.bytes ?? 0), 0) : undefined;
  const bytesRestored = anyBytes ? jobBytes : old.bytesRestored ?? (plan.phase === 'Succeeded' ? clusterBytes : undefined);
  const restorePoint = summary?.restorePoint ?? old.restorePoint;
  const finished = plan.phase === 'Succeeded' || plan.phase === 'Failed';
  return {
    phase: plan.phase,
    conditions: conditions as LanceRestoreCondition[],
    observedGeneration: gen,
    ...(restorePoint ? { restorePoint } : {}),
    ...(topicsRestored !== undefined ? { topicsRestored } : {}),
    ...(bytesRestored !== undefined ? { bytesRestored } : {}),
    ...(jobsCreated ? { jobNames: obs.jobNames } : {}),
    ...(old.startTime ? { startTime: old.startTime } : beyondGate || finished ? { startTime: iso } : {}),
    ...(finished ? { completionTime: old.completionTime ?? iso } : {}),
  };
}

function stepReason(s: RestoreStep): string {
  switch (s.type) {
    case 'stop-target': return 'StoppingTarget';
    case 'delete-pvcs': return 'ReplacingPvcs';
    case 'create-pvcs': return 'CreatingPvcs';
    case 'create-jobs': return 'RestoreJobsRunning';
    case 'start-target': return 'StartingTarget';
    default: return 'Progressing';
  }
}

/** Human text of an action step, for the Progressing condition and the Event. */
export function stepMessage(obs: Pick<RestoreObservation, 'targetName' | 'jobNames'>, s: RestoreStep): string {
  switch (s.type) {
    case 'stop-target': return `LanceCluster ${obs.targetName} has no topics: pausing it and stopping its brokers to restore into it`;
    case 'delete-pvcs': return `replacing the empty target's PersistentVolumeClaim ${list(s.names)} with fresh ones for the restore`;
    case 'create-pvcs': return `creating PersistentVolumeClaim ${list(s.ordinals.map((o) => `data-${obs.targetName}-${o}`))}`;
    case 'create-jobs': return `starting restore Job ${list(s.ordinals.map((o) => obs.jobNames[o] ?? String(o)))}`;
    case 'start-target': return `every restore Job succeeded: starting LanceCluster ${obs.targetName}`;
    case 'refuse': case 'fail': case 'wait': case 'succeed': return s.message;
    case 'none': return '';
  }
}

/**
 * What `lnc restore --json` printed about its work: the last JSON object in its output (pretty-printed over several
 * lines, or on one line) that carries a restore point, topics or bytes. Shapes: lnc's RestoreReport
 * (`restorePoint: {key, takenAt}`, `topics: [{name}]`, `bytes`), or `restorePoint: {id, time}` / a string id with
 * `restorePointTime`, `topics` as names or a count, `topicsRestored`, `bytesRestored`. Anything else → undefined.
 */
export function parseRestoreSummary(output: string): RestoreSummary | undefined {
  const lines = output.split('\n');
  const starts = lines.map((l, i) => (l.startsWith('{') ? i : -1)).filter((i) => i >= 0);
  const ends = lines.map((l, i) => (/^[{}]/.test(l) && l.trimEnd().endsWith('}') ? i : -1)).filter((i) => i >= 0);
  for (let si = starts.length - 1; si >= 0; si--) {
    const from = starts[si]!;
    for (const to of ends) {
      if (to < from) continue;
      let v: unknown;
      try {
        v = JSON.parse(lines.slice(from, to + 1).join('\n'));
      } catch {
        continue;
      }
      const out = summaryOf(v);
      if (out) return out;
      break;
    }
  }
  return undefined;
}

function summaryOf(v: unknown): RestoreSummary | undefined {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const out: RestoreSummary = {};
  const rp = o.restorePoint;
  const isoOf = (x: unknown): string | undefined => (typeof x === 'string' && !Number.isNaN(Date.parse(x)) ? new Date(x).toISOString().replace(/\.\d{3}Z$/, 'Z') : undefined);
  if (rp && typeof rp === 'object') {
    const r = rp as Record<string, unknown>;
    const id = typeof r.id === 'string' ? r.id : typeof r.key === 'string' ? r.key : undefined;
    const time = isoOf(r.time) ?? isoOf(r.takenAt) ?? isoOf(o.restorePointTime);
    if (id && time) out.restorePoint = { id, time };
  } else if (typeof rp === 'string') {
    const time = isoOf(o.restorePointTime);
    if (time) out.restorePoint = { id: rp, time };
  }
  if (Array.isArray(o.topics) && o.topics.every((x) => typeof x === 'string' || (x && typeof x === 'object' && typeof (x as { name?: unknown }).name === 'string'))) {
    out.topics = (o.topics as unknown[]).map((x) => (typeof x === 'string' ? x : (x as { name: string }).name));
  } else if (isCount(o.topics)) out.topicCount = o.topics;
  if (isCount(o.topicsRestored)) out.topicCount = o.topicsRestored;
  for (const k of ['bytes', 'bytesRestored', 'bytesWritten']) if (isCount(o[k])) out.bytes = o[k];
  return Object.keys(out).length > 0 ? out : undefined;
}

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0;
}

/** Last few meaningful lines of a failed container's output, bounded, for a condition message. */
export function failureDetail(output: string, maxChars = 600): string | undefined {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  if (lines.length === 0) return undefined;
  // Prefer lines that look like the CLI's error ("lnc: CODE: ...", "error", "Error").
  const errs = lines.filter((l) => /error|lnc:|[A-Z_]{4,}:/i.test(l));
  const pick = (errs.length > 0 ? errs : lines).slice(-3).join(' | ');
  return pick.length > maxChars ? `${pick.slice(0, maxChars - 1)}…` : pick;
}
