import { errors, type StatusCause } from './status.ts';
import type { ResourceType } from './resources.ts';
import type { Store } from './store.ts';
import { type KObject, clone, deepEqual, isPlainObject } from './types.ts';
import { matchLabels, selectorFromObject } from './selectors.ts';
import { validateCustomResource, validateCrd } from './schema.ts';

/**
 * Admission for built-in kinds: the defaulting and validation a real kube-apiserver applies that clients can observe
 * (names, labels, pod specs, quantities, workload selectors, immutable fields). Focused, not exhaustive: see README.
 */
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

type Causes = StatusCause[];

function req(c: Causes, field: string): void { c.push({ field, message: 'Required value', reason: 'FieldValueRequired' }); }
function bad(c: Causes, field: string, value: unknown, why: string): void {
  c.push({ field, message: `Invalid value: ${JSON.stringify(value)}: ${why}`, reason: 'FieldValueInvalid' });
}
function unsupported(c: Causes, field: string, value: unknown, allowed: string[]): void {
  c.push({ field, message: `Unsupported value: ${JSON.stringify(value)}: supported values: ${allowed.map((a) => `"${a}"`).join(', ')}`, reason: 'FieldValueNotSupported' });
}
function forbidden(c: Causes, field: string, why: string): void { c.push({ field, message: `Forbidden: ${why}`, reason: 'FieldValueForbidden' }); }
function immutable(c: Causes, field: string, value: unknown): void {
  c.push({ field, message: `Invalid value: ${JSON.stringify(value)}: field is immutable`, reason: 'FieldValueInvalid' });
}

export function validName(name: string, label: boolean): string | undefined {
  if (label) {
    if (name.length > 63) return 'must be no more than 63 characters';
    if (!DNS1123_LABEL.test(name)) return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    return undefined;
  }
  if (name.length > 253) return 'must be no more than 253 characters';
  if (!DNS1123_SUBDOMAIN.test(name)) return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
  return undefined;
}

function validateLabelKey(c: Causes, field: string, key: string): void {
  const parts = key.split('/');
  const name = parts.length === 2 ? parts[1] : parts[0];
  if (parts.length > 2 || (parts.length === 2 && (!DNS1123_SUBDOMAIN.test(parts[0]) || parts[0].length > 253)) || name.length > 63 || !QUALIFIED_NAME.test(name)) {
    bad(c, field, key, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, with an optional DNS subdomain prefix and '/'");
  }
}

function validateMeta(c: Causes, rt: ResourceType, o: KObject): void {
  const m = o.metadata;
  const labelKinds = ['Namespace', 'Service'];
  const pathSegmentKinds = ['Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding'];
  if (m.name) {
    if (pathSegmentKinds.includes(rt.kind)) {
      if (m.name.includes('/') || m.name.includes('%') || m.name === '.' || m.name === '..') bad(c, 'metadata.name', m.name, 'may not contain "/" or "%"');
    } else {
      const why = validName(m.name, labelKinds.includes(rt.kind));
      if (why) bad(c, 'metadata.name', m.name, why);
    }
  }
  for (const [k, v] of Object.entries(m.labels ?? {})) {
    validateLabelKey(c, 'metadata.labels', k);
    if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v)) bad(c, `metadata.labels`, v, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character");
  }
  for (const k of Object.keys(m.annotations ?? {})) validateLabelKey(c, 'metadata.annotations', k);
  (m.ownerReferences ?? []).forEach((r, i) => {
    for (const f of ['apiVersion', 'kind', 'name', 'uid'] as const) if (!r[f]) req(c, `metadata.ownerReferences[${i}].${f}`);
  });
  if ((m.ownerReferences ?? []).filter((r) => r.controller).length > 1) bad(c, 'metadata.ownerReferences', m.ownerReferences, 'Only one reference can have Controller set to true');
}

/** Quantities are decoded by kube's JSON decoder, so a bad one is a 400 BadRequest, not a 422. */
function checkQuantity(field: string, v: unknown): void {
  if (typeof v === 'number') return;
  if (typeof v !== 'string' || !QUANTITY.test(v)) {
    throw errors.badRequest(`${field}: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' (got ${JSON.stringify(v)})`);
  }
}

function validateProbe(c: Causes, field: string, p: unknown): void {
  if (p === undefined) return;
  if (!isPlainObject(p)) return bad(c, field, p, 'must be an object');
  const handlers = ['httpGet', 'tcpSocket', 'exec', 'grpc'].filter((h) => p[h] !== undefined);
  if (handlers.length !== 1) c.push({ field, message: 'Required value: must specify a handler type', reason: 'FieldValueRequired' });
}

function defaultContainer(ct: Record<string, any>): void { // eslint-disable-line @typescript-eslint/no-explicit-any
  ct.imagePullPolicy ??= String(ct.image ?? '').endsWith(':latest') || !String(ct.image ?? '').includes(':') ? 'Always' : 'IfNotPresent';
  ct.terminationMessagePath ??= '/dev/termination-log';
  ct.terminationMessagePolicy ??= 'File';
  ct.resources ??= {};
  for (const p of ct.ports ?? []) p.protocol ??= 'TCP';
  for (const k of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
    const pr = ct[k];
    if (!isPlainObject(pr)) continue;
    pr.timeoutSeconds ??= 1; pr.periodSeconds ??= 10; pr.successThreshold ??= 1; pr.failureThreshold ??= 3;
    if (isPlainObject(pr.httpGet)) pr.httpGet.scheme ??= 'HTTP';
  }
  for (const e of ct.env ?? []) if (isPlainObject(e?.valueFrom?.fieldRef)) e.valueFrom.fieldRef.apiVersion ??= 'v1';
}

/* eslint-disable @typescript-eslint/no-explicit-any -- pod specs are walked structurally */
export function defaultPodSpec(spec: Record<string, any>): void {
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.securityContext ??= {};
  spec.enableServiceLinks ??= true;
  for (const ct of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) if (isPlainObject(ct)) defaultContainer(ct);
}

export function validatePodSpec(c: Causes, f: string, spec: any, restartPolicies = ['Always', 'OnFailure', 'Never'], extraVolumes: string[] = []): void {
  if (!isPlainObject(spec)) return req(c, f);
  const containers = spec.containers;
  if (!Array.isArray(containers) || containers.length === 0) req(c, `${f}.containers`);
  const volumeNames = new Set<string>(extraVolumes);
  (Array.isArray(spec.volumes) ? spec.volumes : []).forEach((v: any, i: number) => {
    if (!v?.name) req(c, `${f}.volumes[${i}].name`);
    else if (volumeNames.has(v.name)) c.push({ field: `${f}.volumes[${i}].name`, message: `Duplicate value: ${JSON.stringify(v.name)}`, reason: 'FieldValueDuplicate' });
    else volumeNames.add(v.name);
  });
  const names = new Set<string>();
  const all = [...(Array.isArray(spec.initContainers) ? spec.initContainers.map((x: any, i: number) => [x, `${f}.initContainers[${i}]`]) : []),
    ...(Array.isArray(containers) ? containers.map((x: any, i: number) => [x, `${f}.containers[${i}]`]) : [])] as [any, string][];
  for (const [ct, cf] of all) {
    if (!isPlainObject(ct)) { req(c, cf); continue; }
    if (!ct.name) req(c, `${cf}.name`);
    else {
      const why = validName(ct.name as string, true);
      if (why) bad(c, `${cf}.name`, ct.name, why);
      if (names.has(ct.name as string)) c.push({ field: `${cf}.name`, message: `Duplicate value: ${JSON.stringify(ct.name)}`, reason: 'FieldValueDuplicate' });
      names.add(ct.name as string);
    }
    if (!ct.image) req(c, `${cf}.image`);
    (Array.isArray(ct.ports) ? ct.ports : []).forEach((p: any, i: number) => {
      const n = p?.containerPort;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) bad(c, `${cf}.ports[${i}].containerPort`, n, 'must be between 1 and 65535, inclusive');
      if (p?.protocol && !['TCP', 'UDP', 'SCTP'].includes(p.protocol)) unsupported(c, `${cf}.ports[${i}].protocol`, p.protocol, ['SCTP', 'TCP', 'UDP']);
    });
    (Array.isArray(ct.env) ? ct.env : []).forEach((e: any, i: number) => {
      if (!e?.name) req(c, `${cf}.env[${i}].name`);
      else if (!ENV_NAME.test(e.name)) bad(c, `${cf}.env[${i}].name`, e.name, "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit");
    });
    (Array.isArray(ct.volumeMounts) ? ct.volumeMounts : []).forEach((vm: any, i: number) => {
      if (!vm?.mountPath) req(c, `${cf}.volumeMounts[${i}].mountPath`);
      if (!vm?.name) req(c, `${cf}.volumeMounts[${i}].name`);
      else if (!volumeNames.has(vm.name)) c.push({ field: `${cf}.volumeMounts[${i}].name`, message: `Not found: ${JSON.stringify(vm.name)}`, reason: 'FieldValueNotFound' });
    });
    for (const kind of ['limits', 'requests'] as const) {
      for (const [rk, rv] of Object.entries(ct.resources?.[kind] ?? {})) checkQuantity(`${cf}.resources.${kind}[${rk}]`, rv);
    }
    validateProbe(c, `${cf}.readinessProbe`, ct.readinessProbe);
    validateProbe(c, `${cf}.livenessProbe`, ct.livenessProbe);
    validateProbe(c, `${cf}.startupProbe`, ct.startupProbe);
  }
  if (spec.restartPolicy && !restartPolicies.includes(spec.restartPolicy)) unsupported(c, `${f}.restartPolicy`, spec.restartPolicy, restartPolicies);
}

function validateWorkloadSelector(c: Causes, spec: any): void {
  if (!isPlainObject(spec)) return req(c, 'spec');
  if (!isPlainObject(spec.selector)) req(c, 'spec.selector');
  else {
    const reqs = selectorFromObject(spec.selector);
    if (reqs.length === 0) bad(c, 'spec.selector', spec.selector, 'empty selector is invalid for deployment/statefulset');
    else if (!matchLabels(reqs, spec.template?.metadata?.labels)) bad(c, 'spec.template.metadata.labels', spec.template?.metadata?.labels ?? {}, '`selector` does not match template `labels`');
  }
  if (spec.replicas !== undefined && (typeof spec.replicas !== 'number' || spec.replicas < 0)) bad(c, 'spec.replicas', spec.replicas, 'must be greater than or equal to 0');
}

let nextClusterIP = 1;

function admitBuiltin(rt: ResourceType, op: 'create' | 'update', o: KObject, old: KObject | undefined, store: Store, subresource?: string): void {
  const c: Causes = [];
  validateMeta(c, rt, o);
  const spec = o.spec;
  switch (rt.kind) {
    case 'Namespace':
      o.spec ??= { finalizers: ['kubernetes'] };
      if (op === 'create') o.status = { phase: 'Active' };
      break;
    case 'Pod':
      if (op === 'create') {
        if (isPlainObject(spec)) defaultPodSpec(spec);
        o.status = { phase: 'Pending', qosClass: 'BestEffort' };
      }
      validatePodSpec(c, 'spec', spec);
      if (op === 'update' && old && subresource !== 'status') {
        // Pod spec is immutable except images, activeDeadlineSeconds, tolerations (additions) — and nodeName once (binding).
        const strip = (s: any) => { const x = clone(s ?? {}); delete x.activeDeadlineSeconds; delete x.tolerations; if (!old.spec?.nodeName) delete x.nodeName; (x.containers ?? []).forEach((ct: any) => delete ct.image); (x.initContainers ?? []).forEach((ct: any) => delete ct.image); return x; };
        if (!deepEqual(strip(old.spec), strip(spec))) forbidden(c, 'spec', 'pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)');
      }
      break;
    case 'StatefulSet':
      if (isPlainObject(spec)) {
        spec.replicas ??= 1;
        spec.podManagementPolicy ??= 'OrderedReady';
        spec.updateStrategy ??= { type: 'RollingUpdate', rollingUpdate: { partition: 0 } };
        if (spec.updateStrategy.type === 'RollingUpdate') spec.updateStrategy.rollingUpdate ??= { partition: 0 };
        spec.revisionHistoryLimit ??= 10;
        spec.persistentVolumeClaimRetentionPolicy ??= { whenDeleted: 'Retain', whenScaled: 'Retain' };
        if (isPlainObject(spec.template?.spec)) defaultPodSpec(spec.template.spec);
        for (const t of spec.volumeClaimTemplates ?? []) { t.apiVersion ??= 'v1'; t.kind ??= 'PersistentVolumeClaim'; t.spec ??= {}; t.spec.volumeMode ??= 'Filesystem'; }
      }
      validateWorkloadSelector(c, spec);
      validatePodSpec(c, 'spec.template.spec', spec?.template?.spec, ['Always'], (spec?.volumeClaimTemplates ?? []).map((t: any) => t?.metadata?.name).filter(Boolean));
      if (spec?.podManagementPolicy && !['OrderedReady', 'Parallel'].includes(spec.podManagementPolicy)) unsupported(c, 'spec.podManagementPolicy', spec.podManagementPolicy, ['OrderedReady', 'Parallel']);
      if (spec?.updateStrategy?.type && !['RollingUpdate', 'OnDelete'].includes(spec.updateStrategy.type)) unsupported(c, 'spec.updateStrategy.type', spec.updateStrategy.type, ['OnDelete', 'RollingUpdate']);
      (spec?.volumeClaimTemplates ?? []).forEach((t: any, i: number) => {
        if (!t?.metadata?.name) req(c, `spec.volumeClaimTemplates[${i}].metadata.name`);
        for (const [rk, rv] of Object.entries(t?.spec?.resources?.requests ?? {})) checkQuantity(`spec.volumeClaimTemplates[${i}].spec.resources.requests[${rk}]`, rv);
      });
      if (op === 'update' && old && subresource !== 'status') {
        const strip = (s: any) => { const x = clone(s ?? {}); for (const k of ['replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy', 'minReadySeconds', 'revisionHistoryLimit']) delete x[k]; return x; };
        if (!deepEqual(strip(old.spec), strip(spec))) forbidden(c, 'spec', "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden");
      }
      break;
    case 'Deployment':
    case 'ReplicaSet':
      if (isPlainObject(spec)) {
        spec.replicas ??= 1;
        if (rt.kind === 'Deployment') { spec.strategy ??= { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } }; spec.progressDeadlineSeconds ??= 600; }
        spec.revisionHistoryLimit ??= 10;
        if (isPlainObject(spec.template?.spec)) defaultPodSpec(spec.template.spec);
      }
      validateWorkloadSelector(c, spec);
      validatePodSpec(c, 'spec.template.spec', spec?.template?.spec, ['Always']);
      if (op === 'update' && old && subresource !== 'status' && !deepEqual(old.spec?.selector, spec?.selector)) immutable(c, 'spec.selector', spec?.selector);
      break;
    case 'Job':
      if (isPlainObject(spec)) {
        spec.parallelism ??= 1;
        spec.completions ??= spec.completionMode === 'Indexed' ? spec.parallelism : 1;
        spec.backoffLimit ??= 6;
        spec.completionMode ??= 'NonIndexed';
        spec.suspend ??= false;
        if (op === 'create' && !spec.manualSelector) {
          // kube generates the selector from the Job's own uid; the store assigns the uid later, so use a fresh one here.
          const uid = o.metadata.uid ?? crypto.randomUUID();
          o.metadata.uid = uid;
          spec.selector = { matchLabels: { 'batch.kubernetes.io/controller-uid': uid } };
          spec.template ??= {};
          spec.template.metadata ??= {};
          spec.template.metadata.labels = { ...(spec.template.metadata.labels ?? {}), 'batch.kubernetes.io/controller-uid': uid, 'controller-uid': uid, 'batch.kubernetes.io/job-name': o.metadata.name!, 'job-name': o.metadata.name! };
        }
        if (isPlainObject(spec.template?.spec)) defaultPodSpec(spec.template.spec);
      }
      if (!isPlainObject(spec?.template?.spec)) req(c, 'spec.template.spec');
      else {
        if (!spec.template.spec.restartPolicy || spec.template.spec.restartPolicy === 'Always') {
          // defaultPodSpec set Always when missing; kube rejects Always (and missing) for Jobs.
          unsupported(c, 'spec.template.spec.restartPolicy', spec.template.spec.restartPolicy, ['OnFailure', 'Never']);
        }
        validatePodSpec(c, 'spec.template.spec', spec.template.spec, ['OnFailure', 'Never']);
      }
      if (spec?.backoffLimit !== undefined && spec.backoffLimit < 0) bad(c, 'spec.backoffLimit', spec.backoffLimit, 'must be greater than or equal to 0');
      if (op === 'update' && old && subresource !== 'status' && !deepEqual(old.spec?.template, spec?.template)) immutable(c, 'spec.template', spec?.template);
      if (op === 'update' && old && subresource !== 'status' && old.spec?.completions !== spec?.completions) immutable(c, 'spec.completions', spec?.completions);
      break;
    case 'Service':
      if (isPlainObject(spec)) {
        spec.type ??= 'ClusterIP';
        spec.sessionAffinity ??= 'None';
        if (op === 'create' && spec.clusterIP === undefined) {
          const n = nextClusterIP++;
          spec.clusterIP = `10.96.${Math.floor(n / 250)}.${(n % 250) + 1}`;
        }
        if (spec.clusterIP && spec.clusterIP !== 'None') spec.clusterIPs ??= [spec.clusterIP];
        if (spec.clusterIP === 'None') spec.clusterIPs ??= ['None'];
        for (const p of spec.ports ?? []) { p.protocol ??= 'TCP'; p.targetPort ??= p.port; }
      } else o.spec = { type: 'ClusterIP' };
      if (spec?.type && !['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'].includes(spec.type)) unsupported(c, 'spec.type', spec.type, ['ClusterIP', 'ExternalName', 'LoadBalancer', 'NodePort']);
      (spec?.ports ?? []).forEach((p: any, i: number) => {
        if (typeof p?.port !== 'number' || p.port < 1 || p.port > 65535) bad(c, `spec.ports[${i}].port`, p?.port, 'must be between 1 and 65535, inclusive');
        if ((spec.ports.length > 1) && !p?.name) req(c, `spec.ports[${i}].name`);
      });
      if (op === 'update' && old && old.spec?.clusterIP && spec?.clusterIP !== old.spec.clusterIP) {
        if (spec && spec.clusterIP === undefined) { spec.clusterIP = old.spec.clusterIP; spec.clusterIPs = old.spec.clusterIPs; } else immutable(c, 'spec.clusterIP', spec?.clusterIP);
      }
      break;
    case 'ConfigMap':
      for (const k of [...Object.keys((o.data as object) ?? {}), ...Object.keys((o.binaryData as object) ?? {})]) if (!CONFIG_KEY.test(k) || k.length > 253) bad(c, `data[${k}]`, k, "a valid config key must consist of alphanumeric characters, '-', '_' or '.'");
      if (o.immutable && old?.immutable && (!deepEqual(o.data, old.data) || !deepEqual(o.binaryData, old.binaryData))) forbidden(c, 'data', 'field is immutable when `immutable` is set');
      break;
    case 'Secret': {
      if (!o.type) o.type = 'Opaque';
      if (isPlainObject(o.stringData)) {
        const data = (o.data ?? {}) as Record<string, string>;
        for (const [k, v] of Object.entries(o.stringData)) data[k] = Buffer.from(String(v), 'utf8').toString('base64');
        o.data = data;
        delete o.stringData;
      }
      for (const [k, v] of Object.entries((o.data as Record<string, unknown>) ?? {})) {
        if (!CONFIG_KEY.test(k)) bad(c, `data[${k}]`, k, "a valid config key must consist of alphanumeric characters, '-', '_' or '.'");
        if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw errors.badRequest(`Secret in version "v1" cannot be handled as a Secret: illegal base64 data at data[${k}]`);
      }
      if (op === 'update' && old && old.type !== o.type) immutable(c, 'type', o.type);
      break;
    }
    case 'PersistentVolumeClaim':
      if (op === 'create') o.status = { phase: 'Pending' };
      if (isPlainObject(spec)) spec.volumeMode ??= 'Filesystem';
      if (!Array.isArray(spec?.accessModes) || spec.accessModes.length === 0) c.push({ field: 'spec.accessModes', message: 'Required value: at least 1 access mode is required', reason: 'FieldValueRequired' });
      if (!spec?.resources?.requests?.storage) c.push({ field: 'spec.resources[storage]', message: 'Required value', reason: 'FieldValueRequired' });
      for (const [rk, rv] of Object.entries(spec?.resources?.requests ?? {})) checkQuantity(`spec.resources.requests[${rk}]`, rv);
      if (op === 'update' && old && subresource !== 'status') {
        const strip = (s: any) => { const x = clone(s ?? {}); delete x.resources; if (!old.spec?.volumeName) delete x.volumeName; if (!old.spec?.storageClassName) delete x.storageClassName; return x; };
        if (!deepEqual(strip(old.spec), strip(spec))) forbidden(c, 'spec', 'spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims');
      }
      break;
    case 'PodDisruptionBudget':
      if (spec?.minAvailable !== undefined && spec?.maxUnavailable !== undefined) bad(c, 'spec', spec, 'minAvailable and maxUnavailable cannot be both set');
      if (!isPlainObject(spec?.selector)) { /* kube allows a nil selector (matches nothing) */ }
      break;
    case 'Lease':
      if (spec?.leaseDurationSeconds !== undefined && spec.leaseDurationSeconds <= 0) bad(c, 'spec.leaseDurationSeconds', spec.leaseDurationSeconds, 'must be greater than 0');
      break;
    case 'CustomResourceDefinition':
      validateCrd(c, o, old, store);
      break;
    case 'Role':
    case 'ClusterRole':
      ((o.rules as any[]) ?? []).forEach((r: any, i: number) => { if (!Array.isArray(r?.verbs) || r.verbs.length === 0) req(c, `rules[${i}].verbs`); });
      break;
    case 'RoleBinding':
    case 'ClusterRoleBinding': {
      const ref = o.roleRef as any;
      if (!ref?.kind) req(c, 'roleRef.kind');
      if (!ref?.name) req(c, 'roleRef.name');
      if (op === 'update' && old && !deepEqual(old.roleRef, o.roleRef)) immutable(c, 'roleRef', o.roleRef);
      break;
    }
    default:
      break;
  }
  if (c.length) throw errors.invalid(rt, o.metadata.name ?? '', c);
}
/* eslint-enable @typescript-eslint/no-explicit-any */

export function admit(ctx: { rt: ResourceType; op: 'create' | 'update'; obj: KObject; old?: KObject; store: Store; subresource?: string }): KObject {
  const o = ctx.obj;
  if (ctx.rt.builtin) admitBuiltin(ctx.rt, ctx.op, o, ctx.old, ctx.store, ctx.subresource);
  else {
    const c: Causes = [];
    validateMeta(c, ctx.rt, o);
    if (c.length) throw errors.invalid(ctx.rt, o.metadata.name ?? '', c);
    validateCustomResource(ctx.rt, o, ctx.old);
  }
  return o;
}
