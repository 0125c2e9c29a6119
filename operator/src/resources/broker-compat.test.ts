/**
 * Cross-checks the rendered lance.yaml and the StatefulSet's env against the broker's own config loader, so a
 * rename on either side fails here instead of in a crash-looping pod. (Only this test imports broker code; the
 * operator itself depends on the broker's admin client alone.)
 */
import { describe, expect, it } from 'vitest';
import { parseConfigText, parseServerArgs, resolveConfig } from '../../../broker/src/server/config.ts';
import { objectStoreConfigFromUrl, validateObjectStoreConfig } from '../../../broker/src/tiering/config.ts';
import { parsePeersFile, resolveNodeId } from '../../../broker/src/cluster/config.ts';
import { configMapData } from './configmap.ts';
import { cluster, restore } from './fixtures.test-util.ts';
import { resolveRestoreSource, restoreCommand } from './restore-job.ts';
import { statefulSet } from './statefulset.ts';

describe('broker compatibility', () => {
  it('the broker accepts the rendered lance.yaml and the pod env', () => {
    const c = cluster({
      replicas: 3,
      readOnly: true,
      listeners: { kafkaPort: 19092, adminPort: 11992, raftPort: 11993 },
      config: {
        segmentBytes: 8_388_608,
        segmentMs: 0,
        retentionMs: 0,
        retentionBytes: 1_000_000,
        flush: { mode: 'bytes', intervalMs: 3, bytes: 65536 },
        defaultPartitions: 4,
        autoCreateTopics: true,
        logLevel: 'warn',
        additionalConfig: { 'storage.index_interval_bytes': 8192, maxFrameBytes: 2_000_000 },
      },
    });
    const fileRaw = parseConfigText(configMapData(c)['lance.yaml'], '/etc/lance/lance.yaml');
    // The env the kubelet would give pod demo-2 (fieldRefs and $(VAR) expansion resolved).
    const env: Record<string, string> = { POD_NAME: 'demo-2', POD_NAMESPACE: 'lance', POD_IP: '10.0.0.7' };
    const container = statefulSet(c).spec?.template.spec?.containers[0];
    for (const e of container?.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value.replace(/\$\((\w+)\)/g, (_, v: string) => env[v] ?? '');
      else if (e.valueFrom?.fieldRef?.fieldPath.startsWith('metadata.labels')) env[e.name] = '2';
      else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = 'demo-2';
    }
    const args = parseServerArgs(container?.args ?? []);
    expect(args.configFile).toBe('/etc/lance/lance.yaml');
    const cfg = resolveConfig({ fileRaw, env, overrides: args.overrides });
    expect(cfg.nodeId).toBe(2);
    expect(cfg.clusterId).toBe('lance.demo');
    expect(cfg.dataDir).toBe('/var/lib/lance');
    expect(cfg.standalone).toBe(false);
    expect(cfg.readOnly).toBe(true);
    expect(cfg.listeners.kafka).toMatchObject({ host: '0.0.0.0', port: 19092, advertisedHost: 'demo-2.demo-headless.lance.svc' });
    expect(cfg.listeners.admin.port).toBe(11992);
    expect(cfg.listeners.raft.port).toBe(11993);
    expect(cfg.storage).toMatchObject({
      segmentBytes: 8_388_608,
      segmentMs: 0,
      retentionMs: 0,
      retentionBytes: 1_000_000,
      flushMode: 'bytes',
      flushIntervalMs: 3,
      flushBytes: 65536,
      indexIntervalBytes: 8192,
    });
    expect(cfg.topics).toMatchObject({ autoCreate: true, defaultPartitions: 4 });
    expect(cfg.log.level).toBe('warn');
    expect(cfg.maxFrameBytes).toBe(2_000_000);
    // Cluster mode: the broker reads its founding members from the mounted peers.yaml, and finds itself there.
    expect(cfg.cluster.peersFile).toBe('/etc/lance/peers.yaml');
    const peers = parsePeersFile(configMapData(c)['peers.yaml'], cfg.cluster.peersFile!);
    expect(peers.map((p) => p.nodeId)).toEqual([0, 1, 2]);
    expect(peers.find((p) => p.nodeId === cfg.nodeId)).toMatchObject({ host: 'demo-2.demo-headless.lance.svc', raftPort: 11993, kafkaPort: 19092, adminPort: 11992 });
    expect(container?.args).toEqual(['--config', '/etc/lance/lance.yaml', '--data-dir', '/var/lib/lance']);
    // The pod name selects the peers.yaml entry: a first-generation pod keeps its ordinal as id...
    expect(cfg.cluster.podName).toBe('demo-2');
    expect(resolveNodeId(cfg.cluster, peers, cfg.nodeId)).toBe(2);
    // ...a replaced one gets the id the operator wrote for its ordinal (status.nodeIds), not LANCE_NODE_ID.
    const replaced = parsePeersFile(configMapData(c, { nodeIds: { 2: 7 } })['peers.yaml'], 'peers.yaml');
    expect(resolveNodeId(cfg.cluster, replaced, cfg.nodeId)).toBe(7);
  });

  it('the broker accepts the config of a minimal single-broker cluster', () => {
    const cfg = resolveConfig({ fileRaw: parseConfigText(configMapData(cluster({ replicas: 1 }))['lance.yaml'], 'lance.yaml'), env: {}, overrides: {} });
    expect(cfg.standalone).toBe(true);
    expect(cfg.listeners.kafka.port).toBe(9092);
    expect(statefulSet(cluster({ replicas: 1 })).spec?.template.spec?.containers[0]?.env?.some((e) => e.name === 'LANCE_PEERS_FILE')).toBe(false);
  });

  it('the tiering config accepts the objectStore section (the server config does not include it yet)', () => {
    const c = cluster({
      objectStore: { bucket: 'lance-dr', prefix: 'clusters/prod', endpoint: 'http://127.0.0.1:4568', forcePathStyle: true, region: 'eu-west-1' },
      config: { additionalConfig: { 'objectStore.partConcurrency': 8, 'objectStore.list_delimiter': 'client' } },
    });
    const fileRaw = parseConfigText(configMapData(c)['lance.yaml'], 'lance.yaml');
    const store = validateObjectStoreConfig(fileRaw.objectStore as Record<string, unknown>);
    expect(store).toMatchObject({ backend: 's3', bucket: 'lance-dr', prefix: 'clusters/prod', endpoint: 'http://127.0.0.1:4568', region: 'eu-west-1', forcePathStyle: true, partConcurrency: 8, listDelimiter: 'client' });
    const file = parseConfigText(configMapData(cluster({ objectStore: { backend: 'file', path: '/mnt/dr', prefix: 'p' } }))['lance.yaml'], 'lance.yaml');
    expect(validateObjectStoreConfig(file.objectStore as Record<string, unknown>)).toMatchObject({ backend: 'file', path: '/mnt/dr', prefix: 'p' });
    // Until the server config has an objectStore key, everything else of lance.yaml must still be accepted.
    const { objectStore: _omitted, ...rest } = fileRaw;
    expect(() => resolveConfig({ fileRaw: rest, env: {}, overrides: {} })).not.toThrow();
  });

  it('the restore Job\'s --from URL parses to the same object store the source cluster wrote to', () => {
    const s3 = restore({ source: { bucket: 'lance-dr', prefix: 'clusters/prod', endpoint: 'http://127.0.0.1:4568', forcePathStyle: true, region: 'eu-west-1' }, target: { clusterName: 'x', existing: true } });
    const from = restoreCommand({ restore: s3, source: resolveRestoreSource(s3), ordinal: 0 })[3];
    expect(objectStoreConfigFromUrl(from)).toMatchObject({ backend: 's3', bucket: 'lance-dr', prefix: 'clusters/prod', endpoint: 'http://127.0.0.1:4568', region: 'eu-west-1', forcePathStyle: true });
    const fsRestore = restore({ source: { backend: 'file', path: '/mnt/dr' }, target: { clusterName: 'x', existing: true } });
    const fromFile = restoreCommand({ restore: fsRestore, source: resolveRestoreSource(fsRestore), ordinal: 0 })[3];
    expect(objectStoreConfigFromUrl(fromFile)).toMatchObject({ backend: 'file', path: '/mnt/dr' });
  });
});
