import { errors } from './status.ts';
import type { KObject } from './types.ts';
import { getPath } from './types.ts';

/** Label selector requirement as parsed from `labelSelector=` strings or from metav1.LabelSelector objects. */
export interface Requirement { key: string; op: 'in' | 'notin' | 'exists' | '!' | '=' | '!=' | 'gt' | 'lt'; values: string[] }

/** Parses the Kubernetes label selector string grammar: `a=b,c!=d,e in (x,y),f notin (z),g,!h,n>1`. */
export function parseLabelSelector(s: string | undefined | null): Requirement[] {
  if (!s || !s.trim()) return [];
  const out: Requirement[] = [];
  // Split on commas not inside parentheses.
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) { parts.push(cur); cur = ''; } else cur += ch;
  }
  parts.push(cur);
  for (const raw of parts) {
    const p = raw.trim();
    if (!p) throw errors.badRequest(`unable to parse requirement: empty term in label selector "${s}"`);
    let m: RegExpMatchArray | null;
    if ((m = p.match(/^([^\s!=<>]+)\s+(in|notin)\s*\(([^)]*)\)$/))) {
      out.push({ key: m[1], op: m[2] as 'in' | 'notin', values: m[3].split(',').map((v) => v.trim()).filter((v) => v !== '') });
    } else if ((m = p.match(/^([^\s!=<>]+)\s*(==|=|!=)\s*([^\s,]*)$/))) {
      out.push({ key: m[1], op: m[2] === '!=' ? '!=' : '=', values: [m[3]] });
    } else if ((m = p.match(/^([^\s!=<>]+)\s*(>|<)\s*(-?\d+)$/))) {
      out.push({ key: m[1], op: m[2] === '>' ? 'gt' : 'lt', values: [m[3]] });
    } else if ((m = p.match(/^!\s*([^\s!=<>]+)$/))) {
      out.push({ key: m[1], op: '!', values: [] });
    } else if ((m = p.match(/^([^\s!=<>()]+)$/))) {
      out.push({ key: m[1], op: 'exists', values: [] });
    } else {
      throw errors.badRequest(`unable to parse requirement: "${p}" in label selector "${s}"`);
    }
  }
  return out;
}

export interface LabelSelectorObject { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] }

export function selectorFromObject(sel: LabelSelectorObject | undefined): Requirement[] {
  if (!sel) return [];
  const out: Requirement[] = [];
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) out.push({ key: k, op: '=', values: [v] });
  for (const e of sel.matchExpressions ?? []) {
    const op = e.operator === 'In' ? 'in' : e.operator === 'NotIn' ? 'notin' : e.operator === 'Exists' ? 'exists' : e.operator === 'DoesNotExist' ? '!' : undefined;
    if (!op) throw errors.badRequest(`invalid label selector operator "${e.operator}"`);
    out.push({ key: e.key, op, values: e.values ?? [] });
  }
  return out;
}

export function selectorToString(reqs: Requirement[]): string {
  return reqs.map((r) => {
    switch (r.op) {
      case '=': return `${r.key}=${r.values[0]}`;
      case '!=': return `${r.key}!=${r.values[0]}`;
      case 'in': return `${r.key} in (${r.values.join(',')})`;
      case 'notin': return `${r.key} notin (${r.values.join(',')})`;
      case 'exists': return r.key;
      case '!': return `!${r.key}`;
      case 'gt': return `${r.key}>${r.values[0]}`;
      case 'lt': return `${r.key}<${r.values[0]}`;
    }
    return '';
  }).join(',');
}

export function matchLabels(reqs: Requirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case '=': return has && v === r.values[0];
      case '!=': return !has || v !== r.values[0];
      case 'in': return has && r.values.includes(v);
      case 'notin': return !has || !r.values.includes(v);
      case 'exists': return has;
      case '!': return !has;
      case 'gt': return has && Number(v) > Number(r.values[0]);
      case 'lt': return has && Number(v) < Number(r.values[0]);
    }
    return false;
  });
}

export interface FieldRequirement { field: string; op: '=' | '!='; value: string }

const COMMON_FIELDS = ['metadata.name', 'metadata.namespace'];
const KIND_FIELDS: Record<string, string[]> = {
  Pod: ['status.phase', 'spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'status.podIP', 'status.nominatedNodeName'],
  Secret: ['type'],
  Event: ['involvedObject.kind', 'involvedObject.namespace', 'involvedObject.name', 'involvedObject.uid', 'involvedObject.apiVersion', 'involvedObject.resourceVersion', 'involvedObject.fieldPath', 'reason', 'reportingComponent', 'source', 'type', 'regarding.kind', 'regarding.name', 'regarding.namespace'],
  Namespace: ['status.phase'],
  Node: ['spec.unschedulable'],
  Job: ['status.successful'],
  ReplicaSet: ['status.replicas'],
};

/** Parses `fieldSelector=` and rejects labels the real server does not index for the kind (400, as kube does). */
export function parseFieldSelector(s: string | undefined | null, kind: string): FieldRequirement[] {
  if (!s || !s.trim()) return [];
  const allowed = [...COMMON_FIELDS, ...(KIND_FIELDS[kind] ?? [])];
  return s.split(',').map((raw) => {
    const m = raw.trim().match(/^([^!=]+?)\s*(==|=|!=)\s*(.*)$/);
    if (!m) throw errors.badRequest(`invalid field selector: "${raw}"`);
    const field = m[1].trim();
    if (!allowed.includes(field)) throw errors.badRequest(`field label not supported: ${field}`);
    return { field, op: m[2] === '!=' ? '!=' : '=', value: m[3].trim() } as FieldRequirement;
  });
}

export function matchFields(reqs: FieldRequirement[], obj: KObject): boolean {
  return reqs.every((r) => {
    const raw = getPath(obj, r.field);
    const v = raw === undefined || raw === null ? '' : String(raw);
    return r.op === '=' ? v === r.value : v !== r.value;
  });
}
