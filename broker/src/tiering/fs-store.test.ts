import { mkdtemp, readdir, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isLanceError } from '../common/errors.ts';
import { FsObjectStore } from './fs-store.ts';
import type { ListEntry, ListOptions } from './object-store.ts';

let dir: string;
let store: FsObjectStore;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'lance-fs-'));
  store = new FsObjectStore({ root: dir });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function ls(prefix: string, opts?: ListOptions): Promise<string[]> {
  const out: string[] = [];
  for await (const e of store.list(prefix, opts) as AsyncIterable<ListEntry>) out.push(e.kind === 'object' ? e.key : `[${e.prefix}]`);
  return out;
}

/** Independent reference of S3 listing semantics: filter, sort by UTF-8 bytes, roll up, dedupe. */
function reference(keys: string[], prefix: string, opts: ListOptions = {}): string[] {
  const sorted = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const out: string[] = [];
  for (const k of sorted) {
    if (!k.startsWith(prefix)) continue;
    if (opts.startAfter !== undefined && Buffer.compare(Buffer.from(k), Buffer.from(opts.startAfter)) <= 0) continue;
    const rest = k.slice(prefix.length);
    const i = opts.delimiter ? rest.indexOf(opts.delimiter) : -1;
    const item = i >= 0 ? `[${prefix}${rest.slice(0, i + opts.delimiter!.length)}]` : k;
    if (out[out.length - 1] !== item) out.push(item);
  }
  return out;
}

// Keys S3 accepts that a naive directory tree cannot hold together or would order wrongly.
const TRICKY = [
  'a', 'a/b', 'a/b/c', 'a-c', 'a.b', 'a//x', 'a/', '.', '..', 'x/./y', 'x/../y', '/lead', 'trail/', 'sp ace',
  'ünï/κ', '日本/語', '\uFFFD', '😀', 'z/😀/1', 'z/\uFFFD/1', 'p%2Fq', 'back\\slash',
];

describe('FsObjectStore: S3 key semantics on a filesystem', () => {
  it('stores every S3-legal key separately and lists them in UTF-8 byte order', async () => {
    for (const k of TRICKY) await store.put(k, Buffer.from(`body of ${k}`));
    for (const k of TRICKY) expect((await store.get(k)).toString()).toBe(`body of ${k}`);
    expect(await ls('')).toEqual(reference(TRICKY, ''));
    // UTF-8 order differs from JS string order for astral characters
    const all = await ls('');
    expect(all.indexOf('\uFFFD')).toBeLessThan(all.indexOf('😀'));
  });

  it('matches the reference for every prefix, startAfter and delimiter combination', async () => {
    for (const k of TRICKY) await store.put(k, Buffer.from(k));
    const prefixes = ['', 'a', 'a/', 'a/b', 'x/', 'z/', '日', 'nothing'];
    const afters = [undefined, '', 'a', 'a/', 'a/b', 'a-c', 'x/./y', 'z/'];
    for (const prefix of prefixes) {
      for (const startAfter of afters) {
        for (const delimiter of [undefined, '/', '-', 'b/']) {
          const opts: ListOptions = { ...(startAfter !== undefined ? { startAfter } : {}), ...(delimiter ? { delimiter } : {}) };
          expect(await ls(prefix, opts), JSON.stringify({ prefix, ...opts })).toEqual(reference(TRICKY, prefix, opts));
        }
      }
    }
  });

  it('never maps a key outside the root', () => {
    for (const k of ['../../etc/passwd', '/etc/passwd', '..', 'a/../../..']) {
      const p = store.objectPath(k);
      expect(p.startsWith(dir + path.sep)).toBe(true);
    }
    try {
      store.objectPath('x'.repeat(300));
      throw new Error('expected INVALID_ARGUMENT');
    } catch (e) {
      expect(isLanceError(e, 'INVALID_ARGUMENT')).toBe(true);
      expect((e as Error).message).toContain('253');
    }
  });
});

describe('FsObjectStore: files on disk', () => {
  it('ignores leftovers of interrupted writes and foreign files', async () => {
    await store.put('t/seg', Buffer.from('data'));
    await writeFile(path.join(dir, 't.d', '.tmp-999-abcdef'), 'half-written');
    await writeFile(path.join(dir, 'README'), 'not an object');
    expect(await ls('')).toEqual(['t/seg']);
  });

  it('removeStaleTempFiles reclaims old leftovers only', async () => {
    await store.put('t/seg', Buffer.from('data'));
    const old = path.join(dir, 't.d', '.tmp-1-old');
    const fresh = path.join(dir, 't.d', '.tmp-1-fresh');
    await writeFile(old, 'x');
    await writeFile(fresh, 'y');
    const hourAgo = new Date(Date.now() - 2 * 3600_000);
    await utimes(old, hourAgo, hourAgo);
    expect(await store.removeStaleTempFiles(3600_000)).toBe(1);
    expect((await readdir(path.join(dir, 't.d'))).sort()).toEqual(['.tmp-1-fresh', 'seg.o']);
    expect((await store.get('t/seg')).toString()).toBe('data');
  });

  it('hooks see each operation, its outcome and the bytes', async () => {
    const events: string[] = [];
    const observed = new FsObjectStore({
      root: dir,
      hooks: { onRequest: (o, outcome) => events.push(`${o}:${outcome}`), onBytes: (d, n) => events.push(`${d} ${n}`) },
    });
    await observed.put('h/1', Buffer.alloc(10));
    await observed.get('h/1');
    await observed.get('h/missing').catch(() => undefined);
    expect(events).toEqual(['out 10', 'put:ok', 'in 10', 'get:ok', 'get:NOT_FOUND']);
  });

  it('a damaged object file is CORRUPT, naming the file', async () => {
    await store.put('t/seg', Buffer.from('some segment bytes'));
    const file = store.objectPath('t/seg');
    await truncate(file, 10);
    for (const call of [() => store.head('t/seg'), () => store.get('t/seg'), () => store.get('t/seg', { range: { offset: 0, length: 2 } })]) {
      await expect(call()).rejects.toMatchObject({ code: 'CORRUPT', message: expect.stringContaining(file) });
    }
  });

  it('delete prunes directories that became empty', async () => {
    await store.put('a/b/c/1', Buffer.from('1'));
    await store.put('a/x', Buffer.from('x'));
    await store.delete(['a/b/c/1']);
    expect(await readdir(path.join(dir, 'a.d'))).toEqual(['x.o']);
    await store.delete(['a/x']);
    expect(await readdir(dir)).toEqual([]);
  });

  it('concurrent puts and deletes in the same directory do not trip over pruned directories', async () => {
    const ops: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      ops.push(store.put(`d/e/k${i}`, Buffer.from(String(i))));
      if (i > 0) ops.push(store.delete([`d/e/k${i - 1}`]));
    }
    await Promise.all(ops);
    // every put completed; whichever keys survived read back their own bytes
    for (const k of await ls('d/')) expect((await store.get(k)).toString()).toBe(k.slice('d/e/k'.length));
  });
});
