import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { startStandIn, type StandIn } from './cluster.ts';
import { KUBECTL, kubectl, pidAlive, startStreaming, toolEnv, waitFor } from './testutil.ts';

const cmYaml = (name: string): string => YAML.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { k: 'v' } });
const FIX = path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures');

describe('real kubectl against the stand-in', () => {
  let k: StandIn;
  let env: NodeJS.ProcessEnv;
  const spawned: number[] = [];

  beforeAll(async () => {
    k = await startStandIn();
    env = toolEnv(k.kubeconfigPath);
  });
  afterAll(async () => {
    for (const pid of spawned) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
    const pids = k?.kubelet?.pids() ?? [];
    await k?.stop();
    for (const pid of pids) expect(pidAlive(pid)).toBe(false);
  });

  it('apply -f creates, then updates; get -o yaml shows the new data', async () => {
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'app-config', labels: { app: 'demo' } }, data: { a: '1' } };
    const r1 = await kubectl(env, ['apply', '-f', '-'], YAML.stringify(cm));
    expect(r1.stderr).toBe('');
    expect(r1.stdout).toContain('configmap/app-config created');
    cm.data = { a: '2', b: '3' } as typeof cm.data;
    const r2 = await kubectl(env, ['apply', '-f', '-'], YAML.stringify(cm));
    expect(r2.stdout).toContain('configmap/app-config configured');
    const got = await kubectl(env, ['get', 'configmap', 'app-config', '-o', 'yaml']);
    const obj = YAML.parse(got.stdout);
    expect(obj.data).toEqual({ a: '2', b: '3' });
    expect(Number(obj.metadata.resourceVersion)).toBeGreaterThan(0);
    expect(obj.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('apply --server-side creates, updates and removes fields the manager dropped', async () => {
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'ssa' }, data: { x: '1', y: '2' } };
    const r1 = await kubectl(env, ['apply', '--server-side', '-f', '-'], YAML.stringify(cm));
    expect(r1.stdout).toContain('configmap/ssa serverside-applied');
    const r2 = await kubectl(env, ['apply', '--server-side', '-f', '-'], YAML.stringify({ ...cm, data: { x: '9' } }));
    expect(r2.code).toBe(0);
    const obj = JSON.parse((await kubectl(env, ['get', 'cm', 'ssa', '-o', 'json', '--show-managed-fields'])).stdout);
    expect(obj.data).toEqual({ x: '9' });
    expect(obj.metadata.managedFields.some((f: { manager: string; operation: string }) => f.manager === 'kubectl' && f.operation === 'Apply')).toBe(true);
    // A different manager touching the same field conflicts unless it forces.
    const other = await kubectl(env, ['apply', '--server-side', '--field-manager', 'other', '-f', '-'], YAML.stringify({ ...cm, data: { x: '10' } }));
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/conflict/i);
    const forced = await kubectl(env, ['apply', '--server-side', '--force-conflicts', '--field-manager', 'other', '-f', '-'], YAML.stringify({ ...cm, data: { x: '10' } }));
    expect(forced.code).toBe(0);
    // A field changed by an ordinary write (kubectl patch → manager kubectl-patch) conflicts with a later apply.
    expect((await kubectl(env, ['patch', 'cm', 'ssa', '--type=merge', '-p', '{"data":{"x":"11"}}'])).code).toBe(0);
    const clash = await kubectl(env, ['apply', '--server-side', '--field-manager', 'other', '-f', '-'], YAML.stringify({ ...cm, data: { x: '10' } }));
    expect(clash.code).not.toBe(0);
    expect(clash.stderr).toContain('kubectl-patch');
    expect(clash.stderr).toContain('.data.x');
  });

  it('get -w streams events until killed', async () => {
    await kubectl(env, ['apply', '-f', '-'], cmYaml('watched-1'));
    const w = startStreaming(KUBECTL, ['--cache-dir', env.KUBECACHEDIR!, 'get', 'configmaps', '-w'], env);
    spawned.push(w.proc.pid!);
    await waitFor('initial list in kubectl get -w', () => w.output().includes('watched-1'));
    await kubectl(env, ['apply', '-f', '-'], cmYaml('watched-2'));
    await waitFor('ADDED event for watched-2', () => w.output().includes('watched-2'));
    w.proc.kill('SIGTERM');
    await waitFor('kubectl get -w to exit', () => w.proc.exitCode !== null || w.proc.signalCode !== null);
  });

  it('delete removes the object; get then reports NotFound', async () => {
    await kubectl(env, ['apply', '-f', '-'], cmYaml('doomed'));
    const d = await kubectl(env, ['delete', 'configmap', 'doomed']);
    expect(d.stdout).toContain('configmap "doomed" deleted');
    const g = await kubectl(env, ['get', 'configmap', 'doomed']);
    expect(g.code).not.toBe(0);
    expect(g.stderr).toContain('NotFound');
  });

  it('wait --for=condition=Ready pod/... succeeds once the real process passes its readiness probe', async () => {
    const pod = {
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'probe-me' },
      spec: {
        terminationGracePeriodSeconds: 5,
        containers: [{
          name: 'srv', image: 'lance/test-http:1', ports: [{ name: 'http', containerPort: 8080 }],
          env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }, { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
          readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 },
        }],
      },
    };
    expect((await kubectl(env, ['apply', '-f', '-'], YAML.stringify(pod))).code).toBe(0);
    const w = await kubectl(env, ['wait', '--for=condition=Ready', 'pod/probe-me', '--timeout=60s']);
    expect(w.stdout).toContain('pod/probe-me condition met');
    const ip = (await kubectl(env, ['get', 'pod', 'probe-me', '-o', 'jsonpath={.status.podIP}'])).stdout;
    expect(ip).toMatch(/^127\.\d+\.\d+\.\d+$/);
    const res = await fetch(`http://${ip}:8080/data`);
    expect(((await res.json()) as { pod: string }).pod).toBe('probe-me');
    const logs = await kubectl(env, ['logs', 'probe-me']);
    expect(logs.stdout).toContain(`listening on ${ip}:8080`);
    const table = await kubectl(env, ['get', 'pod', 'probe-me']);
    expect(table.stdout).toMatch(/probe-me\s+1\/1\s+Running\s+0/);
    const del = await kubectl(env, ['delete', 'pod', 'probe-me']);
    expect(del.code).toBe(0);
    const g = await kubectl(env, ['get', 'pod', 'probe-me']);
    expect(g.stderr).toContain('NotFound');
  });

  it('StatefulSet: rollout status, delete of a pod that the controller recreates under the same name, scale', async () => {
    const sts = {
      apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'kweb' },
      spec: {
        replicas: 2, serviceName: 'kweb', podManagementPolicy: 'Parallel', selector: { matchLabels: { app: 'kweb' } },
        template: { metadata: { labels: { app: 'kweb' } }, spec: { terminationGracePeriodSeconds: 5, containers: [{
          name: 'srv', image: 'lance/test-http:1', ports: [{ name: 'http', containerPort: 8080 }],
          env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }],
          readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 },
        }] } },
      },
    };
    expect((await kubectl(env, ['apply', '-f', '-'], YAML.stringify(sts))).code).toBe(0);
    const ro = await kubectl(env, ['rollout', 'status', 'statefulset/kweb', '--timeout=90s']);
    expect(ro.stdout).toContain('partitioned roll out complete: 2 new pods have been updated');
    const uid = (await kubectl(env, ['get', 'pod', 'kweb-1', '-o', 'jsonpath={.metadata.uid}'])).stdout;
    const del = await kubectl(env, ['delete', 'pod', 'kweb-1', '--timeout=60s']);
    expect(del.stdout).toContain('pod "kweb-1" deleted');
    expect(del.code).toBe(0);
    await waitFor('kweb-1 recreated', async () => { const u = (await kubectl(env, ['get', 'pod', 'kweb-1', '-o', 'jsonpath={.metadata.uid}'])).stdout; return u && u !== uid; });
    expect((await kubectl(env, ['wait', '--for=condition=Ready', 'pod/kweb-1', '--timeout=60s'])).code).toBe(0);
    expect((await kubectl(env, ['scale', 'statefulset', 'kweb', '--replicas=1'])).code).toBe(0);
    await waitFor('kweb-1 removed by scale-down', async () => (await kubectl(env, ['get', 'pod', 'kweb-1'])).stderr.includes('NotFound'));
    expect((await kubectl(env, ['delete', 'statefulset', 'kweb'])).code).toBe(0);
    await waitFor('kweb pods collected', async () => (await kubectl(env, ['get', 'pods', '-l', 'app=kweb', '-o', 'name'])).stdout.trim() === '');
  });

  it('logs -f follows a running container until it exits', async () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'talker' }, spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox:1.36', command: ['sh', '-c', 'for i in 1 2 3 4; do echo line-$i; sleep 0.5; done'] }] } };
    expect((await kubectl(env, ['apply', '-f', '-'], YAML.stringify(pod))).code).toBe(0);
    await waitFor('talker started', async () => ['Running', 'Succeeded'].includes((await kubectl(env, ['get', 'pod', 'talker', '-o', 'jsonpath={.status.phase}'])).stdout));
    const logs = await kubectl(env, ['logs', '-f', 'talker']);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toBe('line-1\nline-2\nline-3\nline-4\n');
    expect((await kubectl(env, ['get', 'pod', 'talker', '-o', 'jsonpath={.status.phase}'])).stdout).toBe('Succeeded');
  });

  it('a CRD is served once applied; a bad CR is rejected naming the fields; printer columns; patch --subresource=status', async () => {
    const crd = await kubectl(env, ['apply', '-f', path.join(FIX, 'widget-crd.yaml')]);
    expect(crd.stdout).toContain('customresourcedefinition.apiextensions.k8s.io/widgets.example.lance.dev created');
    expect((await kubectl(env, ['wait', '--for=condition=Established', 'crd/widgets.example.lance.dev', '--timeout=30s'])).code).toBe(0);
    const good = await kubectl(env, ['apply', '-f', path.join(FIX, 'widget-good.yaml')]);
    expect(good.stdout).toContain('widget.example.lance.dev/w1 created');
    const bad = await kubectl(env, ['apply', '-f', path.join(FIX, 'widget-bad.yaml')]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('spec.size: Unsupported value: "huge"');
    expect(bad.stderr).toContain('spec.replicas');
    const st = await kubectl(env, ['patch', 'widget', 'w1', '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Ready"}}']);
    expect(st.code).toBe(0);
    const table = await kubectl(env, ['get', 'widgets']);
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME\s+SIZE\s+REPLICAS\s+PHASE\s+AGE/);
    expect(table.stdout).toMatch(/w1\s+small\s+3\s+Ready\s+\d+s/); // replicas defaulted from the schema
    const obj = JSON.parse((await kubectl(env, ['get', 'wdg', 'w1', '-o', 'json'])).stdout);
    expect(obj.metadata.generation).toBe(1); // status changes do not bump generation
    // CEL transition rule: size is immutable.
    const imm = await kubectl(env, ['patch', 'widget', 'w1', '--type=merge', '-p', '{"spec":{"size":"large"}}']);
    expect(imm.stderr).toContain('size is immutable');
    // CEL rule on the object: replicas must be odd.
    const even = await kubectl(env, ['patch', 'widget', 'w1', '--type=merge', '-p', '{"spec":{"replicas":4}}']);
    expect(even.stderr).toContain('replicas must be odd');
    const sc = await kubectl(env, ['scale', 'widget', 'w1', '--replicas=5']);
    expect(sc.code).toBe(0);
    const after = JSON.parse((await kubectl(env, ['get', 'wdg', 'w1', '-o', 'json'])).stdout);
    expect(after.spec.replicas).toBe(5);
    expect(after.metadata.generation).toBe(2);
    // Deleting the CRD stops serving the kind.
    expect((await kubectl(env, ['delete', 'crd', 'widgets.example.lance.dev'])).code).toBe(0);
    const gone = await kubectl(env, ['get', 'widgets.example.lance.dev']);
    expect(gone.code).not.toBe(0);
  });

  it('rejects a malformed StatefulSet as a real server would', async () => {
    const sts = {
      apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'broken' },
      spec: { selector: { matchLabels: { app: 'a' } }, serviceName: 'x', template: { metadata: { labels: { app: 'b' } }, spec: { containers: [{ name: 'c', image: 'lance/test-http:1' }] } } },
    };
    const r = await kubectl(env, ['apply', '-f', '-'], YAML.stringify(sts));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('spec.template.metadata.labels');
    expect(r.stderr).toContain('`selector` does not match template `labels`');
    const noContainers = { ...sts, metadata: { name: 'broken2' }, spec: { ...sts.spec, template: { metadata: { labels: { app: 'a' } }, spec: { containers: [] } } } };
    const r2 = await kubectl(env, ['apply', '-f', '-'], YAML.stringify(noContainers));
    expect(r2.stderr).toContain('spec.template.spec.containers: Required value');
    const badQty = { ...sts, metadata: { name: 'broken3' }, spec: { ...sts.spec, template: { metadata: { labels: { app: 'a' } }, spec: { containers: [{ name: 'c', image: 'x', resources: { requests: { memory: '12zz' } } }] } } } };
    const r3 = await kubectl(env, ['apply', '-f', '-'], YAML.stringify(badQty));
    expect(r3.stderr).toContain('quantities must match the regular expression');
    const badName = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'Bad_Name' } };
    const r4 = await kubectl(env, ['apply', '-f', '-'], YAML.stringify(badName));
    expect(r4.stderr).toContain('metadata.name: Invalid value: "Bad_Name"');
  });

  it("the project's generated CRDs (crds/) and examples/ apply; their CEL rules are enforced", async () => {
    const root = path.resolve(FIX, '..', '..', '..');
    const crds = await kubectl(env, ['apply', '-f', path.join(root, 'crds')]);
    expect(crds.stderr).toBe('');
    expect(crds.stdout).toContain('lanceclusters.lance.dev created');
    for (const f of fs.readdirSync(path.join(root, 'examples')).filter((x) => x.endsWith('.yaml'))) {
      const r = await kubectl(env, ['apply', '-f', path.join(root, 'examples', f)]);
      expect(r.stderr, f).toBe('');
    }
    const names = (await kubectl(env, ['get', 'lanceclusters', '-o', 'jsonpath={.items[*].metadata.name}'])).stdout.split(' ').filter(Boolean);
    expect(names.length).toBeGreaterThan(0);
    const even = await kubectl(env, ['patch', 'lancecluster', names[0], '--type=merge', '-p', '{"spec":{"replicas":4}}']);
    expect(even.stderr).toContain('spec.replicas');
  });

  it('kubectl api-resources and version use discovery', async () => {
    const r = await kubectl(env, ['api-resources']);
    for (const kind of ['StatefulSet', 'Lease', 'CustomResourceDefinition', 'PodDisruptionBudget', 'EndpointSlice', 'ClusterRoleBinding']) expect(r.stdout).toContain(kind);
    const v = await kubectl(env, ['version', '-o', 'json']);
    expect(JSON.parse(v.stdout).serverVersion.minor).toBe('32');
    void fs;
  });
});
