import { LanceError } from '../../common/errors.ts';

/**
 * Kafka primitive types: big-endian ints, (u)varints, classic and compact strings/bytes/arrays, UUIDs.
 * Every read is bounds-checked and names the field it was reading, so a malformed frame yields
 * LanceError('CORRUPT') like "truncated frame: int32 at byte 14 (field topics[0].partitions)".
 */

export class DecodeError extends LanceError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('CORRUPT', message, details);
  }
}

export class Reader {
  pos: number;
  /** dotted path of the field being decoded, for error messages */
  field = '';

  constructor(readonly buf: Buffer, pos = 0, readonly end = buf.length) {
    this.pos = pos;
  }

  remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.end) {
      throw new DecodeError(`truncated frame: ${what} needs ${n} bytes at byte ${this.pos}, ${this.end - this.pos} left (field ${this.field || '?'})`, {
        byte: this.pos,
        field: this.field,
      });
    }
  }

  int8(): number {
    this.need(1, 'int8');
    return this.buf.readInt8(this.pos++);
  }
  bool(): boolean {
    return this.int8() !== 0;
  }
  int16(): number {
    this.need(2, 'int16');
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  uint16(): number {
    this.need(2, 'uint16');
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  int32(): number {
    this.need(4, 'int32');
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  uint32(): number {
    this.need(4, 'uint32');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  /** int64 as a JS number (offsets and timestamps stay far below 2^53) */
  int64(): number {
    this.need(8, 'int64');
    const hi = this.buf.readInt32BE(this.pos);
    const lo = this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    return hi * 4294967296 + lo;
  }
  float64(): number {
    this.need(8, 'float64');
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }
  uvarint(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      this.need(1, 'varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
    throw new DecodeError(`malformed varint at byte ${this.pos} (field ${this.field || '?'}): longer than 5 bytes`, { byte: this.pos, field: this.field });
  }
  /** zigzag varint (int32 range) */
  varint(): number {
    const u = this.uvarint();
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }
  /** zigzag varlong; precise up to 2^53 */
  varlong(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      this.need(1, 'varlong');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
      shift += 7;
    }
    throw new DecodeError(`malformed varlong at byte ${this.pos} (field ${this.field || '?'})`, { byte: this.pos, field: this.field });
  }
  uuid(): string {
    this.need(16, 'uuid');
    const h = this.buf.toString('hex', this.pos, this.pos + 16);
    this.pos += 16;
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  raw(n: number): Buffer {
    this.need(n, 'bytes');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  /** classic nullable string: int16 length, -1 = null */
  string(): string | null {
    const len = this.int16();
    if (len === -1) return null;
    if (len < -1) throw new DecodeError(`negative string length ${len} at byte ${this.pos - 2} (field ${this.field || '?'})`, { byte: this.pos - 2, field: this.field });
    return this.raw(len).toString('utf8');
  }
  /** compact nullable string: uvarint length+1, 0 = null */
  compactString(): string | null {
    const len = this.uvarint() - 1;
    if (len === -1) return null;
    return this.raw(len).toString('utf8');
  }
  bytes(): Buffer | null {
    const len = this.int32();
    if (len === -1) return null;
    if (len < -1) throw new DecodeError(`negative bytes length ${len} at byte ${this.pos - 4} (field ${this.field || '?'})`, { byte: this.pos - 4, field: this.field });
    return this.raw(len);
  }
  compactBytes(): Buffer | null {
    const len = this.uvarint() - 1;
    if (len === -1) return null;
    return this.raw(len);
  }
  /** array length (classic int32 or compact uvarint+1); -1 = null. Bounded by remaining bytes: no huge allocations from garbage. */
  arrayLength(compact: boolean): number {
    const at = this.pos;
    const n = compact ? this.uvarint() - 1 : this.int32();
    if (n < -1) throw new DecodeError(`negative array length ${n} at byte ${at} (field ${this.field || '?'})`, { byte: at, field: this.field });
    if (n > this.remaining()) {
      throw new DecodeError(`array length ${n} at byte ${at} exceeds the ${this.remaining()} bytes left (field ${this.field || '?'})`, { byte: at, field: this.field });
    }
    return n;
  }
}

const SCRATCH = 64 * 1024;
/** Buffers at least this big are passed through by reference instead of copied (record sets). */
const PASS_THROUGH = 4096;

/**
 * Growable writer that keeps large payloads (record sets) as separate chunks so a Fetch response is written to the
 * socket without copying the log data again.
 */
export class Writer {
  private chunks: Buffer[] = [];
  private cur: Buffer = Buffer.allocUnsafe(256);
  private pos = 0;
  private flushed = 0;

  get length(): number {
    return this.flushed + this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.cur.length) return;
    if (this.pos > 0) {
      this.chunks.push(this.cur.subarray(0, this.pos));
      this.flushed += this.pos;
    }
    this.cur = Buffer.allocUnsafe(Math.max(n, Math.min(SCRATCH, Math.max(256, this.cur.length * 2))));
    this.pos = 0;
  }

  int8(v: number): this {
    this.ensure(1);
    this.cur.writeInt8(v, this.pos++);
    return this;
  }
  bool(v: boolean): this {
    return this.int8(v ? 1 : 0);
  }
  int16(v: number): this {
    this.ensure(2);
    this.cur.writeInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }
  uint16(v: number): this {
    this.ensure(2);
    this.cur.writeUInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }
  int32(v: number): this {
    this.ensure(4);
    this.cur.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }
  uint32(v: number): this {
    this.ensure(4);
    this.cur.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }
  int64(v: number): this {
    this.ensure(8);
    this.cur.writeBigInt64BE(BigInt(Math.trunc(v)), this.pos);
    this.pos += 8;
    return this;
  }
  float64(v: number): this {
    this.ensure(8);
    this.cur.writeDoubleBE(v, this.pos);
    this.pos += 8;
    return this;
  }
  uvarint(v: number): this {
    this.ensure(10);
    let x = v;
    while (x >= 0x80) {
      this.cur[this.pos++] = (x % 128) | 0x80;
      x = Math.floor(x / 128);
    }
    this.cur[this.pos++] = x;
    return this;
  }
  varint(v: number): this {
    return this.uvarint(v >= 0 ? v * 2 : -v * 2 - 1);
  }
  varlong(v: number): this {
    return this.uvarint(v >= 0 ? v * 2 : -v * 2 - 1);
  }
  uuid(v: string): this {
    const hex = v.replace(/-/g, '');
    if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new LanceError('INTERNAL', `invalid topic id "${v}": expected a UUID`, { field: 'topicId' });
    return this.raw(Buffer.from(hex, 'hex'));
  }
  raw(b: Buffer): this {
    if (b.length >= PASS_THROUGH) {
      if (this.pos > 0) {
        this.chunks.push(this.cur.subarray(0, this.pos));
        this.flushed += this.pos;
        this.cur = this.cur.subarray(this.pos);
        this.pos = 0;
      }
      this.chunks.push(b);
      this.flushed += b.length;
      return this;
    }
    this.ensure(b.length);
    b.copy(this.cur, this.pos);
    this.pos += b.length;
    return this;
  }
  string(v: string | null): this {
    if (v === null) return this.int16(-1);
    const b = Buffer.from(v, 'utf8');
    return this.int16(b.length).raw(b);
  }
  compactString(v: string | null): this {
    if (v === null) return this.uvarint(0);
    const b = Buffer.from(v, 'utf8');
    return this.uvarint(b.length + 1).raw(b);
  }
  bytes(v: Buffer | null): this {
    if (v === null) return this.int32(-1);
    return this.int32(v.length).raw(v);
  }
  compactBytes(v: Buffer | null): this {
    if (v === null) return this.uvarint(0);
    return this.uvarint(v.length + 1).raw(v);
  }

  /** the written bytes as chunks (zero-copy for passed-through buffers) */
  chunksOut(): Buffer[] {
    const out = this.chunks.slice();
    if (this.pos > 0) out.push(this.cur.subarray(0, this.pos));
    return out;
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.chunksOut());
  }
}
