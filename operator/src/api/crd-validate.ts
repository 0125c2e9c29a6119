/**
 * What the kube-apiserver does with a custom resource before storing it, for the subset of OpenAPI our generated
 * CRDs use: apply `default`s, report unknown fields, check types/enums/patterns/bounds/required, and evaluate the
 * `x-kubernetes-validations` CEL rules (transition rules only on update).
 *
 * No kube-apiserver can run here, so this is how tests prove that the CRD rejects what the zod schema rejects, and
 * how the test/kube stand-in can validate LanceCluster/LanceRestore writes. Not used by the operator at run time:
 * the CEL evaluator is a dev dependency.
 */
import { evaluate } from '@marcbachmann/cel-js';
import type { JSONSchemaProps } from './crd.ts';

export interface CrdIssue {
  /** `spec.replicas`, `spec.topics[1]`, ... (the apiserver's field path form). */
  path: string;
  /** The apiserver's error type. */
  type: 'Invalid value' | 'Required value' | 'Unsupported value' | 'Unknown field' | 'Forbidden';
  message: string;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObj(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function join(path: string, key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? (path ? `${path}.${key}` : key) : `${path}[${JSON.stringify(key)}]`;
}

/** Returns a copy of `value` with the schema's defaults applied, top-down (a defaulted object gets nested defaults). */
export function applyDefaults(schema: JSONSchemaProps, value: unknown): unknown {
  if (Array.isArray(value)) return schema.items ? value.map((v) => applyDefaults(schema.items as JSONSchemaProps, v)) : value;
  if (!isObj(value)) return value;
  const out: Record<string, unknown> = { ...value };
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    if (out[name] === undefined && child.default !== undefined) out[name] = structuredClone(child.default);
    if (out[name] !== undefined) out[name] = applyDefaults(child, out[name]);
  }
  if (schema.additionalProperties) {
    for (const k of Object.keys(out)) out[k] = applyDefaults(schema.additionalProperties, out[k]);
  }
  return out;
}

/** JSON → CEL values: integers of integer-typed fields become int (bigint); CEL has no implicit int/double mixing. */
function toCel(schema: JSONSchemaProps | undefined, value: unknown): unknown {
  if (typeof value === 'number') {
    const intTyped = schema?.type === 'integer' || schema?.['x-kubernetes-int-or-string'] === true || schema?.type === undefined;
    return intTyped && Number.isInteger(value) ? BigInt(value) : value;
  }
  if (Array.isArray(value)) return value.map((v) => toCel(schema?.items, v));
  if (isObj(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toCel(schema?.properties?.[k] ?? schema?.additionalProperties, v);
    return out;
  }
  return value;
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function typeOk(schema: JSONSchemaProps, v: unknown): boolean {
  if (schema['x-kubernetes-int-or-string']) return typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v));
  switch (schema.type) {
    case 'object':
      return isObj(v);
    case 'array':
      return Array.isArray(v);
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'number':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    default:
      return true;
  }
}

function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : typeof v === 'object' ? `"${Array.isArray(v) ? 'array' : 'object'}"` : String(v);
}

function walk(schema: JSONSchemaProps, value: unknown, old: unknown, path: string, issues: CrdIssue[]): void {
  if (value === null && schema.nullable) return;
  if (!typeOk(schema, value)) {
    issues.push({ path, type: 'Invalid value', message: `${show(value)}: must be of type ${schema['x-kubernetes-int-or-string'] ? 'int-or-string' : schema.type}` });
    return;
  }
  const bad = (message: string): void => void issues.push({ path, type: 'Invalid value', message: `${show(value)}: ${message}` });
  if (schema.enum && !schema.enum.some((e) => e === value)) {
    issues.push({ path, type: 'Unsupported value', message: `${show(value)}: supported values: ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}` });
  }
  if (typeof value === 'string') {
    const len = [...value].length;
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) bad(`should match '${schema.pattern}'`);
    if (schema.minLength !== undefined && len < schema.minLength) bad(`should be at least ${schema.minLength} chars long`);
    if (schema.maxLength !== undefined && len > schema.maxLength) bad(`may not be more than ${schema.maxLength} bytes`);
    if (schema.format === 'date-time' && !DATE_TIME.test(value)) bad('must be an RFC 3339 date-time');
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && (schema.exclusiveMinimum ? value <= schema.minimum : value < schema.minimum)) bad(`should be greater than ${schema.exclusiveMinimum ? '' : 'or equal to '}${schema.minimum}`);
    if (schema.maximum !== undefined && (schema.exclusiveMaximum ? value >= schema.maximum : value > schema.maximum)) bad(`should be less than ${schema.exclusiveMaximum ? '' : 'or equal to '}${schema.maximum}`);
  }
  if (Array.isArray(value)) {
    if (schema.maxItems !== undefined && value.length > schema.maxItems) issues.push({ path, type: 'Invalid value', message: `must have at most ${schema.maxItems} items` });
    if (schema.minItems !== undefined && value.length < schema.minItems) issues.push({ path, type: 'Invalid value', message: `must have at least ${schema.minItems} items` });
    if (schema.items) value.forEach((v, i) => walk(schema.items as JSONSchemaProps, v, undefined, `${path}[${i}]`, issues));
  }
  if (isObj(value)) {
    const oldObj = isObj(old) ? old : undefined;
    const count = Object.keys(value).length;
    if (schema.maxProperties !== undefined && count > schema.maxProperties) issues.push({ path, type: 'Invalid value', message: `must have at most ${schema.maxProperties} items` });
    if (schema.minProperties !== undefined && count < schema.minProperties) issues.push({ path, type: 'Invalid value', message: `must have at least ${schema.minProperties} items` });
    for (const name of schema.required ?? []) {
      if (value[name] === undefined) issues.push({ path: join(path, name), type: 'Required value', message: 'Required value' });
    }
    for (const [k, v] of Object.entries(value)) {
      const child = schema.properties?.[k] ?? schema.additionalProperties;
      if (child) walk(child, v, oldObj?.[k], join(path, k), issues);
      else if (!schema['x-kubernetes-preserve-unknown-fields'] && !(path === '' && (k === 'apiVersion' || k === 'kind' || k === 'metadata'))) {
        issues.push({ path: join(path, k), type: 'Unknown field', message: `unknown field "${join(path, k)}"` });
      }
    }
  }
  for (const rule of schema['x-kubernetes-validations'] ?? []) {
    const transition = /\boldSelf\b/.test(rule.rule);
    if (transition && old === undefined) continue;
    const where = rule.fieldPath ? `${path}${rule.fieldPath}` : path;
    let ok: unknown;
    try {
      ok = evaluate(rule.rule, transition ? { self: toCel(schema, value), oldSelf: toCel(schema, old) } : { self: toCel(schema, value) });
    } catch (e) {
      issues.push({ path: where, type: 'Invalid value', message: `rule ${JSON.stringify(rule.rule)} failed to evaluate: ${(e as Error).message.split('\n')[0]}` });
      continue;
    }
    if (ok !== true) {
      issues.push({ path: where, type: rule.reason === 'FieldValueForbidden' ? 'Forbidden' : 'Invalid value', message: rule.message ?? `failed rule: ${rule.rule}` });
    }
  }
}

/**
 * Defaults and validates `obj` (a whole custom resource) against a CRD version's openAPIV3Schema, as a create
 * (`old` undefined) or an update. Returns the defaulted object and the problems, each naming its field.
 */
export function admit(schema: JSONSchemaProps, obj: unknown, old?: unknown): { object: unknown; issues: CrdIssue[] } {
  const object = applyDefaults(schema, obj);
  const oldObject = old === undefined ? undefined : applyDefaults(schema, old);
  const issues: CrdIssue[] = [];
  walk(schema, object, oldObject, '', issues);
  return { object, issues };
}

/** The apiserver's one-line form: `spec.replicas: Invalid value: 4: replicas must be odd`. */
export function formatIssue(i: CrdIssue): string {
  return `${i.path}: ${i.type}: ${i.message}`;
}

export type { Json };
