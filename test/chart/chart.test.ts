/**
 * The Helm chart with real helm (.tools/bin/helm): lint and template clean, RBAC equal to the operator's own list
 * (operator/src/kube/rbac.ts), values validated by values.schema.json, CRDs identical to crds/, and the Deployment's
 * arguments accepted by the operator's real flag parser.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../kube/images.ts';
import { HELM, run } from '../kube/testutil.ts';
import { LEADER_ELECTION_RULES, OPERATOR_RULES, type RbacRule } from '../../operator/src/kube/rbac.ts';
import { parseOperatorArgs } from '../../operator/src/main.ts';
import { CHART, helmEnv, helmTemplate, ruleTriples, type K8sDoc } from './chart-util.ts';

const MONITORING_VALUES = path.join(path.dirname(new URL(import.meta.url).pathname), 'values-monitoring.yaml');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'chart-test-'));
const env = helmEnv(home);
afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

interface Container { args: string[]; env: { name: string }[]; image: string; securityContext: Record<string, unknown>; livenessProbe: { httpGet: { path: string; port: string } }; readinessProbe: { httpGet: { path: string; port: string } }; ports: { name: string; containerPort: number }[]; volumeMounts: { name: string; mountPath: string }[] }
interface DeploymentDoc extends K8sDoc { spec: { replicas: number; template: { spec: { serviceAccountName: string; securityContext: Record<string, unknown>; nodeSelector?: Record<string, string>; tolerations?: unknown[]; containers: Container[] } } } }

const byKind = (docs: K8sDoc[], kind: string): K8sDoc[] => docs.filter((d) => d.kind === kind);
const one = <T extends K8sDoc>(docs: K8sDoc[], kind: string): T => {
  const found = byKind(docs, kind);
  expect(found, kind).toHaveLength(1);
  return found[0] as T;
};

describe('charts/lance-operator with real helm', () => {
  it('helm lint is clean with default values and with ServiceMonitor + watchNamespaces values', async () => {
    for (const extra of [[], ['-f', MONITORING_VALUES]]) {
      const r = await run(HELM, ['lint', '--strict', CHART, ...extra], env);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(r.stdout).not.toMatch(/\[(WARNING|ERROR|INFO)\]/);
    }
  });

  it('default values: ClusterRole with exactly OPERATOR_RULES, a leader-election Role, Deployment with probes, no ServiceMonitor', async () => {
    const { result, docs } = await helmTemplate(env, []);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toBe('');
    expect(docs.map((d) => d.kind).sort()).toEqual(['ClusterRole', 'ClusterRoleBinding', 'Deployment', 'Role', 'RoleBinding', 'Service', 'ServiceAccount']);
    const cr = one<K8sDoc & { rules: RbacRule[] }>(docs, 'ClusterRole');
    expect(ruleTriples(cr.rules)).toEqual(ruleTriples(OPERATOR_RULES));
    const role = one<K8sDoc & { rules: RbacRule[] }>(docs, 'Role');
    expect(role.metadata.namespace).toBe('lance-system');
    expect(ruleTriples(role.rules)).toEqual(ruleTriples(LEADER_ELECTION_RULES));
    const sa = one(docs, 'ServiceAccount');
    const crb = one<K8sDoc & { subjects: { name: string; namespace: string }[]; roleRef: { name: string } }>(docs, 'ClusterRoleBinding');
    expect(crb.subjects).toEqual([{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: 'lance-system' }]);
    expect(crb.roleRef.name).toBe(cr.metadata.name);

    const dep = one<DeploymentDoc>(docs, 'Deployment');
    const pod = dep.spec.template.spec;
    expect(pod.serviceAccountName).toBe(sa.metadata.name);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001 });
    const c = pod.containers[0]!;
    expect(c.image).toBe('lance/operator:0.1.0'); // appVersion
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'health' });
    expect(c.ports).toEqual([{ name: 'health', containerPort: 8081, protocol: 'TCP' }, { name: 'metrics', containerPort: 8080, protocol: 'TCP' }]);
    expect(c.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
    expect(c.env.map((e) => e.name)).toEqual(expect.arrayContaining(['POD_NAME', 'POD_NAMESPACE']));
    // The operator's own parser accepts what the chart passes.
    expect(parseOperatorArgs(c.args)).toMatchObject({ namespaces: [], healthPort: 8081, metricsPort: 8080, leaderElect: true, leaseName: 'lance-operator', brokerBindAddress: 'any', nodeLostGraceSeconds: 300 });
    expect(one<K8sDoc & { spec: { ports: { port: number; targetPort: string }[] } }>(docs, 'Service').spec.ports).toEqual([{ name: 'metrics', port: 8080, targetPort: 'metrics', protocol: 'TCP' }]);
  });

  it('ServiceMonitor on + watchNamespaces: a Role per watched namespace (no ClusterRole), ServiceMonitor selecting the metrics Service', async () => {
    const { result, docs } = await helmTemplate(env, ['-f', MONITORING_VALUES]);
    expect(result.code, result.stderr).toBe(0);
    expect(byKind(docs, 'ClusterRole')).toEqual([]);
    expect(byKind(docs, 'ClusterRoleBinding')).toEqual([]);
    const roles = byKind(docs, 'Role') as (K8sDoc & { rules: RbacRule[] })[];
    expect(roles.map((r) => r.metadata.namespace).sort()).toEqual(['lance-system', 'team-a', 'team-b']);
    for (const r of roles) expect(ruleTriples(r.rules)).toEqual(ruleTriples(r.metadata.namespace === 'lance-system' ? LEADER_ELECTION_RULES : OPERATOR_RULES));
    const bindings = byKind(docs, 'RoleBinding') as (K8sDoc & { roleRef: { name: string } })[];
    expect(bindings.map((b) => `${b.metadata.namespace}/${b.roleRef.name}`).sort()).toEqual(roles.map((r) => `${r.metadata.namespace}/${r.metadata.name}`).sort());

    const sm = one<K8sDoc & { spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string; interval: string }[] } }>(docs, 'ServiceMonitor');
    expect(sm.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(sm.metadata.labels).toMatchObject({ release: 'prometheus' });
    expect(sm.spec.endpoints).toEqual([{ port: 'metrics', path: '/metrics', interval: '15s' }]);
    const svc = one(docs, 'Service');
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) expect(svc.metadata.labels?.[k], k).toBe(v);

    const dep = one<DeploymentDoc>(docs, 'Deployment');
    expect(dep.spec.replicas).toBe(2);
    expect(dep.spec.template.spec.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(dep.spec.template.spec.tolerations).toHaveLength(1);
    expect(parseOperatorArgs(dep.spec.template.spec.containers[0]!.args)).toMatchObject({ namespaces: ['team-a', 'team-b'], metricsPort: 9090, leaderElect: true });
  });

  it('values.schema.json rejects bad values, naming the field', async () => {
    const cases: [string[], RegExp][] = [
      [['--set', 'replicas=-1'], /replicas/],
      [['--set', 'image.pullPolicy=Sometimes'], /pullPolicy/],
      [['--set', 'watchNamespaces[0]=Not_A_Namespace'], /watchNamespaces/],
      [['--set', 'metrics.port=70000'], /metrics\.port|port/],
      [['--set', 'replica=3'], /replica/], // a typo: unknown top-level keys are refused
      [['--set', 'metrics.serviceMonitor.interval=often'], /interval/],
    ];
    for (const [args, field] of cases) {
      const r = await run(HELM, ['template', 'x', CHART, ...args], env);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toMatch(/values don't meet the specifications of the schema/);
      expect(r.stderr, args.join(' ')).toMatch(field);
    }
    // The template's own guard: a ServiceMonitor needs the Service it selects.
    const r = await run(HELM, ['template', 'x', CHART, '--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.service.enabled=false'], env);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('metrics.serviceMonitor.enabled needs metrics.service.enabled');
  });

  it('charts/lance-operator/crds/ holds exactly the generated crds/*.yaml, byte for byte', () => {
    const src = path.join(REPO_ROOT, 'crds');
    const dst = path.join(CHART, 'crds');
    const names = fs.readdirSync(src).filter((f) => f.endsWith('.yaml')).sort();
    expect(names.length).toBeGreaterThan(0);
    expect(fs.readdirSync(dst).sort(), 'run npm run gen:crds').toEqual(names);
    for (const n of names) expect(fs.readFileSync(path.join(dst, n), 'utf8'), `${n}: run npm run gen:crds`).toBe(fs.readFileSync(path.join(src, n), 'utf8'));
  });
});
