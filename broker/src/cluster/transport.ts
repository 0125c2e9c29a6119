/**
 * Inter-broker transport on the raft port (1993 by default): ONE TCP connection per peer pair. The node with the
 * LOWER id dials; the higher one only accepts (so there is never a pair of crossing connections to dedupe). A
 * newer accepted connection from the same peer replaces the older one (the peer restarted).
 *
 * Frames: u32 BE length (of what follows) | u8 kind | body.
 *   HELLO 1    JSON {nodeId, clusterId}: first frame of the dialer; a wrong cluster id closes the connection
 *   RAFT 2     u16 group length | group (utf8) | u32 JSON length | JSON message with every Buffer replaced by its
 *              length | the raw bytes (entry data in entry order, then snapshot data): no JSON of Buffers
 *   RPC 3      JSON {id, method, body}        (forwarded admin requests, e.g. create topic on the controller)
 *   RPC_RESP 4 JSON {id, ok, result | error {code, message}}
 *   BIN_REQ 5  u32 id | JSON {method, header}           (binary RPC: segment transfer chunks, see segment-transfer.ts)
 *   BIN_RESP 6 u32 id | u8 ok | u32 JSON length | JSON header (ok) or error {code, message} | raw bytes (ok only)
 * A frame longer than maxFrameBytes, an unknown kind or an undecodable body closes that connection (garbage).
 * Everything queued for a peer during one turn of the event loop goes out in ONE write (setImmediate flush).
 * The dialer reconnects with exponential backoff (50 ms → 200 ms; kept short because only the lower id dials: a
 * restarted higher-id peer is unreachable for Raft until the lower one redials it). Raft messages to a peer without a connection are
 * dropped (the core retries); RPCs fail with IO.
 * When the CURRENT connection to a peer closes (a crashed peer: its kernel closes the socket at once) onPeerDown
 * fires, so Raft can start an election without waiting a whole election timeout (RaftNode.peerDisconnected).
 * Dead connections: both ends send a PING frame (kind 7, empty) when they sent nothing else for keepaliveMs (250);
 * a connection that received nothing for deadAfterMs (3000) is closed, and a dial that does not connect within
 * connectTimeoutMs (1500) is abandoned. Without this a silent network partition (dropped packets, nothing reset)
 * leaves both ends on a connection whose TCP retransmissions back off exponentially: after healing, traffic would
 * resume only at the next retransmission — tens of seconds after a long partition. With it the dialer redials
 * (backoff ≤ 200 ms) and the link is back within about a second of healing.
 * Outgoing connections are bound to `localAddress` (default: the listener's host when that is a literal IP other
 * than the wildcard), so every packet between two brokers carries both brokers' own addresses — the partition
 * test filters on them, and a firewall rule per broker pair works the same way in production.
 */
import * as net from 'node:net';
import { LanceError, isLanceError, type LanceErrorCode } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import type { NodeId, RaftEntry, RaftMessage } from '../raft/types.ts';

export const FrameKind = { HELLO: 1, RAFT: 2, RPC: 3, RPC_RESP: 4, BIN_REQ: 5, BIN_RESP: 6, PING: 7 } as const;
export const DEFAULT_MAX_FRAME_BYTES = 128 << 20;

export interface PeerAddress { nodeId: NodeId; host: string; port: number }

// ---------------------------------------------------------------------------------------------- pure codec

function frame(kind: number, body: Buffer): Buffer {
  const head = Buffer.allocUnsafe(5);
  head.writeUInt32BE(body.length + 1, 0);
  head.writeUInt8(kind, 4);
  return Buffer.concat([head, body]);
}

export function encodeJsonFrame(kind: number, value: unknown): Buffer {
  return frame(kind, Buffer.from(JSON.stringify(value), 'utf8'));
}

type WireEntry = { term: number; index: number; type: number; len: number };

/** Pure: {group, message} → one RAFT frame (with its length prefix). */
export function encodeRaftFrame(group: string, m: RaftMessage): Buffer {
  const blobs: Uint8Array[] = [];
  let head: unknown = m;
  if (m.type === 'Append') {
    const entries: WireEntry[] = m.entries.map((e) => {
      blobs.push(e.data);
      return { term: e.term, index: e.index, type: e.type, len: e.data.byteLength };
    });
    head = { ...m, entries };
  } else if (m.type === 'Snapshot') {
    blobs.push(m.data);
    head = { ...m, data: m.data.byteLength };
  }
  const g = Buffer.from(group, 'utf8');
  const json = Buffer.from(JSON.stringify(head), 'utf8');
  const pre = Buffer.allocUnsafe(2 + g.length + 4);
  pre.writeUInt16BE(g.length, 0);
  g.copy(pre, 2);
  pre.writeUInt32BE(json.length, 2 + g.length);
  return frame(FrameKind.RAFT, Buffer.concat([pre, json, ...blobs]));
}

function garbage(msg: string): LanceError {
  return new LanceError('CORRUPT', `raft transport: ${msg}`);
}

/** Pure: RAFT frame body (after the kind byte) → {group, message}. Throws CORRUPT on anything malformed. */
export function decodeRaftBody(body: Buffer): { group: string; message: RaftMessage } {
  if (body.length < 6) throw garbage(`RAFT frame of ${body.length} bytes is too short`);
  const gl = body.readUInt16BE(0);
  if (2 + gl + 4 > body.length) throw garbage(`RAFT frame: group length ${gl} runs past the frame (${body.length} bytes)`);
  const group = body.toString('utf8', 2, 2 + gl);
  const jl = body.readUInt32BE(2 + gl);
  let pos = 2 + gl + 4;
  if (pos + jl > body.length) throw garbage(`RAFT frame: JSON length ${jl} runs past the frame`);
  let head: Record<string, unknown>;
  try {
    head = JSON.parse(body.toString('utf8', pos, pos + jl)) as Record<string, unknown>;
  } catch {
    throw garbage('RAFT frame: message header is not JSON');
  }
  pos += jl;
  if (typeof head !== 'object' || head === null || typeof head.type !== 'string' || typeof head.from !== 'number' || typeof head.to !== 'number' || typeof head.term !== 'number') {
    throw garbage('RAFT frame: message header lacks type/from/to/term');
  }
  const take = (n: unknown): Buffer => {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || pos + n > body.length) throw garbage('RAFT frame: data length runs past the frame');
    const b = body.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  if (head.type === 'Append') {
    if (!Array.isArray(head.entries)) throw garbage('RAFT frame: Append without entries');
    head.entries = (head.entries as WireEntry[]).map((e): RaftEntry => ({ term: e.term, index: e.index, type: e.type as RaftEntry['type'], data: take(e.len) }));
  } else if (head.type === 'Snapshot') {
    head.data = take(head.data);
  }
  if (pos !== body.length) throw garbage(`RAFT frame: ${body.length - pos} trailing bytes`);
  return { group, message: head as unknown as RaftMessage };
}

/** Pure: a BIN_REQ frame (with its length prefix). */
export function encodeBinRequest(id: number, method: string, header: unknown): Buffer {
  const json = Buffer.from(JSON.stringify({ method, header }), 'utf8');
  const pre = Buffer.allocUnsafe(4);
  pre.writeUInt32BE(id, 0);
  return frame(FrameKind.BIN_REQ, Buffer.concat([pre, json]));
}

export function decodeBinRequest(body: Buffer): { id: number; method: string; header: unknown } {
  if (body.length < 4) throw garbage(`BIN_REQ frame of ${body.length} bytes is too short`);
  let req: { method?: unknown; header?: unknown };
  try {
    req = JSON.parse(body.toString('utf8', 4)) as { method?: unknown; header?: unknown };
  } catch {
    throw garbage('BIN_REQ frame: body is not JSON');
  }
  if (typeof req !== 'object' || req === null || typeof req.method !== 'string') throw garbage('BIN_REQ frame without method');
  return { id: body.readUInt32BE(0), method: req.method, header: req.header ?? null };
}

export type BinResponse = { ok: true; header: unknown; data: Buffer } | { ok: false; error: { code: string; message: string; details: Record<string, unknown> } };

/** Pure: a BIN_RESP frame (with its length prefix); the data bytes travel raw after the JSON header. */
export function encodeBinResponse(id: number, r: BinResponse): Buffer {
  const json = Buffer.from(JSON.stringify(r.ok ? r.header ?? null : r.error), 'utf8');
  const pre = Buffer.allocUnsafe(9);
  pre.writeUInt32BE(id, 0);
  pre.writeUInt8(r.ok ? 1 : 0, 4);
  pre.writeUInt32BE(json.length, 5);
  return frame(FrameKind.BIN_RESP, Buffer.concat(r.ok ? [pre, json, r.data] : [pre, json]));
}

export function decodeBinResponse(body: Buffer): { id: number; r: BinResponse } {
  if (body.length < 9) throw garbage(`BIN_RESP frame of ${body.length} bytes is too short`);
  const id = body.readUInt32BE(0);
  const ok = body.readUInt8(4) === 1;
  const jl = body.readUInt32BE(5);
  if (9 + jl > body.length) throw garbage(`BIN_RESP frame: JSON length ${jl} runs past the frame`);
  let head: unknown;
  try {
    head = JSON.parse(body.toString('utf8', 9, 9 + jl));
  } catch {
    throw garbage('BIN_RESP frame: header is not JSON');
  }
  if (ok) return { id, r: { ok: true, header: head, data: body.subarray(9 + jl) } };
  const e = (head ?? {}) as { code?: unknown; message?: unknown; details?: unknown };
  return { id, r: { ok: false, error: { code: typeof e.code === 'string' ? e.code : 'INTERNAL', message: typeof e.message === 'string' ? e.message : 'remote error', details: (typeof e.details === 'object' && e.details !== null ? e.details : {}) as Record<string, unknown> } } };
}

/** Incremental frame splitter: push bytes, get whole frames {kind, body}; throws CORRUPT on an oversized length. */
export class FrameReader {
  private bufs: Buffer[] = [];
  private len = 0;
  constructor(private readonly maxFrameBytes: number) {}

  push(chunk: Buffer): Array<{ kind: number; body: Buffer }> {
    this.bufs.push(chunk);
    this.len += chunk.length;
    const out: Array<{ kind: number; body: Buffer }> = [];
    for (;;) {
      if (this.len < 4) break;
      if (this.bufs[0]!.length < 4) this.bufs = [Buffer.concat(this.bufs)];
      const n = this.bufs[0]!.readUInt32BE(0);
      if (n < 1 || n > this.maxFrameBytes) throw garbage(`frame length ${n} outside 1..${this.maxFrameBytes}`);
      if (this.len < 4 + n) break;
      const all = this.bufs.length === 1 ? this.bufs[0]! : Buffer.concat(this.bufs);
      out.push({ kind: all.readUInt8(4), body: all.subarray(5, 4 + n) });
      const rest = all.subarray(4 + n);
      this.bufs = rest.length ? [rest] : [];
      this.len = rest.length;
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------- transport

export type RpcHandler = (from: NodeId, method: string, body: unknown) => Promise<unknown>;
/** binary RPC: a JSON header in, a JSON header + raw bytes out (segment transfer chunks) */
export type BinRpcHandler = (from: NodeId, method: string, header: unknown) => Promise<{ header: unknown; data: Buffer }>;

export interface TransportOptions {
  nodeId: NodeId;
  clusterId: string;
  host: string;
  port: number;
  peers: PeerAddress[];
  logger: Logger;
  maxFrameBytes?: number;
  /** accept HELLO from a lower node id not in `peers` (cluster mode with membership changes) */
  acceptUnknownPeers?: boolean;
  onMessage: (group: string, m: RaftMessage) => void;
  onRpc: RpcHandler;
  /** BIN_REQ handler; without one every BIN_REQ is answered with an UNSUPPORTED error */
  onBinRpc?: BinRpcHandler;
  /** the current connection to `nodeId` closed (not called for a connection a newer one replaced) */
  onPeerDown?: (nodeId: NodeId) => void;
  /** source address of outgoing peer connections; default: `host` if it is a literal non-wildcard IP ('' = kernel's choice) */
  localAddress?: string;
  /** send a PING when nothing else was sent to a peer for this long (default 250 ms) */
  keepaliveMs?: number;
  /** close a connection that received nothing for this long (default 3000 ms) */
  deadAfterMs?: number;
  /** abandon a dial that did not connect within this (default 1500 ms) */
  connectTimeoutMs?: number;
}

const PING_FRAME = Buffer.from([0, 0, 0, 1, 7]);

/** Pure: the source address for outgoing peer connections (undefined = let the kernel choose). */
export function outgoingLocalAddress(host: string, explicit?: string): string | undefined {
  if (explicit !== undefined) return explicit === '' ? undefined : explicit;
  if (net.isIP(host) === 0) return undefined;
  if (host === '0.0.0.0' || host === '::' || host === '::0') return undefined;
  return host;
}

interface Peer {
  addr: PeerAddress;
  socket: net.Socket | null;
  out: Buffer[];
  flushScheduled: boolean;
  backoff: number;
  timer: NodeJS.Timeout | null;
  /** performance.now() of the last bytes received on / written to the current connection */
  lastRecvAt: number;
  lastSentAt: number;
}

export class Transport {
  private readonly opts: TransportOptions;
  private readonly peers = new Map<NodeId, Peer>();
  private server: net.Server | null = null;
  private closed = false;
  private rpcSeq = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void; timer: NodeJS.Timeout }>();
  private readonly binPending = new Map<number, { to: NodeId; resolve: (v: { header: unknown; data: Buffer }) => void; reject: (e: unknown) => void; timer: NodeJS.Timeout }>();
  private readonly accepted = new Set<net.Socket>();
  private keepaliveTimer: NodeJS.Timeout | null = null;
  port = 0;

  constructor(opts: TransportOptions) {
    this.opts = opts;
    for (const p of opts.peers) {
      if (p.nodeId === opts.nodeId) continue;
      this.peers.set(p.nodeId, { addr: p, socket: null, out: [], flushScheduled: false, backoff: 50, timer: null, lastRecvAt: 0, lastSentAt: 0 });
    }
  }

  private get max(): number { return this.opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES; }

  async start(): Promise<void> {
    const server = net.createServer((s) => this.onAccept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(new LanceError('IO', `raft listener: cannot listen on ${this.opts.host}:${this.opts.port}: ${e.code ?? e.message}`, { host: this.opts.host, port: this.opts.port }, { cause: e })));
      server.listen(this.opts.port, this.opts.host, () => resolve());
    });
    this.server = server;
    const a = server.address();
    this.port = typeof a === 'object' && a ? a.port : this.opts.port;
    for (const p of this.peers.values()) if (this.opts.nodeId < p.addr.nodeId) this.dial(p);
    this.keepaliveTimer = setInterval(() => this.keepalive(), this.opts.keepaliveMs ?? 250);
  }

  /** PING idle connections; close those that received nothing for deadAfterMs (see the header comment) */
  private keepalive(): void {
    const now = performance.now();
    const every = this.opts.keepaliveMs ?? 250;
    const dead = this.opts.deadAfterMs ?? 3000;
    for (const p of this.peers.values()) {
      const s = p.socket;
      if (!s) continue;
      if (now - p.lastRecvAt > dead) {
        this.opts.logger.warn({ peer: p.addr.nodeId, silentMs: Math.round(now - p.lastRecvAt) }, 'raft transport: nothing received from the peer for too long; closing the connection');
        s.destroy();
      } else if (now - p.lastSentAt >= every && !p.flushScheduled) {
        p.lastSentAt = now;
        s.write(PING_FRAME);
      }
    }
  }

  /**
   * Membership learned from the metadata log (brokers added after bootstrap): adds a peer or updates its address.
   * A lower own id dials it (an address change drops the old connection so the next dial uses the new address).
   */
  setPeer(addr: PeerAddress): void {
    if (addr.nodeId === this.opts.nodeId || this.closed) return;
    const p = this.peers.get(addr.nodeId);
    if (!p) {
      const np: Peer = { addr, socket: null, out: [], flushScheduled: false, backoff: 50, timer: null, lastRecvAt: 0, lastSentAt: 0 };
      this.peers.set(addr.nodeId, np);
      if (this.server && this.opts.nodeId < addr.nodeId) this.dial(np);
      return;
    }
    if (p.addr.host === addr.host && p.addr.port === addr.port) return;
    p.addr = addr;
    if (this.opts.nodeId < addr.nodeId) p.socket?.destroy();
  }

  /** A removed member: stop dialling it and drop its connection. */
  removePeer(nodeId: NodeId): void {
    const p = this.peers.get(nodeId);
    if (!p) return;
    this.peers.delete(nodeId);
    if (p.timer) clearTimeout(p.timer);
    p.timer = null;
    const s = p.socket;
    p.socket = null;
    s?.destroy();
  }

  connected(nodeId: NodeId): boolean {
    return this.peers.get(nodeId)?.socket != null;
  }

  private dial(p: Peer): void {
    if (this.closed) return;
    const localAddress = outgoingLocalAddress(this.opts.host, this.opts.localAddress);
    const s = net.connect({ host: p.addr.host, port: p.addr.port, ...(localAddress !== undefined ? { localAddress } : {}) });
    s.setNoDelay(true);
    // a SYN into a partition is dropped silently: give up and redial (the kernel would retry for ~2 minutes)
    s.setTimeout(this.opts.connectTimeoutMs ?? 1500, () => { if (!up) s.destroy(); });
    let up = false;
    s.once('connect', () => {
      up = true;
      s.setTimeout(0);
      p.backoff = 50;
      s.write(encodeJsonFrame(FrameKind.HELLO, { nodeId: this.opts.nodeId, clusterId: this.opts.clusterId }));
      this.attach(p, s);
    });
    s.on('error', () => undefined);
    s.once('close', () => {
      if (p.socket === s) this.detach(p);
      if (this.closed || this.peers.get(p.addr.nodeId) !== p) return;
      if (!up) p.backoff = Math.min(200, p.backoff * 2);
      p.timer = setTimeout(() => { p.timer = null; this.dial(p); }, up ? 50 : p.backoff);
    });
    this.readFrames(s, () => p.addr.nodeId);
  }

  private attach(p: Peer, s: net.Socket): void {
    if (p.socket && p.socket !== s) p.socket.destroy();
    p.socket = s;
    p.lastRecvAt = performance.now();
    p.lastSentAt = p.lastRecvAt;
    this.opts.logger.info({ peer: p.addr.nodeId }, 'raft transport: peer connected');
  }

  private detach(p: Peer): void {
    p.socket = null;
    if (this.closed) return;
    this.opts.logger.info({ peer: p.addr.nodeId }, 'raft transport: peer disconnected');
    this.opts.onPeerDown?.(p.addr.nodeId);
    // binary requests to that peer fail now instead of at their (long) timeout: a segment install then retries
    // from another source or the restarted peer at once (its answer, if any, would be for a dead request anyway)
    for (const [id, w] of this.binPending) {
      if (w.to !== p.addr.nodeId) continue;
      this.binPending.delete(id);
      clearTimeout(w.timer);
      w.reject(new LanceError('IO', `connection to node ${w.to} closed while waiting for its answer`, { nodeId: w.to }));
    }
  }

  private onAccept(s: net.Socket): void {
    if (this.closed) { s.destroy(); return; }
    s.setNoDelay(true);
    this.accepted.add(s);
    s.on('error', () => undefined);
    let peerId: NodeId | null = null;
    s.once('close', () => {
      this.accepted.delete(s);
      const p = peerId === null ? undefined : this.peers.get(peerId);
      if (p && p.socket === s) this.detach(p);
    });
    this.readFrames(s, () => peerId, (hello) => {
      let p = this.peers.get(hello.nodeId);
      // A lower id of the same cluster that we do not know yet: a member added after our peers list was written
      // (we learn its address from the metadata later; the accepting side does not need it).
      if (!p && hello.clusterId === this.opts.clusterId && hello.nodeId < this.opts.nodeId && this.opts.acceptUnknownPeers) {
        p = { addr: { nodeId: hello.nodeId, host: s.remoteAddress ?? '', port: 0 }, socket: null, out: [], flushScheduled: false, backoff: 50, timer: null, lastRecvAt: 0, lastSentAt: 0 };
        this.peers.set(hello.nodeId, p);
      }
      if (hello.clusterId !== this.opts.clusterId || !p || hello.nodeId >= this.opts.nodeId) {
        this.opts.logger.warn({ hello }, 'raft transport: refused a connection (unknown peer, wrong cluster id, or not a lower id dialling)');
        s.destroy();
        return;
      }
      peerId = hello.nodeId;
      this.attach(p, s);
    });
  }

  private readFrames(s: net.Socket, peerOf: () => NodeId | null, onHello?: (h: { nodeId: number; clusterId: string }) => void): void {
    const reader = new FrameReader(this.max);
    s.on('data', (chunk: Buffer) => {
      const id = peerOf();
      const p = id === null ? undefined : this.peers.get(id);
      if (p && p.socket === s) p.lastRecvAt = performance.now();
      try {
        for (const f of reader.push(chunk)) this.onFrame(s, f.kind, f.body, peerOf(), onHello);
      } catch (e) {
        this.opts.logger.warn({ err: e, peer: peerOf() }, 'raft transport: garbage frame, closing the connection');
        s.destroy();
      }
    });
  }

  private onFrame(s: net.Socket, kind: number, body: Buffer, peer: NodeId | null, onHello?: (h: { nodeId: number; clusterId: string }) => void): void {
    if (kind === FrameKind.HELLO) {
      const h = JSON.parse(body.toString('utf8')) as { nodeId: unknown; clusterId: unknown };
      if (typeof h.nodeId !== 'number' || typeof h.clusterId !== 'string') throw garbage('HELLO without nodeId/clusterId');
      if (!onHello || peer !== null) throw garbage('unexpected HELLO');
      onHello({ nodeId: h.nodeId, clusterId: h.clusterId });
      return;
    }
    if (peer === null) throw garbage(`frame kind ${kind} before HELLO`);
    if (kind === FrameKind.PING) return; // keepalive: receiving it was the point
    if (kind === FrameKind.RAFT) {
      const { group, message } = decodeRaftBody(body);
      if (message.from !== peer || message.to !== this.opts.nodeId) throw garbage(`RAFT message from ${message.from} to ${message.to} on the connection of peer ${peer}`);
      this.opts.onMessage(group, message);
    } else if (kind === FrameKind.RPC) {
      const req = JSON.parse(body.toString('utf8')) as { id: number; method: string; body: unknown };
      if (typeof req.id !== 'number' || typeof req.method !== 'string') throw garbage('RPC without id/method');
      this.opts.onRpc(peer, req.method, req.body).then(
        (result) => this.enqueue(peer, encodeJsonFrame(FrameKind.RPC_RESP, { id: req.id, ok: true, result: result ?? null })),
        (e: unknown) => this.enqueue(peer, encodeJsonFrame(FrameKind.RPC_RESP, {
          id: req.id, ok: false,
          error: isLanceError(e) ? { code: e.code, message: e.message, details: e.details ?? {} } : { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e), details: {} },
        })),
      );
    } else if (kind === FrameKind.RPC_RESP) {
      const r = JSON.parse(body.toString('utf8')) as { id: number; ok: boolean; result?: unknown; error?: { code: LanceErrorCode; message: string; details: Record<string, unknown> } };
      const w = this.pending.get(r.id);
      if (!w) return;
      this.pending.delete(r.id);
      clearTimeout(w.timer);
      if (r.ok) w.resolve(r.result);
      else w.reject(new LanceError(r.error?.code ?? 'INTERNAL', r.error?.message ?? 'remote error', r.error?.details));
    } else if (kind === FrameKind.BIN_REQ) {
      const req = decodeBinRequest(body);
      const h = this.opts.onBinRpc;
      const run = h ? h(peer, req.method, req.header) : Promise.reject(new LanceError('UNSUPPORTED', `binary rpc ${req.method}: not served by node ${this.opts.nodeId}`));
      run.then(
        (res) => this.enqueue(peer, encodeBinResponse(req.id, { ok: true, header: res.header, data: res.data })),
        (e: unknown) => this.enqueue(peer, encodeBinResponse(req.id, {
          ok: false,
          error: isLanceError(e) ? { code: e.code, message: e.message, details: e.details ?? {} } : { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e), details: {} },
        })),
      );
    } else if (kind === FrameKind.BIN_RESP) {
      const { id, r } = decodeBinResponse(body);
      const w = this.binPending.get(id);
      if (!w) return;
      this.binPending.delete(id);
      clearTimeout(w.timer);
      // copy: the frame buffer is shared with the rest of the socket read
      if (r.ok) w.resolve({ header: r.header, data: Buffer.from(r.data) });
      else w.reject(new LanceError(r.error.code as LanceErrorCode, r.error.message, r.error.details));
    } else {
      void s;
      throw garbage(`unknown frame kind ${kind}`);
    }
  }

  private enqueue(to: NodeId, buf: Buffer): boolean {
    const p = this.peers.get(to);
    if (!p || !p.socket) return false;
    p.out.push(buf);
    if (!p.flushScheduled) {
      p.flushScheduled = true;
      setImmediate(() => {
        p.flushScheduled = false;
        const bufs = p.out;
        p.out = [];
        if (p.socket && bufs.length) {
          p.socket.write(bufs.length === 1 ? bufs[0]! : Buffer.concat(bufs));
          p.lastSentAt = performance.now();
        }
      });
    }
    return true;
  }

  /** Best effort: dropped when there is no connection to `m.to`. */
  send(group: string, m: RaftMessage): void {
    this.enqueue(m.to, encodeRaftFrame(group, m));
  }

  rpc(to: NodeId, method: string, body: unknown, timeoutMs: number): Promise<unknown> {
    const id = ++this.rpcSeq;
    return new Promise((resolve, reject) => {
      if (!this.enqueue(to, encodeJsonFrame(FrameKind.RPC, { id, method, body }))) {
        reject(new LanceError('IO', `no connection to node ${to} (raft port)`, { nodeId: to }));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new LanceError('TIMEOUT', `node ${to} did not answer ${method} within ${timeoutMs} ms`, { nodeId: to }));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
    });
  }

  /** Binary RPC to a peer (BIN_REQ → BIN_RESP): IO without a connection, TIMEOUT after timeoutMs. */
  binRpc(to: NodeId, method: string, header: unknown, timeoutMs: number): Promise<{ header: unknown; data: Buffer }> {
    const id = (this.rpcSeq = (this.rpcSeq + 1) >>> 0);
    return new Promise((resolve, reject) => {
      if (!this.enqueue(to, encodeBinRequest(id, method, header))) {
        reject(new LanceError('IO', `no connection to node ${to} (raft port)`, { nodeId: to }));
        return;
      }
      const timer = setTimeout(() => {
        this.binPending.delete(id);
        reject(new LanceError('TIMEOUT', `node ${to} did not answer ${method} within ${timeoutMs} ms`, { nodeId: to }));
      }, timeoutMs);
      this.binPending.set(id, { to, resolve, reject, timer });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = null;
    for (const p of this.peers.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.socket?.destroy();
    }
    for (const s of this.accepted) s.destroy();
    for (const w of this.pending.values()) {
      clearTimeout(w.timer);
      w.reject(new LanceError('IO', 'transport closed'));
    }
    this.pending.clear();
    for (const w of this.binPending.values()) {
      clearTimeout(w.timer);
      w.reject(new LanceError('IO', 'transport closed'));
    }
    this.binPending.clear();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
