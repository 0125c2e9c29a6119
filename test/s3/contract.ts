/**
 * The ObjectStore contract: ONE suite, run against every backend (contract-file.test.ts, contract-s3.test.ts).
 * A backend passes only if the layers above cannot tell it apart from the others.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLanceError, type LanceErrorCode } from '../../broker/src/common/errors.ts';
import { crc32cHex } from '../../broker/src/tiering/body.ts';
import type { ListEntry, ListOptions, ObjectStore } from '../../broker/src/tiering/object-store.ts';

export const MiB = 1024 * 1024;

export interface ContractBackend {
  /** a store over the backend's bucket; with `prefix`, the objectStore.prefix setting */
  store(prefix?: string): ObjectStore;
  /** the store `lnc restore --from <url>` would open for this bucket and prefix (objectStoreConfigFromUrl) */
  fromUrl(prefix: string): ObjectStore;
  /** damages the stored bytes of `key` (a bucket-level key) behind the store's back */
  corruptAtRest(key: string): Promise<void>;
  /** the multipart threshold the store was configured with (bodies above it take the multipart path on S3) */
  multipartThresholdBytes: number;
  cleanup(): Promise<void>;
}

export async function collect(it: AsyncIterable<ListEntry>): Promise<string[]> {
  const out: string[] = [];
  for await (const e of it) out.push(e.kind === 'object' ? e.key : `[${e.prefix}]`);
  return out;
}

export async function expectCode(p: Promise<unknown>, code: LanceErrorCode): Promise<Error> {
  try {
    await p;
  } catch (e) {
    if (!isLanceError(e, code)) throw new Error(`expected LanceError ${code}, got ${String(e)}`, { cause: e });
    return e;
  }
  throw new Error(`expected LanceError ${code}, but it succeeded`);
}

/** Runs `fn` over items with at most `n` in flight. */
export async function parallel<T>(items: readonly T[], n: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

export function objectStoreContract(name: string, setup: () => Promise<ContractBackend>): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let backend: ContractBackend;
    let store: ObjectStore;
    let tmp: string;
    let n = 0;
    /** a fresh key namespace per test, so tests cannot see each other's objects */
    const ns = (): string => `t${++n}-${randomBytes(3).toString('hex')}/`;

    beforeAll(async () => {
      backend = await setup();
      store = backend.store();
      tmp = await mkdtemp(path.join(os.tmpdir(), 'lance-contract-'));
    });
    afterAll(async () => {
      await store?.close();
      await backend?.cleanup();
      if (tmp) await rm(tmp, { recursive: true, force: true });
    });

    it('put/get/head round-trip with metadata, CRC32C and content type', async () => {
      const k = ns() + 'obj';
      const body = randomBytes(10_000);
      const r = await store.put(k, body, { contentType: 'application/octet-stream', metadata: { 'lance-term': '7' } });
      expect(r).toMatchObject({ key: k, size: 10_000, checksum: crc32cHex(body) });
      expect(r.etag).toMatch(/^[0-9a-f]{32}(-\d+)?$/);
      expect((await store.get(k)).equals(body)).toBe(true);
      const h = await store.head(k);
      expect(h).not.toBeNull();
      expect(h!.size).toBe(10_000);
      expect(h!.etag).toBe(r.etag);
      expect(h!.contentType).toBe('application/octet-stream');
      expect(h!.metadata).toMatchObject({ 'lance-term': '7', 'lance-crc32c': crc32cHex(body) });
      expect(h!.lastModified.getTime()).toBeGreaterThan(Date.UTC(2020, 0, 1));
    });

    it('a key written again is replaced (idempotent keys)', async () => {
      const k = ns() + 'same';
      await store.put(k, Buffer.from('first version'));
      await store.put(k, Buffer.from('second'));
      expect((await store.get(k)).toString()).toBe('second');
      expect((await store.head(k))!.size).toBe(6);
    });

    it('missing objects: get is NOT_FOUND, head is null', async () => {
      const k = ns() + 'nope';
      const e = await expectCode(store.get(k), 'NOT_FOUND');
      expect(e.message).toContain('nope');
      expect(await store.head(k)).toBeNull();
      await expectCode(store.getStream(k), 'NOT_FOUND');
    });

    it('range reads: middle, open-ended, past the end, and an empty object', async () => {
      const k = ns() + 'range';
      const body = Buffer.from('0123456789abcdef');
      await store.put(k, body);
      expect((await store.get(k, { range: { offset: 3, length: 4 } })).toString()).toBe('3456');
      expect((await store.get(k, { range: { offset: 10 } })).toString()).toBe('abcdef');
      expect((await store.get(k, { range: { offset: 14, length: 100 } })).toString()).toBe('ef');
      const e = await expectCode(store.get(k, { range: { offset: 16 } }), 'INVALID_ARGUMENT');
      expect(e.message).toContain('16');
      await expectCode(store.get(k, { range: { offset: -1 } }), 'INVALID_ARGUMENT');
      await expectCode(store.get(k, { range: { offset: 0, length: 0 } }), 'INVALID_ARGUMENT');
      const empty = ns() + 'empty';
      await store.put(empty, Buffer.alloc(0));
      expect((await store.get(empty)).length).toBe(0);
      expect((await store.head(empty))!.size).toBe(0);
      expect((await store.get(empty, { range: { offset: 0 } })).length).toBe(0);
    });

    it('getStream delivers the object (whole and ranged)', async () => {
      const k = ns() + 'stream';
      const body = randomBytes(300_000);
      await store.put(k, body);
      const whole = await store.getStream(k);
      expect(whole.length).toBe(body.length);
      expect(whole.info.size).toBe(body.length);
      const chunks: Buffer[] = [];
      for await (const c of whole.body) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).equals(body)).toBe(true);
      const part = await store.getStream(k, { range: { offset: 1000, length: 5000 } });
      const pchunks: Buffer[] = [];
      for await (const c of part.body) pchunks.push(c as Buffer);
      expect(Buffer.concat(pchunks).equals(body.subarray(1000, 6000))).toBe(true);
      expect(part.info.size).toBe(body.length);
    });

    it('bodies from a file and from a stream with a declared length', async () => {
      const d = ns();
      const body = randomBytes(50_000);
      const file = path.join(tmp, 'body.bin');
      await writeFile(file, body);
      await store.put(d + 'from-file', { file });
      expect((await store.get(d + 'from-file')).equals(body)).toBe(true);
      await store.put(d + 'from-stream', { stream: Readable.from([body.subarray(0, 20_000), body.subarray(20_000)]), length: body.length });
      expect((await store.get(d + 'from-stream')).equals(body)).toBe(true);
      const e = await expectCode(store.put(d + 'short', { stream: Readable.from([body]), length: body.length + 1 }), 'INVALID_ARGUMENT');
      expect(e.message).toContain('length');
      expect(await store.head(d + 'short')).toBeNull();
      await expectCode(store.put(d + 'missing-file', { file: path.join(tmp, 'no-such-file') }), 'NOT_FOUND');
    });

    it('rejects keys and metadata that the backends cannot store identically, naming them', async () => {
      await expectCode(store.put('', Buffer.from('x')), 'INVALID_ARGUMENT');
      const long = 'k'.repeat(1100);
      expect((await expectCode(store.put(long, Buffer.from('x')), 'INVALID_ARGUMENT')).message).toContain('1024');
      expect((await expectCode(store.put(ns() + 'm', Buffer.from('x'), { metadata: { Upper: 'x' } }), 'INVALID_ARGUMENT')).message).toContain('Upper');
      expect((await expectCode(store.put(ns() + 'm', Buffer.from('x'), { metadata: { 'lance-crc32c': '0' } }), 'INVALID_ARGUMENT')).message).toContain('reserved');
    });

    it('list: order, prefixes, delimiter, startAfter', async () => {
      const d = ns();
      const keys = ['a/1', 'a/2', 'b/1', 'c', 'd/x/1', 'd/y/2', 'e'];
      // put in a scrambled order: listing order must not depend on write order
      for (const k of [...keys].reverse()) await store.put(d + k, Buffer.from(k));
      const rel = (xs: string[]): string[] => xs.map((x) => x.replace(d, ''));
      const ls = async (prefix: string, opts?: ListOptions): Promise<string[]> => rel(await collect(store.list(d + prefix, opts)));
      expect(await ls('')).toEqual(keys);
      expect(await ls('', { delimiter: '/' })).toEqual(['[a/]', '[b/]', 'c', '[d/]', 'e']);
      expect(await ls('d/', { delimiter: '/' })).toEqual(['[d/x/]', '[d/y/]']);
      expect(await ls('a', { delimiter: '/' })).toEqual(['[a/]']);
      expect(await ls('d/x')).toEqual(['d/x/1']);
      expect(await ls('', { startAfter: d + 'a/1' })).toEqual(['a/2', 'b/1', 'c', 'd/x/1', 'd/y/2', 'e']);
      expect(await ls('', { startAfter: d + 'b/1', delimiter: '/' })).toEqual(['c', '[d/]', 'e']);
      expect(await ls('', { startAfter: d + 'c' })).toEqual(['d/x/1', 'd/y/2', 'e']);
      expect(await ls('zzz')).toEqual([]);
      const objects: ListEntry[] = [];
      for await (const e of store.list(d + 'a/')) objects.push(e);
      expect(objects[0]).toMatchObject({ kind: 'object', key: d + 'a/1', size: 3 });
      expect((objects[0] as { etag: string }).etag).toBe((await store.head(d + 'a/1'))!.etag);
    });

    it('list pages through more than 1000 keys (continuation), with startAfter and delimiter; delete in batches', async () => {
      const d = ns();
      const keys = Array.from({ length: 1100 }, (_, i) => `${d}p/${String(Math.floor(i / 100)).padStart(2, '0')}/${String(i % 100).padStart(3, '0')}`);
      await parallel(keys, 16, (k) => store.put(k, Buffer.from(k)));
      const all = await collect(store.list(d));
      expect(all.length).toBe(1100);
      expect(all).toEqual(keys);
      expect(await collect(store.list(d, { startAfter: `${d}p/05/049` }))).toEqual(keys.slice(550));
      const groups = await collect(store.list(`${d}p/`, { delimiter: '/' }));
      expect(groups).toEqual(Array.from({ length: 11 }, (_, g) => `[${d}p/${String(g).padStart(2, '0')}/]`));
      await store.delete([...keys, `${d}never-existed`]);
      expect(await collect(store.list(d))).toEqual([]);
    });

    it('delete removes objects; deleting missing keys is not an error', async () => {
      const d = ns();
      await store.put(d + 'x', Buffer.from('x'));
      await store.put(d + 'y/z', Buffer.from('z'));
      await store.delete([d + 'x', d + 'y/z', d + 'not-there']);
      expect(await store.head(d + 'x')).toBeNull();
      expect(await store.head(d + 'y/z')).toBeNull();
      expect(await collect(store.list(d))).toEqual([]);
      await store.delete([]);
    });

    it('large objects above the multipart threshold round-trip (put, putVerified, file body)', async () => {
      const d = ns();
      // just over the threshold: two parts on S3 (a full one and a short last one)
      const body = randomBytes(backend.multipartThresholdBytes + 12345);
      const r = await store.put(d + 'big', body);
      expect(r.size).toBe(body.length);
      expect(r.checksum).toBe(crc32cHex(body));
      expect((await store.get(d + 'big')).equals(body)).toBe(true);
      expect((await store.get(d + 'big', { range: { offset: backend.multipartThresholdBytes - 10, length: 20 } }))
        .equals(body.subarray(backend.multipartThresholdBytes - 10, backend.multipartThresholdBytes + 10))).toBe(true);
      const file = path.join(tmp, 'big.bin');
      await writeFile(file, body);
      const v = await store.putVerified(d + 'big-verified', { file });
      expect(v.size).toBe(body.length);
      expect((await store.head(d + 'big-verified'))!.metadata['lance-crc32c']).toBe(crc32cHex(body));
      const s = await store.put(d + 'big-stream', { stream: Readable.from([body]), length: body.length });
      expect(s.checksum).toBe(crc32cHex(body));
      expect((await store.get(d + 'big-stream')).equals(body)).toBe(true);
    });

    it('putVerified stores the body and returns its checksum', async () => {
      const k = ns() + 'verified';
      const body = randomBytes(4096);
      const r = await store.putVerified(k, body, { metadata: { 'lance-kind': 'segment' } });
      expect(r.checksum).toBe(crc32cHex(body));
      expect((await store.get(k)).equals(body)).toBe(true);
      expect((await store.head(k))!.metadata['lance-kind']).toBe('segment');
      const s = await store.putVerified(k + '-stream', { stream: Readable.from([body]), length: body.length });
      expect(s.size).toBe(body.length);
    });

    it('a body damaged at rest is never returned: full get is CORRUPT, the stream errors', async () => {
      const k = ns() + 'rot';
      const body = randomBytes(20_000);
      await store.put(k, body);
      await backend.corruptAtRest(k);
      const e = await expectCode(store.get(k), 'CORRUPT');
      expect(e.message).toContain('crc32c');
      const { body: s } = await store.getStream(k);
      await expect((async () => {
        for await (const _ of s) { /* drain */ }
      })()).rejects.toMatchObject({ code: 'CORRUPT' });
    });

    it('a configured prefix is applied to every key transparently', async () => {
      const p = ns().slice(0, -1);
      const scoped = backend.store(p);
      try {
        await scoped.put('k/1', Buffer.from('one'));
        await scoped.putVerified('k/2', Buffer.from('two'));
        expect(await collect(scoped.list(''))).toEqual(['k/1', 'k/2']);
        expect(await collect(scoped.list('', { delimiter: '/' }))).toEqual(['[k/]']);
        expect(await collect(scoped.list('k/', { startAfter: 'k/1' }))).toEqual(['k/2']);
        expect((await scoped.get('k/1')).toString()).toBe('one');
        expect((await scoped.head('k/2'))!.size).toBe(3);
        // the URL form of the same bucket + prefix (lnc restore --from) is the same store
        const viaUrl = backend.fromUrl(p);
        try {
          expect(await collect(viaUrl.list(''))).toEqual(['k/1', 'k/2']);
          expect((await viaUrl.get('k/2')).toString()).toBe('two');
        } finally {
          await viaUrl.close();
        }
        // another prefix is another namespace
        const other = backend.store(p + '-other');
        try {
          expect(await collect(other.list(''))).toEqual([]);
          expect(await other.head('k/1')).toBeNull();
        } finally {
          await other.close();
        }
        await scoped.delete(['k/1', 'k/2']);
        expect(await collect(scoped.list(''))).toEqual([]);
      } finally {
        await scoped.close();
      }
    });
  });
}
