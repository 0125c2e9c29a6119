import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isLanceError } from '../common/errors.ts';
import {
  OBJECT_STORE_CONFIG_KEYS, describeObjectStore, objectStoreConfigFromEnv, objectStoreConfigFromUrl,
  objectStoreConfigMarkdown, objectStoreEnvOverrides, validateObjectStoreConfig,
} from './config.ts';
import { normalizePrefix } from './prefixed.ts';

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (!isLanceError(e, 'INVALID_CONFIG')) throw e;
    return e.message;
  }
  throw new Error('expected INVALID_CONFIG');
}

describe('objectStore config from the seed environment names', () => {
  it('reads the MinIO example of the seed', () => {
    const c = objectStoreConfigFromEnv({
      OBJECT_STORE_BACKEND: 's3', S3_ENDPOINT: 'http://minio:9000', S3_BUCKET: 'chronik-storage',
      S3_ACCESS_KEY: 'minioadmin', S3_SECRET_KEY: 'minioadmin', S3_PATH_STYLE: 'true', S3_DISABLE_SSL: 'true',
    })!;
    expect(c).toMatchObject({
      backend: 's3', endpoint: 'http://minio:9000', bucket: 'chronik-storage', accessKeyId: 'minioadmin',
      secretAccessKey: 'minioadmin', forcePathStyle: true, region: 'us-east-1', prefix: '',
    });
  });
  it('reads the AWS example (credentials from the default chain)', () => {
    const c = objectStoreConfigFromEnv({ OBJECT_STORE_BACKEND: 's3', S3_REGION: 'us-west-2', S3_BUCKET: 'chronik-prod' })!;
    expect(c).toMatchObject({ backend: 's3', region: 'us-west-2', bucket: 'chronik-prod', forcePathStyle: false });
    expect(c.accessKeyId).toBeUndefined();
    expect(c.endpoint).toBeUndefined();
  });
  it('file backend from OBJECT_STORE_PATH; backend inferred when unambiguous; nothing set → undefined', () => {
    expect(objectStoreConfigFromEnv({ OBJECT_STORE_BACKEND: 'file', OBJECT_STORE_PATH: '/var/lib/bucket' })).toMatchObject({ backend: 'file', path: '/var/lib/bucket' });
    expect(objectStoreConfigFromEnv({ OBJECT_STORE_PATH: '/b' })!.backend).toBe('file');
    expect(objectStoreConfigFromEnv({ S3_BUCKET: 'abc' })!.backend).toBe('s3');
    expect(objectStoreConfigFromEnv({})).toBeUndefined();
    expect(objectStoreConfigFromEnv({ S3_BUCKET: '' })).toBeUndefined();
  });
  it('endpoint scheme from S3_DISABLE_SSL; region falls back to AWS_REGION', () => {
    expect(objectStoreEnvOverrides({ S3_ENDPOINT: 'minio:9000', S3_DISABLE_SSL: 'true' })!.endpoint).toBe('http://minio:9000');
    expect(objectStoreEnvOverrides({ S3_ENDPOINT: 'minio:9000' })!.endpoint).toBe('https://minio:9000');
    expect(objectStoreEnvOverrides({ AWS_REGION: 'eu-central-1' })!.region).toBe('eu-central-1');
    expect(objectStoreEnvOverrides({ AWS_REGION: 'eu-central-1', S3_REGION: 'us-west-1' })!.region).toBe('us-west-1');
  });
  it('errors name the variable', () => {
    expect(configError(() => objectStoreConfigFromEnv({ OBJECT_STORE_BACKEND: 'gcs', GCS_BUCKET: 'x' }))).toMatch(/^OBJECT_STORE_BACKEND: "gcs" is not supported/);
    expect(configError(() => objectStoreConfigFromEnv({ OBJECT_STORE_BACKEND: 's3' }))).toBe('objectStore.bucket (S3_BUCKET): required when backend is s3');
    expect(configError(() => objectStoreConfigFromEnv({ OBJECT_STORE_BACKEND: 'file' }))).toBe('objectStore.path (OBJECT_STORE_PATH): required when backend is file');
    expect(configError(() => objectStoreConfigFromEnv({ S3_BUCKET: 'bkt', S3_PATH_STYLE: 'maybe' }))).toBe('S3_PATH_STYLE: expected true or false, got "maybe"');
    expect(configError(() => objectStoreConfigFromEnv({ S3_BUCKET: 'bkt', S3_ENDPOINT: 'https://s3:443', S3_DISABLE_SSL: 'true' }))).toMatch(/^S3_DISABLE_SSL: true contradicts/);
    expect(configError(() => objectStoreConfigFromEnv({ S3_BUCKET: 'bkt', S3_DISABLE_SSL: '1' }))).toMatch(/^S3_DISABLE_SSL: true needs S3_ENDPOINT/);
    expect(configError(() => objectStoreConfigFromEnv({ S3_BUCKET: 'bkt', S3_ACCESS_KEY: 'k' }))).toBe('objectStore.secretAccessKey (S3_SECRET_KEY): accessKeyId and secretAccessKey must be set together');
    expect(configError(() => objectStoreConfigFromEnv({ S3_BUCKET: 'Bad_Bucket' }))).toMatch(/^objectStore\.bucket \(S3_BUCKET\): expected an S3 bucket name/);
    expect(configError(() => objectStoreConfigFromEnv({ S3_BUCKET: 'ok-bucket', OBJECT_STORE_BACKEND: 'file' }))).toMatch(/^objectStore\.path/);
    expect(configError(() => objectStoreConfigFromEnv({ S3_BUCKET: 'bkt', OBJECT_STORE_PATH: '/x' }))).toBe('OBJECT_STORE_BACKEND: not set (expected s3 or file)');
  });
});

describe('objectStore config from lance.yaml values', () => {
  it('applies defaults', () => {
    const c = validateObjectStoreConfig({ backend: 's3', bucket: 'lance' });
    expect(c).toMatchObject({ multipartThresholdBytes: 16 * 1024 * 1024, partSizeBytes: 16 * 1024 * 1024, maxAttempts: 5, listPageSize: 1000, etagIsMd5: true, listDelimiter: 'server' });
  });
  it('names the key of the first problem', () => {
    expect(configError(() => validateObjectStoreConfig({ backend: 's3', bucket: 'b1b', partSizeBytes: 1024 }))).toMatch(/^objectStore\.partSizeBytes: expected an integer 5242880\.\./);
    expect(configError(() => validateObjectStoreConfig({ backend: 's3', bucket: 'b1b', endpoint: 'ftp://x' }))).toMatch(/^objectStore\.endpoint: expected an http/);
    expect(configError(() => validateObjectStoreConfig({ backend: 's3', bucket: 'b1b', bucketz: 1 }))).toBe('objectStore.bucketz: unknown key');
    expect(configError(() => validateObjectStoreConfig({ backend: 'azure' }))).toBe('objectStore.backend: expected s3 or file');
    expect(configError(() => validateObjectStoreConfig({ backend: 's3', bucket: 'b1b', listPageSize: 5000 }))).toMatch(/^objectStore\.listPageSize: expected an integer 1\.\.1000/);
    expect(configError(() => validateObjectStoreConfig({ backend: 's3', bucket: 'b1b', retryBaseDelayMs: 500, retryMaxDelayMs: 100 }))).toBe('objectStore.retryMaxDelayMs: must be >= retryBaseDelayMs');
    expect(configError(() => validateObjectStoreConfig({ backend: 'file', path: '/dr', prefix: 'a/../../etc' }))).toMatch(/^objectStore\.prefix: must not contain empty, "\." or "\.\." components/);
    expect(validateObjectStoreConfig({ backend: 's3', bucket: 'b1b', prefix: 'a/../b' }).prefix).toBe('a/../b'); // just key bytes on S3
  });
});

describe('objectStore config from URLs (lnc restore --from)', () => {
  it('s3://bucket/prefix takes connection settings from the environment', () => {
    const c = objectStoreConfigFromUrl('s3://backups/cluster-a/2026', { S3_ENDPOINT: 'http://127.0.0.1:4569', S3_PATH_STYLE: 'true', S3_ACCESS_KEY: 'k', S3_SECRET_KEY: 's', S3_BUCKET: 'other', OBJECT_STORE_PATH: '/ignored' });
    expect(c).toMatchObject({ backend: 's3', bucket: 'backups', prefix: 'cluster-a/2026', endpoint: 'http://127.0.0.1:4569', forcePathStyle: true, accessKeyId: 'k' });
    expect(c.path).toBeUndefined();
    expect(describeObjectStore(c)).toBe('s3://backups/cluster-a/2026/ (endpoint http://127.0.0.1:4569)');
    expect(objectStoreConfigFromUrl('s3://backups')).toMatchObject({ bucket: 'backups', prefix: '' });
  });
  it('query parameters override single fields', () => {
    expect(objectStoreConfigFromUrl('s3://bkt/p?endpoint=http://h:1&region=eu-west-1&forcePathStyle=true')).toMatchObject({ endpoint: 'http://h:1', region: 'eu-west-1', forcePathStyle: true });
    expect(configError(() => objectStoreConfigFromUrl('s3://bkt/p?colour=blue'))).toMatch(/^url \?colour: unknown parameter/);
  });
  it('a file store with a prefix is the directory the URL names', () => {
    const c = validateObjectStoreConfig({ backend: 'file', path: '/mnt/dr', prefix: 'clusters/prod' });
    expect(describeObjectStore(c)).toBe('file:///mnt/dr/clusters/prod/');
    expect(objectStoreConfigFromUrl(describeObjectStore(c))).toMatchObject({ backend: 'file', path: '/mnt/dr/clusters/prod' });
  });
  it('file:///abs and file://relative', () => {
    expect(objectStoreConfigFromUrl('file:///var/backups')).toMatchObject({ backend: 'file', path: '/var/backups' });
    expect(objectStoreConfigFromUrl('file://bk/dir', {}, '/work')).toMatchObject({ backend: 'file', path: '/work/bk/dir' });
  });
  it('rejects other forms, naming the url', () => {
    expect(configError(() => objectStoreConfigFromUrl('gs://x/y'))).toMatch(/^url: "gs:\/\/x\/y": scheme gs:\/\/ is not supported/);
    expect(configError(() => objectStoreConfigFromUrl('/just/a/path'))).toMatch(/^url: .*expected s3:\/\/bucket\/prefix or file:\/\/\/dir/);
    expect(configError(() => objectStoreConfigFromUrl('s3:///prefix'))).toMatch(/^url: .*no bucket/);
    expect(configError(() => objectStoreConfigFromUrl('s3://NOPE_/x'))).toMatch(/^url\.bucket: expected an S3 bucket name/);
    expect(configError(() => objectStoreConfigFromUrl('file://'))).toMatch(/^url: .*no directory/);
  });
});

describe('prefix normalisation', () => {
  it('adds one trailing slash, strips leading ones', () => {
    expect(normalizePrefix('')).toBe('');
    expect(normalizePrefix(undefined)).toBe('');
    expect(normalizePrefix('lance')).toBe('lance/');
    expect(normalizePrefix('/a/b//')).toBe('a/b/');
  });
});

describe('documentation', () => {
  it('every schema key is documented, and README.md carries the rendered table', () => {
    const documented = OBJECT_STORE_CONFIG_KEYS.map((k) => k.path).filter((p) => p !== '-').map((p) => p.replace('objectStore.', '')).sort();
    const schemaKeys = Object.keys(validateObjectStoreConfig({ backend: 'file', path: '/x', bucket: 'abc', endpoint: 'http://h', accessKeyId: 'a', secretAccessKey: 'b', sessionToken: 't', spoolDir: '/t' })).sort();
    expect(documented).toEqual(schemaKeys);
    const readme = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'README.md'), 'utf8');
    expect(readme).toContain(objectStoreConfigMarkdown());
  });
});
