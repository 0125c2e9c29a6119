import { errors } from './status.ts';

/**
 * Decoder for the Kubernetes protobuf wire format (`application/vnd.kubernetes.protobuf`) for the few kinds that
 * client-go typed clients send that way in practice: helm's release Secrets/ConfigMaps and `kubectl create
 * secret|configmap|namespace|serviceaccount`. Field numbers follow k8s.io/api generated.proto. Other kinds are
 * rejected with 415 naming the kind.
 */
type FieldType = 'string' | 'bytes' | 'int64' | 'int32' | 'bool' | 'time' | 'mapss' | 'mapsb' | 'rstring' | `msg:${string}` | `rmsg:${string}`;
type MessageSchema = Record<number, [string, FieldType]>;

const SCHEMAS: Record<string, MessageSchema> = {
  ObjectMeta: {
    1: ['name', 'string'], 2: ['generateName', 'string'], 3: ['namespace', 'string'], 5: ['uid', 'string'], 6: ['resourceVersion', 'string'],
    7: ['generation', 'int64'], 8: ['creationTimestamp', 'time'], 9: ['deletionTimestamp', 'time'], 10: ['deletionGracePeriodSeconds', 'int64'],
    11: ['labels', 'mapss'], 12: ['annotations', 'mapss'], 13: ['ownerReferences', 'rmsg:OwnerReference'], 14: ['finalizers', 'rstring'],
  },
  OwnerReference: { 1: ['kind', 'string'], 3: ['name', 'string'], 4: ['uid', 'string'], 5: ['apiVersion', 'string'], 6: ['controller', 'bool'], 7: ['blockOwnerDeletion', 'bool'] },
  ConfigMap: { 1: ['metadata', 'msg:ObjectMeta'], 2: ['data', 'mapss'], 3: ['binaryData', 'mapsb'], 4: ['immutable', 'bool'] },
  Secret: { 1: ['metadata', 'msg:ObjectMeta'], 2: ['data', 'mapsb'], 3: ['type', 'string'], 4: ['stringData', 'mapss'], 5: ['immutable', 'bool'] },
  Namespace: { 1: ['metadata', 'msg:ObjectMeta'], 2: ['spec', 'msg:NamespaceSpec'] },
  NamespaceSpec: { 1: ['finalizers', 'rstring'] },
  ServiceAccount: { 1: ['metadata', 'msg:ObjectMeta'], 4: ['automountServiceAccountToken', 'bool'] },
  DeleteOptions: { 1: ['gracePeriodSeconds', 'int64'], 2: ['preconditions', 'msg:Preconditions'], 3: ['orphanDependents', 'bool'], 4: ['propagationPolicy', 'string'], 5: ['dryRun', 'rstring'] },
  Preconditions: { 1: ['uid', 'string'], 2: ['resourceVersion', 'string'] },
  Time: { 1: ['seconds', 'int64'], 2: ['nanos', 'int32'] },
  TypeMeta: { 1: ['apiVersion', 'string'], 2: ['kind', 'string'] },
  Unknown: { 1: ['typeMeta', 'msg:TypeMeta'], 2: ['raw', 'bytes'], 3: ['contentEncoding', 'string'], 4: ['contentType', 'string'] },
  MapEntry: { 1: ['key', 'string'], 2: ['value', 'bytes'] },
};

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer, readonly end = buf.length) {}
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.end) throw errors.badRequest('protobuf: truncated varint');
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return result;
      shift += 7n;
    }
  }
  bytes(): Buffer {
    const len = Number(this.varint());
    if (this.pos + len > this.end) throw errors.badRequest('protobuf: truncated length-delimited field');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw errors.badRequest(`protobuf: unsupported wire type ${wire}`);
  }
}

function decode(buf: Buffer, schemaName: string): Record<string, unknown> {
  const schema = SCHEMAS[schemaName];
  const r = new Reader(buf);
  const out: Record<string, unknown> = {};
  while (r.pos < r.end) {
    const tag = Number(r.varint());
    const field = tag >> 3;
    const wire = tag & 7;
    const def = schema[field];
    if (!def) { r.skip(wire); continue; }
    const [name, type] = def;
    switch (type) {
      case 'string': out[name] = r.bytes().toString('utf8'); break;
      case 'bytes': out[name] = Buffer.from(r.bytes()); break;
      case 'int64': case 'int32': out[name] = Number(BigInt.asIntN(64, r.varint())); break;
      case 'bool': out[name] = r.varint() !== 0n; break;
      case 'time': {
        const t = decode(r.bytes(), 'Time');
        out[name] = new Date(Number(t.seconds ?? 0) * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
        break;
      }
      case 'rstring': ((out[name] ??= []) as string[]).push(r.bytes().toString('utf8')); break;
      case 'mapss': case 'mapsb': {
        const e = decode(r.bytes(), 'MapEntry');
        const v = (e.value as Buffer | undefined) ?? Buffer.alloc(0);
        ((out[name] ??= {}) as Record<string, string>)[String(e.key ?? '')] = type === 'mapss' ? v.toString('utf8') : v.toString('base64');
        break;
      }
      default: {
        const sub = type.replace(/^r?msg:/, '');
        const v = decode(r.bytes(), sub);
        if (type.startsWith('rmsg:')) ((out[name] ??= []) as unknown[]).push(v);
        else out[name] = v;
      }
    }
  }
  return out;
}

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]); // "k8s\0"

/** Decodes a protobuf-encoded request body into the JSON object shape. */
export function decodeKubeProtobuf(body: Buffer): Record<string, unknown> {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) throw errors.badRequest('protobuf: missing k8s\\0 envelope prefix');
  const unknown = decode(body.subarray(4), 'Unknown');
  const tm = (unknown.typeMeta ?? {}) as { apiVersion?: string; kind?: string };
  const kind = tm.kind ?? '';
  if (!SCHEMAS[kind] || ['Time', 'TypeMeta', 'Unknown', 'MapEntry', 'ObjectMeta', 'OwnerReference', 'NamespaceSpec', 'Preconditions'].includes(kind)) {
    throw errors.unsupportedMediaType(`application/vnd.kubernetes.protobuf for kind ${kind || '(unknown)'} (the stand-in decodes protobuf only for ConfigMap, Secret, Namespace, ServiceAccount, DeleteOptions; send JSON)`);
  }
  const obj = decode((unknown.raw as Buffer | undefined) ?? Buffer.alloc(0), kind);
  return { apiVersion: tm.apiVersion ?? 'v1', kind, ...obj, metadata: obj.metadata ?? {} };
}
