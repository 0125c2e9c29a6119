import type { ResourceType, PrinterColumn } from './resources.ts';
import type { KObject } from './types.ts';
import { isPlainObject } from './types.ts';

/** Human age like kube's `translateTimestampSince`: 45s, 3m12s, 5h, 2d3h... */
export function humanAge(ts: string | undefined, now = Date.now()): string {
  if (!ts) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(ts)) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60 ? `${s % 60}s` : ''}`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

/** Minimal kubectl-style JSONPath: `.a.b`, `.a[0].b`, `.a[?(@.type=="Ready")].status`, `{.a}` wrappers. */
export function evalJsonPath(obj: unknown, path: string): unknown {
  let p = path.trim();
  if (p.startsWith('{') && p.endsWith('}')) p = p.slice(1, -1);
  const re = /\.([A-Za-z0-9_\-$]+)|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_.]+)\s*==\s*["']([^"']*)["']\)\]|\['([^']+)'\]/gy;
  let cur: unknown = obj;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(p)) !== null) {
    consumed = re.lastIndex;
    if (m[1] !== undefined || m[5] !== undefined) cur = isPlainObject(cur) ? cur[m[1] ?? m[5]] : undefined;
    else if (m[2] !== undefined) cur = Array.isArray(cur) ? cur[Number(m[2])] : undefined;
    else if (m[3] !== undefined) {
      const key = m[3];
      const want = m[4];
      cur = Array.isArray(cur) ? cur.find((x) => isPlainObject(x) && String(x[key]) === want) : undefined;
    }
    if (cur === undefined) return undefined;
  }
  if (consumed !== p.length) return undefined;
  return cur;
}

function podCells(o: KObject, what: string): unknown {
  const st = o.status ?? {};
  const cs: { ready?: boolean; restartCount?: number; state?: Record<string, { reason?: string }> }[] = st.containerStatuses ?? [];
  switch (what) {
    case '$podReady': return `${cs.filter((c) => c.ready).length}/${(o.spec?.containers ?? []).length}`;
    case '$podRestarts': return cs.reduce((a, c) => a + (c.restartCount ?? 0), 0);
    case '$podStatus': {
      if (o.metadata.deletionTimestamp) return st.phase === 'Unknown' ? 'Unknown' : 'Terminating';
      const waiting = cs.find((c) => c.state?.waiting?.reason);
      if (waiting) return waiting.state!.waiting!.reason;
      const term = cs.find((c) => c.state?.terminated?.reason);
      if (term && st.phase !== 'Running') return term.state!.terminated!.reason;
      return st.reason ?? st.phase ?? 'Pending';
    }
  }
  return undefined;
}

function cell(o: KObject, col: PrinterColumn): unknown {
  const p = col.jsonPath;
  if (p.startsWith('$pod')) return podCells(o, p);
  if (p === '$dataCount') return Object.keys((o.data as object) ?? {}).length + Object.keys((o.binaryData as object) ?? {}).length;
  if (p === '$readyOfReplicas') return `${o.status?.readyReplicas ?? 0}/${o.spec?.replicas ?? 0}`;
  if (p === '$jobStatus') {
    const conds: { type: string; status: string }[] = o.status?.conditions ?? [];
    if (conds.some((c) => c.type === 'Complete' && c.status === 'True')) return 'Complete';
    if (conds.some((c) => c.type === 'Failed' && c.status === 'True')) return 'Failed';
    return 'Running';
  }
  if (p === '$jobCompletions') return `${o.status?.succeeded ?? 0}/${o.spec?.completions ?? 1}`;
  const v = evalJsonPath(o, p);
  if (v === undefined || v === null) return null;
  if (col.type === 'date' && typeof v === 'string') return humanAge(v);
  if (typeof v === 'object') return JSON.stringify(v);
  return v;
}

export type IncludeObject = 'None' | 'Metadata' | 'Object';

/** A meta.k8s.io/v1 Table, as kube returns for `Accept: application/json;as=Table;g=meta.k8s.io;v=v1`. */
export function toTable(rt: ResourceType, objs: KObject[], resourceVersion: string, include: IncludeObject, withDefs = true): Record<string, unknown> {
  const cols = rt.printerColumns;
  const hasAge = cols.some((c) => c.name.toLowerCase() === 'age');
  const defs = [
    { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', priority: 0 },
    ...cols.map((c) => ({ name: c.name, type: c.type === 'date' ? 'string' : c.type, format: c.format ?? '', description: c.description ?? '', priority: c.priority ?? 0 })),
    ...(hasAge ? [] : [{ name: 'Age', type: 'string', format: '', description: 'CreationTimestamp is a timestamp representing the server time when this object was created.', priority: 0 }]),
  ];
  const rows = objs.map((o) => {
    const cells = [o.metadata.name, ...cols.map((c) => cell(o, c)), ...(hasAge ? [] : [humanAge(o.metadata.creationTimestamp)])];
    const row: Record<string, unknown> = { cells };
    if (include === 'Object') row.object = o;
    else if (include === 'Metadata') row.object = { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata };
    return row;
  });
  return { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion }, ...(withDefs ? { columnDefinitions: defs } : { columnDefinitions: null }), rows };
}
