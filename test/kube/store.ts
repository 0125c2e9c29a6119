import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { type ResourceType, builtinResources, typeKey, apiVersionOf } from './resources.ts';
import { errors, KubeStatusError } from './status.ts';
import { type KObject, clone, deepEqual } from './types.ts';
import { type Requirement, type FieldRequirement, matchLabels, matchFields } from './selectors.ts';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  rv: number;
  type: WatchEventType;
  tk: string;
  object: KObject;
  /** The previous state (MODIFIED/DELETED), used to turn selector transitions into ADDED/DELETED for filtered watches. */
  old?: KObject;
}

export type AdmitFn = (ctx: { rt: ResourceType; op: 'create' | 'update'; obj: KObject; old?: KObject; store: Store; subresource?: string }) => KObject;

export interface ListOptions { labelSelector?: Requirement[]; fieldSelector?: FieldRequirement[]; limit?: number; continueToken?: string }
export interface DeleteOptions { propagationPolicy?: 'Background' | 'Foreground' | 'Orphan'; gracePeriodSeconds?: number; preconditions?: { uid?: string; resourceVersion?: string } }
export interface WriteOptions { dryRun?: boolean; subresource?: 'status'; fieldManager?: string }

export const FOREGROUND = 'foregroundDeletion';
export const ORPHAN = 'orphan';

/**
 * The stand-in's etcd + registry: typed object maps, one global resourceVersion counter, a bounded event history for
 * watch resume (older versions → 410 Gone), optimistic concurrency, generation, status-subresource separation,
 * finalizers and deletionTimestamp. Pure in-memory; controllers and the HTTP layer both use it directly.
 */
export class Store {
  private readonly types = new Map<string, ResourceType>();
  private readonly objects = new Map<string, Map<string, KObject>>();
  private rv = 0;
  private history: StoreEvent[] = [];
  /** Highest resourceVersion whose event was dropped from the history window; watches from below it get 410. */
  private compactedThrough = 0;
  readonly events = new EventEmitter();
  admit: AdmitFn = (c) => c.obj;

  constructor(readonly historyLimit = 5000) {
    this.events.setMaxListeners(0);
    for (const t of builtinResources()) this.registerType(t);
  }

  currentRV(): number { return this.rv; }
  oldestWatchableRV(): number { return this.compactedThrough; }

  registerType(t: ResourceType): void {
    const k = typeKey(t.group, t.plural);
    this.types.set(k, t);
    if (!this.objects.has(k)) this.objects.set(k, new Map());
  }

  unregisterType(group: string, plural: string): void {
    const k = typeKey(group, plural);
    this.types.delete(k);
    this.objects.delete(k);
    this.events.emit('typeRemoved', k);
  }

  allTypes(): ResourceType[] { return [...this.types.values()]; }

  type(group: string, plural: string): ResourceType | undefined { return this.types.get(typeKey(group, plural)); }

  typeByKind(apiVersion: string, kind: string): ResourceType | undefined {
    const [g, v] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
    return [...this.types.values()].find((t) => t.group === g && t.kind === kind && t.versions.includes(v));
  }

  private bucket(t: ResourceType): Map<string, KObject> {
    const m = this.objects.get(typeKey(t.group, t.plural));
    if (!m) throw errors.pathNotFound(`${t.group}/${t.plural}`);
    return m;
  }

  private key(t: ResourceType, ns: string | undefined, name: string): string {
    return t.namespaced ? `${ns ?? ''}/${name}` : name;
  }

  /** Forces the event history to forget everything up to now, so any resume from an older resourceVersion gets 410. */
  compact(): void {
    this.compactedThrough = this.rv;
    this.history = [];
  }

  eventsSince(rv: number): StoreEvent[] {
    if (rv < this.compactedThrough) {
      throw errors.gone(`too old resource version: ${rv} (${this.compactedThrough})`);
    }
    return this.history.filter((e) => e.rv > rv);
  }

  private emit(type: WatchEventType, t: ResourceType, object: KObject, old?: KObject): void {
    const ev: StoreEvent = { rv: this.rv, type, tk: typeKey(t.group, t.plural), object: clone(object), ...(old ? { old: clone(old) } : {}) };
    this.history.push(ev);
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.compactedThrough = dropped[dropped.length - 1].rv;
    }
    this.events.emit('event', ev);
  }

  /** Returns the object with apiVersion set for the requested version (no conversion: versions share one schema). */
  private view(t: ResourceType, o: KObject, version?: string): KObject {
    const c = clone(o);
    c.apiVersion = apiVersionOf(t.group, version ?? t.versions[0]);
    c.kind = t.kind;
    return c;
  }

  tryGet(t: ResourceType, ns: string | undefined, name: string): KObject | undefined {
    const o = this.bucket(t).get(this.key(t, ns, name));
    return o ? this.view(t, o) : undefined;
  }

  get(t: ResourceType, ns: string | undefined, name: string, version?: string): KObject {
    const o = this.bucket(t).get(this.key(t, ns, name));
    if (!o) throw errors.notFound(t, name);
    return this.view(t, o, version);
  }

  list(t: ResourceType, ns: string | undefined, opts: ListOptions = {}, version?: string): { items: KObject[]; resourceVersion: string; continue?: string; remainingItemCount?: number } {
    let keys = [...this.bucket(t).keys()].sort();
    if (t.namespaced && ns) keys = keys.filter((k) => k.startsWith(`${ns}/`));
    if (opts.continueToken) {
      let tok: { start?: string; rv?: number };
      try { tok = JSON.parse(Buffer.from(opts.continueToken, 'base64').toString('utf8')); } catch { throw errors.badRequest('continue key is not valid: invalid encoding'); }
      if (typeof tok.start !== 'string') throw errors.badRequest('continue key is not valid: missing start');
      if (typeof tok.rv === 'number' && tok.rv < this.compactedThrough) throw errors.gone('The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
      keys = keys.filter((k) => k > tok.start!);
    }
    const items: KObject[] = [];
    let next: string | undefined;
    let remaining = 0;
    for (const k of keys) {
      const o = this.bucket(t).get(k)!;
      if (opts.labelSelector && !matchLabels(opts.labelSelector, o.metadata.labels)) continue;
      if (opts.fieldSelector && !matchFields(opts.fieldSelector, o)) continue;
      if (opts.limit && opts.limit > 0 && items.length >= opts.limit) {
        if (!next) next = Buffer.from(JSON.stringify({ start: this.key(t, items[items.length - 1].metadata.namespace, items[items.length - 1].metadata.name!), rv: this.rv })).toString('base64');
        remaining++;
        continue;
      }
      items.push(this.view(t, o, version));
    }
    return { items, resourceVersion: String(this.rv), ...(next ? { continue: next, remainingItemCount: remaining } : {}) };
  }

  /** All objects (any type, any namespace) whose ownerReferences name `uid`. */
  dependentsOf(uid: string): { t: ResourceType; obj: KObject }[] {
    const out: { t: ResourceType; obj: KObject }[] = [];
    for (const t of this.types.values()) {
      for (const o of this.bucket(t).values()) {
        if (o.metadata.ownerReferences?.some((r) => r.uid === uid)) out.push({ t, obj: this.view(t, o) });
      }
    }
    return out;
  }

  findByUid(uid: string): { t: ResourceType; obj: KObject } | undefined {
    for (const t of this.types.values()) {
      for (const o of this.bucket(t).values()) if (o.metadata.uid === uid) return { t, obj: this.view(t, o) };
    }
    return undefined;
  }

  create(t: ResourceType, ns: string | undefined, body: KObject, opts: WriteOptions = {}): KObject {
    if (!body || typeof body !== 'object' || typeof body.metadata !== 'object' || body.metadata === null) {
      throw errors.invalid(t, '', [{ field: 'metadata', message: 'Required value', reason: 'FieldValueRequired' }]);
    }
    const obj = clone(body);
    const expectedApi = t.versions.map((v) => apiVersionOf(t.group, v));
    if (obj.kind && obj.kind !== t.kind) throw errors.badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${expectedApi[0]}) or kind ${obj.kind} != ${t.kind}`);
    if (obj.apiVersion && !expectedApi.includes(obj.apiVersion)) throw errors.badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${expectedApi[0]})`);
    if (t.namespaced) {
      if (obj.metadata.namespace && ns && obj.metadata.namespace !== ns) throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
      obj.metadata.namespace = ns ?? obj.metadata.namespace;
      if (!obj.metadata.namespace) throw errors.badRequest('the namespace of the object could not be determined');
      const nsType = this.type('', 'namespaces')!;
      const nsObj = this.tryGet(nsType, undefined, obj.metadata.namespace);
      if (!nsObj) throw errors.notFound(nsType, obj.metadata.namespace);
      if (nsObj.metadata.deletionTimestamp) {
        throw new KubeStatusError(403, 'Forbidden', `${t.plural} "${obj.metadata.name ?? ''}" is forbidden: unable to create new content in namespace ${obj.metadata.namespace} because it is being terminated`);
      }
    } else {
      delete obj.metadata.namespace;
    }
    if (!obj.metadata.name && obj.metadata.generateName) {
      obj.metadata.name = obj.metadata.generateName + randomUUID().replace(/-/g, '').slice(0, 5);
    }
    if (!obj.metadata.name) throw errors.invalid(t, '', [{ field: 'metadata.name', message: 'Required value: name or generateName is required', reason: 'FieldValueRequired' }]);
    const k = this.key(t, obj.metadata.namespace, obj.metadata.name);
    if (this.bucket(t).has(k)) throw errors.alreadyExists(t, obj.metadata.name);
    obj.apiVersion = apiVersionOf(t.group, t.versions[0]);
    obj.kind = t.kind;
    // Server-owned metadata: a client cannot choose these on create.
    delete obj.metadata.deletionTimestamp;
    delete obj.metadata.deletionGracePeriodSeconds;
    delete obj.metadata.resourceVersion;
    delete obj.metadata.uid; // server-assigned (admission may pre-assign one, e.g. for a Job's generated selector)
    if (t.statusSubresource && t.kind !== 'CustomResourceDefinition') delete obj.status;
    let admitted = this.admit({ rt: t, op: 'create', obj, store: this });
    admitted = clone(admitted);
    admitted.metadata.uid ??= randomUUID();
    admitted.metadata.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    if (t.hasGeneration) admitted.metadata.generation = 1;
    else delete admitted.metadata.generation;
    if (opts.fieldManager) admitted.metadata.managedFields = [{ manager: opts.fieldManager, operation: 'Update', apiVersion: admitted.apiVersion, time: admitted.metadata.creationTimestamp, fieldsType: 'FieldsV1', fieldsV1: {} }];
    if (opts.dryRun) return this.view(t, { ...admitted, metadata: { ...admitted.metadata, resourceVersion: String(this.rv) } });
    this.rv++;
    admitted.metadata.resourceVersion = String(this.rv);
    this.bucket(t).set(k, admitted);
    this.emit('ADDED', t, admitted);
    return this.view(t, admitted);
  }

  /**
   * PUT semantics. `body.metadata.resourceVersion`, when set, must equal the stored one (409 otherwise). For kinds with
   * a status subresource the main endpoint keeps the stored status and `/status` keeps everything but status.
   */
  update(t: ResourceType, ns: string | undefined, name: string, body: KObject, opts: WriteOptions = {}): KObject {
    const k = this.key(t, ns, name);
    const old = this.bucket(t).get(k);
    if (!old) throw errors.notFound(t, name);
    if (!body || typeof body !== 'object' || typeof body.metadata !== 'object' || body.metadata === null) {
      throw errors.invalid(t, name, [{ field: 'metadata', message: 'Required value', reason: 'FieldValueRequired' }]);
    }
    if (body.metadata.name && body.metadata.name !== name) throw errors.badRequest(`the name of the object (${body.metadata.name}) does not match the name on the URL (${name})`);
    if (body.metadata.resourceVersion && body.metadata.resourceVersion !== old.metadata.resourceVersion) {
      throw errors.conflict(t, name, 'the object has been modified; please apply your changes to the latest version and try again');
    }
    if (body.metadata.uid && body.metadata.uid !== old.metadata.uid) {
      throw errors.conflict(t, name, `Precondition failed: UID in precondition: ${body.metadata.uid}, UID in object meta: ${old.metadata.uid}`);
    }
    let next: KObject;
    if (opts.subresource === 'status') {
      next = clone(old);
      if (body.status === undefined) delete next.status; else next.status = clone(body.status);
    } else {
      next = clone(body);
      if (t.statusSubresource) {
        if (old.status === undefined) delete next.status; else next.status = clone(old.status);
      }
      const m = next.metadata;
      m.name = old.metadata.name;
      if (t.namespaced) m.namespace = old.metadata.namespace; else delete m.namespace;
      m.uid = old.metadata.uid;
      m.creationTimestamp = old.metadata.creationTimestamp;
      if (old.metadata.deletionTimestamp) {
        m.deletionTimestamp = old.metadata.deletionTimestamp;
        m.deletionGracePeriodSeconds = old.metadata.deletionGracePeriodSeconds;
      } else {
        delete m.deletionTimestamp;
        delete m.deletionGracePeriodSeconds;
      }
      if (!m.managedFields) m.managedFields = old.metadata.managedFields;
      if (m.finalizers && m.finalizers.length === 0) delete m.finalizers;
      if (m.labels && Object.keys(m.labels).length === 0) delete m.labels;
      if (m.annotations && Object.keys(m.annotations).length === 0) delete m.annotations;
      if (m.ownerReferences && m.ownerReferences.length === 0) delete m.ownerReferences;
    }
    next.apiVersion = apiVersionOf(t.group, t.versions[0]);
    next.kind = t.kind;
    next.metadata.generation = old.metadata.generation;
    next.metadata.resourceVersion = old.metadata.resourceVersion;
    let admitted = clone(this.admit({ rt: t, op: 'update', obj: next, old: clone(old), store: this, ...(opts.subresource ? { subresource: opts.subresource } : {}) }));
    if (t.hasGeneration && specChanged(old, admitted)) admitted.metadata.generation = (old.metadata.generation ?? 0) + 1;
    else if (!t.hasGeneration) delete admitted.metadata.generation;
    if (opts.fieldManager) {
      const mf = (admitted.metadata.managedFields ?? []).filter((f) => f.manager !== opts.fieldManager || f.operation !== 'Update' || f.subresource !== opts.subresource);
      mf.push({ manager: opts.fieldManager, operation: 'Update', apiVersion: admitted.apiVersion, time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), fieldsType: 'FieldsV1', fieldsV1: {}, ...(opts.subresource ? { subresource: opts.subresource } : {}) });
      admitted.metadata.managedFields = mf;
    }
    const finalizing = admitted.metadata.deletionTimestamp && !(admitted.metadata.finalizers?.length);
    if (!finalizing && deepEqual(stripVolatile(old), stripVolatile(admitted))) return this.view(t, old); // no-op: no new resourceVersion
    if (opts.dryRun) return this.view(t, admitted);
    this.rv++;
    admitted.metadata.resourceVersion = String(this.rv);
    if (finalizing) {
      this.bucket(t).delete(k);
      this.emit('DELETED', t, admitted, old);
      return this.view(t, admitted);
    }
    this.bucket(t).set(k, admitted);
    this.emit('MODIFIED', t, admitted, old);
    return this.view(t, admitted);
  }

  /**
   * DELETE. With finalizers (or Foreground propagation, which adds `foregroundDeletion`) the object stays with a
   * deletionTimestamp until they are removed. Pods bound to a node get graceful deletion: the kubelet stops the
   * process and then removes the object (gracePeriodSeconds 0 removes at once).
   */
  delete(t: ResourceType, ns: string | undefined, name: string, opts: DeleteOptions = {}): KObject {
    const k = this.key(t, ns, name);
    const old = this.bucket(t).get(k);
    if (!old) throw errors.notFound(t, name);
    if (opts.preconditions?.uid && opts.preconditions.uid !== old.metadata.uid) {
      throw errors.conflict(t, name, `Precondition failed: UID in precondition: ${opts.preconditions.uid}, UID in object meta: ${old.metadata.uid}`);
    }
    if (opts.preconditions?.resourceVersion && opts.preconditions.resourceVersion !== old.metadata.resourceVersion) {
      throw errors.conflict(t, name, `Precondition failed: ResourceVersion in precondition: ${opts.preconditions.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion}`);
    }
    const next = clone(old);
    const fins = new Set(next.metadata.finalizers ?? []);
    const policy = opts.propagationPolicy ?? (t.kind === 'Namespace' ? 'Background' : 'Background');
    if (policy === 'Orphan') {
      for (const d of this.dependentsOf(old.metadata.uid!)) {
        const refs = d.obj.metadata.ownerReferences!.filter((r) => r.uid !== old.metadata.uid);
        this.update(d.t, d.obj.metadata.namespace, d.obj.metadata.name!, { ...d.obj, metadata: { ...d.obj.metadata, ownerReferences: refs } });
      }
    }
    if (policy === 'Foreground' && !next.metadata.deletionTimestamp && this.dependentsOf(old.metadata.uid!).length > 0) fins.add(FOREGROUND);
    const graceful = t.kind === 'Pod' && !!old.spec?.nodeName && opts.gracePeriodSeconds !== 0
      && !['Succeeded', 'Failed'].includes(old.status?.phase) && !old.metadata.deletionTimestamp;
    const isNamespace = t.kind === 'Namespace';
    if (fins.size > 0 || graceful || isNamespace) {
      if (isNamespace && (fins.size === 0) && this.namespaceEmpty(name) && !graceful) return this.remove(t, k, old);
      next.metadata.finalizers = fins.size ? [...fins] : undefined;
      if (!next.metadata.finalizers) delete next.metadata.finalizers;
      if (!next.metadata.deletionTimestamp) {
        next.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
        const grace = t.kind === 'Pod' ? (opts.gracePeriodSeconds ?? old.spec?.terminationGracePeriodSeconds ?? 30) : 0;
        next.metadata.deletionGracePeriodSeconds = grace;
      } else if (t.kind === 'Pod' && opts.gracePeriodSeconds !== undefined && opts.gracePeriodSeconds < (next.metadata.deletionGracePeriodSeconds ?? 30)) {
        next.metadata.deletionGracePeriodSeconds = opts.gracePeriodSeconds; // a shorter grace period may replace a longer one
      }
      if (isNamespace) next.status = { ...(next.status ?? {}), phase: 'Terminating' };
      if (deepEqual(old, next)) return this.view(t, old);
      this.rv++;
      next.metadata.resourceVersion = String(this.rv);
      this.bucket(t).set(k, next);
      this.emit('MODIFIED', t, next, old);
      return this.view(t, next);
    }
    return this.remove(t, k, old);
  }

  /** Removes a pod that the kubelet has finished terminating, or any object whose deletion is complete. */
  finalizeDelete(t: ResourceType, ns: string | undefined, name: string): void {
    const k = this.key(t, ns, name);
    const old = this.bucket(t).get(k);
    if (old) this.remove(t, k, old);
  }

  private remove(t: ResourceType, k: string, old: KObject): KObject {
    this.rv++;
    const gone = clone(old);
    gone.metadata.resourceVersion = String(this.rv);
    this.bucket(t).delete(k);
    this.emit('DELETED', t, gone, old);
    return this.view(t, gone);
  }

  namespaceEmpty(ns: string): boolean {
    for (const t of this.types.values()) {
      if (!t.namespaced) continue;
      for (const k of this.bucket(t).keys()) if (k.startsWith(`${ns}/`)) return false;
    }
    return true;
  }

  objectsInNamespace(ns: string): { t: ResourceType; obj: KObject }[] {
    const out: { t: ResourceType; obj: KObject }[] = [];
    for (const t of this.types.values()) {
      if (!t.namespaced) continue;
      for (const [k, o] of this.bucket(t)) if (k.startsWith(`${ns}/`)) out.push({ t, obj: this.view(t, o) });
    }
    return out;
  }
}

function stripVolatile(o: KObject): KObject {
  const c = clone(o);
  delete c.metadata.resourceVersion;
  // managedFields count (a new manager is a change) but their timestamps do not.
  if (c.metadata.managedFields) c.metadata.managedFields = c.metadata.managedFields.map((f) => { const { time: _t, ...rest } = f; return rest; });
  delete c.metadata.generation;
  return c;
}

/** Generation moves on changes outside metadata and status (kube's rule for spec-bearing kinds and CRs). */
export function specChanged(a: KObject, b: KObject): boolean {
  const strip = (o: KObject): Record<string, unknown> => {
    const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = o;
    return rest;
  };
  return !deepEqual(strip(a), strip(b));
}
