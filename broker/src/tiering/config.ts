/**
 * Object-store configuration: the `objectStore:` section of lance.yaml, the Chronik seed's environment names
 * (OBJECT_STORE_BACKEND, S3_*, OBJECT_STORE_PATH) and URLs (`s3://bucket/prefix`, `file:///dir`, used by
 * `lnc restore --from`). Everything here is pure except createObjectStore, which builds a backend.
 * Every key is listed in OBJECT_STORE_CONFIG_KEYS; objectStoreConfigMarkdown() renders them for the docs
 * (broker/src/tiering/README.md holds the rendered table; a test keeps it in sync).
 */
import * as path from 'node:path';
import { z } from 'zod';
import { LanceError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { FsObjectStore } from './fs-store.ts';
import type { ObjectStore, ObjectStoreHooks } from './object-store.ts';
import { PrefixedObjectStore, normalizePrefix } from './prefixed.ts';
import { S3ObjectStore } from './s3-store.ts';

const MiB = 1024 * 1024;

const int = (min: number, max: number): z.ZodNumber =>
  z.number({ error: `expected an integer ${min}..${max}` }).int({ error: `expected an integer ${min}..${max}` })
    .min(min, { error: `expected an integer ${min}..${max}` }).max(max, { error: `expected an integer ${min}..${max}` });
const bool = z.boolean({ error: 'expected true or false' });
const nonEmpty = (what: string): z.ZodString => z.string({ error: `expected ${what}` }).min(1, { error: `expected ${what}` });

// S3 bucket naming rules (the subset that matters: 3-63 chars of lower-case letters, digits, dots, hyphens).
const bucketName = z.string({ error: 'expected a bucket name' })
  .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { error: 'expected an S3 bucket name: 3-63 characters of a-z 0-9 . -' });

const endpointUrl = z.string({ error: 'expected an http(s) URL' }).refine((s) => {
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.host !== '';
  } catch {
    return false;
  }
}, { error: 'expected an http:// or https:// URL, e.g. http://minio:9000' });

/**
 * One flat object for both backends (a config file may keep S3 keys around while `backend: file`); the keys that a
 * backend needs are checked in superRefine, naming the missing key.
 */
export const ObjectStoreConfigSchema = z.strictObject({
  backend: z.enum(['s3', 'file'], { error: 'expected s3 or file' }),
  prefix: z.string({ error: 'expected a key prefix' }).default(''),
  path: nonEmpty('a directory path').optional(),
  bucket: bucketName.optional(),
  endpoint: endpointUrl.optional(),
  region: nonEmpty('a region name').default('us-east-1'),
  forcePathStyle: bool.default(false),
  accessKeyId: nonEmpty('an access key id').optional(),
  secretAccessKey: nonEmpty('a secret access key').optional(),
  sessionToken: nonEmpty('a session token').optional(),
  multipartThresholdBytes: int(5 * MiB, 5 * 1024 * MiB).default(16 * MiB),
  partSizeBytes: int(5 * MiB, 5 * 1024 * MiB).default(16 * MiB),
  partConcurrency: int(1, 64).default(4),
  maxAttempts: int(1, 20).default(5),
  retryBaseDelayMs: int(1, 60_000).default(100),
  retryMaxDelayMs: int(1, 600_000).default(5_000),
  verifyAttempts: int(1, 10).default(3),
  connectTimeoutMs: int(1, 600_000).default(5_000),
  idleTimeoutMs: int(1, 3_600_000).default(30_000),
  requestTimeoutMs: int(1, 3_600_000).default(30_000),
  minThroughputBytesPerSec: int(1, 1024 * 1024 * MiB).default(1 * MiB),
  listPageSize: int(1, 1000).default(1000),
  listDelimiter: z.enum(['server', 'client'], { error: 'expected server or client' }).default('server'),
  etagIsMd5: bool.default(true),
  spoolDir: nonEmpty('a directory path').optional(),
}).superRefine((c, ctx) => {
  if (c.backend === 's3' && c.bucket === undefined) ctx.addIssue({ code: 'custom', path: ['bucket'], message: 'required when backend is s3' });
  if (c.backend === 'file' && c.path === undefined) ctx.addIssue({ code: 'custom', path: ['path'], message: 'required when backend is file' });
  // The file backend turns the prefix into sub-directories of path (so file:///dir/prefix names the same place).
  if (c.backend === 'file' && normalizePrefix(c.prefix).split('/').slice(0, -1).some((p) => p === '.' || p === '..' || p === '')) {
    ctx.addIssue({ code: 'custom', path: ['prefix'], message: 'must not contain empty, "." or ".." components with the file backend' });
  }
  if ((c.accessKeyId === undefined) !== (c.secretAccessKey === undefined)) {
    ctx.addIssue({ code: 'custom', path: [c.accessKeyId === undefined ? 'accessKeyId' : 'secretAccessKey'], message: 'accessKeyId and secretAccessKey must be set together' });
  }
  if (c.retryMaxDelayMs < c.retryBaseDelayMs) ctx.addIssue({ code: 'custom', path: ['retryMaxDelayMs'], message: 'must be >= retryBaseDelayMs' });
});

export type ObjectStoreConfig = z.infer<typeof ObjectStoreConfigSchema>;

export interface ObjectStoreConfigKey {
  /** dotted path in lance.yaml */
  path: string;
  /** environment variable, where one exists */
  env: string | undefined;
  kind: 'int' | 'bool' | 'string';
  default: string;
  doc: string;
}

/** Every key of the `objectStore` section. README.md's table is rendered from this list. */
export const OBJECT_STORE_CONFIG_KEYS: readonly ObjectStoreConfigKey[] = [
  { path: 'objectStore.backend', env: 'OBJECT_STORE_BACKEND', kind: 'string', default: '(none: no object store)', doc: '`s3` or `file`. Setting S3_BUCKET alone implies `s3`, OBJECT_STORE_PATH alone `file`.' },
  { path: 'objectStore.prefix', env: 'OBJECT_STORE_PREFIX', kind: 'string', default: '""', doc: 'Key prefix applied to every object (a trailing `/` is added), so clusters can share a bucket.' },
  { path: 'objectStore.path', env: 'OBJECT_STORE_PATH', kind: 'string', default: '-', doc: 'file backend: the directory used as the bucket.' },
  { path: 'objectStore.bucket', env: 'S3_BUCKET', kind: 'string', default: '-', doc: 's3 backend: bucket name (required).' },
  { path: 'objectStore.endpoint', env: 'S3_ENDPOINT', kind: 'string', default: '(AWS)', doc: 'S3-compatible endpoint URL, e.g. `http://minio:9000`. Without a scheme, `https://` (or `http://` with S3_DISABLE_SSL=true).' },
  { path: '-', env: 'S3_DISABLE_SSL', kind: 'bool', default: 'false', doc: '`true`: the endpoint is plain HTTP (requires S3_ENDPOINT; contradicting an `https://` endpoint is an error).' },
  { path: 'objectStore.region', env: 'S3_REGION', kind: 'string', default: 'us-east-1', doc: 'Region (env fallbacks: AWS_REGION, AWS_DEFAULT_REGION).' },
  { path: 'objectStore.forcePathStyle', env: 'S3_PATH_STYLE', kind: 'bool', default: 'false', doc: 'Path-style URLs (`endpoint/bucket/key`), needed by MinIO and s3rver.' },
  { path: 'objectStore.accessKeyId', env: 'S3_ACCESS_KEY', kind: 'string', default: '(default chain)', doc: 'Static credentials; without them the AWS default chain is used (AWS_ACCESS_KEY_ID, ~/.aws files, web identity, instance role).' },
  { path: 'objectStore.secretAccessKey', env: 'S3_SECRET_KEY', kind: 'string', default: '(default chain)', doc: 'Secret for accessKeyId; both or neither.' },
  { path: 'objectStore.sessionToken', env: 'S3_SESSION_TOKEN', kind: 'string', default: '-', doc: 'Session token for temporary static credentials.' },
  { path: 'objectStore.multipartThresholdBytes', env: undefined, kind: 'int', default: String(16 * MiB), doc: 'Objects larger than this are uploaded in parts (min 5 MiB).' },
  { path: 'objectStore.partSizeBytes', env: undefined, kind: 'int', default: String(16 * MiB), doc: 'Multipart part size (5 MiB..5 GiB; grown automatically to stay within 10000 parts).' },
  { path: 'objectStore.partConcurrency', env: undefined, kind: 'int', default: '4', doc: 'Parts uploaded in parallel per object.' },
  { path: 'objectStore.maxAttempts', env: undefined, kind: 'int', default: '5', doc: 'Attempts per request (5xx, throttling, network errors, timeouts, bodies damaged in transit).' },
  { path: 'objectStore.retryBaseDelayMs', env: undefined, kind: 'int', default: '100', doc: 'First retry backoff; doubles per attempt, with jitter.' },
  { path: 'objectStore.retryMaxDelayMs', env: undefined, kind: 'int', default: '5000', doc: 'Backoff cap.' },
  { path: 'objectStore.verifyAttempts', env: undefined, kind: 'int', default: '3', doc: 'Verified uploads: whole-upload attempts when the stored object does not match (then CORRUPT).' },
  { path: 'objectStore.connectTimeoutMs', env: undefined, kind: 'int', default: '5000', doc: 'TCP connect timeout.' },
  { path: 'objectStore.idleTimeoutMs', env: undefined, kind: 'int', default: '30000', doc: 'A connection silent this long is cut (also while streaming a body).' },
  { path: 'objectStore.requestTimeoutMs', env: undefined, kind: 'int', default: '30000', doc: 'Per-attempt deadline, plus bytes / minThroughputBytesPerSec for transfers.' },
  { path: 'objectStore.minThroughputBytesPerSec', env: undefined, kind: 'int', default: String(MiB), doc: 'Slowest transfer rate tolerated before an attempt times out.' },
  { path: 'objectStore.listPageSize', env: undefined, kind: 'int', default: '1000', doc: 'Keys per LIST page (S3 caps at 1000); listings always continue over all pages.' },
  { path: 'objectStore.listDelimiter', env: undefined, kind: 'string', default: 'server', doc: '`server`: S3 rolls keys up into common prefixes; `client`: Lance does (one LIST per prefix), for endpoints whose delimiter listing is wrong (s3rver).' },
  { path: 'objectStore.etagIsMd5', env: undefined, kind: 'bool', default: 'true', doc: 'The endpoint\'s ETags are MD5s (false for SSE-KMS/SSE-C buckets: verification then reads objects back).' },
  { path: 'objectStore.spoolDir', env: undefined, kind: 'string', default: '(OS temp dir)', doc: 'Where streamed uploads larger than the multipart threshold are spooled.' },
];

function invalid(key: string, message: string): LanceError {
  return new LanceError('INVALID_CONFIG', `${key}: ${message}`, { key });
}

/** Which env variable feeds a config field (for error messages). */
const ENV_OF: Record<string, string> = Object.fromEntries(
  OBJECT_STORE_CONFIG_KEYS.filter((k) => k.env && k.path !== '-').map((k) => [k.path.replace(/^objectStore\./, ''), k.env!]),
);

export type RawObjectStoreConfig = Record<string, unknown>;

/**
 * Validates a raw `objectStore` section (from YAML, env or a URL). The first problem becomes one INVALID_CONFIG
 * error naming the key, e.g. `objectStore.bucket (S3_BUCKET): required when backend is s3`.
 */
export function validateObjectStoreConfig(raw: RawObjectStoreConfig, opts: { fromEnv?: boolean; keyPrefix?: string } = {}): ObjectStoreConfig {
  const r = ObjectStoreConfigSchema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  let field = issue.path.map(String).join('.');
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    field = [...issue.path.map(String), issue.keys[0] ?? ''].filter(Boolean).join('.');
    message = 'unknown key';
  }
  const env = ENV_OF[field];
  const name = `${opts.keyPrefix ?? 'objectStore'}${field ? '.' + field : ''}${opts.fromEnv && env ? ` (${env})` : ''}`;
  throw invalid(name, message);
}

function parseBool(name: string, text: string): boolean {
  const t = text.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(t)) return true;
  if (['0', 'false', 'no', 'off'].includes(t)) return false;
  throw invalid(name, `expected true or false, got ${JSON.stringify(text)}`);
}

type Env = Record<string, string | undefined>;

function envValue(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/**
 * The raw `objectStore` section the seed's environment variables describe (not yet validated), or undefined when
 * none of them is set. Exposed separately so a caller can merge it over a config file's section.
 */
export function objectStoreEnvOverrides(env: Env): RawObjectStoreConfig | undefined {
  const out: RawObjectStoreConfig = {};
  const backend = envValue(env, 'OBJECT_STORE_BACKEND');
  if (backend !== undefined) {
    const b = backend.toLowerCase();
    if (b !== 's3' && b !== 'file') {
      throw invalid('OBJECT_STORE_BACKEND', `${JSON.stringify(backend)} is not supported: expected s3 or file (gcs and azure are not implemented; use their S3-compatible endpoints)`);
    }
    out.backend = b;
  }
  const str: [string, string][] = [
    ['OBJECT_STORE_PATH', 'path'], ['OBJECT_STORE_PREFIX', 'prefix'], ['S3_BUCKET', 'bucket'],
    ['S3_ACCESS_KEY', 'accessKeyId'], ['S3_SECRET_KEY', 'secretAccessKey'], ['S3_SESSION_TOKEN', 'sessionToken'],
  ];
  for (const [name, field] of str) {
    const v = envValue(env, name);
    if (v !== undefined) out[field] = v;
  }
  const region = envValue(env, 'S3_REGION') ?? envValue(env, 'AWS_REGION') ?? envValue(env, 'AWS_DEFAULT_REGION');
  if (region !== undefined) out.region = region;
  const pathStyle = envValue(env, 'S3_PATH_STYLE');
  if (pathStyle !== undefined) out.forcePathStyle = parseBool('S3_PATH_STYLE', pathStyle);
  const disableSsl = envValue(env, 'S3_DISABLE_SSL');
  const noSsl = disableSsl === undefined ? false : parseBool('S3_DISABLE_SSL', disableSsl);
  const endpoint = envValue(env, 'S3_ENDPOINT');
  if (endpoint !== undefined) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint)) {
      if (noSsl && endpoint.toLowerCase().startsWith('https://')) {
        throw invalid('S3_DISABLE_SSL', `true contradicts S3_ENDPOINT=${endpoint} (https)`);
      }
      out.endpoint = endpoint;
    } else {
      out.endpoint = `${noSsl ? 'http' : 'https'}://${endpoint}`;
    }
  } else if (noSsl) {
    throw invalid('S3_DISABLE_SSL', 'true needs S3_ENDPOINT (AWS endpoints are HTTPS only)');
  }
  if (Object.keys(out).length === 0) return undefined;
  if (out.backend === undefined) {
    // The seed sets OBJECT_STORE_BACKEND, but a lone S3_BUCKET or OBJECT_STORE_PATH is unambiguous.
    if (out.bucket !== undefined && out.path === undefined) out.backend = 's3';
    else if (out.path !== undefined && out.bucket === undefined) out.backend = 'file';
  }
  return out;
}

/** The validated config from environment variables alone, or undefined when none is set. */
export function objectStoreConfigFromEnv(env: Env): ObjectStoreConfig | undefined {
  const raw = objectStoreEnvOverrides(env);
  if (raw === undefined) return undefined;
  if (raw.backend === undefined) throw invalid('OBJECT_STORE_BACKEND', 'not set (expected s3 or file)');
  return validateObjectStoreConfig(raw, { fromEnv: true });
}

/**
 * `s3://bucket/some/prefix` or `file:///abs/dir` / `file://relative/dir` → a validated config. For s3 URLs the
 * connection settings (S3_ENDPOINT, credentials, S3_PATH_STYLE...) come from `env`; the URL's bucket and prefix
 * win. Query parameters override single fields: `?endpoint=http://127.0.0.1:4569&region=eu-west-1&forcePathStyle=true`.
 */
export function objectStoreConfigFromUrl(url: string, env: Env = {}, cwd: string = process.cwd()): ObjectStoreConfig {
  const m = /^([a-z0-9]+):\/\/(.*)$/i.exec(url.trim());
  if (!m) throw invalid('url', `${JSON.stringify(url)}: expected s3://bucket/prefix or file:///dir`);
  const scheme = m[1]!.toLowerCase();
  const rest = m[2]!;
  if (scheme === 'file') {
    const p = decodeURIComponent(rest.split('?')[0]!);
    if (p === '') throw invalid('url', `${JSON.stringify(url)}: no directory after file://`);
    return validateObjectStoreConfig({ backend: 'file', path: path.resolve(cwd, p) }, { keyPrefix: 'url' });
  }
  if (scheme !== 's3') throw invalid('url', `${JSON.stringify(url)}: scheme ${scheme}:// is not supported (expected s3:// or file://)`);
  const [pathPart, query] = [rest.split('?')[0]!, rest.split('?').slice(1).join('?')];
  const slash = pathPart.indexOf('/');
  const bucket = slash < 0 ? pathPart : pathPart.slice(0, slash);
  const prefix = slash < 0 ? '' : decodeURIComponent(pathPart.slice(slash + 1));
  if (bucket === '') throw invalid('url', `${JSON.stringify(url)}: no bucket after s3://`);
  const fromEnv = objectStoreEnvOverrides(env) ?? {};
  const raw: RawObjectStoreConfig = { ...fromEnv, backend: 's3', bucket, prefix };
  delete raw.path;
  const params = new URLSearchParams(query);
  for (const [k, v] of params) {
    if (k === 'endpoint' || k === 'region') raw[k] = v;
    else if (k === 'forcePathStyle') raw.forcePathStyle = parseBool(`url ?${k}`, v);
    else throw invalid(`url ?${k}`, 'unknown parameter (expected endpoint, region or forcePathStyle)');
  }
  return validateObjectStoreConfig(raw, { keyPrefix: 'url' });
}

/** A short, credential-free description: `s3://bucket/prefix/ (endpoint http://...)` or `file:///dir`. */
export function describeObjectStore(c: ObjectStoreConfig): string {
  const prefix = normalizePrefix(c.prefix);
  if (c.backend === 'file') return `file://${path.resolve(c.path!)}${prefix ? '/' + prefix : ''}`;
  return `s3://${c.bucket}/${prefix}${c.endpoint ? ` (endpoint ${c.endpoint})` : ''}`;
}

export function createObjectStore(c: ObjectStoreConfig, opts: { log?: Logger; hooks?: ObjectStoreHooks } = {}): ObjectStore {
  const log = opts.log?.child({ objectStore: describeObjectStore(c) });
  const prefix = normalizePrefix(c.prefix);
  if (c.backend === 'file') {
    // The prefix is a plain sub-directory of the bucket directory: `{path: /dr, prefix: p}` and `file:///dr/p`
    // (what `lnc restore --from` gets) are the same store.
    return new FsObjectStore({
      root: path.join(path.resolve(c.path!), ...prefix.split('/').filter((x) => x !== '')),
      maxAttempts: c.verifyAttempts, memoryLimitBytes: c.multipartThresholdBytes,
      ...(log ? { log } : {}),
      ...(opts.hooks ? { hooks: opts.hooks } : {}),
    });
  }
  const inner = new S3ObjectStore({
    bucket: c.bucket!,
    ...(c.endpoint ? { endpoint: c.endpoint } : {}),
    region: c.region,
    forcePathStyle: c.forcePathStyle,
    ...(c.accessKeyId && c.secretAccessKey
      ? { credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}) } }
      : {}),
    multipartThresholdBytes: c.multipartThresholdBytes,
    partSizeBytes: c.partSizeBytes,
    partConcurrency: c.partConcurrency,
    retry: { maxAttempts: c.maxAttempts, baseDelayMs: c.retryBaseDelayMs, maxDelayMs: c.retryMaxDelayMs },
    verifyAttempts: c.verifyAttempts,
    connectTimeoutMs: c.connectTimeoutMs,
    idleTimeoutMs: c.idleTimeoutMs,
    requestTimeoutMs: c.requestTimeoutMs,
    minThroughputBytesPerSec: c.minThroughputBytesPerSec,
    listPageSize: c.listPageSize,
    listDelimiter: c.listDelimiter,
    etagIsMd5: c.etagIsMd5,
    ...(c.spoolDir ? { spoolDir: c.spoolDir } : {}),
    ...(log ? { log } : {}),
    ...(opts.hooks ? { hooks: opts.hooks } : {}),
  });
  return prefix === '' ? inner : new PrefixedObjectStore(inner, prefix);
}

/** The markdown table of every key (README.md embeds it; docs/configuration.md can too). */
export function objectStoreConfigMarkdown(): string {
  const rows = OBJECT_STORE_CONFIG_KEYS.map((k) => `| ${k.path === '-' ? '—' : '`' + k.path + '`'} | ${k.env ? '`' + k.env + '`' : '—'} | ${k.kind} | ${k.default} | ${k.doc} |`);
  return ['| key (lance.yaml) | env | type | default | meaning |', '|---|---|---|---|---|', ...rows].join('\n') + '\n';
}
