import { describe, expect, it } from 'vitest';
import { FrameAssembler } from './server.ts';

function frame(body: Buffer): Buffer {
  const f = Buffer.alloc(4 + body.length);
  f.writeInt32BE(body.length, 0);
  body.copy(f, 4);
  return f;
}

function drain(a: FrameAssembler): Array<Buffer | string> {
  const out: Array<Buffer | string> = [];
  for (let n = a.next(); n !== null; n = a.next()) {
    out.push(n);
    if (typeof n === 'string') break;
  }
  return out;
}

describe('FrameAssembler', () => {
  const bodies = [Buffer.from('0123456789'), Buffer.alloc(300, 7), Buffer.from('abcdefghij-klmnop')];
  const stream = Buffer.concat(bodies.map(frame));

  it('yields the same frames for every way of splitting the stream in two, three and one-byte pieces', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const a = new FrameAssembler(1 << 20);
      const got: Array<Buffer | string> = [];
      a.push(stream.subarray(0, cut));
      got.push(...drain(a));
      a.push(stream.subarray(cut));
      got.push(...drain(a));
      expect(got, `cut at ${cut}`).toEqual(bodies);
      expect(a.buffered).toBe(0);
    }
    for (let c1 = 1; c1 < stream.length; c1 += 7) {
      for (let c2 = c1; c2 <= stream.length; c2 += 11) {
        const a = new FrameAssembler(1 << 20);
        const got: Array<Buffer | string> = [];
        for (const piece of [stream.subarray(0, c1), stream.subarray(c1, c2), stream.subarray(c2)]) {
          a.push(piece);
          got.push(...drain(a));
        }
        expect(got).toEqual(bodies);
      }
    }
    const a = new FrameAssembler(1 << 20);
    const got: Array<Buffer | string> = [];
    for (const byte of stream) {
      a.push(Buffer.from([byte]));
      got.push(...drain(a));
    }
    expect(got).toEqual(bodies);
  });

  it('rejects sizes below the header minimum or above the maximum as soon as the size is known', () => {
    for (const size of [-1, 0, 7, -2147483648]) {
      const a = new FrameAssembler(1000);
      const b = Buffer.alloc(4);
      b.writeInt32BE(size, 0);
      a.push(b);
      expect(a.next()).toMatch(new RegExp(`frame size ${size} is below the 8-byte minimum`));
    }
    const a = new FrameAssembler(1000);
    a.push(Buffer.from([0, 0, 3]));
    expect(a.next()).toBeNull();
    a.push(Buffer.from([0xe9])); // 1001
    expect(a.next()).toBe('frame size 1001 exceeds max frame size 1000');
  });

  it('does not re-copy the backlog: a frame inside one chunk is a view of it', () => {
    const a = new FrameAssembler(1 << 20);
    a.push(stream);
    const f = a.next() as Buffer;
    expect(f.buffer).toBe(stream.buffer);
  });
});
