/**
 * Applies a configured key prefix (`objectStore.prefix`, the path of `s3://bucket/prefix`) to every key, so the
 * layers above use bucket-relative keys and several clusters can share a bucket.
 */
import type {
  GetOptions, GetStreamResult, ListEntry, ListOptions, ObjectInfo, ObjectStore, PutBody, PutOptions, PutResult,
} from './object-store.ts';

/** '' stays ''; otherwise no leading '/', exactly one trailing '/' ("lance" → "lance/", "/a/b/" → "a/b/"). */
export function normalizePrefix(prefix: string | undefined): string {
  const p = (prefix ?? '').replace(/^\/+/, '').replace(/\/+$/, '');
  return p === '' ? '' : p + '/';
}

export class PrefixedObjectStore implements ObjectStore {
  readonly url: string;

  constructor(private readonly inner: ObjectStore, private readonly prefix: string) {
    this.url = inner.url.replace(/\/$/, '') + '/' + prefix;
  }

  private k(key: string): string {
    return this.prefix + key;
  }

  private strip<T extends { key: string }>(r: T): T {
    return { ...r, key: r.key.slice(this.prefix.length) };
  }

  async put(key: string, body: PutBody, opts?: PutOptions): Promise<PutResult> {
    return this.strip(await this.inner.put(this.k(key), body, opts));
  }

  async putVerified(key: string, body: PutBody, opts?: PutOptions): Promise<PutResult> {
    return this.strip(await this.inner.putVerified(this.k(key), body, opts));
  }

  get(key: string, opts?: GetOptions): Promise<Buffer> {
    return this.inner.get(this.k(key), opts);
  }

  getStream(key: string, opts?: GetOptions): Promise<GetStreamResult> {
    return this.inner.getStream(this.k(key), opts);
  }

  head(key: string): Promise<ObjectInfo | null> {
    return this.inner.head(this.k(key));
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ListEntry> {
    const inner: ListOptions = { ...opts };
    if (opts.startAfter !== undefined) inner.startAfter = this.k(opts.startAfter);
    const n = this.prefix.length;
    for await (const e of this.inner.list(this.k(prefix), inner)) {
      yield e.kind === 'object' ? { ...e, key: e.key.slice(n) } : { kind: 'prefix', prefix: e.prefix.slice(n) };
    }
  }

  delete(keys: readonly string[]): Promise<void> {
    return this.inner.delete(keys.map((key) => this.k(key)));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
