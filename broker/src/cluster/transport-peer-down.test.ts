import * as net from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { outgoingLocalAddress, Transport } from './transport.ts';

const silent = pino({ level: 'silent' });

async function until(what: string, pred: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10)); // polling interval of a condition wait
  }
}

describe('outgoingLocalAddress (pure)', () => {
  it('binds to the listener address when it is a literal IP, never to a wildcard or a name', () => {
    expect(outgoingLocalAddress('127.0.0.12')).toBe('127.0.0.12');
    expect(outgoingLocalAddress('::1')).toBe('::1');
    expect(outgoingLocalAddress('0.0.0.0')).toBeUndefined();
    expect(outgoingLocalAddress('::')).toBeUndefined();
    expect(outgoingLocalAddress('lance-0.lance')).toBeUndefined();
    expect(outgoingLocalAddress('0.0.0.0', '10.1.2.3')).toBe('10.1.2.3');
    expect(outgoingLocalAddress('127.0.0.12', '')).toBeUndefined();
  });
});

describe('transport: peer down and source address', () => {
  const open: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
  });

  it('reports the loss of the current connection to a peer on both sides (dialer and acceptor)', async () => {
    const down1: number[] = [];
    const down2: number[] = [];
    const t2 = new Transport({ nodeId: 2, clusterId: 'c', host: '127.0.0.1', port: 0, peers: [{ nodeId: 1, host: '127.0.0.1', port: 1 }], logger: silent, onMessage: () => undefined, onRpc: async () => null, onPeerDown: (id) => down2.push(id) });
    open.push(t2);
    await t2.start();
    const t1 = new Transport({ nodeId: 1, clusterId: 'c', host: '127.0.0.1', port: 0, peers: [{ nodeId: 2, host: '127.0.0.1', port: t2.port }], logger: silent, onMessage: () => undefined, onRpc: async () => null, onPeerDown: (id) => down1.push(id) });
    open.push(t1);
    await t1.start();
    await until('connected', () => t1.connected(2) && t2.connected(1));
    expect(down1).toEqual([]);
    expect(down2).toEqual([]);

    // the dialer goes away: the acceptor hears it; the closing side itself reports nothing
    await t1.close();
    await until('acceptor notices', () => down2.length > 0);
    expect(down2).toEqual([1]);
    expect(down1).toEqual([]);
  }, 30_000);

  it('a binary request to a peer whose connection closes fails at once, not at its timeout', async () => {
    let asked = 0;
    // the acceptor never answers (like a killed node that received the request)
    const t2 = new Transport({ nodeId: 2, clusterId: 'c', host: '127.0.0.1', port: 0, peers: [{ nodeId: 1, host: '127.0.0.1', port: 1 }], logger: silent, onMessage: () => undefined, onRpc: async () => null, onBinRpc: () => { asked++; return new Promise(() => undefined); } });
    await t2.start();
    const t1 = new Transport({ nodeId: 1, clusterId: 'c', host: '127.0.0.1', port: 0, peers: [{ nodeId: 2, host: '127.0.0.1', port: t2.port }], logger: silent, onMessage: () => undefined, onRpc: async () => null });
    open.push(t1);
    await t1.start();
    await until('connected', () => t1.connected(2));
    // a timeout far beyond this test's own: only the connection loss can end the request
    const req = t1.binRpc(2, 'segment.chunk', {}, 3_600_000);
    req.catch(() => undefined);
    await until('request received', () => asked > 0);
    await t2.close();
    await expect(req).rejects.toMatchObject({ code: 'IO' });
  }, 30_000);

  it('the dialer reports the acceptor going away', async () => {
    const down1: number[] = [];
    const t2 = new Transport({ nodeId: 2, clusterId: 'c', host: '127.0.0.1', port: 0, peers: [{ nodeId: 1, host: '127.0.0.1', port: 1 }], logger: silent, onMessage: () => undefined, onRpc: async () => null });
    await t2.start();
    const t1 = new Transport({ nodeId: 1, clusterId: 'c', host: '127.0.0.1', port: 0, peers: [{ nodeId: 2, host: '127.0.0.1', port: t2.port }], logger: silent, onMessage: () => undefined, onRpc: async () => null, onPeerDown: (id) => down1.push(id) });
    open.push(t1);
    await t1.start();
    await until('connected', () => t1.connected(2) && t2.connected(1));
    await t2.close();
    await until('dialer notices', () => down1.length > 0);
    expect(down1).toEqual([2]);
    expect(t1.connected(2)).toBe(false);
  }, 30_000);

  it('dials from the listener address, so packets between brokers carry both brokers\' own IPs', async () => {
    const seen: string[] = [];
    const fake = net.createServer((s) => { seen.push(s.remoteAddress ?? ''); s.destroy(); });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
    open.push({ close: () => new Promise<void>((r) => fake.close(() => r())) });
    const port = (fake.address() as net.AddressInfo).port;
    const t1 = new Transport({ nodeId: 1, clusterId: 'c', host: '127.0.0.23', port: 0, peers: [{ nodeId: 2, host: '127.0.0.1', port }], logger: silent, onMessage: () => undefined, onRpc: async () => null });
    open.push(t1);
    await t1.start();
    await until('a dial', () => seen.length > 0);
    expect(seen[0]).toMatch(/127\.0\.0\.23$/);
  }, 30_000);

  it('a silent partition (nothing reset, nothing delivered) is detected by keepalive; the link comes back after healing', async () => {
    // a TCP proxy that can stop forwarding without closing anything (like packets dropped by a firewall)
    let cut = false;
    const conns = new Set<net.Socket>();
    let t2port = 0;
    const proxy = net.createServer((c) => {
      const u = net.connect(t2port, '127.0.0.1');
      for (const s of [c, u]) {
        conns.add(s);
        s.on('error', () => undefined);
        s.once('close', () => { conns.delete(s); c.destroy(); u.destroy(); });
        if (cut) s.pause();
      }
      c.on('data', (d) => u.write(d));
      u.on('data', (d) => c.write(d));
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    open.push({ close: async () => { for (const s of conns) s.destroy(); await new Promise<void>((r) => proxy.close(() => r())); } });
    const fast = { keepaliveMs: 20, deadAfterMs: 1000, connectTimeoutMs: 300 };
    const down1: number[] = [];
    const down2: number[] = [];
    const got: string[] = [];
    const t2 = new Transport({ ...fast, nodeId: 2, clusterId: 'c', host: '127.0.0.1', port: 0, peers: [{ nodeId: 1, host: '127.0.0.1', port: 1 }], logger: silent, onMessage: (g) => got.push(g), onRpc: async () => null, onPeerDown: (id) => down2.push(id) });
    open.push(t2);
    await t2.start();
    t2port = t2.port;
    const t1 = new Transport({ ...fast, nodeId: 1, clusterId: 'c', host: '127.0.0.1', port: 0, peers: [{ nodeId: 2, host: '127.0.0.1', port: (proxy.address() as net.AddressInfo).port }], logger: silent, onMessage: () => undefined, onRpc: async () => null, onPeerDown: (id) => down1.push(id) });
    open.push(t1);
    await t1.start();
    await until('connected', () => t1.connected(2) && t2.connected(1));
    // idle but healthy: PINGs keep the connection (no message traffic at all for many deadAfterMs periods)
    const idleSince = Date.now();
    await until('idle for 2.5 dead-after periods', () => Date.now() - idleSince > 2500);
    expect(down1).toEqual([]);
    expect(down2).toEqual([]);

    cut = true;
    for (const s of conns) s.pause();
    await until('both ends give up on the silent connection', () => down1.length > 0 && down2.length > 0);
    expect(t1.connected(2) && t2.connected(1)).toBe(false);

    cut = false;
    for (const s of conns) s.resume();
    await until('reconnected', () => t1.connected(2) && t2.connected(1));
    await until('a message crosses', () => { t1.send('g-after', { type: 'TimeoutNow', from: 1, to: 2, term: 1 }); return got.includes('g-after'); });
  }, 30_000);
});
