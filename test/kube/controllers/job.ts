import { Controller, ignoreRace } from './base.ts';
import type { KObject } from '../types.ts';
import { clone, deepEqual } from '../types.ts';
import { recordEvent } from './events.ts';
import { controllerRef, nowTs, ownedBy, randomSuffix } from './util.ts';

/**
 * Job controller: runs up to `parallelism` pods until `completions` succeeded (Complete), or more than `backoffLimit`
 * pods failed (Failed, reason BackoffLimitExceeded; active pods are deleted). Status: active, ready, succeeded,
 * failed, startTime, completionTime, conditions.
 */
export class JobController extends Controller {
  protected override interested(ev: { tk: string }): boolean { return ev.tk === 'batch/jobs' || ev.tk === '/pods'; }

  protected reconcile(): void {
    const s = this.store;
    const jobT = s.type('batch', 'jobs')!;
    const podT = s.type('', 'pods')!;
    for (const job of s.list(jobT, undefined).items) {
      if (job.metadata.deletionTimestamp) continue;
      const ns = job.metadata.namespace!;
      const spec = job.spec;
      const conds: Record<string, unknown>[] = job.status?.conditions ?? [];
      const finished = conds.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
      const pods = s.list(podT, ns).items.filter((p) => ownedBy(p, job));
      const succeeded = pods.filter((p) => p.status?.phase === 'Succeeded').length;
      const failed = pods.filter((p) => p.status?.phase === 'Failed').length;
      const active = pods.filter((p) => !['Succeeded', 'Failed'].includes(p.status?.phase) && !p.metadata.deletionTimestamp);
      const completions: number = spec.completions ?? 1;
      const status = clone(job.status ?? {});
      status.startTime ??= nowTs();
      let newConds = clone(conds);
      if (!finished) {
        if (succeeded >= completions) {
          const t = nowTs();
          newConds = [...newConds, { type: 'SuccessCriteriaMet', status: 'True', reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods', lastProbeTime: t, lastTransitionTime: t },
            { type: 'Complete', status: 'True', reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods', lastProbeTime: t, lastTransitionTime: t }];
          status.completionTime = t;
          recordEvent(s, job, 'Normal', 'Completed', 'Job completed', 'job-controller');
          for (const p of active) ignoreRace(() => s.delete(podT, ns, p.metadata.name!));
        } else if (failed > (spec.backoffLimit ?? 6)) {
          const t = nowTs();
          newConds = [...newConds, { type: 'FailureTarget', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit', lastProbeTime: t, lastTransitionTime: t },
            { type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit', lastProbeTime: t, lastTransitionTime: t }];
          recordEvent(s, job, 'Warning', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit', 'job-controller');
          for (const p of active) ignoreRace(() => s.delete(podT, ns, p.metadata.name!));
        } else if (!spec.suspend) {
          const want = Math.min(spec.parallelism ?? 1, completions - succeeded) - active.length;
          for (let i = 0; i < want; i++) {
            const made = ignoreRace(() => s.create(podT, ns, this.podFor(job)));
            if (made) recordEvent(s, job, 'Normal', 'SuccessfulCreate', `Created pod: ${made.metadata.name}`, 'job-controller');
          }
        }
      }
      const nowActive = s.list(podT, ns).items.filter((p) => ownedBy(p, job) && !['Succeeded', 'Failed'].includes(p.status?.phase) && !p.metadata.deletionTimestamp);
      status.active = nowActive.length;
      status.ready = nowActive.filter((p) => (p.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True')).length;
      status.succeeded = succeeded;
      status.failed = failed;
      status.terminating = pods.filter((p) => p.metadata.deletionTimestamp).length;
      status.uncountedTerminatedPods = {};
      if (newConds.length) status.conditions = newConds;
      for (const k of ['active', 'succeeded', 'failed', 'ready', 'terminating'] as const) if (status[k] === 0 && k !== 'ready' && k !== 'terminating') delete status[k];
      if (!deepEqual(status, job.status)) ignoreRace(() => s.update(jobT, ns, job.metadata.name!, { ...job, status }, { subresource: 'status' }));
    }
  }

  private podFor(job: KObject): KObject {
    const t = clone(job.spec.template ?? {});
    return {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: `${job.metadata.name}-${randomSuffix()}`, labels: t.metadata?.labels ?? {}, ...(t.metadata?.annotations ? { annotations: t.metadata.annotations } : {}), ownerReferences: [controllerRef(job)] },
      spec: t.spec,
    };
  }
}
