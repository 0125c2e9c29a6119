/**
 * The `lance` server configuration: defaults < config file (lance.yaml, or the runbook's TOML-ish lance.toml)
 * < LANCE_* environment variables < command-line flags. Everything here is pure (text/env/argv in, config out);
 * main.ts does the file reading. Every key, its default and its env name is listed in CONFIG_KEYS, which
 * docs/configuration.md mirrors (a test checks that every key is documented there).
 */
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { LanceError } from '../common/errors.ts';
import type { FlushPolicy, LogOptions } from '../storage/types.ts';
import { ClusterSectionSchema } from '../cluster/config.ts';
import { objectStoreEnvOverrides, validateObjectStoreConfig } from '../tiering/config.ts';

const posInt = z.number({ error: 'expected a positive integer' }).int({ error: 'expected a positive integer' }).positive({ error: 'expected a positive integer' });
const nonNegInt = z.number({ error: 'expected a non-negative integer (0 = unlimited)' })
  .int({ error: 'expected a non-negative integer (0 = unlimited)' })
  .nonnegative({ error: 'expected a non-negative integer (0 = unlimited)' });
const port = z.number({ error: 'expected a port number 0-65535' }).int({ error: 'expected a port number 0-65535' })
  .min(0, { error: 'expected a port number 0-65535' }).max(65535, { error: 'expected a port number 0-65535' });
const host = z.string({ error: 'expected a host name or IP address' }).min(1, { error: 'expected a host name or IP address' });
const bool = z.boolean({ error: 'expected true or false' });

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const FLUSH_MODES = ['every-entry', 'interval', 'bytes'] as const;

/** The validated shape; every field has a default, so an empty file is a valid config. */
export const LanceConfigSchema = z.strictObject({
  nodeId: z.number({ error: 'expected a non-negative integer' }).int({ error: 'expected a non-negative integer' }).nonnegative({ error: 'expected a non-negative integer' }).default(1),
  clusterId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, { error: 'expected 1-64 characters of [A-Za-z0-9._-]' }).optional(),
  dataDir: z.string({ error: 'expected a directory path' }).min(1, { error: 'expected a directory path' }).default('/data/lance'),
  standalone: bool.default(true),
  readOnly: bool.default(false),
  maxFrameBytes: posInt.default(100 * 1024 * 1024),
  listeners: z.strictObject({
    kafka: z.strictObject({
      host: host.default('0.0.0.0'),
      port: port.default(9092),
      advertisedHost: host.optional(),
      advertisedPort: port.optional(),
    }).default({ host: '0.0.0.0', port: 9092 }),
    admin: z.strictObject({
      host: host.default('0.0.0.0'),
      port: port.default(1992),
    }).default({ host: '0.0.0.0', port: 1992 }),
    raft: z.strictObject({
      host: host.default('0.0.0.0'),
      port: port.default(1993),
    }).default({ host: '0.0.0.0', port: 1993 }),
  }).default({ kafka: { host: '0.0.0.0', port: 9092 }, admin: { host: '0.0.0.0', port: 1992 }, raft: { host: '0.0.0.0', port: 1993 } }),
  storage: z.strictObject({
    segmentBytes: posInt.default(128 * 1024 * 1024),
    segmentMs: nonNegInt.default(7 * 24 * 3600 * 1000),
    indexIntervalBytes: posInt.default(4096),
    flushMode: z.enum(FLUSH_MODES, { error: `expected one of ${FLUSH_MODES.join(', ')}` }).default('interval'),
    flushIntervalMs: nonNegInt.default(5),
    flushBytes: posInt.default(1024 * 1024),
    retentionMs: nonNegInt.default(7 * 24 * 3600 * 1000),
    retentionBytes: nonNegInt.default(0),
    retentionCheckIntervalMs: posInt.default(60_000),
  }).default({
    segmentBytes: 128 * 1024 * 1024, segmentMs: 7 * 24 * 3600 * 1000, indexIntervalBytes: 4096, flushMode: 'interval',
    flushIntervalMs: 5, flushBytes: 1024 * 1024, retentionMs: 7 * 24 * 3600 * 1000, retentionBytes: 0, retentionCheckIntervalMs: 60_000,
  }),
  topics: z.strictObject({
    autoCreate: bool.default(false),
    defaultPartitions: posInt.default(1),
    rescanIntervalMs: nonNegInt.default(5000),
  }).default({ autoCreate: false, defaultPartitions: 1, rescanIntervalMs: 5000 }),
  log: z.strictObject({
    level: z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` }).default('info'),
  }).default({ level: 'info' }),
  /** cluster mode (broker/src/cluster/config.ts): bootstrap peers; none = standalone */
  cluster: ClusterSectionSchema.default({ peers: [] }),
  /** object store for tiered segments (broker/src/tiering/config.ts validates it; the seed's env names merge over it) */
  objectStore: z.record(z.string(), z.unknown()).transform((raw) => validateObjectStoreConfig(raw)).optional(),
  tiering: z.strictObject({
    uploadIntervalMs: posInt.default(10_000),
    localRetentionMs: nonNegInt.default(0),
    localRetentionBytes: nonNegInt.default(0),
    cacheBytes: posInt.default(64 * 1024 * 1024),
    /** metadata DR (broker/src/tiering/metadata-dr.ts): restore points every this many ms */
    metadataUploadIntervalMs: posInt.default(10_000),
    metadataDr: bool.default(true),
    restorePointRetentionMs: nonNegInt.default(7 * 24 * 3600 * 1000),
    coldStartRestore: bool.default(true),
    /** cluster cold start: how long to wait for every peer before a majority of fresh, agreeing nodes suffices */
    coldStartPeerWaitMs: nonNegInt.default(30_000),
  }).default({
    uploadIntervalMs: 10_000, localRetentionMs: 0, localRetentionBytes: 0, cacheBytes: 64 * 1024 * 1024,
    metadataUploadIntervalMs: 10_000, metadataDr: true, restorePointRetentionMs: 7 * 24 * 3600 * 1000, coldStartRestore: true,
    coldStartPeerWaitMs: 30_000,
  }),
});

export type LanceConfig = z.infer<typeof LanceConfigSchema>;

type ValueKind = 'int' | 'bool' | 'string';

export interface ConfigKey {
  /** dotted path in lance.yaml */
  path: string;
  env: string;
  kind: ValueKind;
  /** what the default is, as shown in the docs */
  default: string;
  doc: string;
}

/** Every configurable key. docs/configuration.md lists exactly these (checked by a test). */
export const CONFIG_KEYS: readonly ConfigKey[] = [
  { path: 'nodeId', env: 'LANCE_NODE_ID', kind: 'int', default: '1', doc: 'This node\'s id; never reused for a different disk.' },
  { path: 'clusterId', env: 'LANCE_CLUSTER_ID', kind: 'string', default: '(from node.json, else generated)', doc: 'Cluster id. The data dir\'s node.json must match it, else the broker refuses to start.' },
  { path: 'dataDir', env: 'LANCE_DATA_DIR', kind: 'string', default: '/data/lance', doc: 'Data directory (node.json, topic_<id>/...).' },
  { path: 'standalone', env: 'LANCE_STANDALONE', kind: 'bool', default: 'true', doc: 'Single-node mode (the only mode until replication lands).' },
  { path: 'readOnly', env: 'LANCE_READ_ONLY', kind: 'bool', default: 'false', doc: 'Emergency read-only mode: produce and topic changes are refused, reads keep working. `read_only` is accepted too.' },
  { path: 'maxFrameBytes', env: 'LANCE_MAX_FRAME_BYTES', kind: 'int', default: '104857600', doc: 'Largest Kafka request frame accepted; bigger frames close the connection.' },
  { path: 'listeners.kafka.host', env: 'LANCE_KAFKA_HOST', kind: 'string', default: '0.0.0.0', doc: 'Kafka listener bind address.' },
  { path: 'listeners.kafka.port', env: 'LANCE_KAFKA_PORT', kind: 'int', default: '9092', doc: 'Kafka listener port (0 = any free port).' },
  { path: 'listeners.kafka.advertisedHost', env: 'LANCE_ADVERTISED_HOST', kind: 'string', default: '(bind host; the machine\'s host name if that is 0.0.0.0)', doc: 'Host Kafka clients are told to connect to (Metadata).' },
  { path: 'listeners.kafka.advertisedPort', env: 'LANCE_ADVERTISED_PORT', kind: 'int', default: '(the bound Kafka port)', doc: 'Port Kafka clients are told to connect to.' },
  { path: 'listeners.admin.host', env: 'LANCE_ADMIN_HOST', kind: 'string', default: '0.0.0.0', doc: 'Admin HTTP API bind address (health, metrics, /v1).' },
  { path: 'listeners.admin.port', env: 'LANCE_ADMIN_PORT', kind: 'int', default: '1992', doc: 'Admin HTTP API port (0 = any free port).' },
  { path: 'listeners.raft.host', env: 'LANCE_RAFT_HOST', kind: 'string', default: '0.0.0.0', doc: 'Inter-broker (Raft) bind address. Reserved: not opened in standalone mode.' },
  { path: 'listeners.raft.port', env: 'LANCE_RAFT_PORT', kind: 'int', default: '1993', doc: 'Inter-broker (Raft) port. Reserved: not opened in standalone mode.' },
  { path: 'storage.segmentBytes', env: 'LANCE_SEGMENT_BYTES', kind: 'int', default: '134217728', doc: 'Roll the active segment when it would exceed this size.' },
  { path: 'storage.segmentMs', env: 'LANCE_SEGMENT_MS', kind: 'int', default: '604800000', doc: 'Roll the active segment when its first entry is older than this; 0 = never by age.' },
  { path: 'storage.indexIntervalBytes', env: 'LANCE_INDEX_INTERVAL_BYTES', kind: 'int', default: '4096', doc: 'One sparse index entry per this many segment bytes.' },
  { path: 'storage.flushMode', env: 'LANCE_FLUSH_MODE', kind: 'string', default: 'interval', doc: 'fsync policy: `interval` (group commit every flushIntervalMs), `every-entry`, or `bytes` (after flushBytes, at most flushIntervalMs later).' },
  { path: 'storage.flushIntervalMs', env: 'LANCE_FLUSH_INTERVAL_MS', kind: 'int', default: '5', doc: 'Group-commit window in ms (interval mode; max delay in bytes mode).' },
  { path: 'storage.flushBytes', env: 'LANCE_FLUSH_BYTES', kind: 'int', default: '1048576', doc: 'Bytes mode: fsync once this many bytes are pending.' },
  { path: 'storage.retentionMs', env: 'LANCE_RETENTION_MS', kind: 'int', default: '604800000', doc: 'Default topic retention by age (retention.ms); 0 = unlimited.' },
  { path: 'storage.retentionBytes', env: 'LANCE_RETENTION_BYTES', kind: 'int', default: '0', doc: 'Default topic retention by size per partition (retention.bytes); 0 = unlimited.' },
  { path: 'storage.retentionCheckIntervalMs', env: 'LANCE_RETENTION_CHECK_INTERVAL_MS', kind: 'int', default: '60000', doc: 'How often retention is enforced.' },
  { path: 'topics.autoCreate', env: 'LANCE_AUTO_CREATE_TOPICS', kind: 'bool', default: 'false', doc: 'Create unknown topics when a Kafka client asks for them in Metadata.' },
  { path: 'topics.defaultPartitions', env: 'LANCE_DEFAULT_PARTITIONS', kind: 'int', default: '1', doc: 'Partitions of auto-created topics and of `POST /v1/topics` without `partitions`.' },
  { path: 'topics.rescanIntervalMs', env: 'LANCE_TOPICS_RESCAN_INTERVAL_MS', kind: 'int', default: '5000', doc: 'How often the data dir is checked for topics added offline (`lnc import-topic` into a running standalone node, runbook §6.2); `GET /v1/topics` also checks. 0 = only on `GET /v1/topics` / `/v1/cluster`.' },
  { path: 'cluster.podName', env: 'LANCE_POD_NAME', kind: 'string', default: '(none)', doc: 'Cluster mode: this pod\'s name. A peers entry with the same `pod` gives this node its `nodeId` (over LANCE_NODE_ID): the operator assigns a replacement pod a new id in peers.yaml.' },
  { path: 'cluster.join', env: 'LANCE_CLUSTER_JOIN', kind: 'bool', default: 'false', doc: 'Cluster mode: this node joins a running cluster (never bootstraps; waits for `lnc members add`). A node whose id is not in `cluster.bootstrapVoters` joins anyway.' },
  { path: 'cluster.raft.electionTimeoutMinMs', env: 'LANCE_RAFT_ELECTION_TIMEOUT_MIN_MS', kind: 'int', default: '150', doc: 'Cluster mode: shortest randomized Raft election timeout (every group). Raise it with the max on a CPU-starved host to trade failover speed for fewer spurious elections; same value on every node.' },
  { path: 'cluster.raft.electionTimeoutMaxMs', env: 'LANCE_RAFT_ELECTION_TIMEOUT_MAX_MS', kind: 'int', default: '300', doc: 'Cluster mode: longest randomized Raft election timeout; must be above the min.' },
  { path: 'cluster.raft.heartbeatMs', env: 'LANCE_RAFT_HEARTBEAT_MS', kind: 'int', default: '50', doc: 'Cluster mode: leader heartbeat interval; must be below the election timeout min.' },
  { path: 'cluster.peersFile', env: 'LANCE_PEERS_FILE', kind: 'string', default: '(none)', doc: 'Read the bootstrap peers from this YAML file (the operator\'s `/etc/lance/peers.yaml`: `peers: [{nodeId, host, raftPort, kafkaPort, adminPort}]`) instead of `cluster.peers`.' },
  { path: 'tiering.uploadIntervalMs', env: 'LANCE_TIERING_UPLOAD_INTERVAL_MS', kind: 'int', default: '10000', doc: 'With `objectStore`: how often each partition uploads its sealed segments; the active segment is sealed when it holds committed data, so the bucket is at most about one interval behind.' },
  { path: 'tiering.localRetentionMs', env: 'LANCE_TIERING_LOCAL_RETENTION_MS', kind: 'int', default: '0', doc: 'With `objectStore`: local retention by age (`local.retention.ms`); only segments whose upload was verified are deleted. 0 = only the topic retention applies locally. The topic retention (`retention.ms/bytes`) applies to the remote log.' },
  { path: 'tiering.localRetentionBytes', env: 'LANCE_TIERING_LOCAL_RETENTION_BYTES', kind: 'int', default: '0', doc: 'With `objectStore`: local retention by size per partition (`local.retention.bytes`); only verified uploads are deleted. 0 = only the topic retention applies locally.' },
  { path: 'tiering.cacheBytes', env: 'LANCE_TIERING_CACHE_BYTES', kind: 'int', default: '67108864', doc: 'Bytes of remote segment data cached for fetches below the local log start (LRU of 1 MiB ranges).' },
  { path: 'tiering.metadataUploadIntervalMs', env: 'LANCE_METADATA_UPLOAD_INTERVAL_MS', kind: 'int', default: '10000', doc: 'With `objectStore`: how often the metadata owner (standalone: the broker; cluster: the controller) uploads a metadata snapshot and then a restore point. The seed\'s `CHRONIK_METADATA_UPLOAD_INTERVAL` (seconds) is accepted when this is not set.' },
  { path: 'tiering.metadataDr', env: 'LANCE_METADATA_DR', kind: 'bool', default: 'true', doc: 'With `objectStore`: upload restore points (metadata DR). The seed\'s `CHRONIK_METADATA_DR=false` turns it off too.' },
  { path: 'tiering.restorePointRetentionMs', env: 'LANCE_RESTORE_POINT_RETENTION_MS', kind: 'int', default: '604800000', doc: 'Restore points older than this are deleted (the newest 3 always stay); 0 = keep all. Point-in-time restore reaches back this far.' },
  { path: 'tiering.coldStartRestore', env: 'LANCE_COLD_START_RESTORE', kind: 'bool', default: 'true', doc: 'With `objectStore`: a broker starting on an empty data dir restores the newest restore point from the bucket (same code as `lnc restore`) before serving.' },
  { path: 'tiering.coldStartPeerWaitMs', env: 'LANCE_COLD_START_PEER_WAIT_MS', kind: 'int', default: '30000', doc: 'Cluster mode cold start: a fresh node restores only when no peer runs with live state and every peer is fresh and agrees on the restore point; peers that never answer are waited for this long, then a majority of fresh, agreeing nodes (this one included) suffices. 0 = wait for every peer.' },
  { path: 'log.level', env: 'LANCE_LOG_LEVEL', kind: 'string', default: 'info', doc: `pino log level: ${LOG_LEVELS.join(', ')}.` },
];

export type RawConfig = Record<string, unknown>;

function invalid(key: string, message: string): LanceError {
  return new LanceError('INVALID_CONFIG', `${key}: ${message}`, { key });
}

/** snake_case → camelCase (the runbook's lance.toml says `read_only`; our YAML says `readOnly`). */
function camel(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function normalizeKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalizeKeys);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[camel(k)] = normalizeKeys(v);
  return out;
}

/**
 * A tiny TOML subset, enough for the runbook's `/etc/lance/lance.toml`: `[table]` / `[a.b]` headers,
 * `key = value` with strings ("..." or '...'), integers (with _ separators), booleans, and # comments.
 * `read_only` is hoisted to the top level wherever it appears, because the runbook appends
 * `read_only = true` to the END of the file, which in TOML would land in whatever table came last.
 */
export function parseTomlish(text: string, file: string): RawConfig {
  const root: RawConfig = {};
  let table: RawConfig = root;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const where = `${file}:${i + 1}`;
    const line = stripComment(lines[i]!).trim();
    if (line === '') continue;
    const header = /^\[\s*([A-Za-z0-9_.-]+)\s*\]$/.exec(line);
    if (header) {
      table = root;
      for (const part of header[1]!.split('.')) {
        const next = table[part];
        if (next === undefined) table[part] = {};
        else if (typeof next !== 'object' || next === null) throw invalid(where, `[${header[1]}] conflicts with key "${part}"`);
        table = table[part] as RawConfig;
      }
      continue;
    }
    const kv = /^([A-Za-z0-9_-]+)\s*=\s*(.+)$/.exec(line);
    if (!kv) throw invalid(where, `expected "key = value" or "[table]", got ${JSON.stringify(line)}`);
    const key = kv[1]!;
    const value = parseTomlValue(kv[2]!.trim(), `${where}: ${key}`);
    if (key === 'read_only' || key === 'readOnly') root[key] = value;
    else table[key] = value;
  }
  return root;
}

function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#') return line.slice(0, i);
  }
  return line;
}

function parseTomlValue(v: string, where: string): unknown {
  if (v === 'true') return true;
  if (v === 'false') return false;
  if (/^[+-]?\d[\d_]*$/.test(v)) return Number(v.replace(/_/g, ''));
  const str = /^"((?:[^"\\]|\\.)*)"$/.exec(v);
  if (str) return JSON.parse(`"${str[1]}"`) as string;
  const lit = /^'([^']*)'$/.exec(v);
  if (lit) return lit[1];
  throw invalid(where, `unsupported value ${JSON.stringify(v)} (use "string", integer or true/false)`);
}

/** Parses a config file's text; `.toml` files use the TOML subset, everything else YAML. */
export function parseConfigText(text: string, file: string): RawConfig {
  let raw: unknown;
  if (file.endsWith('.toml')) {
    raw = parseTomlish(text, file);
  } else {
    try {
      raw = parseYaml(text);
    } catch (e) {
      const pos = e instanceof YAMLParseError && e.linePos ? `:${e.linePos[0].line}` : '';
      throw invalid(`${file}${pos}`, `not valid YAML: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
    }
  }
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalid(file, 'expected a mapping of keys at the top level');
  return normalizeKeys(raw) as RawConfig;
}

function setPath(obj: RawConfig, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    const next = cur[p];
    if (next === undefined || next === null || typeof next !== 'object' || Array.isArray(next)) cur[p] = {};
    cur = cur[p] as RawConfig;
  }
  cur[parts[parts.length - 1]!] = value;
}

function deepMerge(base: RawConfig, over: RawConfig): RawConfig {
  const out: RawConfig = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)) {
      out[k] = deepMerge(b as RawConfig, v as RawConfig);
    } else {
      out[k] = v;
    }
  }
  return out;
}

function parseTyped(kind: ValueKind, text: string, name: string, mk: (name: string, msg: string) => LanceError): unknown {
  if (kind === 'int') {
    if (!/^-?\d+$/.test(text.trim())) throw mk(name, `expected an integer, got ${JSON.stringify(text)}`);
    return Number(text.trim());
  }
  if (kind === 'bool') {
    const t = text.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(t)) return true;
    if (['0', 'false', 'no', 'off', ''].includes(t)) return false;
    throw mk(name, `expected true or false, got ${JSON.stringify(text)}`);
  }
  return text;
}

/** LANCE_* variables → a partial raw config. Unset or empty variables are ignored (except booleans set to ""). */
export function envOverrides(env: Record<string, string | undefined>): RawConfig {
  const out: RawConfig = {};
  for (const key of CONFIG_KEYS) {
    const v = env[key.env];
    if (v === undefined || (v === '' && key.kind !== 'bool')) continue;
    setPath(out, key.path, parseTyped(key.kind, v, key.env, (n, m) => invalid(`${n} (${key.path})`, m)));
  }
  return out;
}

export interface ServerArgs {
  help: boolean;
  configFile: string | undefined;
  /** a raw config built from the flags, applied last */
  overrides: RawConfig;
  /** the sub-command, e.g. `lance dev` (undefined = plain server) */
  command: 'dev' | undefined;
}

interface FlagSpec { flag: string; kind: ValueKind; paths: string[]; help: string }

const FLAGS: readonly FlagSpec[] = [
  { flag: '--standalone', kind: 'bool', paths: ['standalone'], help: 'run a single node (the runbook\'s `lance --standalone --data-dir /data/lance`)' },
  { flag: '--data-dir', kind: 'string', paths: ['dataDir'], help: 'data directory' },
  { flag: '--node-id', kind: 'int', paths: ['nodeId'], help: 'node id' },
  { flag: '--cluster-id', kind: 'string', paths: ['clusterId'], help: 'cluster id (must match the data dir\'s node.json)' },
  { flag: '--kafka-port', kind: 'int', paths: ['listeners.kafka.port'], help: 'Kafka port (default 9092; 0 = any free port)' },
  { flag: '--admin-port', kind: 'int', paths: ['listeners.admin.port'], help: 'admin HTTP port (default 1992; 0 = any free port)' },
  { flag: '--host', kind: 'string', paths: ['listeners.kafka.host', 'listeners.admin.host', 'listeners.raft.host'], help: 'bind address of every listener (default 0.0.0.0)' },
  { flag: '--advertised-host', kind: 'string', paths: ['listeners.kafka.advertisedHost'], help: 'host Kafka clients are told to connect to' },
  { flag: '--read-only', kind: 'bool', paths: ['readOnly'], help: 'refuse produce and topic changes; reads keep working' },
  { flag: '--log-level', kind: 'string', paths: ['log.level'], help: `log level (${LOG_LEVELS.join(', ')})` },
];

export const SERVER_USAGE = [
  'Usage: lance [--standalone] [--config <lance.yaml|lance.toml>] [--data-dir <dir>] [flags]',
  '       lance dev      (`npm run start:standalone`: a standalone broker on 127.0.0.1, data under ./.data/)',
  '       lance dev-cluster   (what `npm start` runs: 3 nodes on 127.0.0.1, data under ./.data-cluster/node-N/)',
  '       cluster mode: a config with cluster.peers (docs/configuration.md, "Cluster"); --standalone ignores them',
  '',
  'Flags:',
  '  --config <file>            config file: YAML (lance.yaml) or the TOML subset (lance.toml)',
  ...FLAGS.map((f) => `  ${(f.flag + (f.kind === 'bool' ? '' : ' <value>')).padEnd(26)} ${f.help}`),
  '  --help                     print this help',
  '',
  'Precedence: defaults < config file < LANCE_* environment < flags. Keys: docs/configuration.md.',
].join('\n');

function usage(msg: string): LanceError {
  return new LanceError('USAGE', `${msg} (see lance --help)`);
}

/** Pure argv parser for the `lance` command (`--flag value`, `--flag=value`, boolean flags). */
export function parseServerArgs(argv: readonly string[]): ServerArgs {
  const out: ServerArgs = { help: false, configFile: undefined, overrides: {}, command: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (i === 0 && arg === 'dev') {
      out.command = 'dev';
      continue;
    }
    if (!arg.startsWith('--')) throw usage(`unexpected argument ${JSON.stringify(arg)}`);
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    const inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
    if (name === '--help') {
      out.help = true;
      continue;
    }
    const takeValue = (): string => {
      if (inline !== undefined) return inline;
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw usage(`${name} needs a value`);
      i++;
      return next;
    };
    if (name === '--config') {
      out.configFile = takeValue();
      continue;
    }
    const spec = FLAGS.find((f) => f.flag === name);
    if (!spec) throw usage(`unknown flag ${name}`);
    const value = spec.kind === 'bool'
      ? (inline === undefined ? true : parseTyped('bool', inline, name, (n, m) => usage(`${n}: ${m}`)))
      : parseTyped(spec.kind, takeValue(), name, (n, m) => usage(`${n}: ${m}`));
    for (const p of spec.paths) setPath(out.overrides, p, value);
  }
  return out;
}

/** Validates a merged raw config; the first problem becomes ONE error naming the key. */
export function validateConfig(raw: RawConfig): LanceConfig {
  const r = LanceConfigSchema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  let key = issue.path.map(String).join('.');
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    key = [...issue.path.map(String), issue.keys[0] ?? ''].filter(Boolean).join('.');
    message = 'unknown key';
  }
  throw invalid(key || '(top level)', message);
}

/** defaults < file < env < flags. `fileText` is the config file's content (main.ts reads it). */
export function resolveConfig(opts: { fileRaw?: RawConfig; env: Record<string, string | undefined>; overrides: RawConfig }): LanceConfig {
  const merged = deepMerge(deepMerge(opts.fileRaw ?? {}, envOverrides(opts.env)), opts.overrides);
  // The seed's object-store env names (OBJECT_STORE_BACKEND, S3_*, OBJECT_STORE_PATH) override the file's section.
  const storeEnv = objectStoreEnvOverrides(opts.env);
  if (storeEnv) {
    const fromFile = merged.objectStore;
    merged.objectStore = { ...(fromFile && typeof fromFile === 'object' ? fromFile : {}), ...storeEnv };
  }
  return validateConfig(merged);
}

export function flushPolicy(cfg: LanceConfig): FlushPolicy {
  switch (cfg.storage.flushMode) {
    case 'every-entry': return { mode: 'every-entry' };
    case 'bytes': return { mode: 'bytes', bytes: cfg.storage.flushBytes, maxDelayMs: cfg.storage.flushIntervalMs };
    case 'interval': return { mode: 'interval', ms: cfg.storage.flushIntervalMs };
  }
}

/** Storage options for a partition, with topic-level retention/segment overrides applied. */
export function logOptions(cfg: LanceConfig, topic?: { retentionMs?: number; retentionBytes?: number; segmentBytes?: number; segmentMs?: number }): LogOptions {
  return {
    segmentBytes: topic?.segmentBytes ?? cfg.storage.segmentBytes,
    segmentMs: topic?.segmentMs ?? cfg.storage.segmentMs,
    indexIntervalBytes: cfg.storage.indexIntervalBytes,
    flush: flushPolicy(cfg),
    retention: {
      retentionMs: topic?.retentionMs ?? cfg.storage.retentionMs,
      retentionBytes: topic?.retentionBytes ?? cfg.storage.retentionBytes,
    },
  };
}

/** The host Kafka clients are told to use: explicit, else the bind host, else (for 0.0.0.0 / ::) the host name. */
export function advertisedHost(cfg: LanceConfig, hostname: string): string {
  const k = cfg.listeners.kafka;
  if (k.advertisedHost) return k.advertisedHost;
  if (k.host === '0.0.0.0' || k.host === '::') return hostname;
  return k.host;
}
