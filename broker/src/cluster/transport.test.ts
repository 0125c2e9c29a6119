import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import type { RaftMessage } from '../raft/types.ts';
import { EntryType } from '../storage/types.ts';
import { decodeRaftBody, encodeJsonFrame, encodeRaftFrame, FrameKind, FrameReader, Transport } from './transport.ts';

const silent = pino({ level: 'silent' });

describe('transport framing', () => {
  it('round-trips Append with binary entry data and Snapshot bytes', () => {
    const m: RaftMessage = {
      type: 'Append', from: 1, to: 2, term: 3, prevIndex: 4, prevTerm: 2, commit: 4,
      entries: [{ term: 3, index: 5, type: EntryType.DATA, data: Buffer.from([0, 1, 2, 255]) }, { term: 3, index: 6, type: EntryType.NOOP, data: new Uint8Array(0) }],
    };
    const f = encodeRaftFrame('topic_1/0', m);
    const frames = new FrameReader(1 << 20).push(f);
    expect(frames).toHaveLength(1);
    expect(frames[0]!.kind).toBe(FrameKind.RAFT);
    const d = decodeRaftBody(frames[0]!.body);
    expect(d.group).toBe('topic_1/0');
    expect(d.message).toMatchObject({ type: 'Append', from: 1, to: 2, term: 3, prevIndex: 4, commit: 4 });
    const es = (d.message as Extract<RaftMessage, { type: 'Append' }>).entries;
    expect(es.map((e) => [e.index, e.type, Buffer.from(e.data).toString('hex')])).toEqual([[5, EntryType.DATA, '000102ff'], [6, EntryType.NOOP, '']]);
    // the JSON part carries lengths, never the bytes
    expect(f.toString('latin1')).not.toContain('"data"');

    const snap: RaftMessage = { type: 'Snapshot', from: 1, to: 3, term: 2, meta: { index: 9, term: 2, config: { voters: [1, 2, 3], learners: [] } }, data: Buffer.from('abc') };
    const s2 = decodeRaftBody(new FrameReader(1 << 20).push(encodeRaftFrame('__meta', snap))[0]!.body);
    expect(Buffer.from((s2.message as Extract<RaftMessage, { type: 'Snapshot' }>).data).toString()).toBe('abc');
  });

  it('splits frames across arbitrary chunk boundaries and batches', () => {
    const a = encodeRaftFrame('g', { type: 'Heartbeat', from: 1, to: 2, term: 1, commit: 0 });
    const b = encodeJsonFrame(FrameKind.RPC, { id: 1, method: 'x', body: {} });
    const all = Buffer.concat([a, b, a]);
    for (const cut of [1, 3, 7, a.length, a.length + 2]) {
      const r = new FrameReader(1 << 20);
      const got = [...r.push(all.subarray(0, cut)), ...r.push(all.subarray(cut))];
      expect(got.map((x) => x.kind)).toEqual([FrameKind.RAFT, FrameKind.RPC, FrameKind.RAFT]);
    }
  });

  it('rejects oversized lengths and malformed bodies with CORRUPT', () => {
    const big = Buffer.alloc(5);
    big.writeUInt32BE(1 << 30, 0);
    expect(() => new FrameReader(1 << 20).push(big)).toThrow(/frame length 1073741824 outside/);
    const good = new FrameReader(1 << 20).push(encodeRaftFrame('g', { type: 'TimeoutNow', from: 1, to: 2, term: 1 }))[0]!.body;
    expect(() => decodeRaftBody(good.subarray(0, good.length - 3))).toThrow(/RAFT frame/);
    expect(() => decodeRaftBody(Buffer.concat([good, Buffer.from([1])]))).toThrow(/trailing bytes/);
  });
});

describe('transport over TCP', () => {
  const open: Transport[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
  });

  async function pair(): Promise<{ t1: Transport; t2: Transport; got: Array<[string, RaftMessage]> }> {
    const got: Array<[string, RaftMessage]> = [];
    // t2 listens on a free port first; t1 (lower id) dials it; t2 never dials node 1 (higher ids only accept)
    const t2 = new Transport({ nodeId: 2, clusterId: 'c', host: '127.0.0.1', port: 0, peers: [{ nodeId: 1, host: '127.0.0.1', port: 1 }], logger: silent, onMessage: (g, m) => got.push([g, m]), onRpc: async (_f, method, body) => ({ method, body }) });
    open.push(t2);
    await t2.start();
    const t1 = new Transport({ nodeId: 1, clusterId: 'c', host: '127.0.0.1', port: 0, peers: [{ nodeId: 2, host: '127.0.0.1', port: t2.port }], logger: silent, onMessage: () => undefined, onRpc: async () => null });
    open.push(t1);
    await t1.start();
    const deadline = Date.now() + 10_000;
    while (!(t1.connected(2) && t2.connected(1))) {
      if (Date.now() > deadline) throw new Error('no connection');
      await new Promise((r) => setTimeout(r, 10));
    }
    return { t1, t2, got };
  }

  it('delivers messages and RPCs over one connection; a garbage frame closes only that connection', async () => {
    const { t1, t2, got } = await pair();
    t1.send('g1', { type: 'Heartbeat', from: 1, to: 2, term: 5, commit: 1 });
    t1.send('g2', { type: 'TimeoutNow', from: 1, to: 2, term: 5 });
    expect(await t1.rpc(2, 'echo', { a: 1 }, 5000)).toEqual({ method: 'echo', body: { a: 1 } });
    expect(got.map(([g, m]) => [g, m.type])).toEqual([['g1', 'Heartbeat'], ['g2', 'TimeoutNow']]);

    // a stranger sending garbage is cut off; the peers' connection survives
    const s = net.connect(t2.port, '127.0.0.1');
    await new Promise<void>((r) => s.once('connect', () => r()));
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    s.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    await closed;
    expect(await t1.rpc(2, 'echo', 2, 5000)).toEqual({ method: 'echo', body: 2 });
  }, 30_000);
});
