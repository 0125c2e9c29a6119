import { errors } from './status.ts';
import { clone, deepEqual, isPlainObject } from './types.ts';

/** RFC 7386 JSON merge patch: objects merge recursively, null deletes, everything else (lists too) replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return clone(patch);
  const out: Record<string, unknown> = isPlainObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

interface JsonPatchOp { op: string; path: string; value?: unknown; from?: string }

function decodePointer(p: string): string[] {
  if (p === '') return [];
  if (!p.startsWith('/')) throw errors.badRequest(`json patch: invalid path "${p}": must start with /`);
  return p.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** RFC 6902 JSON patch (add, remove, replace, move, copy, test); a failing op is a 422 naming the op index and path. */
export function jsonPatch(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw errors.badRequest('json patch: body must be an array of operations');
  let root = clone(doc);
  const fail = (i: number, op: JsonPatchOp, why: string): never => {
    throw errors.invalid({ group: '', kind: 'JSONPatch', plural: 'patch' }, '', [{ field: `[${i}].path`, message: `${op.op} operation does not apply: ${why}: path ${op.path}` }]);
  };
  const parentOf = (i: number, op: JsonPatchOp, path: string): { parent: Record<string, unknown> | unknown[]; key: string } => {
    const segs = decodePointer(path);
    if (segs.length === 0) return fail(i, op, 'cannot address the root');
    let cur: unknown = root;
    for (const s of segs.slice(0, -1)) {
      if (Array.isArray(cur)) cur = cur[Number(s)];
      else if (isPlainObject(cur)) cur = cur[s];
      else fail(i, op, 'missing path');
      if (cur === undefined) fail(i, op, 'missing path');
    }
    if (!Array.isArray(cur) && !isPlainObject(cur)) fail(i, op, 'parent is not a container');
    return { parent: cur as Record<string, unknown> | unknown[], key: segs[segs.length - 1] };
  };
  const getAt = (i: number, op: JsonPatchOp, path: string): unknown => {
    let cur: unknown = root;
    for (const s of decodePointer(path)) {
      if (Array.isArray(cur)) cur = cur[Number(s)];
      else if (isPlainObject(cur)) cur = cur[s];
      else cur = undefined;
      if (cur === undefined) fail(i, op, 'missing path');
    }
    return cur;
  };
  const add = (i: number, op: JsonPatchOp, path: string, value: unknown): void => {
    if (path === '') { root = clone(value); return; }
    const { parent, key } = parentOf(i, op, path);
    if (Array.isArray(parent)) {
      const idx = key === '-' ? parent.length : Number(key);
      if (!Number.isInteger(idx) || idx < 0 || idx > parent.length) fail(i, op, 'index out of range');
      parent.splice(idx, 0, clone(value));
    } else parent[key] = clone(value);
  };
  const remove = (i: number, op: JsonPatchOp, path: string): unknown => {
    const { parent, key } = parentOf(i, op, path);
    if (Array.isArray(parent)) {
      const idx = Number(key);
      if (!Number.isInteger(idx) || idx < 0 || idx >= parent.length) fail(i, op, 'index out of range');
      return parent.splice(idx, 1)[0];
    }
    if (!(key in parent)) fail(i, op, 'missing path');
    const v = parent[key];
    delete parent[key];
    return v;
  };
  ops.forEach((raw, i) => {
    if (!isPlainObject(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string') throw errors.badRequest(`json patch: operation ${i} needs string "op" and "path"`);
    const op = raw as unknown as JsonPatchOp;
    switch (op.op) {
      case 'add': add(i, op, op.path, op.value); break;
      case 'remove': remove(i, op, op.path); break;
      case 'replace': getAt(i, op, op.path); if (op.path === '') root = clone(op.value); else { remove(i, op, op.path); add(i, op, op.path, op.value); } break;
      case 'move': { const v = remove(i, op, op.from ?? ''); add(i, op, op.path, v); break; }
      case 'copy': add(i, op, op.path, getAt(i, op, op.from ?? '')); break;
      case 'test': if (!deepEqual(getAt(i, op, op.path), op.value)) fail(i, op, 'test failed'); break;
      default: throw errors.badRequest(`json patch: unsupported op "${op.op}" at index ${i}`);
    }
  });
  return root;
}

/**
 * Merge keys of built-in list fields (by field name, which is unambiguous for the kinds served). Lists not named here
 * are atomic (replaced), as in kube for lists without a patchMergeKey. `finalizers` is a merged primitive set.
 */
const MERGE_KEYS: Record<string, string | ((item: Record<string, unknown>) => string)> = {
  containers: 'name', initContainers: 'name', ephemeralContainers: 'name', env: 'name', volumes: 'name',
  imagePullSecrets: 'name', volumeMounts: 'mountPath', volumeDevices: 'devicePath', conditions: 'type',
  ownerReferences: 'uid', hostAliases: 'ip', topologySpreadConstraints: 'topologyKey',
  ports: (item) => ('containerPort' in item ? 'containerPort' : 'port'),
};
const PRIMITIVE_MERGE = new Set(['finalizers']);

function mergeKeyFor(field: string, sample: unknown): string | undefined {
  const k = MERGE_KEYS[field];
  if (!k) return undefined;
  if (typeof k === 'string') return k;
  return isPlainObject(sample) ? k(sample) : undefined;
}

/**
 * Strategic merge patch for built-in kinds, as far as kubectl uses it: maps merge, null deletes, keyed lists merge by
 * their merge key, `$patch: replace|delete` on maps and keyed-list items, `$deleteFromPrimitiveList/<f>`, and
 * `$setElementOrder/<f>` / `$retainKeys` accepted (order directives are applied; retainKeys prunes).
 */
export function strategicMergePatch(target: unknown, patch: unknown, field = ''): unknown {
  if (!isPlainObject(patch)) return clone(patch);
  if (patch.$patch === 'replace') { const p = clone(patch); delete p.$patch; return p; }
  if (patch.$patch === 'delete') return undefined;
  const out: Record<string, unknown> = isPlainObject(target) ? clone(target) : {};
  const retain = Array.isArray(patch.$retainKeys) ? (patch.$retainKeys as string[]) : undefined;
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys') continue;
    if (k.startsWith('$setElementOrder/')) continue; // handled below, after the list itself merged
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const f = k.slice('$deleteFromPrimitiveList/'.length);
      if (Array.isArray(out[f]) && Array.isArray(v)) out[f] = (out[f] as unknown[]).filter((x) => !v.some((d) => deepEqual(d, x)));
      continue;
    }
    if (v === null) { delete out[k]; continue; }
    if (Array.isArray(v)) {
      out[k] = mergeList(k, out[k], v);
      continue;
    }
    if (isPlainObject(v)) {
      const merged = strategicMergePatch(out[k], v, k);
      if (merged === undefined) delete out[k]; else out[k] = merged;
      continue;
    }
    out[k] = clone(v);
  }
  for (const [k, v] of Object.entries(patch)) {
    if (!k.startsWith('$setElementOrder/') || !Array.isArray(v)) continue;
    const f = k.slice('$setElementOrder/'.length);
    const list = out[f];
    if (!Array.isArray(list)) continue;
    const mk = mergeKeyFor(f, v[0]);
    const keyOf = (x: unknown): unknown => (mk && isPlainObject(x) ? x[mk] : x);
    const order = v.map(keyOf);
    out[f] = [...list].sort((a, b) => {
      const ia = order.findIndex((o) => deepEqual(o, keyOf(a)));
      const ib = order.findIndex((o) => deepEqual(o, keyOf(b)));
      return (ia < 0 ? Infinity : ia) - (ib < 0 ? Infinity : ib);
    });
  }
  if (retain) for (const k of Object.keys(out)) if (!retain.includes(k)) delete out[k];
  void field;
  return out;
}

function mergeList(field: string, current: unknown, patch: unknown[]): unknown[] {
  const cur = Array.isArray(current) ? clone(current) : [];
  if (PRIMITIVE_MERGE.has(field)) {
    const out = [...cur];
    for (const p of patch) if (!out.some((x) => deepEqual(x, p))) out.push(clone(p));
    return out;
  }
  const sample = patch.find((x) => isPlainObject(x)) ?? cur[0];
  const mk = mergeKeyFor(field, sample);
  if (!mk) {
    // Atomic list, unless the patch says `$patch: replace` in an element (also a replacement).
    return patch.filter((x) => !(isPlainObject(x) && x.$patch === 'replace')).map(clone);
  }
  if (patch.some((x) => isPlainObject(x) && x.$patch === 'replace')) {
    return patch.filter((x) => !(isPlainObject(x) && x.$patch === 'replace')).map(clone);
  }
  const out = cur;
  for (const p of patch) {
    if (!isPlainObject(p)) continue;
    const idx = out.findIndex((x) => isPlainObject(x) && deepEqual(x[mk], p[mk]));
    if (p.$patch === 'delete') { if (idx >= 0) out.splice(idx, 1); continue; }
    if (idx >= 0) out[idx] = strategicMergePatch(out[idx], p, field);
    else { const np = strategicMergePatch({}, p, field); out.push(np); }
  }
  return out;
}

/**
 * Server-side apply for the one-manager-per-field case: the applied configuration is merged (strategic for built-ins,
 * structural for CRs) over the live object, and fields this manager applied last time but left out now are removed.
 * Returns the new object and whether another manager's applied fields would be overwritten (a conflict unless force).
 */
export function serverSideApply(live: Record<string, unknown> | undefined, applied: Record<string, unknown>, lastApplied: Record<string, unknown> | undefined, builtin: boolean): Record<string, unknown> {
  let base: Record<string, unknown> = live ? clone(live) : {};
  if (lastApplied) base = removeDropped(base, lastApplied, applied);
  return (builtin ? strategicMergePatch(base, applied) : applyMerge(base, applied)) as Record<string, unknown>;
}

/** Structural merge used by apply for CRs: maps merge, lists are atomic, no null-deletion semantics needed. */
function applyMerge(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return clone(patch);
  const out: Record<string, unknown> = isPlainObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) out[k] = applyMerge(out[k], v);
  return out;
}

/** Removes from `obj` the fields present in `prev` (last applied) but absent from `now` (the new applied config). */
function removeDropped(obj: Record<string, unknown>, prev: Record<string, unknown>, now: Record<string, unknown>): Record<string, unknown> {
  const out = clone(obj);
  for (const [k, pv] of Object.entries(prev)) {
    if (!(k in now)) { delete out[k]; continue; }
    const nv = now[k];
    if (isPlainObject(pv) && isPlainObject(nv) && isPlainObject(out[k])) out[k] = removeDropped(out[k] as Record<string, unknown>, pv, nv);
    else if (Array.isArray(pv) && Array.isArray(nv) && Array.isArray(out[k])) {
      const mk = mergeKeyFor(k, pv[0] ?? nv[0]);
      if (mk) {
        out[k] = (out[k] as unknown[]).filter((item) => {
          if (!isPlainObject(item)) return true;
          const wasMine = pv.some((p) => isPlainObject(p) && deepEqual(p[mk], item[mk]));
          const stillMine = nv.some((n) => isPlainObject(n) && deepEqual(n[mk], item[mk]));
          return !wasMine || stillMine;
        });
      }
    }
  }
  return out;
}

/** Paths (dotted) where `applied` sets a value different from what `owned` (another manager's last apply) set. */
export function applyConflicts(owned: Record<string, unknown>, applied: Record<string, unknown>, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(applied)) {
    if (!(k in owned)) continue;
    const o = owned[k];
    const p = prefix ? `${prefix}.${k}` : `.${k}`;
    if (isPlainObject(o) && isPlainObject(v)) out.push(...applyConflicts(o, v, p));
    else if (!deepEqual(o, v)) out.push(p);
  }
  return out;
}
