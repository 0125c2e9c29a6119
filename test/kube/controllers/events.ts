import { randomBytes } from 'node:crypto';
import type { Store } from '../store.ts';
import type { KObject } from '../types.ts';
import { KubeStatusError } from '../status.ts';

/** Records a core/v1 Event about `obj`, as kube's controllers and kubelet do (`kubectl describe` shows them). */
export function recordEvent(store: Store, obj: KObject, type: 'Normal' | 'Warning', reason: string, message: string, component: string): void {
  const ns = obj.metadata.namespace ?? 'default';
  const evT = store.type('', 'events')!;
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  try {
    store.create(evT, ns, {
    apiVersion: 'v1', kind: 'Event',
    metadata: { name: `${obj.metadata.name}.${randomBytes(8).toString('hex')}` },
    involvedObject: { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name, namespace: obj.metadata.namespace, uid: obj.metadata.uid, resourceVersion: obj.metadata.resourceVersion },
    reason, message, type, count: 1, firstTimestamp: now, lastTimestamp: now,
    source: { component }, reportingComponent: component, reportingInstance: component,
    });
  } catch (e) {
    // Best effort, as in kube: an event that cannot be recorded (terminating namespace, …) is dropped.
    if (!(e instanceof KubeStatusError)) throw e;
  }
}
