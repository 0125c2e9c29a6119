import { errors, type StatusCause } from './status.ts';
import type { ResourceType, PrinterColumn } from './resources.ts';
import type { Store } from './store.ts';
import { type KObject, type JsonObject, clone, deepEqual, isPlainObject } from './types.ts';
import { CelError, evalCel, parseCel, usesOldSelf, type Node } from './cel.ts';

/* eslint-disable @typescript-eslint/no-explicit-any -- JSON schemas are walked structurally */
type Schema = Record<string, any>;

/** kube's CRD finalizer: custom resources are deleted (honouring their own finalizers) before the CRD goes. */
export const CR_CLEANUP = 'customresourcecleanup.apiextensions.k8s.io';

const celCache = new Map<string, Node>();
function compiled(rule: string): Node {
  let n = celCache.get(rule);
  if (!n) { n = parseCel(rule); celCache.set(rule, n); }
  return n;
}

/** CRD validation: names, scope, versions (one storage version), schema present, every CEL rule compiles. */
export function validateCrd(c: StatusCause[], o: KObject, old: KObject | undefined, store: Store): void {
  const s = o.spec;
  if (!isPlainObject(s)) { c.push({ field: 'spec', message: 'Required value', reason: 'FieldValueRequired' }); return; }
  if (!s.group) c.push({ field: 'spec.group', message: 'Required value', reason: 'FieldValueRequired' });
  const names = s.names ?? {};
  if (!names.plural) c.push({ field: 'spec.names.plural', message: 'Required value', reason: 'FieldValueRequired' });
  if (!names.kind) c.push({ field: 'spec.names.kind', message: 'Required value', reason: 'FieldValueRequired' });
  if (names.plural && s.group && o.metadata.name !== `${names.plural}.${s.group}`) {
    c.push({ field: 'metadata.name', message: `Invalid value: ${JSON.stringify(o.metadata.name)}: must be spec.names.plural+"."+spec.group`, reason: 'FieldValueInvalid' });
  }
  if (!['Namespaced', 'Cluster'].includes(s.scope)) c.push({ field: 'spec.scope', message: `Unsupported value: ${JSON.stringify(s.scope)}: supported values: "Cluster", "Namespaced"`, reason: 'FieldValueNotSupported' });
  const versions: any[] = Array.isArray(s.versions) ? s.versions : [];
  if (versions.length === 0) c.push({ field: 'spec.versions', message: 'Invalid value: must have exactly one version marked as storage version', reason: 'FieldValueInvalid' });
  if (versions.filter((v) => v?.storage).length !== 1) c.push({ field: 'spec.versions', message: 'Invalid value: must have exactly one version marked as storage version', reason: 'FieldValueInvalid' });
  versions.forEach((v, i) => {
    const f = `spec.versions[${i}]`;
    if (!v?.name) c.push({ field: `${f}.name`, message: 'Required value', reason: 'FieldValueRequired' });
    const schema = v?.schema?.openAPIV3Schema;
    if (!isPlainObject(schema)) { c.push({ field: `${f}.schema.openAPIV3Schema`, message: 'Required value: schemas are required', reason: 'FieldValueRequired' }); return; }
    checkRules(c, schema, `${f}.schema.openAPIV3Schema`);
  });
  if (old && old.spec?.scope !== s.scope) c.push({ field: 'spec.scope', message: `Invalid value: ${JSON.stringify(s.scope)}: field is immutable`, reason: 'FieldValueInvalid' });
  if (!old && !(o.metadata.finalizers ?? []).includes(CR_CLEANUP)) o.metadata.finalizers = [...(o.metadata.finalizers ?? []), CR_CLEANUP];
  if (!old) {
    // kube marks a CRD Established as soon as its names are accepted; helm and `kubectl wait` look for it.
    const conflict = store.allTypes().find((t) => t.group === s.group && t.plural === names.plural);
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    o.status = {
      conditions: [
        { type: 'NamesAccepted', status: conflict ? 'False' : 'True', reason: conflict ? 'NameConflict' : 'NoConflicts', message: conflict ? 'name conflict' : 'no conflicts found', lastTransitionTime: now },
        { type: 'Established', status: 'True', reason: 'InitialNamesAccepted', message: 'the initial names have been accepted', lastTransitionTime: now },
      ],
      acceptedNames: clone(names),
      storedVersions: versions.filter((v) => v?.storage).map((v) => v.name),
    };
  }
}

function checkRules(c: StatusCause[], schema: Schema, path: string): void {
  const rules: any[] = Array.isArray(schema['x-kubernetes-validations']) ? schema['x-kubernetes-validations'] : [];
  rules.forEach((r, j) => {
    const f = `${path}.x-kubernetes-validations[${j}]`;
    if (typeof r?.rule !== 'string') { c.push({ field: `${f}.rule`, message: 'Required value', reason: 'FieldValueRequired' }); return; }
    try { compiled(r.rule); } catch (e) {
      c.push({ field: `${f}.rule`, message: `Invalid value: ${JSON.stringify(r.rule)}: compilation failed (the test stand-in supports a CEL subset, see test/kube/README.md): ${(e as Error).message}`, reason: 'FieldValueInvalid' });
    }
    if (r.messageExpression !== undefined) {
      try { compiled(r.messageExpression); } catch (e) { c.push({ field: `${f}.messageExpression`, message: `Invalid value: compilation failed: ${(e as Error).message}`, reason: 'FieldValueInvalid' }); }
    }
  });
  for (const [k, sub] of Object.entries(schema.properties ?? {})) if (isPlainObject(sub)) checkRules(c, sub, `${path}.properties[${k}]`);
  if (isPlainObject(schema.items)) checkRules(c, schema.items, `${path}.items`);
  if (isPlainObject(schema.additionalProperties)) checkRules(c, schema.additionalProperties, `${path}.additionalProperties`);
}

/** The ResourceType a CRD serves. */
export function crdToResourceType(crd: KObject): ResourceType {
  const s = crd.spec;
  const served = (s.versions as any[]).filter((v) => v.served !== false);
  const storage = (s.versions as any[]).find((v) => v.storage);
  const ordered = [storage, ...served.filter((v) => v !== storage)].filter(Boolean);
  const sub = storage?.subresources ?? {};
  const cols: PrinterColumn[] = (storage?.additionalPrinterColumns ?? []).map((c: any) => ({ name: c.name, type: c.type, jsonPath: c.jsonPath, ...(c.description ? { description: c.description } : {}), ...(c.priority ? { priority: c.priority } : {}), ...(c.format ? { format: c.format } : {}) }));
  return {
    group: s.group,
    versions: ordered.map((v) => v.name),
    kind: s.names.kind,
    plural: s.names.plural,
    singular: s.names.singular ?? s.names.kind.toLowerCase(),
    listKind: s.names.listKind ?? `${s.names.kind}List`,
    namespaced: s.scope === 'Namespaced',
    shortNames: s.names.shortNames ?? [],
    categories: s.names.categories ?? [],
    statusSubresource: isPlainObject(sub.status),
    ...(isPlainObject(sub.scale) ? { scale: { specReplicasPath: sub.scale.specReplicasPath, statusReplicasPath: sub.scale.statusReplicasPath, ...(sub.scale.labelSelectorPath ? { labelSelectorPath: sub.scale.labelSelectorPath } : {}) } } : {}),
    printerColumns: cols,
    builtin: false,
    hasGeneration: true,
    schemas: Object.fromEntries((s.versions as any[]).map((v) => [v.name, v.schema?.openAPIV3Schema as JsonObject | undefined])),
    verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
  };
}

/** Keeps served custom resources in step with CRDs: served on create, updated on change, removed (with data) on delete. */
export function watchCrds(store: Store): void {
  store.events.on('event', (ev: { type: string; object: KObject; old?: KObject; tk: string }) => {
    if (ev.tk !== 'apiextensions.k8s.io/customresourcedefinitions') return;
    const crd = ev.object;
    if (ev.type === 'DELETED') {
      store.unregisterType(crd.spec.group, crd.spec.names.plural);
      return;
    }
    // Terminating: the GC controller deletes the CRs, then drops the finalizer; the kind stays served until then.
    if (crd.metadata.deletionTimestamp) return;
    store.registerType(crdToResourceType(crd));
  });
}

const TYPE_NAMES: Record<string, string> = { object: 'object', array: 'array', string: 'string', integer: 'integer', number: 'number', boolean: 'boolean' };

function typeOfValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function fieldPath(base: string, key: string): string { return base ? `${base}.${key}` : key; }

/** Fields the schema does not know (for `fieldValidation=Strict|Warn`); root apiVersion/kind/metadata are always known. */
export function unknownFields(schema: Schema | undefined, v: unknown, path = '', root = true): string[] {
  if (!schema || !isPlainObject(v)) {
    if (schema && Array.isArray(v) && isPlainObject(schema.items)) return v.flatMap((x, i) => unknownFields(schema.items, x, `${path}[${i}]`, false));
    return [];
  }
  if (schema['x-kubernetes-preserve-unknown-fields'] && !schema.properties) return [];
  const out: string[] = [];
  const props = schema.properties ?? {};
  for (const [k, val] of Object.entries(v)) {
    if (root && ['apiVersion', 'kind', 'metadata'].includes(k)) continue;
    if (props[k]) out.push(...unknownFields(props[k], val, fieldPath(path, k), false));
    else if (isPlainObject(schema.additionalProperties)) out.push(...unknownFields(schema.additionalProperties, val, fieldPath(path, k), false));
    else if (!schema['x-kubernetes-preserve-unknown-fields'] && schema.additionalProperties !== true) out.push(fieldPath(path, k));
  }
  return out;
}

/** Drops unknown fields and applies defaults, as kube does for structural schemas. Mutates `v`. */
function pruneAndDefault(schema: Schema, v: unknown, root: boolean): void {
  if (Array.isArray(v) && isPlainObject(schema.items)) { for (const x of v) pruneAndDefault(schema.items, x, false); return; }
  if (!isPlainObject(v)) return;
  const props = schema.properties ?? {};
  for (const k of Object.keys(v)) {
    if (root && ['apiVersion', 'kind', 'metadata'].includes(k)) continue;
    if (props[k]) pruneAndDefault(props[k], v[k], false);
    else if (isPlainObject(schema.additionalProperties)) pruneAndDefault(schema.additionalProperties, v[k], false);
    else if (!schema['x-kubernetes-preserve-unknown-fields'] && schema.additionalProperties !== true) delete v[k];
  }
  for (const [k, sub] of Object.entries(props) as [string, Schema][]) {
    if (v[k] === undefined && sub.default !== undefined) v[k] = clone(sub.default);
    if (v[k] !== undefined) pruneAndDefault(sub, v[k], false);
  }
}

function validateValue(c: StatusCause[], s: Schema, v: unknown, path: string, old: unknown, hasOld: boolean): void {
  if (v === null) {
    if (!s.nullable) c.push({ field: path, message: `Invalid value: "null": ${path} in body must be of type ${s.type ?? 'object'}: "null"`, reason: 'FieldValueTypeInvalid' });
    return;
  }
  const actual = typeOfValue(v);
  if (s['x-kubernetes-int-or-string']) {
    if (actual !== 'integer' && actual !== 'string') c.push({ field: path, message: `Invalid value: ${JSON.stringify(actual)}: ${path} in body must be of type integer or string: ${JSON.stringify(actual)}`, reason: 'FieldValueTypeInvalid' });
  } else if (s.type && TYPE_NAMES[s.type]) {
    const ok = s.type === actual || (s.type === 'number' && actual === 'integer');
    if (!ok) { c.push({ field: path, message: `Invalid value: ${JSON.stringify(actual)}: ${path} in body must be of type ${s.type}: ${JSON.stringify(actual)}`, reason: 'FieldValueTypeInvalid' }); return; }
  }
  if (Array.isArray(s.enum) && !s.enum.some((e: unknown) => deepEqual(e, v))) {
    c.push({ field: path, message: `Unsupported value: ${JSON.stringify(v)}: supported values: ${s.enum.map((e: unknown) => JSON.stringify(e)).join(', ')}`, reason: 'FieldValueNotSupported' });
  }
  if (typeof v === 'number') {
    if (typeof s.minimum === 'number' && (s.exclusiveMinimum ? v <= s.minimum : v < s.minimum)) c.push({ field: path, message: `Invalid value: ${v}: ${path} in body should be greater than ${s.exclusiveMinimum ? '' : 'or equal to '}${s.minimum}`, reason: 'FieldValueInvalid' });
    if (typeof s.maximum === 'number' && (s.exclusiveMaximum ? v >= s.maximum : v > s.maximum)) c.push({ field: path, message: `Invalid value: ${v}: ${path} in body should be less than ${s.exclusiveMaximum ? '' : 'or equal to '}${s.maximum}`, reason: 'FieldValueInvalid' });
    if (typeof s.multipleOf === 'number' && v % s.multipleOf !== 0) c.push({ field: path, message: `Invalid value: ${v}: ${path} in body should be a multiple of ${s.multipleOf}`, reason: 'FieldValueInvalid' });
  }
  if (typeof v === 'string') {
    if (typeof s.minLength === 'number' && [...v].length < s.minLength) c.push({ field: path, message: `Invalid value: ${JSON.stringify(v)}: ${path} in body should be at least ${s.minLength} chars long`, reason: 'FieldValueInvalid' });
    if (typeof s.maxLength === 'number' && [...v].length > s.maxLength) c.push({ field: path, message: `Too long: may not be more than ${s.maxLength} bytes`, reason: 'FieldValueTooLong' });
    if (typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(v)) c.push({ field: path, message: `Invalid value: ${JSON.stringify(v)}: ${path} in body should match '${s.pattern}'`, reason: 'FieldValueInvalid' });
    if (s.format === 'date-time' && Number.isNaN(Date.parse(v))) c.push({ field: path, message: `Invalid value: ${JSON.stringify(v)}: ${path} in body must be of type date-time: ${JSON.stringify(v)}`, reason: 'FieldValueInvalid' });
  }
  if (Array.isArray(v)) {
    if (typeof s.minItems === 'number' && v.length < s.minItems) c.push({ field: path, message: `Invalid value: ${v.length}: ${path} in body should have at least ${s.minItems} items`, reason: 'FieldValueInvalid' });
    if (typeof s.maxItems === 'number' && v.length > s.maxItems) c.push({ field: path, message: `Too many: ${v.length}: must have at most ${s.maxItems} items`, reason: 'FieldValueTooMany' });
    if (isPlainObject(s.items)) v.forEach((x, i) => validateValue(c, s.items, x, `${path}[${i}]`, undefined, false));
  }
  if (isPlainObject(v)) {
    for (const r of s.required ?? []) if (v[r] === undefined) c.push({ field: fieldPath(path, r), message: 'Required value', reason: 'FieldValueRequired' });
    if (typeof s.minProperties === 'number' && Object.keys(v).length < s.minProperties) c.push({ field: path, message: `Invalid value: ${path} in body should have at least ${s.minProperties} properties`, reason: 'FieldValueInvalid' });
    if (typeof s.maxProperties === 'number' && Object.keys(v).length > s.maxProperties) c.push({ field: path, message: `Too many: ${Object.keys(v).length}: must have at most ${s.maxProperties} items`, reason: 'FieldValueTooMany' });
    const oldObj = hasOld && isPlainObject(old) ? old : undefined;
    for (const [k, sub] of Object.entries(s.properties ?? {}) as [string, Schema][]) {
      if (v[k] !== undefined) validateValue(c, sub, v[k], fieldPath(path, k), oldObj?.[k], !!oldObj && oldObj[k] !== undefined);
    }
    if (isPlainObject(s.additionalProperties)) {
      for (const [k, val] of Object.entries(v)) if (!(s.properties ?? {})[k]) validateValue(c, s.additionalProperties, val, `${path}[${k}]`, oldObj?.[k], !!oldObj && oldObj[k] !== undefined);
    }
  }
  for (const r of (s['x-kubernetes-validations'] ?? []) as any[]) {
    const node = compiled(r.rule);
    const transition = usesOldSelf(node);
    if (transition && !hasOld) continue; // transition rules only run on update, against an existing old value
    const where = r.fieldPath ? `${path}${r.fieldPath}` : path;
    let ok: unknown;
    try { ok = evalCel(node, transition ? { self: v, oldSelf: old } : { self: v }); } catch (e) {
      if (!(e instanceof CelError)) throw e;
      c.push({ field: where, message: `Invalid value: ${JSON.stringify(typeOfValue(v))}: rule evaluation failed: ${e.message} (rule: ${r.rule})`, reason: 'FieldValueInvalid' });
      continue;
    }
    if (ok !== true) {
      let msg = r.message ?? `failed rule: ${r.rule}`;
      if (r.messageExpression) { try { msg = String(evalCel(compiled(r.messageExpression), { self: v })); } catch { /* fall back to message */ } }
      const reason = r.reason ?? 'FieldValueInvalid';
      c.push({ field: where, message: reason === 'FieldValueForbidden' ? `Forbidden: ${msg}` : reason === 'FieldValueRequired' ? `Required value: ${msg}` : `Invalid value: ${JSON.stringify(typeOfValue(v))}: ${msg}`, reason });
    }
  }
}

/** Prunes, defaults and validates a custom resource against the schema of its version. Mutates `o`. */
export function validateCustomResource(rt: ResourceType, o: KObject, old: KObject | undefined): void {
  const version = o.apiVersion.split('/')[1] ?? rt.versions[0];
  const schema = rt.schemas?.[version] ?? rt.schemas?.[rt.versions[0]];
  if (!schema) return;
  pruneAndDefault(schema, o, true);
  const c: StatusCause[] = [];
  const rootSchema = { ...schema, properties: { ...((schema.properties ?? {}) as Record<string, unknown>) } };
  delete rootSchema.properties.metadata; delete rootSchema.properties.apiVersion; delete rootSchema.properties.kind;
  validateValue(c, rootSchema, o, '', old, !!old);
  for (const x of c) x.field = x.field?.replace(/^\./, '');
  if (c.length) throw errors.invalid(rt, o.metadata.name ?? '', c);
}
/* eslint-enable @typescript-eslint/no-explicit-any */
