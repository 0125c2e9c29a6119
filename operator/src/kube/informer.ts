/**
 * List+watch informer with a local cache, written on KubeRest so it can see BOOKMARKs: relists on 410 Gone and on
 * stream end/errors (with backoff), resyncs (re-delivers every cached object) periodically, and restarts the watch
 * when no event or bookmark arrived within `stallFactor` × resync (a silently dead connection).
 */
import type { Logger } from '../../../broker/src/common/log.ts';
import { silentLogger } from '../../../broker/src/common/log.ts';
import { KubeApiError, resourcePath, type Kind, type KubeObject, type KubeRest, type WatchEvent } from './rest.ts';

export type InformerEvent = 'add' | 'update' | 'delete' | 'resync';
export type InformerHandler<T> = (event: InformerEvent, obj: T, old?: T) => void;

export interface InformerOptions {
  namespace?: string; // undefined: all namespaces
  labelSelector?: string;
  resyncMs?: number;
  /** A watch with no event or bookmark for stallFactor × resyncMs is restarted. */
  stallFactor?: number;
  log?: Logger;
  onStall?: (kind: string) => void;
  onRelist?: (kind: string) => void;
}

export function objectKey(o: KubeObject): string {
  const ns = o.metadata?.namespace;
  return ns ? `${ns}/${o.metadata?.name}` : `${o.metadata?.name}`;
}

export class Informer<T extends KubeObject> {
  private readonly cache = new Map<string, T>();
  private readonly handlers: InformerHandler<T>[] = [];
  private abort: AbortController | undefined;
  private stopped = false;
  private resourceVersion = '';
  private lastActivity = Date.now();
  private timers: NodeJS.Timeout[] = [];
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  private loopDone: Promise<void> | undefined;
  private readonly opts: Required<Omit<InformerOptions, 'namespace' | 'labelSelector' | 'onStall' | 'onRelist'>> & InformerOptions;
  /** Watch restarts caused by stall detection (for tests and metrics). */
  stalls = 0;
  relists = 0;

  constructor(private readonly rest: KubeRest, readonly kind: Kind, opts: InformerOptions = {}) {
    this.opts = { resyncMs: 30_000, stallFactor: 3, log: silentLogger, ...opts };
  }

  on(handler: InformerHandler<T>): void {
    this.handlers.push(handler);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.cache.get(namespace ? `${namespace}/${name}` : name);
  }

  hasSynced(): boolean {
    return this.synced;
  }

  waitForSync(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((r) => this.syncWaiters.push(r));
  }

  start(): void {
    this.loopDone = this.loop();
    const resync = setInterval(() => {
      for (const o of this.cache.values()) this.emit('resync', o);
    }, this.opts.resyncMs);
    // Stall check runs more often than the stall window so a stall is caught within ~1.25 windows.
    const stallWindow = this.opts.resyncMs * this.opts.stallFactor;
    const stall = setInterval(() => {
      if (this.abort && Date.now() - this.lastActivity > stallWindow) {
        this.stalls++;
        this.opts.log.warn({ kind: this.kind.kind, silentMs: Date.now() - this.lastActivity }, 'watch stalled: no event or bookmark; restarting it');
        this.opts.onStall?.(this.kind.kind);
        this.lastActivity = Date.now();
        this.abort.abort();
      }
    }, Math.max(50, stallWindow / 4));
    resync.unref();
    stall.unref();
    this.timers.push(resync, stall);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.abort?.abort();
    await this.loopDone;
  }

  private emit(e: InformerEvent, o: T, old?: T): void {
    for (const h of this.handlers) {
      try {
        h(e, o, old);
      } catch (err) {
        this.opts.log.error({ err, kind: this.kind.kind }, 'informer handler threw');
      }
    }
  }

  private async relist(): Promise<void> {
    const query: Record<string, string> = {};
    if (this.opts.labelSelector) query.labelSelector = this.opts.labelSelector;
    const l = await this.rest.list<T>(this.kind, this.opts.namespace, query);
    this.relists++;
    this.opts.onRelist?.(this.kind.kind);
    const seen = new Set<string>();
    for (const item of l.items) {
      // List items of typed lists often lack apiVersion/kind; fill them for consumers.
      const o = { apiVersion: this.kind.group ? `${this.kind.group}/${this.kind.version}` : this.kind.version, kind: this.kind.kind, ...item } as T;
      const key = objectKey(o);
      seen.add(key);
      const old = this.cache.get(key);
      this.cache.set(key, o);
      if (!old) this.emit('add', o);
      else if (old.metadata?.resourceVersion !== o.metadata?.resourceVersion) this.emit('update', o, old);
    }
    for (const [key, o] of [...this.cache]) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.emit('delete', o);
      }
    }
    this.resourceVersion = l.metadata?.resourceVersion ?? '';
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  private async loop(): Promise<void> {
    let failures = 0;
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
        }
        this.abort = new AbortController();
        this.lastActivity = Date.now();
        const query: Record<string, string> = { resourceVersion: this.resourceVersion, allowWatchBookmarks: 'true' };
        if (this.opts.labelSelector) query.labelSelector = this.opts.labelSelector;
        let gone = false;
        await this.rest.watch(resourcePath(this.kind, this.opts.namespace), query, (e) => {
          this.lastActivity = Date.now();
          if (this.handleEvent(e) === 'gone') {
            gone = true;
            this.abort?.abort();
          }
        }, this.abort.signal);
        if (gone) needList = true;
        failures = 0;
      } catch (err) {
        if (this.stopped) break;
        failures++;
        needList = needList || (err instanceof KubeApiError && err.status === 410);
        const delay = Math.min(5_000, 100 * 2 ** Math.min(failures, 6));
        this.opts.log.warn({ err, kind: this.kind.kind, delay }, 'list/watch failed; retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private handleEvent(e: WatchEvent): 'gone' | undefined {
    if (e.type === 'ERROR') {
      if (e.object.code === 410) return 'gone';
      this.opts.log.warn({ kind: this.kind.kind, status: e.object }, 'watch ERROR event');
      return 'gone';
    }
    const rv = e.object.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    if (e.type === 'BOOKMARK') return undefined;
    const o = e.object as T;
    const key = objectKey(o);
    const old = this.cache.get(key);
    if (e.type === 'DELETED') {
      this.cache.delete(key);
      this.emit('delete', o);
    } else {
      this.cache.set(key, o);
      this.emit(old ? 'update' : 'add', o, old);
    }
    return undefined;
  }
}
