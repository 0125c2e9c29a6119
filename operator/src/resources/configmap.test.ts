import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { brokerClusterId, brokerSettingsEnv, configHash, configMap, configMapData, peers } from './configmap.ts';
import { cluster } from './fixtures.test-util.ts';

describe('ConfigMap', () => {
  it('renders lance.yaml with the broker config keys of docs/configuration.md', () => {
    const cm = configMap(cluster({ replicas: 3, readOnly: true, config: { segmentBytes: 8_388_608, retentionMs: 0, flush: { mode: 'bytes', bytes: 65536 }, defaultPartitions: 6, logLevel: 'debug' } }));
    expect(cm.metadata?.name).toBe('demo-config');
    expect(cm.metadata?.namespace).toBe('lance');
    expect(cm.metadata?.ownerReferences).toEqual([
      { apiVersion: 'lance.dev/v1alpha1', kind: 'LanceCluster', name: 'demo', uid: 'uid-demo', controller: true, blockOwnerDeletion: true },
    ]);
    const conf = parse(cm.data?.['lance.yaml'] ?? '');
    expect(conf).toEqual({
      clusterId: 'lance.demo',
      standalone: false,
      readOnly: true,
      listeners: { kafka: { host: '0.0.0.0', port: 9092 }, admin: { host: '0.0.0.0', port: 1992 }, raft: { host: '0.0.0.0', port: 1993 } },
      cluster: { bootstrapVoters: [0, 1, 2] },
      storage: { segmentBytes: 8_388_608, retentionMs: 0, flushMode: 'bytes', flushBytes: 65536 },
      topics: { defaultPartitions: 6 },
      log: { level: 'debug' },
    });
    expect(Object.keys(cm.data ?? {}).sort()).toEqual(['lance.yaml', 'peers.yaml']);
  });

  it('runs a single broker standalone and merges additionalConfig paths (snake_case normalised)', () => {
    const conf = parse(configMapData(cluster({ replicas: 1, listeners: { kafkaPort: 19092 }, config: { additionalConfig: { 'storage.index_interval_bytes': 8192, max_frame_bytes: 1024 } } }))['lance.yaml']);
    expect(conf.standalone).toBe(true);
    expect(conf.listeners.kafka.port).toBe(19092);
    expect(conf.storage).toEqual({ indexIntervalBytes: 8192 });
    expect(conf.maxFrameBytes).toBe(1024);
  });

  it('lists one bootstrap peer per replica by headless DNS name', () => {
    const c = cluster({ replicas: 3 });
    const data = parse(configMapData(c)['peers.yaml']);
    expect(data.peers).toEqual([
      { ordinal: 0, nodeId: 0, pod: 'demo-0', host: 'demo-0.demo-headless.lance.svc', kafkaPort: 9092, adminPort: 1992, raftPort: 1993 },
      { ordinal: 1, nodeId: 1, pod: 'demo-1', host: 'demo-1.demo-headless.lance.svc', kafkaPort: 9092, adminPort: 1992, raftPort: 1993 },
      { ordinal: 2, nodeId: 2, pod: 'demo-2', host: 'demo-2.demo-headless.lance.svc', kafkaPort: 9092, adminPort: 1992, raftPort: 1993 },
    ]);
    expect(peers(c, { replicas: 5 }).map((p) => p.pod)).toEqual(['demo-0', 'demo-1', 'demo-2', 'demo-3', 'demo-4']);
    // After ordinal 1 was replaced, its broker has a new node id.
    expect(peers(c, { nodeIds: { 1: 7 } }).map((p) => [p.ordinal, p.nodeId])).toEqual([[0, 0], [1, 7], [2, 2]]);
  });

  it('renders the objectStore section without secrets, tuning keys from additionalConfig included', () => {
    const c = cluster({
      objectStore: { bucket: 'lance-dr', prefix: 'p/q', endpoint: 'http://s3.local:4568', forcePathStyle: true, credentialsSecret: { name: 's3creds' }, metadataUploadInterval: '1m30s' },
      config: { additionalConfig: { 'objectStore.partConcurrency': 8 } },
    });
    const data = configMapData(c);
    expect(parse(data['lance.yaml']).objectStore).toEqual({
      partConcurrency: 8,
      backend: 's3',
      prefix: 'p/q',
      bucket: 'lance-dr',
      endpoint: 'http://s3.local:4568',
      region: 'us-east-1',
      forcePathStyle: true,
    });
    expect(brokerSettingsEnv(c)).toEqual({ LANCE_METADATA_UPLOAD_INTERVAL_MS: '90000' });
    const all = JSON.stringify(data);
    expect(all).not.toContain('s3creds');
    expect(all).not.toContain('secretAccessKey');
    const f = parse(configMapData(cluster({ objectStore: { backend: 'file', path: '/mnt/dr' } }))['lance.yaml']);
    expect(f.objectStore).toEqual({ backend: 'file', prefix: '', path: '/mnt/dr' });
    expect(parse(configMapData(cluster())['lance.yaml']).objectStore).toBeUndefined();
    expect(brokerSettingsEnv(cluster())).toEqual({});
  });

  it('hashes restart-relevant config but not the peer list', () => {
    const base = configHash(configMapData(cluster({ replicas: 3 })));
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(configHash(configMapData(cluster({ replicas: 3 })))).toBe(base);
    // Scaling 3 -> 5 (the controller passes the recorded founders) changes peers only: no rolling restart.
    expect(configHash(configMapData(cluster({ replicas: 5 }), { replicas: 5, bootstrapVoters: [0, 1, 2] }))).toBe(base);
    expect(parse(configMapData(cluster({ replicas: 5 }), { replicas: 5, bootstrapVoters: [0, 1, 2] })['lance.yaml']).cluster).toEqual({ bootstrapVoters: [0, 1, 2] });
    expect(parse(configMapData(cluster({ replicas: 1 }))['lance.yaml']).cluster).toBeUndefined();
    expect(configHash(configMapData(cluster({ replicas: 3 }), { replicas: 5, nodeIds: { 0: 9 } }))).toBe(base);
    expect(configHash(configMapData(cluster({ replicas: 3, config: { retentionMs: 1 } })))).not.toBe(base);
    expect(configHash(configMapData(cluster({ replicas: 3, readOnly: true })))).not.toBe(base);
    expect(configHash(configMapData(cluster({ replicas: 3, objectStore: { bucket: 'bkt' } })))).not.toBe(base);
    // Settings passed as env count too.
    const withStore = cluster({ objectStore: { bucket: 'bkt' } });
    const slower = cluster({ objectStore: { bucket: 'bkt', metadataUploadInterval: '30s' } });
    expect(configHash(configMapData(withStore), brokerSettingsEnv(withStore))).not.toBe(configHash(configMapData(slower), brokerSettingsEnv(slower)));
  });

  it('bounds the cluster id to the broker\'s 64 characters of [A-Za-z0-9._-]', () => {
    expect(brokerClusterId(cluster({}, 'demo', 'ns'))).toBe('ns.demo');
    const long = brokerClusterId(cluster({}, 'c'.repeat(52), 'n'.repeat(63)));
    expect(long.length).toBeLessThanOrEqual(64);
    expect(long).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
    expect(long).not.toBe(brokerClusterId(cluster({}, `${'c'.repeat(51)}d`, 'n'.repeat(63))));
  });
});
