import { describe, expect, it } from 'vitest';
import { SPECS } from './messages.ts';
import { decodeMessage, encodeMessage, inRange, type Field, type FieldType, type MessageSpec } from './schema.ts';
import { Reader, Writer } from './wire.ts';

/** Deterministic PRNG (mulberry32) so generated values are reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sample(t: FieldType, version: number, rnd: () => number, nullable: boolean): unknown {
  if (nullable && rnd() < 0.2) return null;
  if (typeof t === 'object' && 'array' in t) {
    const n = Math.floor(rnd() * 3);
    return Array.from({ length: n }, () => sample(t.array, version, rnd, false));
  }
  if (typeof t === 'object') return sampleStruct(t.fields, version, rnd);
  switch (t) {
    case 'int8':
      return Math.floor(rnd() * 256) - 128;
    case 'int16':
      return Math.floor(rnd() * 65536) - 32768;
    case 'int32':
      return Math.floor(rnd() * 2 ** 32) - 2 ** 31;
    case 'int64':
      return Math.floor(rnd() * 2 ** 52) - 2 ** 51;
    case 'uint16':
      return Math.floor(rnd() * 65536);
    case 'float64':
      return rnd();
    case 'bool':
      return rnd() < 0.5;
    case 'string':
      return `s${Math.floor(rnd() * 1e6)}é`;
    case 'bytes':
    case 'records':
      return Buffer.from(Array.from({ length: Math.floor(rnd() * 300) }, () => Math.floor(rnd() * 256)));
    case 'uuid':
      return [8, 4, 4, 4, 12].map((n) => Array.from({ length: n }, () => Math.floor(rnd() * 16).toString(16)).join('')).join('-');
  }
}

function sampleStruct(fields: Field[], version: number, rnd: () => number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const f of fields) {
    if (!inRange(version, f.versions)) continue;
    o[f.name] = sample(f.type, version, rnd, inRange(version, f.nullable));
  }
  return o;
}

/** Keeps only the fields present at `version` (what survives a round trip). */
function project(fields: Field[], o: Record<string, unknown>, version: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    if (!inRange(version, f.versions)) continue;
    out[f.name] = projectValue(f.type, o[f.name], version);
  }
  return out;
}
function projectValue(t: FieldType, v: unknown, version: number): unknown {
  if (v === null) return null;
  if (typeof t === 'object' && 'array' in t) return (v as unknown[]).map((x) => projectValue(t.array, x, version));
  if (typeof t === 'object') return project(t.fields, v as Record<string, unknown>, version);
  return v;
}

function roundTrip(spec: MessageSpec, version: number, seed: number): void {
  const rnd = prng(seed);
  const value = sampleStruct(spec.fields, version, rnd);
  const w = new Writer();
  encodeMessage(spec, w, value, version);
  const bytes = w.toBuffer();
  const r = new Reader(bytes);
  const decoded = decodeMessage<Record<string, unknown>>(spec, r, version);
  expect(r.remaining(), `${spec.name} v${version}: bytes left after decode`).toBe(0);
  expect(project(spec.fields, decoded, version)).toEqual(project(spec.fields, value, version));
}

describe('schema codec round trips every API at every supported version', () => {
  for (const [key, { request, response }] of SPECS) {
    for (const spec of [request, response]) {
      it(`${spec.name} (key ${key}) v${spec.valid.min}-${spec.valid.max}`, () => {
        for (let v = spec.valid.min; v <= spec.valid.max; v++) {
          for (let seed = 1; seed <= 20; seed++) roundTrip(spec, v, seed * 1000 + v);
        }
      });
    }
  }
});

describe('wire primitives', () => {
  it('encodes unsigned varints and compact strings as the protocol defines', () => {
    const w = new Writer();
    w.uvarint(0).uvarint(127).uvarint(128).uvarint(300).compactString('ab').compactString(null).string(null).string('x');
    expect(w.toBuffer().toString('hex')).toBe('007f8001ac0203616200ffff000178');
  });

  it('zigzag varints and varlongs round trip including negatives and large values', () => {
    const values = [0, -1, 1, -64, 63, 64, -65, 2 ** 31 - 1, -(2 ** 31), 1_700_000_000_000, -1_700_000_000_000];
    const w = new Writer();
    for (const v of values) w.varlong(v);
    const r = new Reader(w.toBuffer());
    expect(values.map(() => r.varlong())).toEqual(values);
  });

  it('int64 handles negatives', () => {
    const w = new Writer();
    w.int64(-1).int64(-2).int64(2 ** 40 + 5);
    const r = new Reader(w.toBuffer());
    expect([r.int64(), r.int64(), r.int64()]).toEqual([-1, -2, 2 ** 40 + 5]);
  });

  it('a truncated field names the field and the byte', () => {
    const spec = SPECS.get(3)!.request;
    const w = new Writer();
    encodeMessage(spec, w, { topics: [{ name: 'orders' }] }, 1);
    const bytes = w.toBuffer().subarray(0, 7);
    expect(() => decodeMessage(spec, new Reader(bytes), 1)).toThrow(/truncated frame: .* \(field topics\[0\]\.name\)/);
  });

  it('an absurd array length is refused before allocating', () => {
    const spec = SPECS.get(3)!.request;
    const bytes = Buffer.from('7fffffff', 'hex');
    expect(() => decodeMessage(spec, new Reader(bytes), 1)).toThrow(/array length 2147483647 .* exceeds/);
  });

  it('unknown tagged fields are skipped in flexible versions', () => {
    const spec = SPECS.get(18)!.request; // ApiVersions v3
    const w = new Writer();
    w.compactString('kcat').compactString('1.7.1');
    w.uvarint(1).uvarint(42).uvarint(3).raw(Buffer.from([1, 2, 3]));
    const r = new Reader(w.toBuffer());
    expect(decodeMessage(spec, r, 3)).toEqual({ clientSoftwareName: 'kcat', clientSoftwareVersion: '1.7.1' });
    expect(r.remaining()).toBe(0);
  });
});

describe('decoding mutated bytes only ever fails with a CORRUPT LanceError', () => {
  it('bit flips, truncations and junk on every request schema and version', () => {
    const rnd = prng(4242);
    let decoded = 0;
    let rejected = 0;
    for (const [, { request }] of SPECS) {
      for (let v = request.valid.min; v <= request.valid.max; v++) {
        const w = new Writer();
        encodeMessage(request, w, sampleStruct(request.fields, v, prng(v + 17)), v);
        const valid = w.toBuffer();
        for (let i = 0; i < 300; i++) {
          let b = Buffer.from(valid);
          const kind = i % 3;
          if (kind === 0 && b.length > 0) for (let k = 0; k < 1 + Math.floor(rnd() * 6); k++) b[Math.floor(rnd() * b.length)]! ^= 1 << Math.floor(rnd() * 8);
          else if (kind === 1) b = b.subarray(0, Math.floor(rnd() * b.length));
          else b = Buffer.from(Array.from({ length: Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256)));
          try {
            decodeMessage(request, new Reader(b), v);
            decoded++;
          } catch (e) {
            expect(e, `${request.name} v${v}: ${String(e)}`).toMatchObject({ name: 'LanceError', code: 'CORRUPT' });
            rejected++;
          }
        }
      }
    }
    expect(decoded).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(1000);
  });
});
