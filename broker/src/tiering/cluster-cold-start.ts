/**
 * Multi-node cold start (cluster mode): a node starting on an EMPTY data dir, with an object store holding restore
 * points of its cluster id, restores from the bucket only when the WHOLE cluster is gone, and only the restore point
 * its peers restore too.
 *
 * How a fresh node learns whether the cluster is gone: before anything opens its data dir, it serves
 * `GET /v1/node` on its own admin port ({state: 'fresh' | 'restoring', restorePoint}) and polls the same route on
 * every peer's admin port (from cluster.peers / the peers file). A running broker answers
 * `{state: 'running', metaTerm, metaLastIndex, restoredFrom}` there (broker/src/admin/server.ts).
 *
 *   - a peer that runs with live state (metadata term or log > 0) → the cluster is alive: NO restore, the node
 *     starts empty and catches up through Raft like any wiped node (the bucket is not read for metadata);
 *   - every peer fresh (or already restoring) → they exchange their choices: each takes the newest restore point
 *     any of them saw (a node whose own choice was older logs the switch); a peer already restoring fixes the
 *     choice and the decision (restore it at once); otherwise the node restores once every peer reports the same one;
 *   - peers that never answer: after `peerWaitMs`, a MAJORITY of the cluster (this node included) fresh and
 *     agreeing suffices (a node alone never restores for a cluster of several; peerWaitMs 0 = wait for all);
 *   - after its restore a node waits (bounded) until no peer it agreed with is still `fresh` (undecided) before its
 *     broker starts: a slower peer then never sees it `running` (which would make that peer join instead);
 *   - no restore point in the bucket → the node starts empty.
 *
 * The decision is `decideColdStart` (pure); `clusterColdStart` does the I/O and then runs restoreClusterNode.
 */
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { NodeStatusSchema, type NodeStatus } from '../admin/schemas.ts';
import { LanceError, isLanceError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { createObjectStore, type ObjectStoreConfig } from './config.ts';
import type { DrMetrics } from './metadata-dr.ts';
import { restoreClusterNode, type ClusterRestoreReport } from './cluster-restore.ts';
import { dataDirIsFresh, findRestorePoint, RESTORE_MARKER, wipeForRestore } from './restore.ts';

export { NodeStatusSchema, type NodeStatus };

export interface Choice {
  key: string;
  takenAtMs: number;
}

export type PeerView = NodeStatus | { state: 'unreachable'; error: string };

export type ColdStartDecision =
  | { action: 'wait'; choice: Choice; waitingFor: number[] }
  | { action: 'restore'; choice: Choice; agreed: number[]; switchedFrom: Choice | null }
  | { action: 'join'; reason: string }
  | { action: 'skip'; reason: string };

const newer = (a: Choice | null, b: Choice | null): Choice | null => {
  if (!a) return b;
  if (!b) return a;
  return b.takenAtMs > a.takenAtMs || (b.takenAtMs === a.takenAtMs && b.key > a.key) ? b : a;
};

/**
 * Pure: given this node's own choice and the latest answer of every peer, what to do now.
 * `own` = the newest restore point this node found itself (null: none in the bucket).
 */
export function decideColdStart(input: {
  nodeId: number; own: Choice | null; peers: ReadonlyMap<number, PeerView>; elapsedMs: number; peerWaitMs: number;
}): ColdStartDecision {
  for (const [id, v] of input.peers) {
    if (v.state === 'running' && (v.metaTerm > 0 || v.metaLastIndex > 0)) {
      return { action: 'join', reason: `node ${id} is running with live state (metadata term ${v.metaTerm}, log ${v.metaLastIndex}${v.restoredFrom ? `, restored from ${v.restoredFrom}` : ''}): catching up through Raft instead of restoring` };
    }
  }
  if (!input.own) return { action: 'skip', reason: 'no restore point of this cluster in the object store' };
  // a peer already restoring has fixed the choice (its restore cannot be taken back)
  let fixed: Choice | null = null;
  for (const v of input.peers.values()) {
    if (v.state === 'restoring' && v.restorePoint) fixed = newer(fixed, { key: v.restorePoint, takenAtMs: v.takenAtMs });
  }
  let choice: Choice = input.own;
  if (fixed) choice = fixed;
  else {
    for (const v of input.peers.values()) {
      if (v.state === 'fresh' && v.restorePoint) choice = newer(choice, { key: v.restorePoint, takenAtMs: v.takenAtMs })!;
    }
  }
  const agreed = [input.nodeId];
  const waitingFor: number[] = [];
  for (const [id, v] of input.peers) {
    if ((v.state === 'fresh' || v.state === 'restoring') && v.restorePoint === choice.key) agreed.push(id);
    else waitingFor.push(id);
  }
  agreed.sort((a, b) => a - b);
  const switchedFrom = choice.key === input.own.key ? null : input.own;
  // a peer already restoring means the cluster has decided (it saw no live state and enough agreement): follow it
  if (waitingFor.length === 0 || fixed) return { action: 'restore', choice, agreed, switchedFrom };
  const clusterSize = input.peers.size + 1;
  // peerWaitMs 0: every peer must answer (never a majority alone)
  if (input.peerWaitMs > 0 && input.elapsedMs >= input.peerWaitMs && agreed.length > clusterSize / 2) return { action: 'restore', choice, agreed, switchedFrom };
  return { action: 'wait', choice, waitingFor };
}

export interface ColdStartPeer {
  nodeId: number;
  host: string;
  adminPort: number;
}

/** GET /v1/node of one peer (bounded); an unreachable or confused peer is 'unreachable' with the reason. */
export function probePeer(peer: ColdStartPeer, timeoutMs: number): Promise<PeerView> {
  return new Promise((resolve) => {
    const req = http.get({ host: peer.host, port: peer.adminPort, path: '/v1/node', timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (e) => resolve({ state: 'unreachable', error: e.message }));
      res.on('end', () => {
        if (res.statusCode !== 200) return resolve({ state: 'unreachable', error: `HTTP ${res.statusCode ?? '?'}` });
        try {
          const r = NodeStatusSchema.safeParse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          resolve(r.success ? r.data : { state: 'unreachable', error: `unexpected answer: ${r.error.issues[0]!.path.join('.')}: ${r.error.issues[0]!.message}` });
        } catch (e) {
          resolve({ state: 'unreachable', error: `not JSON: ${(e as Error).message}` });
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ state: 'unreachable', error: e.message }));
  });
}

/** The small HTTP server a fresh node answers `GET /v1/node` (and /health/live) with until its broker starts. */
async function startStatusServer(host: string, port: number, status: () => NodeStatus): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    let code = 404;
    let body: unknown = { code: 'NOT_FOUND', message: `${url.pathname}: this node is cold-starting (only /v1/node and /health/live answer)` };
    if (req.method === 'GET' && url.pathname === '/v1/node') {
      code = 200;
      body = status();
    } else if (req.method === 'GET' && url.pathname === '/health/live') {
      code = 200;
      body = { status: 'ok' };
    }
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), connection: 'close' });
    res.end(text);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  }).catch((e: unknown) => {
    throw new LanceError('IO', `cold start: cannot listen on the admin port ${host}:${port}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { port }, { cause: e });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** how long a restored node waits for the peers it agreed with to report `restoring` before its broker starts */
const DECIDED_WAIT_MS = 60_000;

/**
 * Bounded barrier after this node's restore: no peer it agreed with still reports `fresh` (undecided). Every other
 * answer means the peer has decided (`restoring`, `running`) or left its cold start (unreachable: starting its
 * broker, or crashed). Without it a peer polling slowly could see this node `running` and join instead of restoring
 * (safe, but it would then copy everything from the others).
 */
async function waitForPeersDecided(opts: ClusterColdStartOptions, ids: number[], pollMs: number, log: Logger): Promise<void> {
  const t0 = Date.now();
  const pending = new Set(ids);
  while (pending.size > 0) {
    await Promise.all([...pending].map(async (id) => {
      const peer = opts.peers.find((p) => p.nodeId === id);
      if (!peer) return pending.delete(id);
      const v = await probePeer(peer, 1000);
      if (v.state !== 'fresh') pending.delete(id);
      return undefined;
    }));
    if (pending.size === 0) return;
    if (Date.now() - t0 > DECIDED_WAIT_MS) {
      log.warn({ waitingFor: [...pending] }, 'cold start: peers are still undecided; starting anyway (they will join through Raft)');
      return;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export interface ClusterColdStartOptions {
  dataDir: string;
  storeConfig: ObjectStoreConfig | undefined;
  enabled: boolean;
  clusterId: string;
  nodeId: number;
  /** every other node of the cluster (admin endpoints) */
  peers: ColdStartPeer[];
  /** where this node's admin API will listen (the status server uses it until then) */
  admin: { host: string; port: number };
  /** after this, a majority of fresh, agreeing nodes suffices (peers that never answer) */
  peerWaitMs: number;
  pollMs?: number;
  logger: Logger;
  metrics?: DrMetrics;
}

/** Every peer's GET /v1/node; a peer answering for another cluster id (a stale address) counts as unreachable. */
async function probeAll(opts: ClusterColdStartOptions): Promise<Map<number, PeerView>> {
  const views = new Map<number, PeerView>();
  await Promise.all(opts.peers.map(async (p) => {
    const v = await probePeer(p, 1000);
    views.set(p.nodeId, v.state !== 'unreachable' && v.clusterId !== opts.clusterId ? { state: 'unreachable', error: `answers for cluster ${v.clusterId}` } : v);
  }));
  return views;
}

/** What an interrupted restore left is not a usable data dir: the node starts empty (and catches up) instead. */
async function discardInterrupted(dataDir: string, marker: string, log: Logger): Promise<void> {
  await wipeForRestore(dataDir);
  await fsp.rm(marker, { force: true });
  log.warn({ path: dataDir }, 'cold start: removed what an interrupted restore left in the data dir');
}

export type ClusterColdStartResult =
  | { restored: ClusterRestoreReport; decision: Extract<ColdStartDecision, { action: 'restore' }>; seconds: number }
  | { restored: null; reason: string };

/**
 * Runs before anything opens the data dir. Returns what it did; the caller then starts the broker as usual (on a
 * restored data dir, on an empty one, or on its existing one).
 */
export async function clusterColdStart(opts: ClusterColdStartOptions): Promise<ClusterColdStartResult> {
  const marker = path.join(opts.dataDir, RESTORE_MARKER);
  const interrupted = await fsp.stat(marker).then(() => true, () => false);
  if (!opts.storeConfig || !opts.enabled) {
    if (interrupted) throw new LanceError('CONFLICT', `${marker}: a restore into this data dir did not finish; run lnc restore again (or configure the object store for cold-start recovery)`, { path: marker });
    return { restored: null, reason: opts.storeConfig ? 'cold start disabled (tiering.coldStartRestore=false)' : 'no object store' };
  }
  if (!interrupted && !(await dataDirIsFresh(opts.dataDir))) return { restored: null, reason: 'data dir has data' };
  const log = opts.logger.child({ component: 'cold-start' });
  const store = createObjectStore({ ...opts.storeConfig, listDelimiter: 'client' }, { log: opts.logger.child({ component: 'object-store' }) });
  try {
    let own: Choice | null = null;
    try {
      const found = await findRestorePoint(store, { clusterId: opts.clusterId, sourceClusterId: opts.clusterId });
      own = { key: found.key, takenAtMs: found.takenAtMs };
    } catch (e) {
      if (!isLanceError(e, 'NOT_FOUND')) {
        // the bucket cannot be read: a wiped node of a LIVE cluster does not need it (it joins); otherwise fail
        const d = decideColdStart({ nodeId: opts.nodeId, own: null, peers: await probeAll(opts), elapsedMs: 0, peerWaitMs: opts.peerWaitMs });
        if (d.action !== 'join') throw e;
        log.warn({ err: e, reason: d.reason }, `cold start: the object store is not readable, but ${d.reason}`);
        if (interrupted) await discardInterrupted(opts.dataDir, marker, log);
        return { restored: null, reason: d.reason };
      }
    }
    if (!own) {
      if (interrupted) throw new LanceError('NOT_FOUND', `${marker}: an interrupted restore, but no restore point of cluster ${opts.clusterId} in ${store.url}`, { path: marker });
      log.info({ objectStore: store.url, clusterId: opts.clusterId }, 'cold start: empty data dir, no restore point of this cluster in the object store; starting empty');
      return { restored: null, reason: 'no restore point' };
    }
    let state: 'fresh' | 'restoring' = 'fresh';
    let current: Choice = own;
    const server = await startStatusServer(opts.admin.host, opts.admin.port, () => ({ state, nodeId: opts.nodeId, clusterId: opts.clusterId, restorePoint: current.key, takenAtMs: current.takenAtMs }));
    try {
      log.info({ objectStore: store.url, restorePoint: own.key, takenAt: new Date(own.takenAtMs).toISOString(), peers: opts.peers.map((p) => p.nodeId), peerWaitMs: opts.peerWaitMs },
        'cold start: empty data dir and a restore point in the object store; asking the peers whether the cluster is gone');
      const t0 = Date.now();
      const pollMs = opts.pollMs ?? 250;
      let lastLog = 0;
      let decision: ColdStartDecision;
      for (;;) {
        const views = await probeAll(opts);
        decision = decideColdStart({ nodeId: opts.nodeId, own, peers: views, elapsedMs: Date.now() - t0, peerWaitMs: opts.peerWaitMs });
        if (decision.action !== 'wait') break;
        if (decision.choice.key !== current.key) {
          log.info({ from: current.key, to: decision.choice.key }, 'cold start: a peer saw a newer restore point; taking it');
          current = decision.choice;
        }
        if (Date.now() - lastLog > 5000) {
          lastLog = Date.now();
          log.info({ restorePoint: current.key, waitingFor: decision.waitingFor, peers: Object.fromEntries([...views].map(([id, v]) => [id, v.state === 'unreachable' ? `unreachable (${v.error})` : `${v.state}${'restorePoint' in v ? ` ${v.restorePoint}` : ''}`])) }, 'cold start: waiting for the peers to agree');
        }
        await new Promise((r) => setTimeout(r, pollMs));
      }
      if (decision.action === 'join' || decision.action === 'skip') {
        if (interrupted) await discardInterrupted(opts.dataDir, marker, log);
        log.warn({ reason: decision.reason }, `cold start: not restoring — ${decision.reason}`);
        return { restored: null, reason: decision.reason };
      }
      if (decision.switchedFrom) log.warn({ own: decision.switchedFrom.key, agreed: decision.choice.key }, 'cold start: a peer chose a newer restore point than this node; restoring the newer one');
      current = decision.choice;
      state = 'restoring';
      log.info({ restorePoint: decision.choice.key, takenAt: new Date(decision.choice.takenAtMs).toISOString(), agreed: decision.agreed }, 'cold start: the cluster is gone and the nodes agree; restoring');
      const r0 = Date.now();
      const report = await restoreClusterNode({ store, dataDir: opts.dataDir, clusterId: opts.clusterId, nodeId: opts.nodeId, restorePointKey: decision.choice.key, logger: opts.logger });
      const seconds = (Date.now() - r0) / 1000;
      opts.metrics?.recoverySeconds.set(seconds);
      await waitForPeersDecided(opts, decision.agreed.filter((id) => id !== opts.nodeId), pollMs, log);
      log.info({
        restorePoint: report.restorePoint.key, takenAt: report.restorePoint.takenAt, topics: report.topics.map((t) => t.name), replicas: report.partitions.length,
        groups: report.groups.length, bytes: report.bytes, objects: report.objects, durationSeconds: seconds, agreedWith: decision.agreed, warnings: report.warnings,
      }, `cold start: restored ${report.topics.length} topic(s), ${report.partitions.length} replica(s), ${report.groups.length} group(s), ${report.bytes} bytes from ${store.url} in ${seconds.toFixed(1)} s`);
      return { restored: report, decision, seconds };
    } finally {
      await server.close();
    }
  } finally {
    await store.close().catch(() => undefined);
  }
}
