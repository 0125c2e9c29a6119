import { DecodeError, Reader, Writer } from './wire.ts';

/**
 * A small declarative schema language modelled on Kafka's message JSON specs: each field has a version range, an
 * optional nullable range and optional tag. One generic encoder/decoder handles classic and flexible versions
 * (compact strings/arrays/bytes and tagged-field sections after every struct), so per-API code only lists fields.
 */

export type Primitive = 'int8' | 'int16' | 'int32' | 'int64' | 'uint16' | 'float64' | 'bool' | 'string' | 'bytes' | 'records' | 'uuid';

export interface VersionRange {
  min: number;
  max: number;
}

export type FieldType = Primitive | Struct | ArrayOf;
export interface ArrayOf {
  array: Primitive | Struct;
}
export interface Struct {
  fields: Field[];
}

export interface Field {
  name: string;
  type: FieldType;
  versions: VersionRange;
  nullable: VersionRange | null;
  /** tagged field: tag number; present only in flexible versions within `versions` */
  tag: number | null;
  default: unknown;
}

export interface MessageSpec {
  name: string;
  apiKey: number;
  valid: VersionRange;
  flexible: VersionRange;
  fields: Field[];
}

/** "3+", "0-5", "7", "none" → range (none = empty) */
export function range(s: string): VersionRange {
  if (s === 'none') return { min: 1, max: 0 };
  const plus = /^(\d+)\+$/.exec(s);
  if (plus) return { min: Number(plus[1]), max: 0x7fff };
  const dash = /^(\d+)-(\d+)$/.exec(s);
  if (dash) return { min: Number(dash[1]), max: Number(dash[2]) };
  const one = /^(\d+)$/.exec(s);
  if (one) return { min: Number(one[1]), max: Number(one[1]) };
  throw new Error(`bad version range ${s}`);
}

export function inRange(v: number, r: VersionRange | null): boolean {
  return r !== null && v >= r.min && v <= r.max;
}

interface FieldOpts {
  nullable?: string;
  tag?: number;
  default?: unknown;
}

/** field builder: f('name', 'int32', '0+', { nullable: '1+' }) */
export function f(name: string, type: FieldType, versions: string, opts: FieldOpts = {}): Field {
  return {
    name,
    type,
    versions: range(versions),
    nullable: opts.nullable ? range(opts.nullable) : null,
    tag: opts.tag ?? null,
    default: opts.default,
  };
}
export const struct = (...fields: Field[]): Struct => ({ fields });
export const arrayOf = (t: Primitive | Struct): ArrayOf => ({ array: t });
export const arr = (name: string, versions: string, fields: Field[], opts: FieldOpts = {}): Field => f(name, arrayOf(struct(...fields)), versions, opts);

export function message(name: string, apiKey: number, valid: string, flexible: string, fields: Field[]): MessageSpec {
  return { name, apiKey, valid: range(valid), flexible: range(flexible), fields };
}

function isArray(t: FieldType): t is ArrayOf {
  return typeof t === 'object' && 'array' in t;
}
function isStruct(t: FieldType): t is Struct {
  return typeof t === 'object' && 'fields' in t;
}

/** The value a field takes when absent from a version (or an omitted tagged field). */
export function defaultValue(field: Field, version: number): unknown {
  if (field.default !== undefined) return field.default;
  if (inRange(version, field.nullable)) return null;
  return zeroOf(field.type, version);
}

function zeroOf(t: FieldType, version: number): unknown {
  if (isArray(t)) return [];
  if (isStruct(t)) return defaults(t.fields, version);
  switch (t) {
    case 'bool':
      return false;
    case 'string':
      return '';
    case 'bytes':
    case 'records':
      return Buffer.alloc(0);
    case 'uuid':
      return '00000000-0000-0000-0000-000000000000';
    default:
      return 0;
  }
}

function defaults(fields: Field[], version: number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const fl of fields) o[fl.name] = defaultValue(fl, version);
  return o;
}

// ---------------------------------------------------------------- decode

function decodePrimitive(r: Reader, t: Primitive, flexible: boolean, nullable: boolean): unknown {
  switch (t) {
    case 'int8':
      return r.int8();
    case 'int16':
      return r.int16();
    case 'int32':
      return r.int32();
    case 'int64':
      return r.int64();
    case 'uint16':
      return r.uint16();
    case 'float64':
      return r.float64();
    case 'bool':
      return r.bool();
    case 'uuid':
      return r.uuid();
    case 'string': {
      const s = flexible ? r.compactString() : r.string();
      if (s === null && !nullable) throw new DecodeError(`null string in non-nullable field ${r.field} at byte ${r.pos}`, { field: r.field, byte: r.pos });
      return s;
    }
    case 'bytes':
    case 'records': {
      const b = flexible ? r.compactBytes() : r.bytes();
      if (b === null && !nullable) throw new DecodeError(`null bytes in non-nullable field ${r.field} at byte ${r.pos}`, { field: r.field, byte: r.pos });
      return b;
    }
  }
}

function decodeValue(r: Reader, t: FieldType, version: number, flexible: boolean, nullable: boolean): unknown {
  if (isArray(t)) {
    const n = r.arrayLength(flexible);
    if (n === -1) {
      if (!nullable) throw new DecodeError(`null array in non-nullable field ${r.field} at byte ${r.pos}`, { field: r.field, byte: r.pos });
      return null;
    }
    const out: unknown[] = new Array(n);
    const base = r.field;
    for (let i = 0; i < n; i++) {
      r.field = `${base}[${i}]`;
      out[i] = decodeValue(r, t.array, version, flexible, false);
    }
    r.field = base;
    return out;
  }
  if (isStruct(t)) return decodeStruct(r, t.fields, version, flexible);
  return decodePrimitive(r, t, flexible, nullable);
}

function decodeStruct(r: Reader, fields: Field[], version: number, flexible: boolean): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  const base = r.field;
  for (const fl of fields) {
    if (fl.tag !== null || !inRange(version, fl.versions)) {
      o[fl.name] = defaultValue(fl, version);
      continue;
    }
    r.field = base ? `${base}.${fl.name}` : fl.name;
    o[fl.name] = decodeValue(r, fl.type, version, flexible, inRange(version, fl.nullable));
  }
  r.field = base;
  if (flexible) decodeTagged(r, fields, version, o);
  return o;
}

function decodeTagged(r: Reader, fields: Field[], version: number, o: Record<string, unknown>): void {
  const n = r.uvarint();
  if (n > r.remaining()) throw new DecodeError(`tagged field count ${n} exceeds the ${r.remaining()} bytes left (field ${r.field || '?'})`, { field: r.field });
  for (let i = 0; i < n; i++) {
    const tag = r.uvarint();
    const size = r.uvarint();
    const body = r.raw(size);
    const fl = fields.find((x) => x.tag === tag && inRange(version, x.versions));
    if (fl) {
      const sub = new Reader(body);
      sub.field = `${r.field}.${fl.name}`;
      o[fl.name] = decodeValue(sub, fl.type, version, true, inRange(version, fl.nullable));
    }
    // unknown tags are skipped, as the protocol requires
  }
}

export function decodeMessage<T>(spec: MessageSpec, r: Reader, version: number): T {
  const flexible = inRange(version, spec.flexible);
  return decodeStruct(r, spec.fields, version, flexible) as T;
}

// ---------------------------------------------------------------- encode

function encodePrimitive(w: Writer, t: Primitive, v: unknown, flexible: boolean, where: string): void {
  switch (t) {
    case 'int8':
      w.int8(num(v, where));
      return;
    case 'int16':
      w.int16(num(v, where));
      return;
    case 'int32':
      w.int32(num(v, where));
      return;
    case 'int64':
      w.int64(num(v, where));
      return;
    case 'uint16':
      w.uint16(num(v, where));
      return;
    case 'float64':
      w.float64(num(v, where));
      return;
    case 'bool':
      w.bool(Boolean(v));
      return;
    case 'uuid':
      w.uuid(typeof v === 'string' ? v : '00000000-0000-0000-0000-000000000000');
      return;
    case 'string': {
      const s = v === null || v === undefined ? null : String(v);
      if (flexible) w.compactString(s);
      else w.string(s);
      return;
    }
    case 'bytes':
    case 'records': {
      const b = v === null || v === undefined ? null : (v as Buffer);
      if (flexible) w.compactBytes(b);
      else w.bytes(b);
      return;
    }
  }
}

function num(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`encode: field ${where} must be a number, got ${String(v)}`);
  return v;
}

function encodeValue(w: Writer, t: FieldType, v: unknown, version: number, flexible: boolean, where: string): void {
  if (isArray(t)) {
    if (v === null || v === undefined) {
      if (flexible) w.uvarint(0);
      else w.int32(-1);
      return;
    }
    const a = v as unknown[];
    if (flexible) w.uvarint(a.length + 1);
    else w.int32(a.length);
    for (let i = 0; i < a.length; i++) encodeValue(w, t.array, a[i], version, flexible, `${where}[${i}]`);
    return;
  }
  if (isStruct(t)) {
    encodeStruct(w, t.fields, (v ?? {}) as Record<string, unknown>, version, flexible, where);
    return;
  }
  encodePrimitive(w, t, v, flexible, where);
}

function encodeStruct(w: Writer, fields: Field[], o: Record<string, unknown>, version: number, flexible: boolean, where: string): void {
  for (const fl of fields) {
    if (fl.tag !== null || !inRange(version, fl.versions)) continue;
    const v = fl.name in o ? o[fl.name] : defaultValue(fl, version);
    encodeValue(w, fl.type, v, version, flexible, `${where}.${fl.name}`);
  }
  if (!flexible) return;
  const tagged = fields.filter((fl) => fl.tag !== null && inRange(version, fl.versions) && o[fl.name] !== undefined && o[fl.name] !== defaultValue(fl, version));
  tagged.sort((a, b) => (a.tag ?? 0) - (b.tag ?? 0));
  w.uvarint(tagged.length);
  for (const fl of tagged) {
    const sub = new Writer();
    encodeValue(sub, fl.type, o[fl.name], version, true, `${where}.${fl.name}`);
    const body = sub.toBuffer();
    w.uvarint(fl.tag ?? 0).uvarint(body.length).raw(body);
  }
}

export function encodeMessage(spec: MessageSpec, w: Writer, value: object, version: number): void {
  const flexible = inRange(version, spec.flexible);
  encodeStruct(w, spec.fields, value as Record<string, unknown>, version, flexible, spec.name);
}
