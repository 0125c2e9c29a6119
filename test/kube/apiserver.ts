import fs from 'node:fs';
import http from 'node:http';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import YAML from 'yaml';
import { Store, type StoreEvent, type DeleteOptions } from './store.ts';
import { type ResourceType, apiVersionOf, typeKey } from './resources.ts';
import { errors, KubeStatusError, successStatus } from './status.ts';
import { type KObject, clone, getPath, isPlainObject, setPath, deepEqual } from './types.ts';
import { parseLabelSelector, parseFieldSelector, matchLabels, matchFields, selectorFromObject, selectorToString, type Requirement, type FieldRequirement } from './selectors.ts';
import { mergePatch, jsonPatch, strategicMergePatch, serverSideApply, applyConflicts } from './patch.ts';
import { toTable, type IncludeObject } from './table.ts';
import { unknownFields } from './schema.ts';
import { decodeKubeProtobuf } from './protobuf.ts';

/** Hooks the workload layer provides (pod logs). */
export interface ApiHooks {
  podLog?: (ns: string, pod: string, container: string | undefined, opts: { tailLines?: number; previous?: boolean }) => string | undefined;
  /** For `follow=true`: the log file and whether the container may still write to it. */
  podLogSource?: (ns: string, pod: string, container: string | undefined) => { file: string; live: () => boolean } | undefined;
}

export interface ApiServerOptions { store: Store; hooks?: ApiHooks; bookmarkIntervalMs?: number; host?: string }

const objectBody = z.object({ apiVersion: z.string().optional(), kind: z.string().optional(), metadata: z.record(z.string(), z.unknown()).optional() }).passthrough();
const deleteOptionsBody = z.object({
  propagationPolicy: z.enum(['Background', 'Foreground', 'Orphan']).optional(),
  gracePeriodSeconds: z.number().int().optional(),
  preconditions: z.object({ uid: z.string().optional(), resourceVersion: z.string().optional() }).optional(),
  orphanDependents: z.boolean().optional(),
}).passthrough();

interface Route { rt?: ResourceType; version: string; group: string; ns?: string; name?: string; sub?: string; plural: string }

class HttpReply { constructor(readonly code: number, readonly body: unknown, readonly headers: Record<string, string> = {}) {} }

/**
 * The HTTP face of the stand-in: discovery, OpenAPI v3 stubs, CRUD + patch + apply, subresources (status, scale,
 * log), Tables for kubectl, and chunked watch streams with resume, bookmarks and 410 Gone.
 */
export class ApiServer {
  readonly store: Store;
  private server?: http.Server;
  private readonly hooks: ApiHooks;
  private readonly bookmarkIntervalMs: number;
  private readonly host: string;
  /** Server-side apply: the last applied configuration per object and manager. */
  private readonly applied = new Map<string, Map<string, Record<string, unknown>>>();
  private readonly openWatches = new Set<http.ServerResponse>();
  /** Fields last written by non-apply writes (POST/PUT/PATCH): leaf path → manager, so appliers conflict with them. */
  private readonly updated = new Map<string, Map<string, string>>();
  url = '';

  constructor(opts: ApiServerOptions) {
    this.store = opts.store;
    this.hooks = opts.hooks ?? {};
    this.bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 2000;
    this.host = opts.host ?? '127.0.0.1';
    this.store.events.on('event', (ev: StoreEvent) => {
      if (ev.type === 'DELETED') {
        const k = this.objKey(ev.tk, ev.object.metadata.namespace, ev.object.metadata.name!);
        this.applied.delete(k); this.applied.delete(`${k}|status`); this.updated.delete(k);
      }
    });
  }

  async listen(port = 0): Promise<string> {
    this.server = http.createServer((req, res) => { void this.handle(req, res); });
    this.server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, this.host, () => resolve());
    });
    const a = this.server.address() as AddressInfo;
    this.url = `http://${this.host}:${a.port}`;
    return this.url;
  }

  async close(): Promise<void> {
    this.pendingWatches = undefined;
    for (const w of this.openWatches) w.destroy();
    this.openWatches.clear();
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  private objKey(tk: string, ns: string | undefined, name: string): string { return `${tk}|${ns ?? ''}|${name}`; }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    try {
      const body = await readBody(req);
      const reply = this.route(req, res, url, body);
      if (reply === 'streaming') return;
      send(res, reply);
    } catch (e) {
      const err = e instanceof KubeStatusError ? e : errors.internal(e instanceof Error ? `${e.message}` : String(e));
      if (!(e instanceof KubeStatusError)) process.stderr.write(`kube stand-in internal error: ${(e as Error)?.stack ?? e}\n`);
      send(res, new HttpReply(err.code, err.toStatus()));
    }
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse, url: URL, body: Buffer): HttpReply | 'streaming' {
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    if (['/healthz', '/livez', '/readyz'].includes(path)) return new HttpReply(200, 'ok', { 'Content-Type': 'text/plain' });
    if (path === '/version') return new HttpReply(200, { major: '1', minor: '32', gitVersion: 'v1.32.3-lance-standin', gitCommit: 'standin', gitTreeState: 'clean', buildDate: '2026-01-01T00:00:00Z', goVersion: 'go1.23', compiler: 'gc', platform: 'linux/amd64' });
    if (path === '/api') return new HttpReply(200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: this.url.replace(/^http:\/\//, '') }] });
    if (path === '/apis') return new HttpReply(200, this.groupList());
    if (path === '/openapi/v3') return new HttpReply(200, this.openapiIndex());
    if (path.startsWith('/openapi/v3/')) return new HttpReply(200, this.openapiDoc(path.slice('/openapi/v3/'.length)));
    if (path === '/openapi/v2') throw errors.pathNotFound(path);
    const segs = path.split('/').filter(Boolean).map(decodeURIComponent);
    let group: string; let version: string; let rest: string[];
    if (segs[0] === 'api' && segs.length >= 2) { group = ''; version = segs[1]; rest = segs.slice(2); }
    else if (segs[0] === 'apis' && segs.length >= 3) { group = segs[1]; version = segs[2]; rest = segs.slice(3); }
    else if (segs[0] === 'apis' && segs.length === 2) return new HttpReply(200, this.groupInfo(segs[1]));
    else throw errors.pathNotFound(path);
    if (rest.length === 0) return new HttpReply(200, this.resourceList(group, version, path));
    let ns: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3 && !['status', 'finalize'].includes(rest[2])) { ns = rest[1]; rest = rest.slice(2); }
    const [plural, name, sub, ...extra] = rest;
    if (extra.length) throw errors.pathNotFound(path);
    const rt = this.store.type(group, plural);
    if (!rt || !rt.versions.includes(version)) throw errors.pathNotFound(path);
    if (ns !== undefined && !rt.namespaced) throw errors.pathNotFound(path);
    const r: Route = { rt, version, group, ns, name, sub, plural };
    const q = url.searchParams;
    if (!name) return this.collection(req, res, method, r, rt, q, body);
    if (sub) return this.subresource(req, res, method, r, rt, q, body);
    return this.item(req, method, r, rt, q, body);
  }

  // ---------- discovery ----------
  private groupsMap(): Map<string, string[]> {
    const m = new Map<string, string[]>();
    for (const t of this.store.allTypes()) {
      if (!t.group) continue;
      const vs = m.get(t.group) ?? [];
      for (const v of t.versions) if (!vs.includes(v)) vs.push(v);
      m.set(t.group, vs);
    }
    return m;
  }

  private groupInfo(g: string): Record<string, unknown> {
    const vs = this.groupsMap().get(g);
    if (!vs) throw errors.pathNotFound(`/apis/${g}`);
    const versions = vs.map((v) => ({ groupVersion: `${g}/${v}`, version: v }));
    return { kind: 'APIGroup', apiVersion: 'v1', name: g, versions, preferredVersion: versions[0] };
  }

  private groupList(): Record<string, unknown> {
    const groups = [...this.groupsMap().keys()].map((g) => { const i = this.groupInfo(g); delete i.kind; delete i.apiVersion; return i; });
    return { kind: 'APIGroupList', apiVersion: 'v1', groups };
  }

  private resourceList(group: string, version: string, path: string): Record<string, unknown> {
    const types = this.store.allTypes().filter((t) => t.group === group && t.versions.includes(version));
    if (types.length === 0) throw errors.pathNotFound(path);
    const resources: Record<string, unknown>[] = [];
    for (const t of types) {
      resources.push({ name: t.plural, singularName: t.singular, namespaced: t.namespaced, kind: t.kind, verbs: t.verbs, ...(t.shortNames.length ? { shortNames: t.shortNames } : {}), ...(t.categories.length ? { categories: t.categories } : {}), storageVersionHash: hash(typeKey(t.group, t.plural)).slice(0, 11) });
      if (t.statusSubresource) resources.push({ name: `${t.plural}/status`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: ['get', 'patch', 'update'] });
      if (t.scale) resources.push({ name: `${t.plural}/scale`, singularName: '', namespaced: t.namespaced, group: 'autoscaling', version: 'v1', kind: 'Scale', verbs: ['get', 'patch', 'update'] });
      if (t.kind === 'Pod' && t.group === '') resources.push({ name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] });
    }
    return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: apiVersionOf(group, version), resources };
  }

  private gvList(): { path: string; group: string; version: string }[] {
    const out = [{ path: 'api/v1', group: '', version: 'v1' }];
    for (const [g, vs] of this.groupsMap()) for (const v of vs) out.push({ path: `apis/${g}/${v}`, group: g, version: v });
    return out;
  }

  private openapiIndex(): Record<string, unknown> {
    const paths: Record<string, unknown> = {};
    for (const gv of this.gvList()) {
      const h = hash(JSON.stringify(this.store.allTypes().filter((t) => t.group === gv.group && t.versions.includes(gv.version)).map((t) => [t.plural, t.kind, t.schemas ?? null, t.printerColumns])));
      paths[gv.path] = { serverRelativeURL: `/openapi/v3/${gv.path}?hash=${h.toUpperCase()}` };
    }
    return { paths };
  }

  /**
   * Group-version documents with operations only (no schemas): every POST/PUT/PATCH lists the `fieldValidation` query
   * parameter, which makes kubectl leave validation to this server instead of validating client-side.
   */
  private openapiDoc(gvPath: string): Record<string, unknown> {
    const gv = this.gvList().find((x) => x.path === gvPath);
    if (!gv) throw errors.pathNotFound(`/openapi/v3/${gvPath}`);
    const params = ['dryRun', 'fieldManager', 'fieldValidation', 'pretty'].map((n) => ({ name: n, in: 'query', schema: { type: 'string', uniqueItems: true } }));
    const paths: Record<string, unknown> = {};
    const prefix = gv.group ? `/apis/${gv.group}/${gv.version}` : '/api/v1';
    for (const t of this.store.allTypes().filter((x) => x.group === gv.group && x.versions.includes(gv.version))) {
      const gvk = { group: t.group, version: gv.version, kind: t.kind };
      const op = (action: string) => ({ 'x-kubernetes-action': action, 'x-kubernetes-group-version-kind': gvk, parameters: params, responses: { '200': { description: 'OK' } } });
      const base = t.namespaced ? `${prefix}/namespaces/{namespace}/${t.plural}` : `${prefix}/${t.plural}`;
      paths[base] = { post: op('post'), get: op('list') };
      paths[`${base}/{name}`] = { put: op('put'), patch: op('patch'), get: op('get'), delete: op('delete') };
      if (t.statusSubresource) paths[`${base}/{name}/status`] = { put: op('put'), patch: op('patch'), get: op('get') };
    }
    return { openapi: '3.0.0', info: { title: 'Kubernetes (lance test stand-in)', version: 'v1.32.3' }, paths, components: { schemas: {} } };
  }

  // ---------- collection ----------
  private listOpts(rt: ResourceType, q: URLSearchParams): { labelSelector: Requirement[]; fieldSelector: FieldRequirement[]; limit?: number; continueToken?: string } {
    const limit = q.get('limit');
    return {
      labelSelector: parseLabelSelector(q.get('labelSelector')),
      fieldSelector: parseFieldSelector(q.get('fieldSelector'), rt.kind),
      ...(limit ? { limit: parseIntParam('limit', limit) } : {}),
      ...(q.get('continue') ? { continueToken: q.get('continue')! } : {}),
    };
  }

  private collection(req: http.IncomingMessage, res: http.ServerResponse, method: string, r: Route, rt: ResourceType, q: URLSearchParams, body: Buffer): HttpReply | 'streaming' {
    const table = wantsTable(req);
    switch (method) {
      case 'GET': {
        if (q.get('watch') === 'true' || q.get('watch') === '1') {
          if (this.pendingWatches) this.pendingWatches.push(() => { if (!res.destroyed) this.watch(req, res, r, rt, q, table); });
          else this.watch(req, res, r, rt, q, table);
          return 'streaming';
        }
        const lo = this.listOpts(rt, q);
        const l = this.store.list(rt, r.ns, lo, r.version);
        if (table) return new HttpReply(200, { ...toTable(rt, l.items, l.resourceVersion, includeObject(q)), metadata: { resourceVersion: l.resourceVersion, ...(l.continue ? { continue: l.continue, remainingItemCount: l.remainingItemCount } : {}) } });
        return new HttpReply(200, { kind: rt.listKind, apiVersion: apiVersionOf(rt.group, r.version), metadata: { resourceVersion: l.resourceVersion, ...(l.continue ? { continue: l.continue, remainingItemCount: l.remainingItemCount } : {}) }, items: l.items.map((i) => this.versioned(i, rt, r.version)) });
      }
      case 'POST': {
        const obj = parseObject(body, req.headers['content-type']);
        const warnings = this.fieldValidation(rt, obj, q);
        const created = this.store.create(rt, r.ns, obj as KObject, { dryRun: isDryRun(q), ...(q.get('fieldManager') ? { fieldManager: q.get('fieldManager')! } : {}) });
        if (!isDryRun(q)) this.recordUpdate(rt, created, undefined, managerOf(req, q), undefined);
        return new HttpReply(201, this.versioned(created, rt, r.version), warnings);
      }
      case 'DELETE': {
        const opts = parseDeleteOptions(body, q);
        const lo = this.listOpts(rt, q);
        const items = this.store.list(rt, r.ns, lo).items;
        const deleted = items.map((i) => { try { return this.store.delete(rt, i.metadata.namespace, i.metadata.name!, opts); } catch (e) { if (e instanceof KubeStatusError && e.code === 404) return undefined; throw e; } }).filter(Boolean) as KObject[];
        return new HttpReply(200, { kind: rt.listKind, apiVersion: apiVersionOf(rt.group, r.version), metadata: { resourceVersion: String(this.store.currentRV()) }, items: deleted });
      }
      default:
        throw errors.methodNotAllowed(`the server does not allow this method on the requested resource (${method} ${r.plural})`);
    }
  }

  private versioned(o: KObject, rt: ResourceType, version: string): KObject {
    return { ...o, apiVersion: apiVersionOf(rt.group, version) };
  }

  /** fieldValidation=Strict rejects unknown fields (400), Warn returns Warning headers, Ignore drops them silently. */
  private fieldValidation(rt: ResourceType, obj: Record<string, unknown>, q: URLSearchParams): Record<string, string> {
    const mode = q.get('fieldValidation') ?? 'Warn';
    if (!['Strict', 'Warn', 'Ignore'].includes(mode)) throw errors.badRequest(`fieldValidation: invalid value "${mode}": must be one of Strict, Warn, Ignore`);
    if (mode === 'Ignore' || rt.builtin) return {};
    const version = String(obj.apiVersion ?? '').split('/')[1] ?? rt.versions[0];
    const schema = rt.schemas?.[version] ?? rt.schemas?.[rt.versions[0]];
    const unknown = unknownFields(schema as Record<string, unknown> | undefined, obj);
    if (unknown.length === 0) return {};
    if (mode === 'Strict') throw errors.badRequest(`strict decoding error: ${unknown.map((u) => `unknown field "${u}"`).join(', ')}`);
    return { Warning: unknown.map((u) => `299 - "unknown field \\"${u}\\""`).join(', ') };
  }

  // ---------- item ----------
  private item(req: http.IncomingMessage, method: string, r: Route, rt: ResourceType, q: URLSearchParams, body: Buffer): HttpReply {
    const name = r.name!;
    switch (method) {
      case 'GET': {
        const o = this.store.get(rt, r.ns, name, r.version);
        if (wantsTable(req)) return new HttpReply(200, toTable(rt, [o], o.metadata.resourceVersion!, includeObject(q)));
        return new HttpReply(200, o);
      }
      case 'PUT': {
        const obj = parseObject(body, req.headers['content-type']);
        const warnings = this.fieldValidation(rt, obj, q);
        const fm = q.get('fieldManager');
        const before = this.store.tryGet(rt, r.ns, name);
        const out = this.store.update(rt, r.ns, name, obj as KObject, { dryRun: isDryRun(q), ...(fm ? { fieldManager: fm } : {}) });
        if (!isDryRun(q)) this.recordUpdate(rt, out, before, managerOf(req, q), undefined);
        return new HttpReply(200, this.versioned(out, rt, r.version), warnings);
      }
      case 'PATCH': return this.patch(req, r, rt, q, body, undefined);
      case 'DELETE': {
        const opts = parseDeleteOptions(body, q);
        if (isDryRun(q)) return new HttpReply(200, this.store.get(rt, r.ns, name));
        const o = this.store.delete(rt, r.ns, name, opts);
        const stillThere = this.store.tryGet(rt, r.ns, name);
        // Real servers answer 202 with the object while finalizers hold it, 200 once gone.
        return new HttpReply(stillThere ? 202 : 200, stillThere ? stillThere : (rt.kind === 'Namespace' ? o : o));
      }
      default:
        throw errors.methodNotAllowed(`the server does not allow this method on the requested resource (${method} ${r.plural}/${name})`);
    }
  }

  private patch(req: http.IncomingMessage, r: Route, rt: ResourceType, q: URLSearchParams, body: Buffer, sub: 'status' | undefined): HttpReply {
    const name = r.name!;
    const ct = String(req.headers['content-type'] ?? '').split(';')[0].trim();
    const fm = q.get('fieldManager') ?? undefined;
    const dryRun = isDryRun(q);
    if (ct === 'application/apply-patch+yaml' || ct === 'application/apply-patch+cbor') {
      if (!fm) throw errors.badRequest('PATCH /apply requires the fieldManager query parameter (metadata.managedFields)');
      return this.apply(r, rt, q, body, fm, sub);
    }
    const existing = this.store.get(rt, r.ns, name);
    let patchDoc: unknown;
    try { patchDoc = JSON.parse(body.toString('utf8') || 'null'); } catch (e) { throw errors.badRequest(`error decoding patch: ${(e as Error).message}`); }
    let patched: unknown;
    switch (ct) {
      case 'application/merge-patch+json': patched = mergePatch(existing, patchDoc); break;
      case 'application/json-patch+json': patched = jsonPatch(existing, patchDoc); break;
      case 'application/strategic-merge-patch+json':
        if (!rt.builtin) throw errors.unsupportedMediaType('application/strategic-merge-patch+json (strategic merge patch is not supported for custom resources)');
        patched = strategicMergePatch(existing, patchDoc);
        break;
      default: throw errors.unsupportedMediaType(ct || '(none)');
    }
    if (!isPlainObject(patched) || !isPlainObject(patched.metadata)) throw errors.badRequest('patch produced an object without metadata');
    const warnings = this.fieldValidation(rt, patched, q);
    const out = this.store.update(rt, r.ns, name, patched as KObject, { dryRun, ...(sub ? { subresource: sub } : {}), ...(fm ? { fieldManager: fm } : {}) });
    if (!dryRun) this.recordUpdate(rt, out, existing, managerOf(req, q), sub);
    return new HttpReply(200, this.versioned(out, rt, r.version), warnings);
  }

  /** Server-side apply (single manager per field; conflicts against other appliers' fields unless force=true). */
  private apply(r: Route, rt: ResourceType, q: URLSearchParams, body: Buffer, manager: string, sub: 'status' | undefined): HttpReply {
    const name = r.name!;
    let cfg: unknown;
    try { cfg = YAML.parse(body.toString('utf8')); } catch (e) { throw errors.badRequest(`error decoding YAML: ${(e as Error).message}`); }
    if (!isPlainObject(cfg)) throw errors.badRequest('apply patch must be an object');
    const parsed = objectBody.safeParse(cfg);
    if (!parsed.success) throw errors.badRequest(`invalid object: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join(', ')}`);
    if (!cfg.apiVersion || !cfg.kind) throw errors.badRequest('apply patch must set apiVersion and kind');
    const meta = (cfg.metadata ?? {}) as Record<string, unknown>;
    if (meta.name && meta.name !== name) throw errors.badRequest(`the name of the object (${String(meta.name)}) does not match the name on the URL (${name})`);
    const warnings = this.fieldValidation(rt, cfg, q);
    const key = this.objKey(typeKey(rt.group, rt.plural), r.ns, name) + (sub ? '|status' : '');
    const managers = this.applied.get(key) ?? new Map<string, Record<string, unknown>>();
    const force = q.get('force') === 'true';
    const stripForCompare = (o: Record<string, unknown>) => { const c = clone(o); delete c.apiVersion; delete c.kind; if (isPlainObject(c.metadata)) { delete c.metadata.name; delete c.metadata.namespace; delete c.metadata.resourceVersion; } return c; };
    const conflicts: { manager: string; path: string }[] = [];
    for (const [m, owned] of managers) {
      if (m === manager) continue;
      for (const p of applyConflicts(stripForCompare(owned), stripForCompare(cfg))) conflicts.push({ manager: m, path: p });
    }
    // Fields another manager set with an ordinary write (kubectl scale, a controller's PUT) also conflict when the
    // applied value differs from the live one.
    const baseKey = this.objKey(typeKey(rt.group, rt.plural), r.ns, name);
    const owners = this.updated.get(baseKey);
    const liveNow = this.store.tryGet(rt, r.ns, name);
    const appliedLeaves = leaves(stripForCompare(cfg));
    if (owners && liveNow) {
      const liveLeaves = leaves(stripForCompare(liveNow as unknown as Record<string, unknown>));
      for (const [p, v] of appliedLeaves) {
        const owner = owners.get(p);
        if (owner && owner !== manager && liveLeaves.get(p) !== v && !conflicts.some((c) => c.path === p)) conflicts.push({ manager: owner, path: p });
      }
    }
    if (conflicts.length && !force) {
      throw new KubeStatusError(409, 'Conflict', `Apply failed with ${conflicts.length} conflict${conflicts.length > 1 ? 's' : ''}: ${conflicts.map((c) => `conflict with "${c.manager}": ${c.path}`).join('\n')}`, {
        name, group: rt.group, kind: rt.plural, causes: conflicts.map((c) => ({ reason: 'FieldManagerConflict', message: `conflict with "${c.manager}"`, field: c.path })),
      });
    }
    const existing = this.store.tryGet(rt, r.ns, name);
    const dryRun = isDryRun(q);
    let result: KObject;
    if (!existing) {
      if (sub) throw errors.notFound(rt, name);
      const obj = clone(cfg) as KObject;
      obj.metadata = { ...(obj.metadata ?? {}), name };
      result = this.store.create(rt, r.ns, obj, { dryRun, fieldManager: manager });
    } else {
      const merged = serverSideApply(existing as unknown as Record<string, unknown>, cfg, managers.get(manager), rt.builtin) as KObject;
      merged.metadata.resourceVersion = existing.metadata.resourceVersion;
      result = this.store.update(rt, r.ns, name, merged, { dryRun, ...(sub ? { subresource: sub } : {}) });
    }
    if (!dryRun) {
      if (force) for (const [m, owned] of managers) if (m !== manager) managers.set(m, dropPaths(owned, conflicts.filter((c) => c.manager === m).map((c) => c.path)));
      managers.set(manager, clone(cfg));
      this.applied.set(key, managers);
      if (owners) for (const p of appliedLeaves.keys()) owners.delete(p); // ownership moves to the applier
      // managedFields: one Apply entry per applier (fieldsV1 left empty: the stand-in tracks ownership internally).
      const mf = (result.metadata.managedFields ?? []).filter((f) => !(f.manager === manager && f.operation === 'Apply'));
      mf.push({ manager, operation: 'Apply', apiVersion: result.apiVersion, time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), fieldsType: 'FieldsV1', fieldsV1: {}, ...(sub ? { subresource: sub } : {}) });
      const cur = this.store.get(rt, r.ns, name);
      if (!deepEqual(cur.metadata.managedFields, mf)) {
        cur.metadata.managedFields = mf;
        result = this.store.update(rt, r.ns, name, cur, {});
      }
    }
    return new HttpReply(existing ? 200 : 201, this.versioned(result, rt, r.version), warnings);
  }

  private recordUpdate(rt: ResourceType, after: KObject, before: KObject | undefined, manager: string, sub: 'status' | undefined): void {
    const key = this.objKey(typeKey(rt.group, rt.plural), after.metadata.namespace, after.metadata.name!);
    const view = (o: KObject | undefined): Map<string, string> => {
      if (!o) return new Map();
      const c = clone(o) as unknown as Record<string, unknown>;
      delete c.apiVersion; delete c.kind;
      const m = (c.metadata ?? {}) as Record<string, unknown>;
      c.metadata = { ...(m.labels ? { labels: m.labels } : {}), ...(m.annotations ? { annotations: m.annotations } : {}) };
      if (sub !== 'status') delete c.status; else for (const k of Object.keys(c)) if (k !== 'status') delete c[k];
      return leaves(c);
    };
    const a = view(after);
    const b = view(before);
    let owners = this.updated.get(key);
    for (const [p, v] of a) {
      if (b.get(p) === v) continue;
      owners ??= new Map();
      owners.set(p, manager);
    }
    if (owners) this.updated.set(key, owners);
  }

  // ---------- subresources ----------
  /** `logs -f`: the text so far, then appended bytes (polled) until the container can write no more or the client leaves. */
  private followLog(res: http.ServerResponse, src: { file: string; live: () => boolean }, initial: string): void {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' });
    res.write(initial);
    let offset = Buffer.byteLength(initial);
    this.openWatches.add(res);
    const timer = setInterval(() => {
      // Sample liveness before reading: output written before the container stopped is then always delivered.
      const live = src.live();
      let size = 0;
      try { size = fs.statSync(src.file).size; } catch { size = offset; }
      if (size > offset) {
        const fd = fs.openSync(src.file, 'r');
        const buf = Buffer.alloc(size - offset);
        fs.readSync(fd, buf, 0, buf.length, offset);
        fs.closeSync(fd);
        offset = size;
        res.write(buf);
      }
      if (!live) finish();
    }, 200);
    const finish = (): void => { clearInterval(timer); this.openWatches.delete(res); if (!res.writableEnded) res.end(); };
    res.on('close', finish);
  }

  private subresource(req: http.IncomingMessage, res: http.ServerResponse | undefined, method: string, r: Route, rt: ResourceType, q: URLSearchParams, body: Buffer): HttpReply | 'streaming' {
    const name = r.name!;
    if (r.sub === 'status' && (rt.statusSubresource)) {
      if (method === 'GET') return new HttpReply(200, this.store.get(rt, r.ns, name, r.version));
      if (method === 'PUT') {
        const obj = parseObject(body, req.headers['content-type']);
        return new HttpReply(200, this.versioned(this.store.update(rt, r.ns, name, obj as KObject, { subresource: 'status', dryRun: isDryRun(q), ...(q.get('fieldManager') ? { fieldManager: q.get('fieldManager')! } : {}) }), rt, r.version));
      }
      if (method === 'PATCH') return this.patch(req, r, rt, q, body, 'status');
      throw errors.methodNotAllowed(`${method} is not allowed on ${r.plural}/status`);
    }
    if (r.sub === 'scale' && rt.scale) {
      const sc = rt.scale;
      const toScale = (o: KObject) => ({
        kind: 'Scale', apiVersion: 'autoscaling/v1',
        metadata: { name: o.metadata.name, namespace: o.metadata.namespace, uid: o.metadata.uid, resourceVersion: o.metadata.resourceVersion, creationTimestamp: o.metadata.creationTimestamp },
        spec: { replicas: Number(getPath(o, sc.specReplicasPath) ?? 0) },
        status: { replicas: Number(getPath(o, sc.statusReplicasPath) ?? 0), selector: scaleSelector(o, rt) },
      });
      const o = this.store.get(rt, r.ns, name);
      if (method === 'GET') return new HttpReply(200, toScale(o));
      let desired: unknown;
      if (method === 'PUT') desired = parseObject(body, req.headers['content-type']);
      else if (method === 'PATCH') {
        const ct = String(req.headers['content-type'] ?? '').split(';')[0].trim();
        const doc = JSON.parse(body.toString('utf8') || 'null');
        desired = ct === 'application/json-patch+json' ? jsonPatch(toScale(o), doc) : mergePatch(toScale(o), doc);
      } else throw errors.methodNotAllowed(`${method} is not allowed on ${r.plural}/scale`);
      const d = desired as { metadata?: { resourceVersion?: string }; spec?: { replicas?: unknown } };
      if (typeof d.spec?.replicas !== 'number' || d.spec.replicas < 0) throw errors.invalid({ group: 'autoscaling', kind: 'Scale', plural: 'scale' }, name, [{ field: 'spec.replicas', message: `Invalid value: ${JSON.stringify(d.spec?.replicas)}: must be greater than or equal to 0` }]);
      if (d.metadata?.resourceVersion && d.metadata.resourceVersion !== o.metadata.resourceVersion) throw errors.conflict(rt, name, 'the object has been modified; please apply your changes to the latest version and try again');
      const next = clone(o);
      setPath(next as unknown as Record<string, unknown>, sc.specReplicasPath, d.spec.replicas);
      const scaled = this.store.update(rt, r.ns, name, next, { dryRun: isDryRun(q) });
      if (!isDryRun(q)) this.recordUpdate(rt, scaled, o, managerOf(req, q), undefined);
      return new HttpReply(200, toScale(scaled));
    }
    if (r.sub === 'log' && rt.kind === 'Pod' && rt.group === '') {
      if (method !== 'GET') throw errors.methodNotAllowed(`${method} is not allowed on pods/log`);
      const pod = this.store.get(rt, r.ns, name);
      const container = q.get('container') ?? undefined;
      if (container && !(pod.spec?.containers ?? []).some((c: { name: string }) => c.name === container)) throw errors.badRequest(`container ${container} is not valid for pod ${name}`);
      const tail = q.get('tailLines');
      const text = this.hooks.podLog?.(r.ns!, name, container, { ...(tail ? { tailLines: parseIntParam('tailLines', tail) } : {}), previous: q.get('previous') === 'true' });
      if (text === undefined) throw errors.badRequest(`container "${container ?? pod.spec?.containers?.[0]?.name}" in pod "${name}" is waiting to start: ContainerCreating`);
      const src = q.get('follow') === 'true' ? this.hooks.podLogSource?.(r.ns!, name, container) : undefined;
      if (src && res) { this.followLog(res, src, text); return 'streaming'; }
      return new HttpReply(200, text, { 'Content-Type': 'text/plain' });
    }
    throw errors.pathNotFound(`${r.plural}/${name}/${r.sub}`);
  }

  // ---------- watch ----------
  private watch(req: http.IncomingMessage, res: http.ServerResponse, r: Route, rt: ResourceType, q: URLSearchParams, table: boolean): void {
    const tk = typeKey(rt.group, rt.plural);
    const labels = parseLabelSelector(q.get('labelSelector'));
    const fields = parseFieldSelector(q.get('fieldSelector'), rt.kind);
    const include = includeObject(q);
    const rvParam = q.get('resourceVersion');
    const bookmarks = q.get('allowWatchBookmarks') === 'true';
    const timeout = q.get('timeoutSeconds');
    const matches = (o: KObject | undefined): boolean => !!o && (!r.ns || o.metadata.namespace === r.ns) && matchLabels(labels, o.metadata.labels) && matchFields(fields, o);
    let backlog: StoreEvent[] = [];
    let initial: KObject[] = [];
    if (!rvParam || rvParam === '0') {
      initial = this.store.list(rt, r.ns, { labelSelector: labels, fieldSelector: fields }).items;
    } else {
      const n = Number(rvParam);
      if (!Number.isInteger(n) || n < 0) throw errors.badRequest(`invalid resourceVersion "${rvParam}"`);
      try { backlog = this.store.eventsSince(n).filter((e) => e.tk === tk); } catch (e) {
        if (e instanceof KubeStatusError && e.code === 410) {
          // kube reports an expired watch as a 200 stream carrying one ERROR event with a 410 Status, then closes.
          res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache' });
          res.end(JSON.stringify({ type: 'ERROR', object: e.toStatus() }) + '\n');
          return;
        }
        throw e;
      }
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    this.openWatches.add(res);
    const asVersion = (o: KObject): KObject => ({ ...o, apiVersion: apiVersionOf(rt.group, r.version) });
    const write = (type: string, o: KObject): void => {
      const obj = table ? toTable(rt, [asVersion(o)], o.metadata.resourceVersion!, include) : asVersion(o);
      res.write(JSON.stringify({ type, object: obj }) + '\n');
    };
    const deliver = (ev: StoreEvent): void => {
      if (ev.tk !== tk) return;
      const now = matches(ev.object);
      const before = matches(ev.old);
      if (ev.type === 'ADDED') { if (now) write('ADDED', ev.object); return; }
      if (ev.type === 'DELETED') { if (now || before) write('DELETED', ev.object); return; }
      if (now && before) write('MODIFIED', ev.object);
      else if (now) write('ADDED', ev.object);
      else if (before) write('DELETED', ev.object);
    };
    for (const o of initial) write('ADDED', o);
    for (const ev of backlog) deliver(ev);
    const onEvent = (ev: StoreEvent) => deliver(ev);
    this.store.events.on('event', onEvent);
    const onTypeGone = (key: string) => { if (key === tk) finish(); };
    this.store.events.on('typeRemoved', onTypeGone);
    const timers: NodeJS.Timeout[] = [];
    if (bookmarks) {
      timers.push(setInterval(() => {
        const bm = { kind: rt.kind, apiVersion: apiVersionOf(rt.group, r.version), metadata: { resourceVersion: String(this.store.currentRV()) } };
        res.write(JSON.stringify({ type: 'BOOKMARK', object: table ? { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: bm.metadata, columnDefinitions: null, rows: [] } : bm }) + '\n');
      }, this.bookmarkIntervalMs));
    }
    if (timeout) timers.push(setTimeout(() => finish(), parseIntParam('timeoutSeconds', timeout) * 1000));
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      this.store.events.off('event', onEvent);
      this.store.events.off('typeRemoved', onTypeGone);
      for (const t of timers) clearTimeout(t);
      this.openWatches.delete(res);
      if (!res.writableEnded) res.end();
    };
    req.on('close', finish);
    res.on('close', finish);
  }

  /** Ends every open watch (clients reconnect with their last resourceVersion). Tests use this to force resumes. */
  dropWatches(): void {
    for (const w of this.openWatches) w.end();
  }

  private pendingWatches: (() => void)[] | undefined;

  /**
   * A watch outage: open watches end and new watch requests are held (not answered) until resumeWatches(). Changes
   * made meanwhile, plus Store.compact(), make the clients' resume resourceVersions too old → 410 → relist.
   */
  pauseWatches(): void {
    this.pendingWatches ??= [];
    this.dropWatches();
  }

  resumeWatches(): void {
    const p = this.pendingWatches ?? [];
    this.pendingWatches = undefined;
    for (const f of p) f();
  }
}

/** Leaf fields as `.a.b` → JSON value; lists are atomic leaves (per-element ownership is not modelled). */
function leaves(o: unknown, prefix = '', out = new Map<string, string>()): Map<string, string> {
  if (isPlainObject(o)) {
    for (const [k, v] of Object.entries(o)) leaves(v, `${prefix}.${k}`, out);
    return out;
  }
  if (prefix) out.set(prefix, JSON.stringify(o));
  return out;
}

/** kube's default field manager: the fieldManager parameter, else the user agent's program name. */
function managerOf(req: http.IncomingMessage, q: URLSearchParams): string {
  return q.get('fieldManager') ?? String(req.headers['user-agent'] ?? 'unknown').split('/')[0];
}

function scaleSelector(o: KObject, rt: ResourceType): string {
  if (rt.scale?.labelSelectorPath) {
    const v = getPath(o, rt.scale.labelSelectorPath);
    if (typeof v === 'string') return v;
  }
  if (isPlainObject(o.spec?.selector)) return selectorToString(selectorFromObject(o.spec.selector));
  return '';
}

function hash(s: string): string { return createHash('sha512').update(s).digest('hex').slice(0, 32); }

function wantsTable(req: http.IncomingMessage): boolean {
  const a = String(req.headers.accept ?? '');
  return a.split(',').some((part) => part.includes('as=Table'));
}

function includeObject(q: URLSearchParams): IncludeObject {
  const v = q.get('includeObject');
  return v === 'Object' || v === 'None' ? v : 'Metadata';
}

function isDryRun(q: URLSearchParams): boolean {
  const d = q.getAll('dryRun');
  if (d.some((x) => x !== 'All')) throw errors.badRequest(`dryRun: Unsupported value: ${JSON.stringify(d.find((x) => x !== 'All'))}: supported values: "All"`);
  return d.length > 0;
}

function parseIntParam(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw errors.badRequest(`${name}: invalid value "${v}": must be a non-negative integer`);
  return n;
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseObject(body: Buffer, contentType: string | undefined): Record<string, unknown> {
  if (String(contentType ?? '').includes('protobuf')) return decodeKubeProtobuf(body);
  if (String(contentType ?? '').includes('cbor')) throw errors.unsupportedMediaType(String(contentType));
  const text = body.toString('utf8');
  let v: unknown;
  try {
    v = String(contentType ?? '').includes('yaml') ? YAML.parse(text) : JSON.parse(text);
  } catch (e) {
    throw errors.badRequest(`the body of the request could not be decoded: ${(e as Error).message}`);
  }
  const parsed = objectBody.safeParse(v);
  if (!parsed.success) throw errors.badRequest(`the body of the request is not a Kubernetes object: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join(', ')}`);
  const obj = v as Record<string, unknown>;
  obj.metadata ??= {};
  return obj;
}

function parseDeleteOptions(body: Buffer, q: URLSearchParams): DeleteOptions {
  let raw: unknown = {};
  if (body.length >= 4 && body.subarray(0, 4).toString('latin1') === 'k8s\0') {
    const { apiVersion: _a, kind: _k, metadata: _m, ...rest } = decodeKubeProtobuf(body);
    raw = rest;
  } else if (body.length) {
    try { raw = JSON.parse(body.toString('utf8')); } catch (e) { throw errors.badRequest(`DeleteOptions: ${(e as Error).message}`); }
  }
  const parsed = deleteOptionsBody.safeParse(raw);
  if (!parsed.success) throw errors.badRequest(`DeleteOptions: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join(', ')}`);
  const d = parsed.data;
  const pp = q.get('propagationPolicy') ?? d.propagationPolicy ?? (d.orphanDependents === true ? 'Orphan' : undefined);
  if (pp && !['Background', 'Foreground', 'Orphan'].includes(pp)) throw errors.badRequest(`propagationPolicy: Unsupported value: "${pp}"`);
  const grace = q.get('gracePeriodSeconds') ?? d.gracePeriodSeconds;
  return {
    ...(pp ? { propagationPolicy: pp as DeleteOptions['propagationPolicy'] } : {}),
    ...(grace !== undefined && grace !== null ? { gracePeriodSeconds: Number(grace) } : {}),
    ...(d.preconditions ? { preconditions: d.preconditions } : {}),
  };
}

function dropPaths(o: Record<string, unknown>, paths: string[]): Record<string, unknown> {
  const c = clone(o);
  for (const p of paths) {
    const parts = p.replace(/^\./, '').split('.');
    let cur: Record<string, unknown> | undefined = c;
    for (const part of parts.slice(0, -1)) cur = isPlainObject(cur?.[part]) ? (cur![part] as Record<string, unknown>) : undefined;
    if (cur) delete cur[parts[parts.length - 1]];
  }
  return c;
}

function send(res: http.ServerResponse, reply: HttpReply): void {
  if (res.headersSent) { res.end(); return; }
  const isText = typeof reply.body === 'string';
  const payload = isText ? (reply.body as string) : JSON.stringify(reply.body);
  res.writeHead(reply.code, { 'Content-Type': isText ? 'text/plain' : 'application/json', 'Content-Length': Buffer.byteLength(payload), ...reply.headers });
  res.end(payload);
}

export { successStatus };
