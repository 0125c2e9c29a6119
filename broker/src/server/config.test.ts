import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { LanceError } from '../common/errors.ts';
import {
  advertisedHost, CONFIG_KEYS, envOverrides, flushPolicy, logOptions, parseConfigText, parseServerArgs, parseTomlish,
  resolveConfig, validateConfig,
} from './config.ts';

function errOf(fn: () => unknown): LanceError {
  try {
    fn();
  } catch (e) {
    if (e instanceof LanceError) return e;
    throw e;
  }
  throw new Error('expected a LanceError');
}

describe('config', () => {
  it('an empty config is valid and has the documented defaults', () => {
    const c = validateConfig({});
    expect(c.nodeId).toBe(1);
    expect(c.dataDir).toBe('/data/lance');
    expect(c.listeners.kafka.port).toBe(9092);
    expect(c.listeners.admin.port).toBe(1992);
    expect(c.listeners.raft.port).toBe(1993);
    expect(c.readOnly).toBe(false);
    expect(c.storage.retentionBytes).toBe(0);
    expect(flushPolicy(c)).toEqual({ mode: 'interval', ms: 5 });
  });

  it('parses YAML with nested keys and snake_case aliases', () => {
    const raw = parseConfigText('nodeId: 3\ndata_dir: /x\nlisteners:\n  kafka:\n    port: 19092\nstorage:\n  retention_ms: 0\n', 'lance.yaml');
    const c = validateConfig(raw);
    expect(c.nodeId).toBe(3);
    expect(c.dataDir).toBe('/x');
    expect(c.listeners.kafka.port).toBe(19092);
    expect(c.listeners.kafka.host).toBe('0.0.0.0');
    expect(c.storage.retentionMs).toBe(0);
    expect(logOptions(c).retention).toEqual({ retentionMs: 0, retentionBytes: 0 });
  });

  it('accepts the runbook\'s lance.toml with read_only = true appended after a table', () => {
    const text = '# lance\ndata_dir = "/data/lance"\n[storage]\nsegment_bytes = 1_048_576 # 1 MiB\nread_only = true\n';
    const raw = parseTomlish(text, '/etc/lance/lance.toml');
    expect(raw).toEqual({ data_dir: '/data/lance', storage: { segment_bytes: 1048576 }, read_only: true });
    const c = validateConfig(parseConfigText(text, '/etc/lance/lance.toml'));
    expect(c.readOnly).toBe(true);
    expect(c.storage.segmentBytes).toBe(1048576);
  });

  it('names the key of an invalid value in one line', () => {
    const e = errOf(() => validateConfig(parseConfigText('storage:\n  segmentBytes: -5\n', 'lance.yaml')));
    expect(e.code).toBe('INVALID_CONFIG');
    expect(e.message).toBe('storage.segmentBytes: expected a positive integer');
    const u = errOf(() => validateConfig({ storage: { segmentByte: 5 } }));
    expect(u.message).toBe('storage.segmentByte: unknown key');
    const p = errOf(() => validateConfig({ listeners: { admin: { port: 70000 } } }));
    expect(p.message).toBe('listeners.admin.port: expected a port number 0-65535');
    const t = errOf(() => parseConfigText('read_only = maybe\n', 'x.toml'));
    expect(t.message).toContain('x.toml:1: read_only');
    const y = errOf(() => parseConfigText('a: [\n', 'bad.yaml'));
    expect(y.code).toBe('INVALID_CONFIG');
    expect(y.message).toContain('bad.yaml');
  });

  it('cluster.raft timings: defaults 150/300/50, env overrides, and an inconsistent order names the key', () => {
    expect(validateConfig({ cluster: { raft: {} } }).cluster.raft).toEqual({ electionTimeoutMinMs: 150, electionTimeoutMaxMs: 300, heartbeatMs: 50 });
    expect(validateConfig({}).cluster.raft).toBeUndefined(); // the Raft core's own defaults apply (the same values)
    const env = { LANCE_RAFT_ELECTION_TIMEOUT_MIN_MS: '500', LANCE_RAFT_ELECTION_TIMEOUT_MAX_MS: '1000', LANCE_RAFT_HEARTBEAT_MS: '100' };
    expect(resolveConfig({ fileRaw: {}, env, overrides: {} }).cluster.raft).toEqual({ electionTimeoutMinMs: 500, electionTimeoutMaxMs: 1000, heartbeatMs: 100 });
    const hb = errOf(() => validateConfig({ cluster: { raft: { heartbeatMs: 200 } } }));
    expect(hb.code).toBe('INVALID_CONFIG');
    expect(hb.message).toBe('cluster.raft.heartbeatMs: must be below electionTimeoutMinMs (150)');
    const mx = errOf(() => validateConfig({ cluster: { raft: { electionTimeoutMinMs: 400 } } }));
    expect(mx.message).toBe('cluster.raft.electionTimeoutMaxMs: must be above electionTimeoutMinMs (400)');
  });

  it('env overrides the file, flags override env', () => {
    const env = { LANCE_KAFKA_PORT: '1234', LANCE_READ_ONLY: 'true', LANCE_DATA_DIR: '/env' };
    expect(envOverrides(env)).toEqual({ listeners: { kafka: { port: 1234 } }, readOnly: true, dataDir: '/env' });
    const args = parseServerArgs(['--standalone', '--data-dir', '/flag', '--host=127.0.0.1']);
    const c = resolveConfig({ fileRaw: { dataDir: '/file', nodeId: 7 }, env, overrides: args.overrides });
    expect(c.dataDir).toBe('/flag');
    expect(c.nodeId).toBe(7);
    expect(c.readOnly).toBe(true);
    expect(c.listeners.kafka.port).toBe(1234);
    expect(c.listeners.admin.host).toBe('127.0.0.1');
    const e = errOf(() => envOverrides({ LANCE_ADMIN_PORT: 'abc' }));
    expect(e.message).toBe('LANCE_ADMIN_PORT (listeners.admin.port): expected an integer, got "abc"');
  });

  it('rejects unknown flags and flags without values', () => {
    expect(errOf(() => parseServerArgs(['--bogus'])).message).toContain('unknown flag --bogus');
    expect(errOf(() => parseServerArgs(['--data-dir'])).message).toContain('--data-dir needs a value');
    expect(errOf(() => parseServerArgs(['--kafka-port', 'x'])).code).toBe('USAGE');
    expect(parseServerArgs(['dev']).command).toBe('dev');
    expect(parseServerArgs(['--help']).help).toBe(true);
    expect(parseServerArgs(['--read-only=false']).overrides).toEqual({ readOnly: false });
  });

  it('advertises the bind host, or the host name for a wildcard bind', () => {
    expect(advertisedHost(validateConfig({}), 'node-a')).toBe('node-a');
    expect(advertisedHost(validateConfig({ listeners: { kafka: { host: '127.0.0.2' } } }), 'node-a')).toBe('127.0.0.2');
    expect(advertisedHost(validateConfig({ listeners: { kafka: { advertisedHost: 'lance-0.lance' } } }), 'node-a')).toBe('lance-0.lance');
  });

  it('every key and env variable is documented in docs/configuration.md', async () => {
    const doc = await readFile(fileURLToPath(new URL('../../../docs/configuration.md', import.meta.url)), 'utf8');
    for (const k of CONFIG_KEYS) {
      expect(doc, k.path).toContain(`\`${k.path}\``);
      expect(doc, k.env).toContain(`\`${k.env}\``);
    }
  });
});
