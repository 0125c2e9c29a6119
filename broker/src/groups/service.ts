/**
 * The I/O shell around the pure GroupCoordinator: request tokens and promises, the clock and the tick timer, the
 * command log (replies wait until the commands of their step are durable/committed — in order, so no reply reveals
 * state that could still be lost), the producer-id allocator, metrics. Implements the Kafka layer's
 * `KafkaGroupApi` seam (broker/src/kafka/server.ts) so the protocol layer stays free of group logic.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { z } from 'zod';
import { LanceError } from '../common/errors.ts';
import { atomicWriteJson } from '../common/fsutil.ts';
import type { Logger } from '../common/log.ts';
import type { BrokerEndpoint } from '../kafka/backend.ts';
import {
  GROUP_API_VERSIONS, GroupApiKey, type DeleteGroupsRequest, type DescribeGroupsRequest, type HeartbeatRequest, type InitProducerIdRequest,
  type InitProducerIdResponse, type JoinGroupRequest, type LeaveGroupRequest, type ListGroupsRequest, type OffsetCommitRequest, type OffsetDeleteRequest,
  type OffsetFetchRequest, type SyncGroupRequest,
} from '../kafka/protocol/groups.ts';
import type { FindCoordinatorRequest, FindCoordinatorResponse } from '../kafka/protocol/messages.ts';
import type { GroupCommandLog } from './command-log.ts';
import { GroupCoordinator, type CoordinatorOptions, type GroupStateName, type RequestMeta, type Step } from './coordinator.ts';
import { groupErrorResponse, NOT_COORDINATOR } from './responses.ts';

/** Durable producer-id counter (standalone: a file; cluster: the metadata log). */
export interface ProducerIdAllocator {
  allocate(): Promise<number>;
}

const counterSchema = z.object({ next: z.number().int().nonnegative() });
const PRODUCER_ID_BLOCK = 1000;

/**
 * `<data>/producer-ids.json` = {"next": N}: ids below N may have been handed out. Ids are reserved in blocks (one
 * atomic write per block), so after a crash the unused rest of a block is skipped, never reused.
 */
export class FileProducerIdAllocator implements ProducerIdAllocator {
  private next = 0;
  private limit = 0;
  private chain: Promise<unknown> = Promise.resolve();
  constructor(private readonly file: string) {}

  static async open(dataDir: string): Promise<FileProducerIdAllocator> {
    const a = new FileProducerIdAllocator(path.join(dataDir, 'producer-ids.json'));
    try {
      const parsed = counterSchema.safeParse(JSON.parse(await fsp.readFile(a.file, 'utf8')));
      if (!parsed.success) throw new LanceError('CORRUPT', `${a.file}: expected {"next": <non-negative integer>}: ${parsed.error.message}`, { path: a.file });
      a.next = a.limit = parsed.data.next;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e instanceof LanceError ? e : new LanceError('CORRUPT', `${a.file}: ${String(e)}`, { path: a.file });
    }
    return a;
  }

  allocate(): Promise<number> {
    const run = this.chain.then(async () => {
      if (this.next >= this.limit) {
        const limit = this.next + PRODUCER_ID_BLOCK;
        await atomicWriteJson(this.file, { next: limit });
        this.limit = limit;
      }
      return this.next++;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }
}

export interface GroupMetricsHooks {
  onRebalances?(n: number): void;
  onOffsetCommits?(n: number): void;
}

export interface GroupServiceOptions {
  log: GroupCommandLog;
  producerIds: ProducerIdAllocator;
  logger: Logger;
  /** the node that coordinates groups (standalone: this node; cluster: the controller) */
  coordinatorEndpoint: () => BrokerEndpoint | null;
  coordinator?: Partial<Omit<CoordinatorOptions, 'newMemberId'>>;
  metrics?: GroupMetricsHooks;
  /** snapshot + compact the command log after this many appended batches (default 10000) */
  snapshotEvery?: number;
  now?: () => number;
}

export interface KafkaRequestContext {
  clientId: string | null;
  clientHost: string;
}

const TICK_MS = 100;
const COORDINATOR_NOT_AVAILABLE = 15;

/** a copy of a response with EVERY errorCode (top level and per partition/member) set to `code` */
export function withErrorCode(body: object, code: number): object {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v === null || typeof v !== 'object' || Buffer.isBuffer(v)) return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = k === 'errorCode' ? code : walk(x);
    return out;
  };
  return walk(body) as object;
}

export class GroupService {
  readonly versions = GROUP_API_VERSIONS;
  private coordinator!: GroupCoordinator;
  private nextId = 1;
  /** unanswered requests: resolver + what is needed to answer them with an error when the service stops */
  private readonly waiting = new Map<number, { resolve: (body: object) => void; apiKey: number; version: number; req: unknown }>();
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private appendsSinceSnapshot = 0;
  private closed = false;
  private readonly now: () => number;

  private constructor(private readonly opts: GroupServiceOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Rebuilds the coordinator from the command log and starts the session/rebalance timer. */
  static async start(opts: GroupServiceOptions): Promise<GroupService> {
    const s = new GroupService(opts);
    const state = await opts.log.restore();
    s.coordinator = new GroupCoordinator({ ...opts.coordinator, newMemberId: (clientId) => `${clientId || 'member'}-${randomUUID()}` }, state);
    s.timer = setInterval(() => s.run(s.coordinator.tick(s.now())), TICK_MS);
    s.timer.unref();
    return s;
  }

  /** Sends each step's replies once its commands are durable; steps complete in order. */
  private run(st: Step): void {
    if (st.rebalances > 0) this.opts.metrics?.onRebalances?.(st.rebalances);
    const commits = st.commands.reduce((n, c) => n + (c.type === 'offsets' ? c.offsets.length : 0), 0);
    if (commits > 0) this.opts.metrics?.onOffsetCommits?.(commits);
    if (st.replies.length === 0 && st.commands.length === 0) return;
    // append now (synchronously, in step order) so the log order is the order the coordinator applied them
    const durable = st.commands.length > 0 ? this.opts.log.append(st.commands) : Promise.resolve();
    if (st.commands.length > 0) this.appendsSinceSnapshot++;
    this.chain = this.chain.then(() => durable).then(
      () => this.deliver(st),
      (err: unknown) => {
        // not durable: the state may be ahead of the log; answer with a retriable error and let the process restart
        this.opts.logger.error({ err }, 'group command log append failed');
        for (const r of st.replies) this.waiting.get(r.id)?.resolve(withErrorCode(r.body, COORDINATOR_NOT_AVAILABLE));
        for (const r of st.replies) this.waiting.delete(r.id);
      },
    );
    if (this.appendsSinceSnapshot >= (this.opts.snapshotEvery ?? 10_000)) {
      this.appendsSinceSnapshot = 0;
      const snap = this.opts.log.snapshot(this.coordinator.persistent);
      this.chain = this.chain.then(() => snap).catch((err: unknown) => this.opts.logger.error({ err }, 'group snapshot failed'));
    }
  }

  private deliver(st: Step): void {
    for (const r of st.replies) {
      const w = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      w?.resolve(r.body);
    }
  }

  private call(apiKey: number, version: number, req: unknown, ctx: KafkaRequestContext, fn: (meta: RequestMeta, now: number) => Step): Promise<object> {
    // a stopped coordinator (moved to another node): the client looks the coordinator up again
    if (this.closed) return Promise.resolve(groupErrorResponse(apiKey, version, req, NOT_COORDINATOR));
    const meta: RequestMeta = { id: this.nextId++, version, clientId: ctx.clientId ?? '', clientHost: ctx.clientHost };
    const p = new Promise<object>((resolve) => this.waiting.set(meta.id, { resolve, apiKey, version, req }));
    this.run(fn(meta, this.now()));
    return p;
  }

  /** The Kafka layer's entry point for the group APIs (and InitProducerId). */
  handle(apiKey: number, version: number, req: unknown, ctx: KafkaRequestContext): Promise<object> | object {
    const c = this.coordinator;
    switch (apiKey) {
      case 10:
        return this.findCoordinator(req as FindCoordinatorRequest, version);
      case GroupApiKey.JoinGroup:
        return this.call(apiKey, version, req, ctx, (m, now) => c.joinGroup(req as JoinGroupRequest, m, now));
      case GroupApiKey.SyncGroup:
        return this.call(apiKey, version, req, ctx, (m, now) => c.syncGroup(req as SyncGroupRequest, m, now));
      case GroupApiKey.Heartbeat:
        return this.call(apiKey, version, req, ctx, (m, now) => c.heartbeat(req as HeartbeatRequest, m, now));
      case GroupApiKey.LeaveGroup:
        return this.call(apiKey, version, req, ctx, (m, now) => c.leaveGroup(req as LeaveGroupRequest, m, now));
      case GroupApiKey.OffsetCommit:
        return this.call(apiKey, version, req, ctx, (m, now) => c.offsetCommit(req as OffsetCommitRequest, m, now));
      case GroupApiKey.OffsetFetch:
        return this.call(apiKey, version, req, ctx, (m) => c.offsetFetch(req as OffsetFetchRequest, m));
      case GroupApiKey.DescribeGroups:
        return this.call(apiKey, version, req, ctx, (m) => c.describeGroups(req as DescribeGroupsRequest, m));
      case GroupApiKey.ListGroups:
        return this.call(apiKey, version, req, ctx, (m) => c.listGroups(req as ListGroupsRequest, m));
      case GroupApiKey.DeleteGroups:
        return this.call(apiKey, version, req, ctx, (m) => c.deleteGroups(req as DeleteGroupsRequest, m));
      case GroupApiKey.OffsetDelete:
        return this.call(apiKey, version, req, ctx, (m) => c.offsetDelete(req as OffsetDeleteRequest, m));
      case GroupApiKey.InitProducerId:
        return this.initProducerId(req as InitProducerIdRequest);
      default:
        throw new LanceError('INTERNAL', `group service: no handler for API key ${apiKey}`);
    }
  }

  findCoordinator(req: FindCoordinatorRequest, version: number): FindCoordinatorResponse {
    return findCoordinatorResponse(req, version, this.opts.coordinatorEndpoint());
  }

  initProducerId(req: InitProducerIdRequest): Promise<InitProducerIdResponse> {
    return initProducerIdResponse(req, this.opts.producerIds);
  }

  // ------------------------------------------------------------------ admin (lnc groups) and metrics

  list(): Array<{ groupId: string; protocolType: string; state: GroupStateName; members: number }> {
    return this.coordinator.list();
  }

  describe(groupId: string): ReturnType<GroupCoordinator['describe']> & { generation: number; offsets: Array<{ topic: string; partition: number; offset: number; metadata: string }> } {
    const pg = this.coordinator.persistent.groups.get(groupId);
    const offsets = [...(pg?.offsets ?? new Map())].map(([k, o]) => {
      const i = k.lastIndexOf('\u0000');
      return { topic: k.slice(0, i), partition: Number(k.slice(i + 1)), offset: o.offset, metadata: o.metadata };
    });
    return { ...this.coordinator.describe(groupId), generation: this.coordinator.generation(groupId), offsets };
  }

  committed(groupId: string, topic: string, partition: number): number | null {
    return this.coordinator.committed(groupId, topic, partition)?.offset ?? null;
  }

  /** sets offsets of an Empty group; resolves when durable */
  resetOffsets(groupId: string, offsets: Array<{ topic: string; partition: number; offset: number }>): Promise<void> {
    const st = this.coordinator.resetOffsets(groupId, offsets, this.now());
    if (st.errorCode !== 0) {
      return Promise.reject(new LanceError('CONFLICT', `group ${groupId} is ${this.coordinator.groupState(groupId)}: offsets can only be reset while it has no members (stop its consumers first)`, { group: groupId }));
    }
    const durable = this.opts.log.append(st.commands);
    this.chain = this.chain.then(() => durable);
    return durable;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.chain.catch(() => undefined);
    // requests still held (JoinGroups waiting for the join phase, SyncGroups for the leader): this coordinator is gone
    for (const [id, w] of this.waiting) {
      this.waiting.delete(id);
      w.resolve(groupErrorResponse(w.apiKey, w.version, w.req, NOT_COORDINATOR));
    }
    try {
      await this.opts.log.snapshot(this.coordinator.persistent);
    } finally {
      await this.opts.log.close();
    }
  }
}

/** FindCoordinator answer pointing at `ep` (the node that coordinates groups); transactions are not supported. */
export function findCoordinatorResponse(req: FindCoordinatorRequest, version: number, ep: BrokerEndpoint | null): FindCoordinatorResponse {
  const keys = version >= 4 ? req.coordinatorKeys : [req.key];
  // key type 1 = transaction: transactions are not supported
  const one = (key: string): { nodeId: number; host: string; port: number; errorCode: number; errorMessage: string | null } => {
    if (req.keyType === 1) return { nodeId: -1, host: '', port: -1, errorCode: 35, errorMessage: 'transactions are not supported by this broker' };
    if (!ep) return { nodeId: -1, host: '', port: -1, errorCode: 15, errorMessage: `no coordinator available for group ${key}` };
    return { nodeId: ep.nodeId, host: ep.host, port: ep.port, errorCode: 0, errorMessage: null };
  };
  const first = one(keys[0] ?? '');
  return {
    throttleTimeMs: 0, errorCode: first.errorCode, errorMessage: first.errorMessage, nodeId: first.nodeId, host: first.host, port: first.port,
    coordinators: version >= 4 ? keys.map((key) => ({ key, ...one(key) })) : [],
  };
}

/** InitProducerId: idempotent producers get an id from `producerIds` (or an epoch bump); transactional ones an error. */
export async function initProducerIdResponse(req: InitProducerIdRequest, producerIds: ProducerIdAllocator): Promise<InitProducerIdResponse> {
  if (req.transactionalId !== null) {
    // transactions are out of scope: a transactional producer fails fast with a clear, non-retriable error
    return { throttleTimeMs: 0, errorCode: 53 /* TRANSACTIONAL_ID_AUTHORIZATION_FAILED */, producerId: -1, producerEpoch: -1 };
  }
  if (req.producerId >= 0 && req.producerEpoch >= 0) {
    // KIP-360 epoch bump of a known idempotent producer; at the epoch limit it gets a fresh id
    if (req.producerEpoch < 0x7ffe) return { throttleTimeMs: 0, errorCode: 0, producerId: req.producerId, producerEpoch: req.producerEpoch + 1 };
  }
  const producerId = await producerIds.allocate();
  return { throttleTimeMs: 0, errorCode: 0, producerId, producerEpoch: 0 };
}
