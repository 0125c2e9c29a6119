/**
 * A small CEL subset for CRD `x-kubernetes-validations`. Supported: literals (int, double, string, bool, null, lists,
 * maps), `self`/`oldSelf`, field selection, indexing, `has(a.b)`, arithmetic `+ - * / %`, comparisons, `&& || !`,
 * ternary `?:`, `in`, `size()`, `startsWith/endsWith/contains/matches`, `int()/string()/double()`, and the macros
 * `all/exists/exists_one/map/filter`. Anything else fails to parse, and the CRD is rejected at creation (never passed
 * silently).
 */
export class CelError extends Error {}

type Tok = { k: 'num' | 'str' | 'id' | 'op'; v: string };

function lex(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) { i++; continue; }
    if (/[0-9]/.test(c)) {
      const m = src.slice(i).match(/^(\d+\.\d+([eE][+-]?\d+)?|\d+[eE][+-]?\d+|0x[0-9a-fA-F]+|\d+)u?/)!;
      out.push({ k: 'num', v: m[0] }); i += m[0].length; continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1; let s = '';
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\') { const n = src[j + 1]; s += n === 'n' ? '\n' : n === 't' ? '\t' : n; j += 2; } else s += src[j++];
      }
      if (j >= src.length) throw new CelError(`unterminated string at ${i}`);
      out.push({ k: 'str', v: s }); i = j + 1; continue;
    }
    if (/[A-Za-z_]/.test(c)) { const m = src.slice(i).match(/^[A-Za-z_][A-Za-z0-9_]*/)!; out.push({ k: 'id', v: m[0] }); i += m[0].length; continue; }
    const two = src.slice(i, i + 2);
    if (['==', '!=', '<=', '>=', '&&', '||'].includes(two)) { out.push({ k: 'op', v: two }); i += 2; continue; }
    if ('+-*/%<>!?:.,()[]{}'.includes(c)) { out.push({ k: 'op', v: c }); i++; continue; }
    throw new CelError(`unexpected character '${c}' at ${i}`);
  }
  return out;
}

export type Node =
  | { t: 'lit'; v: unknown }
  | { t: 'id'; name: string }
  | { t: 'sel'; obj: Node; f: string }
  | { t: 'idx'; obj: Node; i: Node }
  | { t: 'has'; obj: Node; f: string }
  | { t: 'un'; op: string; a: Node }
  | { t: 'bin'; op: string; a: Node; b: Node }
  | { t: 'cond'; c: Node; a: Node; b: Node }
  | { t: 'list'; items: Node[] }
  | { t: 'map'; entries: [Node, Node][] }
  | { t: 'call'; fn: string; target?: Node; args: Node[] }
  | { t: 'macro'; fn: string; target: Node; v: string; body: Node; body2?: Node };

const GLOBAL_FNS = new Set(['size', 'int', 'string', 'double', 'uint', 'bool']);
const METHODS = new Set(['size', 'startsWith', 'endsWith', 'contains', 'matches', 'lowerAscii', 'upperAscii', 'trim']);
const MACROS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);

export function parseCel(src: string): Node {
  const toks = lex(src);
  let p = 0;
  const peek = (): Tok | undefined => toks[p];
  const isOp = (v: string): boolean => peek()?.k === 'op' && peek()!.v === v;
  const expect = (v: string): void => { if (!isOp(v)) throw new CelError(`expected '${v}' at token ${p} in ${JSON.stringify(src)}`); p++; };
  const expr = (): Node => {
    const c = or();
    if (isOp('?')) { p++; const a = expr(); expect(':'); const b = expr(); return { t: 'cond', c, a, b }; }
    return c;
  };
  const binLevel = (ops: string[], next: () => Node, idOps: string[] = []) => (): Node => {
    let a = next();
    for (;;) {
      const tk = peek();
      if (tk && ((tk.k === 'op' && ops.includes(tk.v)) || (tk.k === 'id' && idOps.includes(tk.v)))) { p++; a = { t: 'bin', op: tk.v, a, b: next() }; } else return a;
    }
  };
  const unary = (): Node => {
    if (isOp('!')) { p++; return { t: 'un', op: '!', a: unary() }; }
    if (isOp('-')) { p++; return { t: 'un', op: '-', a: unary() }; }
    return postfix();
  };
  const mul = binLevel(['*', '/', '%'], unary);
  const add = binLevel(['+', '-'], mul);
  const rel = binLevel(['<', '<=', '>', '>=', '==', '!='], add, ['in']);
  const and = binLevel(['&&'], rel);
  const or = binLevel(['||'], and);
  const args = (): Node[] => {
    const out: Node[] = [];
    expect('(');
    if (!isOp(')')) { out.push(expr()); while (isOp(',')) { p++; out.push(expr()); } }
    expect(')');
    return out;
  };
  const postfix = (): Node => {
    let n = primary();
    for (;;) {
      if (isOp('.')) {
        p++;
        const id = peek();
        if (id?.k !== 'id') throw new CelError(`expected field name after '.' in ${JSON.stringify(src)}`);
        p++;
        if (isOp('(')) {
          if (MACROS.has(id.v)) {
            expect('(');
            const v = peek();
            if (v?.k !== 'id') throw new CelError(`macro ${id.v} needs a variable name`);
            p++; expect(',');
            const body = expr();
            let body2: Node | undefined;
            if (id.v === 'map' && isOp(',')) { p++; body2 = expr(); }
            expect(')');
            n = { t: 'macro', fn: id.v, target: n, v: v.v, body, ...(body2 ? { body2 } : {}) };
          } else if (METHODS.has(id.v)) n = { t: 'call', fn: id.v, target: n, args: args() };
          else throw new CelError(`unsupported CEL function '${id.v}' (supported: ${[...METHODS, ...MACROS].join(', ')})`);
        } else n = { t: 'sel', obj: n, f: id.v };
      } else if (isOp('[')) { p++; const i = expr(); expect(']'); n = { t: 'idx', obj: n, i }; } else return n;
    }
  };
  const primary = (): Node => {
    const tk = peek();
    if (!tk) throw new CelError(`unexpected end of expression ${JSON.stringify(src)}`);
    p++;
    if (tk.k === 'num') {
      const raw = tk.v.replace(/u$/, '');
      return { t: 'lit', v: raw.startsWith('0x') ? parseInt(raw, 16) : Number(raw) };
    }
    if (tk.k === 'str') return { t: 'lit', v: tk.v };
    if (tk.k === 'id') {
      if (tk.v === 'true' || tk.v === 'false') return { t: 'lit', v: tk.v === 'true' };
      if (tk.v === 'null') return { t: 'lit', v: null };
      if (tk.v === 'has') {
        expect('(');
        const inner = postfix();
        expect(')');
        if (inner.t !== 'sel') throw new CelError('has() needs a field selection argument, e.g. has(self.spec)');
        return { t: 'has', obj: inner.obj, f: inner.f };
      }
      if (isOp('(')) {
        if (!GLOBAL_FNS.has(tk.v)) throw new CelError(`unsupported CEL function '${tk.v}'`);
        return { t: 'call', fn: tk.v, args: args() };
      }
      return { t: 'id', name: tk.v };
    }
    if (tk.v === '(') { const e = expr(); expect(')'); return e; }
    if (tk.v === '[') {
      const items: Node[] = [];
      if (!isOp(']')) { items.push(expr()); while (isOp(',')) { p++; items.push(expr()); } }
      expect(']');
      return { t: 'list', items };
    }
    if (tk.v === '{') {
      const entries: [Node, Node][] = [];
      if (!isOp('}')) {
        do { if (isOp(',')) p++; const k = expr(); expect(':'); entries.push([k, expr()]); } while (isOp(','));
      }
      expect('}');
      return { t: 'map', entries };
    }
    throw new CelError(`unexpected '${tk.v}' in ${JSON.stringify(src)}`);
  };
  const n = expr();
  if (p !== toks.length) throw new CelError(`unexpected trailing input at token ${p} in ${JSON.stringify(src)}`);
  return n;
}

/** Does the rule reference oldSelf (a transition rule, evaluated only on update when an old value exists)? */
export function usesOldSelf(n: Node): boolean {
  switch (n.t) {
    case 'id': return n.name === 'oldSelf';
    case 'lit': return false;
    case 'sel': case 'has': return usesOldSelf(n.obj);
    case 'idx': return usesOldSelf(n.obj) || usesOldSelf(n.i);
    case 'un': return usesOldSelf(n.a);
    case 'bin': return usesOldSelf(n.a) || usesOldSelf(n.b);
    case 'cond': return usesOldSelf(n.c) || usesOldSelf(n.a) || usesOldSelf(n.b);
    case 'list': return n.items.some(usesOldSelf);
    case 'map': return n.entries.some(([k, v]) => usesOldSelf(k) || usesOldSelf(v));
    case 'call': return (n.target ? usesOldSelf(n.target) : false) || n.args.some(usesOldSelf);
    case 'macro': return usesOldSelf(n.target) || usesOldSelf(n.body) || (n.body2 ? usesOldSelf(n.body2) : false);
  }
}

function isObj(v: unknown): v is Record<string, unknown> { return typeof v === 'object' && v !== null && !Array.isArray(v); }

function eq(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => eq(x, b[i]));
  if (isObj(a) && isObj(b)) { const ka = Object.keys(a); return ka.length === Object.keys(b).length && ka.every((k) => eq(a[k], b[k])); }
  return false;
}

export function evalCel(n: Node, env: Record<string, unknown>): unknown {
  const ev = (x: Node): unknown => evalCel(x, env);
  switch (n.t) {
    case 'lit': return n.v;
    case 'id':
      if (!(n.name in env)) throw new CelError(`undeclared reference to '${n.name}'`);
      return env[n.name];
    case 'sel': {
      const o = ev(n.obj);
      if (!isObj(o) || !(n.f in o)) throw new CelError(`no such key: ${n.f}`);
      return o[n.f];
    }
    case 'has': { const o = ev(n.obj); return isObj(o) && n.f in o && o[n.f] !== undefined; }
    case 'idx': {
      const o = ev(n.obj); const i = ev(n.i);
      if (Array.isArray(o) && typeof i === 'number') { if (i < 0 || i >= o.length) throw new CelError(`index out of bounds: ${i}`); return o[i]; }
      if (isObj(o) && typeof i === 'string') { if (!(i in o)) throw new CelError(`no such key: ${i}`); return o[i]; }
      throw new CelError('invalid index operation');
    }
    case 'un': { const a = ev(n.a); if (n.op === '!') return !truthy(a); if (typeof a !== 'number') throw new CelError('no such overload: -'); return -a; }
    case 'cond': return truthy(ev(n.c)) ? ev(n.a) : ev(n.b);
    case 'list': return n.items.map(ev);
    case 'map': return Object.fromEntries(n.entries.map(([k, v]) => [String(ev(k)), ev(v)]));
    case 'bin': {
      if (n.op === '&&') return truthy(ev(n.a)) && truthy(ev(n.b));
      if (n.op === '||') return truthy(ev(n.a)) || truthy(ev(n.b));
      const a = ev(n.a); const b = ev(n.b);
      switch (n.op) {
        case '==': return eq(a, b);
        case '!=': return !eq(a, b);
        case 'in': return Array.isArray(b) ? b.some((x) => eq(x, a)) : isObj(b) ? typeof a === 'string' && a in b : (() => { throw new CelError('no such overload: in'); })();
        case '<': case '<=': case '>': case '>=': {
          if (!((typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string'))) throw new CelError(`no such overload: ${n.op}`);
          return n.op === '<' ? a < b : n.op === '<=' ? a <= b : n.op === '>' ? a > b : a >= b;
        }
        case '+':
          if (typeof a === 'number' && typeof b === 'number') return a + b;
          if (typeof a === 'string' && typeof b === 'string') return a + b;
          if (Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
          throw new CelError('no such overload: +');
        case '-': case '*': case '/': case '%': {
          if (typeof a !== 'number' || typeof b !== 'number') throw new CelError(`no such overload: ${n.op}`);
          if ((n.op === '/' || n.op === '%') && b === 0) throw new CelError(n.op === '/' ? 'division by zero' : 'modulus by zero');
          if (n.op === '-') return a - b;
          if (n.op === '*') return a * b;
          if (n.op === '/') return Number.isInteger(a) && Number.isInteger(b) ? Math.trunc(a / b) : a / b;
          return a % b;
        }
      }
      throw new CelError(`unsupported operator ${n.op}`);
    }
    case 'call': {
      const t = n.target !== undefined ? ev(n.target) : undefined;
      const args = n.args.map(ev);
      const x = n.target !== undefined ? t : args[0];
      switch (n.fn) {
        case 'size':
          if (typeof x === 'string') return [...x].length;
          if (Array.isArray(x)) return x.length;
          if (isObj(x)) return Object.keys(x).length;
          throw new CelError('no such overload: size');
        case 'int': { const v = Number(x); if (!Number.isFinite(v)) throw new CelError('cannot convert to int'); return Math.trunc(v); }
        case 'uint': { const v = Number(x); if (!Number.isFinite(v) || v < 0) throw new CelError('cannot convert to uint'); return Math.trunc(v); }
        case 'double': return Number(x);
        case 'string': return String(x);
        case 'bool': return x === true || x === 'true';
        case 'startsWith': return String(t).startsWith(String(args[0]));
        case 'endsWith': return String(t).endsWith(String(args[0]));
        case 'contains': return String(t).includes(String(args[0]));
        case 'matches': return new RegExp(String(args[0])).test(String(t));
        case 'lowerAscii': return String(t).toLowerCase();
        case 'upperAscii': return String(t).toUpperCase();
        case 'trim': return String(t).trim();
      }
      throw new CelError(`unsupported function ${n.fn}`);
    }
    case 'macro': {
      const target = ev(n.target);
      const elems = Array.isArray(target) ? target : isObj(target) ? Object.keys(target) : (() => { throw new CelError(`${n.fn} needs a list or map`); })();
      const run = (body: Node, e: unknown): unknown => evalCel(body, { ...env, [n.v]: e });
      switch (n.fn) {
        case 'all': return elems.every((e) => truthy(run(n.body, e)));
        case 'exists': return elems.some((e) => truthy(run(n.body, e)));
        case 'exists_one': return elems.filter((e) => truthy(run(n.body, e))).length === 1;
        case 'filter': return elems.filter((e) => truthy(run(n.body, e)));
        case 'map': return n.body2 ? elems.filter((e) => truthy(run(n.body, e))).map((e) => run(n.body2!, e)) : elems.map((e) => run(n.body, e));
      }
      throw new CelError(`unsupported macro ${n.fn}`);
    }
  }
}

function truthy(v: unknown): boolean {
  if (typeof v !== 'boolean') throw new CelError(`expected bool, got ${v === null ? 'null' : typeof v}`);
  return v;
}
