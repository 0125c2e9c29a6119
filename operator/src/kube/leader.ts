/**
 * Lease leader election (coordination.k8s.io/v1 Lease), following client-go's leaderelection: a candidate takes the
 * Lease when it is free or its holder has not renewed for leaseDuration as observed on the candidate's OWN clock
 * (time since the record last changed, so clock skew between replicas does not matter); the leader renews every
 * retryPeriod and steps down when it could not renew within renewDeadline. Writes are PUTs guarded by
 * resourceVersion, so two candidates can never both win the same round.
 */
import type { Logger } from '../../../broker/src/common/log.ts';
import { silentLogger } from '../../../broker/src/common/log.ts';
import { LanceError } from '../../../broker/src/common/errors.ts';
import { KINDS } from './kinds.ts';
import { isConflict, isNotFound, type KubeObject, type KubeRest } from './rest.ts';

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}
export interface Lease extends KubeObject {
  spec?: LeaseSpec;
}

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  /** client-go defaults: 15 s / 10 s / 2 s. */
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  log?: Logger;
}

/** Kubernetes MicroTime: RFC 3339 with microseconds. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/Z$/, '000Z');
}

/**
 * Pure decision of one acquire/renew round. `observedAt` is when this candidate last saw the record change.
 */
export function leaseDecision(spec: LeaseSpec | undefined, identity: string, observedAtMs: number, nowMs: number, leaseDurationMs: number): 'acquire' | 'renew' | 'held-by-other' {
  const holder = spec?.holderIdentity ?? '';
  if (holder === identity) return 'renew';
  if (holder === '') return 'acquire';
  return nowMs - observedAtMs > leaseDurationMs ? 'acquire' : 'held-by-other';
}

export class LeaderElector {
  private leading = false;
  private stopped = false;
  private observed: { key: string; at: number } | undefined;
  private lastRenew = 0;
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<void> = Promise.resolve();
  private readonly o: Required<Omit<LeaderElectionOptions, 'log'>> & { log: Logger };

  constructor(private readonly rest: KubeRest, opts: LeaderElectionOptions) {
    this.o = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, log: silentLogger, ...opts };
    if (this.o.renewDeadlineMs >= this.o.leaseDurationMs) throw new LanceError('INVALID_CONFIG', 'leader election: renewDeadline must be shorter than leaseDuration');
  }

  isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    const tick = (): void => {
      if (this.stopped) return;
      this.current = this.round().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.o.retryPeriodMs);
      });
    };
    tick();
  }

  /** Stops campaigning; a leader releases the Lease (holder cleared) so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.current;
    if (this.leading) {
      this.setLeading(false);
      try {
        const lease = await this.rest.get<Lease>(KINDS.Lease, this.o.namespace, this.o.name);
        if (lease.spec?.holderIdentity === this.o.identity) {
          await this.rest.replace<Lease>(KINDS.Lease, this.o.namespace, this.o.name, { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(new Date()) } });
        }
      } catch (err) {
        this.o.log.warn({ err }, 'could not release the lease');
      }
    }
  }

  private setLeading(v: boolean): void {
    if (v === this.leading) return;
    this.leading = v;
    this.o.log.info({ lease: this.o.name, identity: this.o.identity }, v ? 'became leader' : 'stopped leading');
    if (v) this.o.onStartedLeading();
    else this.o.onStoppedLeading();
  }

  private async round(): Promise<void> {
    const now = Date.now();
    try {
      const ok = await this.tryAcquireOrRenew(now);
      if (ok) {
        this.lastRenew = Date.now();
        this.setLeading(true);
        return;
      }
    } catch (err) {
      this.o.log.warn({ err }, 'lease round failed');
    }
    // A leader that could not renew within renewDeadline steps down (it may be partitioned from the apiserver).
    if (this.leading && (Date.now() - this.lastRenew > this.o.renewDeadlineMs || !(await this.stillHolder()))) this.setLeading(false);
  }

  private async stillHolder(): Promise<boolean> {
    try {
      const l = await this.rest.get<Lease>(KINDS.Lease, this.o.namespace, this.o.name);
      return l.spec?.holderIdentity === this.o.identity;
    } catch {
      return true; // unknown: the renew deadline decides
    }
  }

  private async tryAcquireOrRenew(nowMs: number): Promise<boolean> {
    const durationS = Math.ceil(this.o.leaseDurationMs / 1000);
    const nowT = microTime(new Date(nowMs));
    let lease: Lease | undefined;
    try {
      lease = await this.rest.get<Lease>(KINDS.Lease, this.o.namespace, this.o.name);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    if (!lease) {
      try {
        await this.rest.create<Lease>(KINDS.Lease, this.o.namespace, {
          apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.o.name, namespace: this.o.namespace },
          spec: { holderIdentity: this.o.identity, leaseDurationSeconds: durationS, acquireTime: nowT, renewTime: nowT, leaseTransitions: 0 },
        });
        return true;
      } catch (e) {
        if (isConflict(e)) return false; // another candidate created it first
        throw e;
      }
    }
    const key = JSON.stringify(lease.spec ?? {});
    if (!this.observed || this.observed.key !== key) this.observed = { key, at: nowMs };
    // The holder's own duration counts (a released lease says 1 s).
    const holderDurationMs = (lease.spec?.leaseDurationSeconds ?? durationS) * 1000;
    const decision = leaseDecision(lease.spec, this.o.identity, this.observed.at, nowMs, holderDurationMs);
    if (decision === 'held-by-other') return false;
    const spec: LeaseSpec = decision === 'renew'
      ? { ...lease.spec, leaseDurationSeconds: durationS, renewTime: nowT }
      : { holderIdentity: this.o.identity, leaseDurationSeconds: durationS, acquireTime: nowT, renewTime: nowT, leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + 1 };
    try {
      await this.rest.replace<Lease>(KINDS.Lease, this.o.namespace, this.o.name, { ...lease, spec });
      return true;
    } catch (e) {
      if (isConflict(e)) return false;
      throw e;
    }
  }
}
