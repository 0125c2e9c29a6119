import { describe, expect, it } from 'vitest';
import { configHash, configMapData } from './configmap.ts';
import { cluster } from './fixtures.test-util.ts';
import { brokerPvc, statefulSet } from './statefulset.ts';

describe('StatefulSet', () => {
  const c = cluster({
    replicas: 3,
    resources: { requests: { cpu: '500m', memory: 1073741824 }, limits: { memory: '2Gi' } },
    storage: { size: '20Gi', storageClassName: 'fast' },
  });
  const sts = statefulSet(c);
  const pod = sts.spec!.template;
  const container = pod.spec!.containers[0];

  it('lets the operator drive restarts: OnDelete, Parallel, headless serviceName', () => {
    expect(sts.metadata).toMatchObject({ name: 'demo', namespace: 'lance' });
    expect(sts.spec).toMatchObject({ replicas: 3, serviceName: 'demo-headless', podManagementPolicy: 'Parallel', updateStrategy: { type: 'OnDelete' } });
    expect(sts.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'LanceCluster', name: 'demo', uid: 'uid-demo', controller: true });
    expect(statefulSet(c, { replicas: 4 }).spec?.replicas).toBe(4);
  });

  it('selects with stable labels and labels pods unfenced', () => {
    const selector = { 'app.kubernetes.io/name': 'lance', 'app.kubernetes.io/instance': 'demo', 'app.kubernetes.io/component': 'broker' };
    expect(sts.spec?.selector.matchLabels).toEqual(selector);
    expect(pod.metadata?.labels).toEqual({ ...selector, 'app.kubernetes.io/managed-by': 'lance-operator', 'lance.dev/fenced': 'false' });
    expect(sts.metadata?.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'lance-operator' });
  });

  it('claims a PVC of the requested size and class and mounts it at /var/lib/lance', () => {
    expect(sts.spec?.volumeClaimTemplates).toEqual([
      expect.objectContaining({
        metadata: expect.objectContaining({ name: 'data' }),
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '20Gi' } }, storageClassName: 'fast' },
      }),
    ]);
    expect(container.volumeMounts).toContainEqual({ name: 'data', mountPath: '/var/lib/lance' });
    expect(container.volumeMounts).toContainEqual({ name: 'config', mountPath: '/etc/lance', readOnly: true });
    expect(container.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
    expect(pod.spec?.volumes).toContainEqual({ name: 'config', configMap: { name: 'demo-config' } });
    expect(pod.spec?.volumes?.find((v) => v.name === 'tmp')?.emptyDir).toBeDefined();
    expect(sts.spec?.persistentVolumeClaimRetentionPolicy).toEqual({ whenDeleted: 'Retain', whenScaled: 'Delete' });
    expect(statefulSet(cluster({ storage: { onDelete: 'Delete' } })).spec?.persistentVolumeClaimRetentionPolicy?.whenDeleted).toBe('Delete');
    expect(statefulSet(cluster()).spec?.volumeClaimTemplates?.[0].spec?.storageClassName).toBeUndefined();
  });

  it('exposes the three ports and probes health on the admin port', () => {
    expect(container.ports?.map((p) => [p.name, p.containerPort])).toEqual([
      ['kafka', 9092],
      ['admin', 1992],
      ['raft', 1993],
    ]);
    expect(container.livenessProbe?.httpGet).toEqual({ path: '/health/live', port: 'admin' });
    expect(container.readinessProbe?.httpGet).toEqual({ path: '/health/ready', port: 'admin' });
    expect(container.startupProbe?.httpGet).toEqual({ path: '/health/live', port: 'admin' });
    const custom = statefulSet(cluster({ listeners: { kafkaPort: 19092, adminPort: 11992, raftPort: 11993 } })).spec!.template.spec!.containers[0];
    expect(custom.ports?.map((p) => p.containerPort)).toEqual([19092, 11992, 11993]);
  });

  it('passes pod identity through the downward API', () => {
    const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e]));
    expect(env.POD_NAME.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
    expect(env.POD_NAMESPACE.valueFrom?.fieldRef?.fieldPath).toBe('metadata.namespace');
    expect(env.POD_IP.valueFrom?.fieldRef?.fieldPath).toBe('status.podIP');
    expect(env.LANCE_NODE_ID.valueFrom?.fieldRef?.fieldPath).toBe("metadata.labels['apps.kubernetes.io/pod-index']");
    expect(env.LANCE_POD_NAME.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name'); // selects the peers.yaml entry (its nodeId wins)
    expect(env.LANCE_ADVERTISED_HOST.value).toBe('$(POD_NAME).demo-headless.$(POD_NAMESPACE).svc');
    // Declared after the variables it references, or the kubelet would not expand them.
    const order = (container.env ?? []).map((e) => e.name);
    expect(order.indexOf('LANCE_ADVERTISED_HOST')).toBeGreaterThan(order.indexOf('POD_NAMESPACE'));
    expect(env.AWS_ACCESS_KEY_ID).toBeUndefined();
  });

  it('binds all addresses by default, or only the pod IP when asked', () => {
    expect((container.env ?? []).some((e) => e.name === 'LANCE_KAFKA_HOST')).toBe(false);
    const env = statefulSet(c, { bindAddress: 'podIP' }).spec!.template.spec!.containers[0].env ?? [];
    for (const n of ['LANCE_KAFKA_HOST', 'LANCE_ADMIN_HOST', 'LANCE_RAFT_HOST']) expect(env).toContainEqual({ name: n, value: '$(POD_IP)' });
    expect(env.findIndex((e) => e.name === 'LANCE_KAFKA_HOST')).toBeGreaterThan(env.findIndex((e) => e.name === 'POD_IP'));
  });

  it('injects object-store credentials from the Secret, not from the ConfigMap', () => {
    const s = statefulSet(cluster({ objectStore: { bucket: 'bkt', credentialsSecret: { name: 's3', accessKeyIdKey: 'id', secretAccessKeyKey: 'key' } } }));
    const env = s.spec!.template.spec!.containers[0].env ?? [];
    expect(env).toContainEqual({ name: 'AWS_ACCESS_KEY_ID', valueFrom: { secretKeyRef: { name: 's3', key: 'id' } } });
    expect(env).toContainEqual({ name: 'AWS_SECRET_ACCESS_KEY', valueFrom: { secretKeyRef: { name: 's3', key: 'key' } } });
  });

  it('runs non-root with a read-only root filesystem, no capabilities and the default seccomp profile', () => {
    expect(container.securityContext).toEqual({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.spec?.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, fsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.spec?.automountServiceAccountToken).toBe(false);
    expect(pod.spec?.enableServiceLinks).toBe(false);
    expect(pod.spec?.serviceAccountName).toBe('demo-broker');
  });

  it('sets resources as quantity strings', () => {
    expect(container.resources).toEqual({ requests: { cpu: '500m', memory: '1073741824' }, limits: { memory: '2Gi' } });
    expect(statefulSet(cluster()).spec!.template.spec!.containers[0].resources).toBeUndefined();
    expect(container.image).toBe('lance/broker:0.1.0');
    expect(container.imagePullPolicy).toBe('IfNotPresent');
  });

  it('annotates the pod template with the config hash, which changes with the config but not with scaling', () => {
    const hash = pod.metadata?.annotations?.['lance.dev/config-hash'];
    expect(hash).toBe(configHash(configMapData(c)));
    const scaled = statefulSet(cluster({ replicas: 5, resources: c.spec.resources, storage: { size: '20Gi', storageClassName: 'fast' } }), { replicas: 5, bootstrapVoters: [0, 1, 2] });
    expect(scaled.spec!.template.metadata?.annotations?.['lance.dev/config-hash']).toBe(hash);
    const changed = statefulSet(cluster({ replicas: 3, config: { segmentBytes: 2_097_152 } }));
    expect(changed.spec!.template.metadata?.annotations?.['lance.dev/config-hash']).not.toBe(statefulSet(cluster({ replicas: 3 })).spec!.template.metadata?.annotations?.['lance.dev/config-hash']);
  });

  it('merges pod template overrides without letting them replace the operator\'s labels', () => {
    const s = statefulSet(
      cluster({
        podTemplate: {
          labels: { team: 'data', 'app.kubernetes.io/instance': 'hijack', 'lance.dev/fenced': 'true' },
          annotations: { 'example.com/a': '1', 'lance.dev/config-hash': 'forged' },
          nodeSelector: { disk: 'ssd' },
          tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'lance', effect: 'NoSchedule' }],
          affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } } },
          securityContext: { runAsUser: 2000, supplementalGroups: [5] },
          priorityClassName: 'high',
        },
      }),
    );
    const p = s.spec!.template;
    expect(p.metadata?.labels).toMatchObject({ team: 'data', 'app.kubernetes.io/instance': 'demo', 'lance.dev/fenced': 'false' });
    expect(p.metadata?.annotations?.['example.com/a']).toBe('1');
    expect(p.metadata?.annotations?.['lance.dev/config-hash']).toMatch(/^[0-9a-f]{64}$/);
    expect(p.spec?.nodeSelector).toEqual({ disk: 'ssd' });
    expect(p.spec?.tolerations).toEqual([{ key: 'dedicated', operator: 'Equal', value: 'lance', effect: 'NoSchedule' }]);
    expect(p.spec?.affinity).toEqual({ nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } } });
    expect(p.spec?.securityContext).toMatchObject({ runAsUser: 2000, supplementalGroups: [5], runAsNonRoot: true, fsGroup: 10001 });
    expect(p.spec?.priorityClassName).toBe('high');
  });

  it('spreads brokers over nodes by default', () => {
    const term = pod.spec?.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.[0];
    expect(term?.podAffinityTerm.topologyKey).toBe('kubernetes.io/hostname');
    expect(term?.podAffinityTerm.labelSelector?.matchLabels).toEqual(sts.spec?.selector.matchLabels);
    expect(pod.spec?.tolerations).toBeUndefined();
  });

  it('builds a PVC the StatefulSet adopts for an ordinal', () => {
    const pvc = brokerPvc(c, 2);
    expect(pvc.metadata).toMatchObject({ name: 'data-demo-2', namespace: 'lance' });
    expect(pvc.metadata?.ownerReferences).toBeUndefined();
    expect(pvc.spec).toEqual(sts.spec?.volumeClaimTemplates?.[0].spec);
  });

  it('refuses to build without a uid or namespace, naming the field', () => {
    const noUid = { ...c, metadata: { ...c.metadata, uid: undefined } };
    expect(() => statefulSet(noUid)).toThrow(/metadata\.uid/);
    const noNs = { ...c, metadata: { ...c.metadata, namespace: undefined } };
    expect(() => statefulSet(noNs)).toThrow(/metadata\.namespace/);
  });
});
