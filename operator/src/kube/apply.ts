/**
 * Write helpers: create-or-update guarded by resourceVersion (a 409 surfaces as a CONFLICT KubeApiError for the
 * caller to requeue), status writes through the /status subresource with the same guard, and core/v1 Events.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../../broker/src/common/log.ts';
import { silentLogger } from '../../../broker/src/common/log.ts';
import { KINDS } from './kinds.ts';
import { apiVersionOf, isNotFound, type Kind, type KubeObject, type KubeRest } from './rest.ts';

/** True when every field `want` sets has the same value in `have` (server defaults and extra fields ignored). */
export function isSubset(want: unknown, have: unknown): boolean {
  if (want === undefined) return true;
  if (want === null || typeof want !== 'object') return want === have || (typeof want === 'number' && typeof have === 'string' && String(want) === have);
  if (Array.isArray(want)) {
    if (!Array.isArray(have) || have.length !== want.length) return false;
    return want.every((w, i) => isSubset(w, have[i]));
  }
  if (have === null || typeof have !== 'object' || Array.isArray(have)) return false;
  const h = have as Record<string, unknown>;
  return Object.entries(want as Record<string, unknown>).every(([k, v]) => isSubset(v, h[k]));
}

/** `desired` laid over `existing`: objects merge recursively, arrays and scalars from `desired` replace. */
export function overlay<T>(existing: T, desired: unknown): T {
  if (desired === undefined) return existing;
  if (desired === null || typeof desired !== 'object' || Array.isArray(desired)) return desired as T;
  if (existing === null || typeof existing !== 'object' || Array.isArray(existing)) return structuredClone(desired) as T;
  const out: Record<string, unknown> = { ...(existing as Record<string, unknown>) };
  for (const [k, v] of Object.entries(desired as Record<string, unknown>)) out[k] = overlay(out[k], v);
  return out as T;
}

export type ApplyAction = 'created' | 'updated' | 'unchanged';

/** The parts of a desired object compared and written (never status, never server-owned metadata). */
function desiredView(o: KubeObject): Record<string, unknown> {
  const { status: _s, metadata, ...rest } = o as KubeObject & { status?: unknown };
  return { ...rest, metadata: { labels: metadata?.labels, annotations: metadata?.annotations, ownerReferences: metadata?.ownerReferences } };
}

export async function createOrUpdate<T extends KubeObject>(rest: KubeRest, kind: Kind, desired: T): Promise<{ action: ApplyAction; object: T }> {
  const ns = desired.metadata?.namespace;
  const name = desired.metadata!.name!;
  let existing: T | undefined;
  try {
    existing = await rest.get<T>(kind, ns, name);
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  if (!existing) return { action: 'created', object: await rest.create<T>(kind, ns, { apiVersion: apiVersionOf(kind), kind: kind.kind, ...desired }) };
  const want = desiredView(desired);
  if (isSubset(want, existing)) return { action: 'unchanged', object: existing };
  // PUT the existing object with the desired fields laid over it; its resourceVersion makes a concurrent change a 409.
  const body = overlay(existing, want);
  return { action: 'updated', object: await rest.replace<T>(kind, ns, name, body) };
}

/** PUT /status with the object's resourceVersion (409 when someone wrote in between). */
export function writeStatus<T extends KubeObject>(rest: KubeRest, kind: Kind, obj: T, status: unknown): Promise<T> {
  const body = { apiVersion: apiVersionOf(kind), kind: kind.kind, metadata: obj.metadata, status };
  return rest.replace<T>(kind, obj.metadata?.namespace, obj.metadata!.name!, body as unknown as T, 'status');
}

export type EventType = 'Normal' | 'Warning';

export interface RecordedEvent {
  involved: { kind: string; name: string; namespace: string; uid?: string; apiVersion?: string };
  type: EventType;
  reason: string;
  message: string;
}

/**
 * core/v1 Events. Repeats of the same (object, reason, message) within the recorder's lifetime bump `count` on the
 * first Event instead of creating new ones (client-go's aggregation, simplified).
 */
export class EventRecorder {
  private readonly seen = new Map<string, { name: string; count: number }>();
  constructor(private readonly rest: KubeRest, private readonly component = 'lance-operator', private readonly log: Logger = silentLogger) {}

  async record(e: RecordedEvent): Promise<void> {
    const now = new Date().toISOString();
    const key = `${e.involved.namespace}/${e.involved.kind}/${e.involved.name}/${e.involved.uid ?? ''}/${e.type}/${e.reason}/${e.message}`;
    const prior = this.seen.get(key);
    try {
      if (prior) {
        prior.count++;
        await this.rest.mergePatch(KINDS.Event, e.involved.namespace, prior.name, { count: prior.count, lastTimestamp: now });
        return;
      }
      const name = `${e.involved.name}.${randomBytes(8).toString('hex')}`;
      await this.rest.create(KINDS.Event, e.involved.namespace, {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace: e.involved.namespace },
        involvedObject: e.involved,
        reason: e.reason,
        message: e.message.slice(0, 1024),
        type: e.type,
        source: { component: this.component },
        reportingComponent: this.component,
        reportingInstance: this.component,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      } as KubeObject);
      this.seen.set(key, { name, count: 1 });
    } catch (err) {
      // Events are best effort; a failed event must never fail a reconcile.
      this.seen.delete(key);
      this.log.warn({ err, reason: e.reason }, 'could not record event');
    }
  }
}
