/**
 * The broker ConfigMap. Two data keys, so that each has exactly the semantics it needs:
 * - `lance.yaml`: the broker config file (`lance --config`), in the key names of docs/configuration.md and, for the
 *   `objectStore:` section, broker/src/tiering/README.md. No secrets: credentials come from the Secret as env vars.
 * - `peers.yaml`: the bootstrap peer list, derived from the replica count.
 * The config hash on the pod template covers lance.yaml (and the settings passed as env) but NOT peers.yaml:
 * membership changes go through the admin API one at a time, and a scale from 3 to 5 must not restart every broker.
 */
import { createHash } from 'node:crypto';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { durationToMs } from '../api/common.ts';
import { camelConfigPath, type LanceCluster } from '../api/lancecluster.ts';
import { clusterId, clusterOwnerReference, commonLabels, names } from './names.ts';

export const CONFIG_KEY = 'lance.yaml';
export const PEERS_KEY = 'peers.yaml';
/** Data keys whose change must restart brokers (see the file comment). */
export const HASHED_KEYS = [CONFIG_KEY] as const;

type ConfigTree = { [key: string]: ConfigValue };
type ConfigValue = string | number | boolean | number[] | ConfigTree;

/** Cluster id written to node.json: `<namespace>.<name>`, bounded to the broker's 64 characters. */
export function brokerClusterId(cluster: LanceCluster): string {
  const { name, namespace } = clusterId(cluster);
  return clusterIdFor(namespace, name);
}

/** The same, from a namespace and a LanceCluster name (restore Jobs know the target only by name). */
export function clusterIdFor(namespace: string, name: string): string {
  const id = `${namespace}.${name}`;
  if (id.length <= 64) return id;
  const hash = createHash('sha256').update(id).digest('hex').slice(0, 8);
  return `${id.slice(0, 55)}-${hash}`;
}

function setPath(tree: ConfigTree, path: string, value: string | number | boolean | number[]): void {
  const segs = path.split('.');
  let node = tree;
  for (const seg of segs.slice(0, -1)) {
    const next = node[seg];
    if (typeof next === 'object' && !Array.isArray(next)) node = next;
    else node = node[seg] = {};
  }
  node[segs[segs.length - 1]] = value;
}

/** The content of lance.yaml as an object (docs/configuration.md key names). */
export function renderBrokerConfig(cluster: LanceCluster, options: PeerOptions = {}): ConfigTree {
  const { spec } = cluster;
  const c = spec.config;
  const tree: ConfigTree = {};
  // Additional keys first: the schema forbids the ones the operator sets, so the typed values below never clash.
  for (const [key, value] of Object.entries(c.additionalConfig ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    setPath(tree, camelConfigPath(key), value);
  }
  setPath(tree, 'clusterId', brokerClusterId(cluster));
  // dataDir is passed as --data-dir (see statefulset.ts): a path in a flag is visible to whatever maps volume
  // mounts (the test/kube kubelet rewrites flags and env, not file contents).
  // A single broker runs standalone; more need the replicated mode.
  setPath(tree, 'standalone', spec.replicas === 1);
  setPath(tree, 'readOnly', spec.readOnly);
  setPath(tree, 'listeners.kafka.host', '0.0.0.0');
  setPath(tree, 'listeners.kafka.port', spec.listeners.kafkaPort);
  setPath(tree, 'listeners.admin.host', '0.0.0.0');
  setPath(tree, 'listeners.admin.port', spec.listeners.adminPort);
  setPath(tree, 'listeners.raft.host', '0.0.0.0');
  setPath(tree, 'listeners.raft.port', spec.listeners.raftPort);
  const founders = spec.replicas > 1 ? bootstrapVoters(cluster, options) : undefined;
  if (founders) setPath(tree, 'cluster.bootstrapVoters', founders);
  const typed: Array<[string, string | number | boolean | undefined]> = [
    ['storage.segmentBytes', c.segmentBytes],
    ['storage.segmentMs', c.segmentMs],
    ['storage.retentionMs', c.retentionMs],
    ['storage.retentionBytes', c.retentionBytes],
    ['storage.flushMode', c.flush?.mode],
    ['storage.flushIntervalMs', c.flush?.intervalMs],
    ['storage.flushBytes', c.flush?.bytes],
    ['topics.defaultPartitions', c.defaultPartitions],
    ['topics.autoCreate', c.autoCreateTopics],
    ['log.level', c.logLevel],
  ];
  for (const [path, value] of typed) if (value !== undefined) setPath(tree, path, value);
  for (const [key, value] of Object.entries(renderObjectStoreConfig(cluster) ?? {})) setPath(tree, `objectStore.${key}`, value as string | number | boolean);
  return tree;
}

/** The `objectStore:` section of lance.yaml (broker/src/tiering/config.ts keys), or undefined without a store. */
export function renderObjectStoreConfig(cluster: LanceCluster): ConfigTree | undefined {
  const o = cluster.spec.objectStore;
  if (!o) return undefined;
  const store: ConfigTree = { backend: o.backend, prefix: o.prefix };
  if (o.backend === 's3') {
    if (o.bucket !== undefined) store.bucket = o.bucket;
    if (o.endpoint !== undefined) store.endpoint = o.endpoint;
    store.region = o.region;
    store.forcePathStyle = o.forcePathStyle;
  } else if (o.path !== undefined) {
    store.path = o.path;
  }
  return store;
}

/**
 * Restart-relevant settings the broker's config file has no key for yet, passed as environment variables (the
 * broker ignores LANCE_* variables it does not know). Part of the config hash.
 */
export function brokerSettingsEnv(cluster: LanceCluster): Record<string, string> {
  const o = cluster.spec.objectStore;
  return o ? { LANCE_METADATA_UPLOAD_INTERVAL_MS: String(durationToMs(o.metadataUploadInterval)) } : {};
}

export interface Peer {
  ordinal: number;
  /** Node id of the broker at this ordinal: the ordinal for a first-generation broker, a new id after a replacement. */
  nodeId: number;
  pod: string;
  host: string;
  kafkaPort: number;
  adminPort: number;
  raftPort: number;
}

export interface PeerOptions {
  /** Brokers to list; defaults to spec.replicas (the controller passes the current step while scaling). */
  replicas?: number;
  /** Node ids that differ from the ordinal (after node replacement), by ordinal; kept by the controller in status. */
  nodeIds?: Readonly<Record<number, number>>;
  /**
   * The founding members (status.bootstrapVoters): written as `cluster.bootstrapVoters` so that a broker added later
   * (a scale-up) joins the running cluster instead of bootstrapping one. Default: the first spec.replicas ordinals.
   */
  bootstrapVoters?: readonly number[];
}

/** The founders of a multi-broker cluster: the recorded ones, else ordinals 0..spec.replicas-1 (node id = ordinal). */
export function bootstrapVoters(cluster: LanceCluster, options: PeerOptions = {}): number[] | undefined {
  if (options.bootstrapVoters) return [...options.bootstrapVoters];
  // From spec.replicas, not the scaling step: the founders must not move while the cluster scales.
  const n = cluster.spec.replicas;
  return n > 1 ? Array.from({ length: n }, (_, i) => i) : undefined;
}

/** The bootstrap peers: one per ordinal, addressed by the headless Service's per-pod DNS name. */
export function peers(cluster: LanceCluster, options: PeerOptions = {}): Peer[] {
  const { name, namespace } = clusterId(cluster);
  const l = cluster.spec.listeners;
  return Array.from({ length: options.replicas ?? cluster.spec.replicas }, (_, ordinal) => ({
    ordinal,
    nodeId: options.nodeIds?.[ordinal] ?? ordinal,
    pod: names.pod(name, ordinal),
    host: names.podHost(name, namespace, ordinal),
    kafkaPort: l.kafkaPort,
    adminPort: l.adminPort,
    raftPort: l.raftPort,
  }));
}

function yaml(value: unknown): string {
  return stringify(value, { lineWidth: 0 });
}

/** The ConfigMap's data (see the file comment for the keys). */
export function configMapData(cluster: LanceCluster, options: PeerOptions = {}): Record<string, string> {
  return {
    [CONFIG_KEY]: yaml(renderBrokerConfig(cluster, options)),
    [PEERS_KEY]: yaml({ peers: peers(cluster, options) }),
  };
}

/**
 * sha256 over what must restart a broker when it changes: the hashed data keys (key names included) and the
 * settings passed as env (see brokerSettingsEnv).
 */
export function configHash(data: Record<string, string>, settingsEnv: Record<string, string> = {}): string {
  const h = createHash('sha256');
  for (const key of HASHED_KEYS) {
    if (data[key] === undefined) continue;
    h.update(`${key}\0${data[key]}\0`);
  }
  for (const name of Object.keys(settingsEnv).sort()) h.update(`env:${name}=${settingsEnv[name]}\0`);
  return h.digest('hex');
}

export function configMap(cluster: LanceCluster, options: PeerOptions = {}): V1ConfigMap {
  const { name, namespace } = clusterId(cluster);
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: names.configMap(name),
      namespace,
      labels: commonLabels(name, 'broker'),
      ownerReferences: [clusterOwnerReference(cluster)],
    },
    data: configMapData(cluster, options),
  };
}
