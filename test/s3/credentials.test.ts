// Credentials: static from config, or the SDK's default chain (AWS_* environment, shared credentials file).
// s3rver knows only the access key S3RVER, so a wrong key id proves the credentials really come from where we think
// (it does not check the secret's signature strictly enough to rely on).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createObjectStore, objectStoreConfigFromEnv } from '../../broker/src/tiering/config.ts';
import { expectCode } from './contract.ts';
import { s3rverConfig, startS3rver, type S3rverHandle } from './harness.ts';

const VARS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_CONFIG_FILE', 'AWS_PROFILE', 'AWS_EC2_METADATA_DISABLED'] as const;
let saved: Record<string, string | undefined>;
let s3: S3rverHandle;
let tmp: string;

beforeAll(async () => {
  s3 = await startS3rver();
  tmp = await mkdtemp(path.join(os.tmpdir(), 'lance-creds-'));
});
afterAll(async () => {
  await s3?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});
afterEach(() => restoreEnv());

function restoreEnv(): void {
  for (const v of VARS) {
    if (saved[v] === undefined) delete process.env[v];
    else process.env[v] = saved[v];
  }
}

function setEnv(values: Partial<Record<(typeof VARS)[number], string>>): void {
  saved = Object.fromEntries(VARS.map((v) => [v, process.env[v]]));
  for (const v of VARS) delete process.env[v];
  process.env.AWS_EC2_METADATA_DISABLED = 'true'; // never wait for an instance-metadata endpoint in a test
  process.env.AWS_CONFIG_FILE = path.join(tmp, 'no-config');
  Object.assign(process.env, values);
}

/** a config with NO static credentials (the default provider chain applies) */
const chainConfig = () => {
  const c = s3rverConfig(s3.endpoint, s3.bucket);
  delete c.accessKeyId;
  delete c.secretAccessKey;
  return c;
};

describe('credentials', () => {
  it('from the seed variables S3_ACCESS_KEY / S3_SECRET_KEY', async () => {
    setEnv({ AWS_SHARED_CREDENTIALS_FILE: path.join(tmp, 'none') });
    const c = objectStoreConfigFromEnv({ OBJECT_STORE_BACKEND: 's3', S3_BUCKET: s3.bucket, S3_ENDPOINT: s3.endpoint, S3_PATH_STYLE: 'true', S3_ACCESS_KEY: 'S3RVER', S3_SECRET_KEY: 'S3RVER' })!;
    const store = createObjectStore(c);
    await store.put('creds/seed', Buffer.from('ok'));
    expect((await store.get('creds/seed')).toString()).toBe('ok');
    await store.close();
    const bad = createObjectStore({ ...c, accessKeyId: 'NOT-S3RVER' });
    const e = await expectCode(bad.put('creds/bad', Buffer.from('x')), 'IO');
    expect(e.message).toContain('creds/bad');
    expect(e.message).toMatch(/403/);
    await bad.close();
  });

  it('from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY via the default chain', async () => {
    setEnv({ AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_SHARED_CREDENTIALS_FILE: path.join(tmp, 'none') });
    const store = createObjectStore(chainConfig());
    await store.put('creds/env', Buffer.from('env'));
    expect((await store.get('creds/env')).toString()).toBe('env');
    await store.close();
  });

  it('from a shared credentials file (profile) via the default chain', async () => {
    const file = path.join(tmp, 'credentials');
    await writeFile(file, '[lance]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n\n[wrong]\naws_access_key_id = NOT-S3RVER\naws_secret_access_key = S3RVER\n');
    setEnv({ AWS_SHARED_CREDENTIALS_FILE: file, AWS_PROFILE: 'lance' });
    const store = createObjectStore(chainConfig());
    await store.put('creds/file', Buffer.from('file'));
    expect((await store.get('creds/file')).toString()).toBe('file');
    await store.close();
    restoreEnv();
    setEnv({ AWS_SHARED_CREDENTIALS_FILE: file, AWS_PROFILE: 'wrong' });
    const bad = createObjectStore(chainConfig());
    await expectCode(bad.head('creds/file'), 'IO');
    await bad.close();
  });
});

