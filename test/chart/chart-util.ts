/**
 * Helpers for the chart tests: render with real helm, pick objects, compare RBAC rules, and map an API request to
 * the RBAC (group, resource, verb) the API server would authorize it as.
 */
import path from 'node:path';
import YAML from 'yaml';
import { REPO_ROOT } from '../kube/images.ts';
import { HELM, run, type ToolResult } from '../kube/testutil.ts';
import type { RbacRule } from '../../operator/src/kube/rbac.ts';

export const CHART = path.join(REPO_ROOT, 'charts', 'lance-operator');

export interface K8sDoc { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [k: string]: unknown }

export function helmEnv(home: string): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: home, HELM_CACHE_HOME: path.join(home, 'c'), HELM_CONFIG_HOME: path.join(home, 'f'), HELM_DATA_HOME: path.join(home, 'd') };
}

export async function helmTemplate(env: NodeJS.ProcessEnv, args: string[]): Promise<{ result: ToolResult; docs: K8sDoc[] }> {
  const result = await run(HELM, ['template', 'lance', CHART, '--namespace', 'lance-system', ...args], env);
  const docs = result.code === 0 ? YAML.parseAllDocuments(result.stdout).map((d) => d.toJSON() as K8sDoc | null).filter((d): d is K8sDoc => d !== null) : [];
  return { result, docs };
}

/** Rules as a sorted set of "group|resource|verb" triples: order and grouping do not matter, the grants do. */
export function ruleTriples(rules: RbacRule[]): string[] {
  const out = new Set<string>();
  for (const r of rules) for (const g of r.apiGroups) for (const res of r.resources) for (const v of r.verbs) out.add(`${g}|${res}|${v}`);
  return [...out].sort();
}

export interface ApiAccess { group: string; resource: string; verb: string; namespace?: string }

/**
 * How kube-apiserver names a request for RBAC: /api/v1/... is group "", /apis/<g>/<v>/... is <g>; resource is the
 * plural, with "/<subresource>" appended; verb from the method (GET on a name = get, on a collection = list, with
 * watch=true = watch; POST create, PUT update, PATCH patch, DELETE delete/deletecollection).
 * Returns undefined for non-resource URLs (discovery, /version), which RBAC grants to every authenticated user.
 */
export function accessOf(method: string, url: string): ApiAccess | undefined {
  const u = new URL(url, 'http://x');
  const parts = u.pathname.split('/').filter(Boolean);
  let group: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 3) { group = ''; rest = parts.slice(2); }
  else if (parts[0] === 'apis' && parts.length >= 4) { group = parts[1]!; rest = parts.slice(3); }
  else return undefined;
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) { namespace = rest[1]; rest = rest.slice(2); }
  const [plural, name, sub] = rest;
  if (!plural) return undefined;
  const resource = sub ? `${plural}/${sub}` : plural;
  const watch = u.searchParams.get('watch') === 'true' || u.searchParams.get('watch') === '1';
  const m = method.toUpperCase();
  const verb = m === 'GET' ? (watch ? 'watch' : name ? 'get' : 'list')
    : m === 'POST' ? 'create' : m === 'PUT' ? 'update' : m === 'PATCH' ? 'patch'
    : m === 'DELETE' ? (name ? 'delete' : 'deletecollection') : m.toLowerCase();
  return { group, resource, verb, ...(namespace ? { namespace } : {}) };
}

export function allows(rules: RbacRule[], a: ApiAccess): boolean {
  return rules.some((r) => (r.apiGroups.includes(a.group) || r.apiGroups.includes('*'))
    && (r.resources.includes(a.resource) || r.resources.includes('*'))
    && (r.verbs.includes(a.verb) || r.verbs.includes('*')));
}
