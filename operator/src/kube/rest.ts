/**
 * A minimal typed REST client for the Kubernetes API on top of KubeConfig's connection settings (auth headers, TLS
 * agent). One generic client for every kind — built-ins, CRs, subresources, watches — instead of a dozen generated
 * API classes, so the informer, apply helpers and leader election share paths and error handling.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { LanceError } from '../../../broker/src/common/errors.ts';

export interface Kind {
  group: string; // '' for core
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
    deletionTimestamp?: string | Date;
    creationTimestamp?: string | Date;
  };
}

export interface KubeList<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** An error answer of the API server: HTTP status plus the Status reason (Conflict, NotFound, Invalid...). */
export class KubeApiError extends LanceError {
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string, path: string) {
    super(status === 404 ? 'NOT_FOUND' : status === 409 ? 'CONFLICT' : status === 422 || status === 400 ? 'INVALID_ARGUMENT' : 'IO', `${path}: ${status} ${reason}: ${message}`, { status, reason, path });
    this.status = status;
    this.reason = reason;
  }
}

export function isNotFound(e: unknown): boolean {
  return e instanceof KubeApiError && e.status === 404;
}
export function isConflict(e: unknown): boolean {
  return e instanceof KubeApiError && e.status === 409;
}

export function apiVersionOf(k: Kind): string {
  return k.group ? `${k.group}/${k.version}` : k.version;
}

/** `/api/v1/namespaces/ns/pods/name/status` and friends. */
export function resourcePath(k: Kind, namespace?: string, name?: string, subresource?: string): string {
  let p = k.group ? `/apis/${k.group}/${k.version}` : `/api/${k.version}`;
  if (k.namespaced && namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${k.plural}`;
  if (name) p += `/${encodeURIComponent(name)}`;
  if (subresource) p += `/${subresource}`;
  return p;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export class KubeRest {
  readonly server: string;
  constructor(private readonly kc: KubeConfig) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new LanceError('INVALID_CONFIG', 'kubeconfig: no current cluster (set current-context)');
    this.server = cluster.server.replace(/\/+$/, '');
  }

  private async open(method: string, path: string, o: RequestOptions): Promise<{ res: http.IncomingMessage; url: URL }> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(o.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const opts: https.RequestOptions = { method, headers: { accept: 'application/json' } };
    await this.kc.applyToHTTPSOptions(opts);
    const payload = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body));
    if (payload) opts.headers = { ...opts.headers, 'content-type': o.contentType ?? 'application/json', 'content-length': String(payload.length) };
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, { ...opts, ...(o.signal ? { signal: o.signal } : {}) }, (res) => resolve({ res, url }));
      if (o.timeoutMs) req.setTimeout(o.timeoutMs, () => req.destroy(new LanceError('TIMEOUT', `${method} ${path}: no answer within ${o.timeoutMs} ms`)));
      req.on('error', (e) => reject(e instanceof LanceError ? e : new LanceError('IO', `${method} ${path}: ${e.message}`, { path }, { cause: e })));
      req.end(payload);
    });
  }

  async request<T>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
    const { res } = await this.open(method, path, { timeoutMs: 30_000, ...o });
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      let reason = 'Unknown';
      let message = text.slice(0, 500);
      try {
        const s = JSON.parse(text) as { reason?: string; message?: string };
        reason = s.reason ?? reason;
        message = s.message ?? message;
      } catch {
        /* not a Status body */
      }
      throw new KubeApiError(status, reason, message, path);
    }
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** GET of a plain-text answer (e.g. `pods/<name>/log`); errors as in request(). */
  async getText(path: string, query: RequestOptions['query'] = {}, timeoutMs = 30_000): Promise<string> {
    const { res } = await this.open('GET', path, { query, timeoutMs });
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw new KubeApiError(status, 'Unknown', text.slice(0, 500), path);
    return text;
  }

  get<T extends KubeObject>(k: Kind, namespace: string | undefined, name: string): Promise<T> {
    return this.request<T>('GET', resourcePath(k, namespace, name));
  }
  list<T extends KubeObject>(k: Kind, namespace: string | undefined, query: RequestOptions['query'] = {}): Promise<KubeList<T>> {
    return this.request<KubeList<T>>('GET', resourcePath(k, namespace), { query });
  }
  create<T extends KubeObject>(k: Kind, namespace: string | undefined, body: T, fieldManager = 'lance-operator'): Promise<T> {
    return this.request<T>('POST', resourcePath(k, namespace), { body, query: { fieldManager } });
  }
  /** PUT: guarded by body.metadata.resourceVersion (409 when stale). */
  replace<T extends KubeObject>(k: Kind, namespace: string | undefined, name: string, body: T, subresource?: string, fieldManager = 'lance-operator'): Promise<T> {
    return this.request<T>('PUT', resourcePath(k, namespace, name, subresource), { body, query: { fieldManager } });
  }
  mergePatch<T extends KubeObject>(k: Kind, namespace: string | undefined, name: string, patch: unknown, subresource?: string, fieldManager = 'lance-operator'): Promise<T> {
    return this.request<T>('PATCH', resourcePath(k, namespace, name, subresource), { body: patch, contentType: 'application/merge-patch+json', query: { fieldManager } });
  }
  delete(k: Kind, namespace: string | undefined, name: string, body: Record<string, unknown> = { propagationPolicy: 'Background' }): Promise<unknown> {
    return this.request('DELETE', resourcePath(k, namespace, name), { body });
  }

  /**
   * Opens a watch and calls `onEvent` per JSON line until the stream ends (resolves) or fails (rejects). Abort with
   * `signal`.
   */
  async watch(path: string, query: RequestOptions['query'], onEvent: (e: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    const { res } = await this.open('GET', path, { query: { ...query, watch: 'true' }, signal });
    if ((res.statusCode ?? 0) >= 300) {
      res.resume();
      throw new KubeApiError(res.statusCode ?? 0, 'WatchFailed', `watch refused`, path);
    }
    let buf = '';
    try {
      for await (const chunk of res) {
        buf += (chunk as Buffer).toString('utf8');
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) onEvent(JSON.parse(line) as WatchEvent);
        }
      }
    } catch (e) {
      if (signal.aborted) return;
      throw e;
    }
  }
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject & { code?: number; reason?: string; message?: string };
}
