/** Pure parts of tiering: keys, manifest decoding, retention planning, the upload gate, the LRU. */
import { describe, expect, it } from 'vitest';
import {
  decodeManifest, emptyManifest, encodeManifest, findRemoteSegment, isUploaded, manifestKey, newestFirst, parseManifestKey,
  planRemoteRetention, segmentKeyStem, type Manifest, type RemoteSegment,
} from '../../broker/src/tiering/manifest.ts';
import { LruCache } from '../../broker/src/tiering/remote-reader.ts';
import { resolveConfig } from '../../broker/src/server/config.ts';
import { LanceError } from '../../broker/src/common/errors.ts';

const ref = { clusterId: 'c1', topicId: '0f0e0d0c-0b0a-0908-0706-050403020100', partition: 3 };

function seg(base: number, last: number, size = 100, ts = 1000): RemoteSegment {
  return {
    baseOffset: base, lastOffset: last, firstIndex: base + 1, term: 1, maxTimestamp: ts, uploadedAt: new Date(0).toISOString(),
    data: { key: `k${base}.lnc`, size, crc32c: '0000abcd' },
  };
}

function manifest(segments: RemoteSegment[]): Manifest {
  return { ...emptyManifest(ref, 1, 1, 0), version: 1, segments, remoteLogStartOffset: segments[0]?.baseOffset ?? 0 };
}

describe('tiering keys and manifest', () => {
  it('keys are fixed-width below the partition and sort by term then version', () => {
    const k = segmentKeyStem(ref, { baseOffset: 42, lastOffset: 99, term: 7, node: 2 });
    expect(k).toBe(`clusters/c1/topics/${ref.topicId}/3/segments/00000000000000000042-00000000000000000099-00000000000000000007-0000000002`);
    const keys = [manifestKey(ref, 1, 9), manifestKey(ref, 2, 1), manifestKey(ref, 1, 10)];
    expect(newestFirst(keys).map((x) => parseManifestKey(ref, x))).toEqual([{ term: 2, version: 1 }, { term: 1, version: 10 }, { term: 1, version: 9 }]);
    expect(parseManifestKey(ref, `${manifestKey(ref, 1, 1)}.tmp`)).toBeNull();
  });

  it('round-trips a manifest and rejects damaged ones with CORRUPT naming the field', () => {
    const m = manifest([seg(0, 9), seg(10, 19)]);
    expect(decodeManifest('k', encodeManifest(m))).toEqual(m);
    const err = (b: Buffer): LanceError => {
      try {
        decodeManifest('k', b);
      } catch (e) {
        return e as LanceError;
      }
      throw new Error('expected an error');
    };
    expect(err(Buffer.from('{"format":1')).code).toBe('CORRUPT');
    const bad = err(encodeManifest({ ...m, segments: [seg(0, 9), seg(5, 19)] }));
    expect(bad.code).toBe('CORRUPT');
    expect(bad.message).toContain('segments.1.baseOffset');
    const missing = err(Buffer.from(JSON.stringify({ ...m, remoteLogStartOffset: undefined })));
    expect(missing.message).toContain('remoteLogStartOffset');
  });

  it('finds the segment holding an offset; a gap holds none', () => {
    const m = manifest([seg(0, 9), seg(10, 19), seg(30, 39)]);
    expect(findRemoteSegment(m, 0)?.baseOffset).toBe(0);
    expect(findRemoteSegment(m, 19)?.baseOffset).toBe(10);
    expect(findRemoteSegment(m, 25)).toBeUndefined();
    expect(findRemoteSegment(m, 39)?.baseOffset).toBe(30);
    expect(findRemoteSegment(m, 40)).toBeUndefined();
  });

  it('a local segment is deletable only when the manifest holds exactly its range and it is sealed', () => {
    const m = manifest([seg(0, 9), seg(10, 19)]);
    expect(isUploaded(m, { baseOffset: 0, lastOffset: 9, sealed: true })).toBe(true);
    expect(isUploaded(m, { baseOffset: 0, lastOffset: 9, sealed: false })).toBe(false);
    expect(isUploaded(m, { baseOffset: 10, lastOffset: 25, sealed: true })).toBe(false);
    expect(isUploaded(m, { baseOffset: 20, lastOffset: 29, sealed: true })).toBe(false);
    expect(isUploaded(manifest([]), { baseOffset: 0, lastOffset: 9, sealed: true })).toBe(false);
  });

  it('remote retention: 0 = unlimited, by age and by size (oldest first)', () => {
    const segs = [seg(0, 9, 100, 1000), seg(10, 19, 100, 2000), seg(20, 29, 100, 3000)];
    expect(planRemoteRetention(segs, { retentionMs: 0, retentionBytes: 0 }, 10_000)).toBe(0);
    expect(planRemoteRetention(segs, { retentionMs: 7500, retentionBytes: 0 }, 10_000)).toBe(2);
    expect(planRemoteRetention(segs, { retentionMs: 0, retentionBytes: 150 }, 10_000)).toBe(1);
    expect(planRemoteRetention(segs, { retentionMs: 0, retentionBytes: 100 }, 10_000)).toBe(2);
  });

  it('LRU cache stays within its byte bound and evicts the least recently used', () => {
    const c = new LruCache(10);
    c.set('a', Buffer.alloc(4));
    c.set('b', Buffer.alloc(4));
    c.get('a');
    c.set('c', Buffer.alloc(4));
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBeDefined();
    expect(c.sizeBytes).toBe(8);
    c.set('huge', Buffer.alloc(11));
    expect(c.get('huge')).toBeUndefined();
  });
});

describe('server config: objectStore', () => {
  it('accepts the seed env names over the file section and validates them', () => {
    const cfg = resolveConfig({
      fileRaw: { objectStore: { backend: 's3', bucket: 'from-file', region: 'eu-west-1' } },
      env: { S3_BUCKET: 'from-env', S3_ENDPOINT: 'http://127.0.0.1:4569', S3_PATH_STYLE: 'true', LANCE_TIERING_UPLOAD_INTERVAL_MS: '500' },
      overrides: {},
    });
    expect(cfg.objectStore).toMatchObject({ backend: 's3', bucket: 'from-env', region: 'eu-west-1', forcePathStyle: true });
    expect(cfg.tiering.uploadIntervalMs).toBe(500);
    const none = resolveConfig({ env: {}, overrides: {} });
    expect(none.objectStore).toBeUndefined();
    expect(none.tiering.uploadIntervalMs).toBe(10_000);
    const file = resolveConfig({ env: { OBJECT_STORE_BACKEND: 'file', OBJECT_STORE_PATH: '/tmp/bucket' }, overrides: {} });
    expect(file.objectStore).toMatchObject({ backend: 'file', path: '/tmp/bucket' });
  });

  it('a bad objectStore section is INVALID_CONFIG naming the key', () => {
    let e: unknown;
    try {
      resolveConfig({ fileRaw: { objectStore: { backend: 's3', bucket: 'lance-bucket', maxAttempts: 'many' } }, env: {}, overrides: {} });
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(LanceError);
    expect((e as LanceError).code).toBe('INVALID_CONFIG');
    expect((e as LanceError).message).toContain('objectStore.maxAttempts');
  });
});
