/**
 * Consumer groups and producer ids in CLUSTER mode, replicated through the metadata Raft log (`__meta`).
 *
 * - The group coordinator runs on the CONTROLLER only (the metadata group's leader), as one `GroupService`
 *   (broker/src/groups/) whose `GroupCommandLog` is `MetadataGroupCommandLog`: `append(cmds)` proposes ONE metadata
 *   entry `{op: 'groups', cmds}` and resolves when it is committed; every node applies it to `MetadataState.groups`
 *   (metadata.ts), which metadata snapshots carry. The service starts when this node is the controller AND has applied
 *   the no-op of its term (`controllerReadyTerm()`: its state is then complete) from a deep copy of the applied
 *   state; it stops when the node stops being the controller (held requests are answered NOT_COORDINATOR). Groups
 *   come back Empty with their generations and offsets; clients rejoin (as after a Kafka coordinator move).
 * - `ClusterGroups` is the Kafka layer's `KafkaGroupApi` on EVERY node: FindCoordinator answers the controller's
 *   Kafka endpoint; group requests on a non-controller answer NOT_COORDINATOR (16) so clients look it up again (the
 *   controller while it is loading: COORDINATOR_LOAD_IN_PROGRESS, 14); ListGroups on a non-controller is an empty
 *   list (Kafka: each broker lists the groups it coordinates). InitProducerId is answered by any node.
 * - Producer ids: `MetadataProducerIdAllocator` on every node hands out ids from a local block; a new block is
 *   reserved by the controller with `{op: 'producerIdBlock', from, next}` (applied only if `from` is the current
 *   high-water mark, so blocks never overlap; the controller serialises its proposals). Unused ids of a block are
 *   skipped after a restart, never reused.
 * - Admin (`lnc groups`, /v1/groups) on any node: the controller answers (forwarded over the raft transport).
 */
import { z } from 'zod';
import type { Registry } from 'prom-client';
import { isLanceError, LanceError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import {
  GroupDetailSchema, GroupListSchema, ResetOffsetsRequestSchema, ResetOffsetsResponseSchema, type GroupDetail, type GroupSummary, type ResetOffsetsRequest, type ResetOffsetsResponse,
} from '../admin/schemas.ts';
import type { BrokerEndpoint } from '../kafka/backend.ts';
import { GROUP_API_VERSIONS, GroupApiKey, type InitProducerIdRequest } from '../kafka/protocol/groups.ts';
import type { FindCoordinatorRequest } from '../kafka/protocol/messages.ts';
import type { KafkaGroupApi } from '../kafka/server.ts';
import { groupsAdmin } from '../groups/admin.ts';
import type { GroupCommandLog } from '../groups/command-log.ts';
import { cloneGroupsState, type GroupCommand, type GroupsState } from '../groups/commands.ts';
import { registerGroupMetrics, type GroupMetrics } from '../groups/metrics.ts';
import { COORDINATOR_LOAD_IN_PROGRESS, groupErrorResponse, NOT_COORDINATOR } from '../groups/responses.ts';
import {
  findCoordinatorResponse, GroupService, initProducerIdResponse, type GroupServiceOptions, type KafkaRequestContext, type ProducerIdAllocator,
} from '../groups/service.ts';
import type { MetaCommand, MetadataState } from './metadata.ts';

/** What cluster-groups needs of the ClusterBroker (its hooks; a narrow seam). */
export interface GroupsClusterHost {
  readonly nodeId: number;
  metadataState(): Readonly<MetadataState>;
  controllerId(): number;
  controllerReadyTerm(): number | null;
  metadataLastIndex(): number;
  onStateChange(listener: () => void): () => void;
  proposeMetadata(c: MetaCommand): Promise<{ ok: boolean; error?: string }>;
  callController(method: string, body: unknown): Promise<unknown>;
  registerControllerOp(method: string, fn: (body: unknown) => Promise<unknown>): void;
  kafkaEndpointOf(nodeId: number): BrokerEndpoint | null;
  highWatermarkOf(topic: string, partition: number): number | null;
  listOffsets(topic: string, partition: number, timestamp: number): Promise<{ offset: number }>;
}

export const PRODUCER_ID_BLOCK = 1000;

/** GroupCommandLog over the metadata Raft log (controller only). */
export class MetadataGroupCommandLog implements GroupCommandLog {
  constructor(private readonly host: GroupsClusterHost, private readonly onFailure: (err: unknown) => void) {}

  append(cmds: GroupCommand[]): Promise<void> {
    if (cmds.length === 0) return Promise.resolve();
    return this.host.proposeMetadata({ op: 'groups', cmds }).then(
      (r) => {
        if (!r.ok) throw new LanceError('INTERNAL', `group commands not applied: ${r.error ?? 'unknown'}`);
      },
      (err: unknown) => {
        this.onFailure(err);
        throw err;
      },
    );
  }

  /** the applied replicated state (a copy: the coordinator applies its own commands before they commit) */
  restore(): Promise<GroupsState> {
    return Promise.resolve(cloneGroupsState(this.host.metadataState().groups));
  }

  /** the metadata log is snapshotted as a whole (metadata.ts snapshotMetadata carries the groups) */
  snapshot(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

const blockSchema = z.object({ from: z.number().int().nonnegative(), next: z.number().int().positive() });

/** Producer ids from blocks reserved in the metadata log; any node. */
export class MetadataProducerIdAllocator implements ProducerIdAllocator {
  private next = 0;
  private limit = 0;
  private chain: Promise<unknown> = Promise.resolve();
  constructor(private readonly host: GroupsClusterHost) {}

  allocate(): Promise<number> {
    const run = this.chain.then(async () => {
      if (this.next >= this.limit) {
        const b = blockSchema.parse(await this.host.callController('producerIds.block', { count: PRODUCER_ID_BLOCK }));
        this.next = b.from;
        this.limit = b.next;
      }
      return this.next++;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }
}

/** Controller side of 'producerIds.block': proposals one at a time, each from the applied high-water mark. */
export function producerIdBlockServer(host: GroupsClusterHost): (body: unknown) => Promise<unknown> {
  let chain: Promise<unknown> = Promise.resolve();
  return (body) => {
    const count = z.object({ count: z.number().int().min(1).max(1_000_000) }).parse(body).count;
    const run = chain.then(async () => {
      for (let attempt = 0; attempt < 5; attempt++) {
        const from = host.metadataState().nextProducerId;
        const r = await host.proposeMetadata({ op: 'producerIdBlock', from, next: from + count });
        if (r.ok) return { from, next: from + count };
      }
      throw new LanceError('CONFLICT', 'producer id block: the high-water mark kept moving; retry');
    });
    chain = run.catch(() => undefined);
    return run;
  };
}

/**
 * Group requests that only read the coordinator's state. Their answers wait for a read barrier: Kafka's contract is
 * that once OffsetCommit answered NONE, every later OffsetFetch from any coordinator returns that offset or a newer
 * one — a controller that was deposed without knowing it yet (a long pause, cut off from the others) still runs its
 * coordinator and would answer from state that lacks commits the new controller acknowledged.
 */
const READ_ONLY_APIS: ReadonlySet<number> = new Set([GroupApiKey.OffsetFetch, GroupApiKey.DescribeGroups, GroupApiKey.ListGroups]);

/**
 * Raft read barrier by log: an empty `{op: 'groups', cmds: []}` entry proposed in the coordinator's term AFTER the
 * reads it covers; once it commits in that term, no other controller could have committed anything before those
 * reads (a majority accepted our term after them). Reads share barriers: one in flight, and one queued for every read
 * that arrived after the in-flight one was proposed (so a read never relies on a barrier proposed before it).
 */
export class ReadBarrier {
  private inflight: { term: number; done: Promise<void> } | null = null;
  private queued: { term: number; done: Promise<void> } | null = null;
  constructor(private readonly host: Pick<GroupsClusterHost, 'proposeMetadata' | 'controllerReadyTerm'>) {}

  /** resolves when a barrier proposed now (or later) committed in `term`; rejects if this node is not its controller */
  confirm(term: number): Promise<void> {
    if (this.inflight === null) {
      const done = this.propose(term).finally(() => {
        if (this.inflight?.done === done) this.inflight = null;
      });
      this.inflight = { term, done };
      return done;
    }
    if (this.queued !== null && this.queued.term === term) return this.queued.done;
    const after = this.inflight.done.catch(() => undefined);
    const queued = { term, done: after.then(() => { if (this.queued === queued) this.queued = null; return this.confirm(term); }) };
    this.queued = queued;
    return queued.done;
  }

  private async propose(term: number): Promise<void> {
    if (this.host.controllerReadyTerm() !== term) throw new LanceError('NOT_LEADER', `the controller of term ${term} is gone`);
    // proposeMetadata rejects when the entry at that index ends up from another term (a new controller)
    const r = await this.host.proposeMetadata({ op: 'groups', cmds: [] });
    if (!r.ok || this.host.controllerReadyTerm() !== term) throw new LanceError('NOT_LEADER', `read barrier of term ${term} not confirmed`);
  }
}

export interface ClusterGroupsOptions {
  host: GroupsClusterHost;
  logger: Logger;
  registry: Registry;
  coordinator?: GroupServiceOptions['coordinator'];
}

/** The group layer of one cluster node: KafkaGroupApi on every node, the coordinator on the controller. */
export class ClusterGroups implements KafkaGroupApi {
  readonly versions = GROUP_API_VERSIONS;
  private readonly host: GroupsClusterHost;
  private readonly logger: Logger;
  private readonly metrics: GroupMetrics;
  private readonly producerIds: MetadataProducerIdAllocator;
  private service: { term: number; svc: GroupService } | null = null;
  private starting = false;
  /** after a failed append: the service restarts only once the metadata log applied everything proposed until then */
  private restartAfterIndex = 0;
  private stopping: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly unsubscribe: () => void;
  private readonly readBarrier: ReadBarrier;

  constructor(private readonly opts: ClusterGroupsOptions) {
    this.host = opts.host;
    this.readBarrier = new ReadBarrier(this.host);
    this.logger = opts.logger;
    this.metrics = registerGroupMetrics(opts.registry);
    this.producerIds = new MetadataProducerIdAllocator(this.host);
    this.host.registerControllerOp('producerIds.block', producerIdBlockServer(this.host));
    this.host.registerControllerOp('groups.list', () => this.confirmedRead((s) => this.adminOf(s).list()));
    this.host.registerControllerOp('groups.describe', (body) => {
      const group = z.object({ group: z.string().min(1) }).parse(body).group;
      return this.confirmedRead((s) => this.adminOf(s).describe(group));
    });
    this.host.registerControllerOp('groups.resetOffsets', (body) => {
      const b = z.object({ group: z.string().min(1), req: ResetOffsetsRequestSchema }).parse(body);
      return this.onControllerService().then((s) => this.adminOf(s).resetOffsets(b.group, b.req));
    });
    this.unsubscribe = this.host.onStateChange(() => this.reconcile());
    this.reconcile();
  }

  /** the running coordinator, if this node is the controller and it is loaded */
  get coordinator(): GroupService | null {
    return this.service?.svc ?? null;
  }

  private reconcile(): void {
    if (this.closed) return;
    const term = this.host.controllerReadyTerm();
    if (this.service && this.service.term !== term) this.stop('controller changed');
    if (term === null || this.service || this.starting) return;
    if (this.host.metadataState().applied < this.restartAfterIndex) return;
    this.starting = true;
    void this.start(term).finally(() => {
      this.starting = false;
      this.reconcile();
    });
  }

  private async start(term: number): Promise<void> {
    await this.stopping;
    if (this.closed || this.host.controllerReadyTerm() !== term) return;
    // the failure callback of the command log refers to the service it belongs to (known once started)
    const holder: { svc: GroupService | null } = { svc: null };
    const svc = await GroupService.start({
      log: new MetadataGroupCommandLog(this.host, (err) => this.onAppendFailure(holder.svc, err)),
      producerIds: this.producerIds,
      logger: this.logger,
      coordinatorEndpoint: () => this.host.kafkaEndpointOf(this.host.nodeId),
      metrics: this.metrics.hooks,
      coordinator: {
        // commits to partitions that do not exist are refused (metadata is the catalog)
        partitionExists: (t, p) => p >= 0 && p < (this.host.metadataState().topics[t]?.assignment.length ?? 0),
        ...this.opts.coordinator,
      },
    });
    holder.svc = svc;
    if (this.closed || this.host.controllerReadyTerm() !== term) {
      await svc.close();
      return;
    }
    this.service = { term, svc };
    this.metrics.attach(svc, (t, p) => this.host.highWatermarkOf(t, p));
    this.logger.info({ term, groups: svc.list().length }, 'group coordinator started (this node is the controller)');
  }

  private onAppendFailure(svc: GroupService | null, err: unknown): void {
    if (!svc || this.service?.svc !== svc) return;
    // the coordinator's state may now be ahead of the log: rebuild it from the replicated state once settled
    this.logger.warn({ err }, 'group command not committed; restarting the group coordinator from the replicated state');
    this.restartAfterIndex = this.host.metadataLastIndex();
    this.stop('append failed');
    this.reconcile();
  }

  private stop(why: string): void {
    const s = this.service;
    if (!s) return;
    this.service = null;
    this.metrics.attach(undefined, () => null);
    this.logger.info({ why, term: s.term }, 'group coordinator stopped');
    this.stopping = this.stopping.then(() => s.svc.close()).catch((err: unknown) => this.logger.error({ err }, 'closing the group coordinator failed'));
  }

  /** Kafka entry point on every node. */
  handle(apiKey: number, version: number, req: unknown, ctx: KafkaRequestContext): Promise<object> | object {
    if (apiKey === 10) {
      const id = this.host.controllerId();
      return findCoordinatorResponse(req as FindCoordinatorRequest, version, id >= 0 ? this.host.kafkaEndpointOf(id) : null);
    }
    if (apiKey === GroupApiKey.InitProducerId) return initProducerIdResponse(req as InitProducerIdRequest, this.producerIds);
    const running = this.service;
    if (running) {
      if (!READ_ONLY_APIS.has(apiKey)) return running.svc.handle(apiKey, version, req, ctx);
      // a read answered from this node's state is only as fresh as its leadership: confirm it AFTER the answer was
      // computed (a controller deposed without knowing it — paused, cut off — would otherwise serve stale offsets)
      return Promise.resolve(running.svc.handle(apiKey, version, req, ctx)).then((body) =>
        this.readBarrier.confirm(running.term).then(
          () => body,
          () => groupErrorResponse(apiKey, version, req, NOT_COORDINATOR),
        ));
    }
    if (apiKey === GroupApiKey.ListGroups) return { throttleTimeMs: 0, errorCode: 0, groups: [] };
    const loading = this.host.controllerId() === this.host.nodeId;
    return groupErrorResponse(apiKey, version, req, loading ? COORDINATOR_LOAD_IN_PROGRESS : NOT_COORDINATOR);
  }

  // ---------------------------------------------------------------- admin (/v1/groups on any node)

  private adminOf(svc: GroupService): ReturnType<typeof groupsAdmin> {
    return groupsAdmin(svc, {
      partitionCount: (t) => this.host.metadataState().topics[t]?.assignment.length,
      highWatermarkOf: (t, p) => this.host.highWatermarkOf(t, p),
      listOffsets: (t, p, ts) => this.host.listOffsets(t, p, ts),
    });
  }

  /** an admin read on the coordinator, answered once a barrier proposed after it committed (see READ_ONLY_APIS) */
  private async confirmedRead<T>(read: (svc: GroupService) => Promise<T> | T): Promise<T> {
    const svc = await this.onControllerService();
    const term = this.service?.svc === svc ? this.service.term : null;
    const out = await read(svc);
    if (term === null) throw new LanceError('NOT_LEADER', `node ${this.host.nodeId} is no longer the controller; retry`, { leader: this.host.controllerId() });
    await this.readBarrier.confirm(term);
    return out;
  }

  /** the controller's running coordinator (waits briefly while it loads) */
  private async onControllerService(): Promise<GroupService> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const svc = this.service?.svc;
      if (svc) return svc;
      if (this.host.controllerId() !== this.host.nodeId) throw new LanceError('NOT_LEADER', `node ${this.host.nodeId} is no longer the controller; retry`, { leader: this.host.controllerId() });
      if (Date.now() > deadline) throw new LanceError('TIMEOUT', 'the group coordinator did not finish loading within 10 s');
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => { off(); resolve(); }, 200);
        const off = this.host.onStateChange(() => { clearTimeout(t); off(); resolve(); });
      });
    }
  }

  adminApi(): { list(): Promise<GroupSummary[]>; describe(group: string): Promise<GroupDetail>; resetOffsets(group: string, req: ResetOffsetsRequest): Promise<ResetOffsetsResponse> } {
    return {
      // answers crossed the wire (forwarded to the controller): checked against the admin API's schemas
      list: async () => GroupListSchema.parse(await this.forward('groups.list', {})),
      describe: async (group) => GroupDetailSchema.parse(await this.forward('groups.describe', { group })),
      resetOffsets: async (group, req) => ResetOffsetsResponseSchema.parse(await this.forward('groups.resetOffsets', { group, req })),
    };
  }

  /**
   * A controller request, retried while the controller moves (NOT_LEADER from a node that just lost it, TIMEOUT or no
   * connection while a new one is elected) for up to 20 s. The three requests are idempotent: reading, or setting
   * offsets to targets computed again on each try.
   */
  private async forward(method: string, body: unknown): Promise<unknown> {
    const deadline = Date.now() + 20_000;
    for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
      try {
        return await this.host.callController(method, body);
      } catch (e) {
        const transient = isLanceError(e, 'NOT_LEADER') || isLanceError(e, 'TIMEOUT') || isLanceError(e, 'IO');
        if (!transient || Date.now() + delay > deadline || this.closed) throw e;
        this.logger.debug({ err: e, method }, 'controller request failed; retrying');
        await new Promise((r) => setTimeout(r, delay)); // backoff while a controller is elected
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    this.stop('shutting down');
    await this.stopping;
  }
}
