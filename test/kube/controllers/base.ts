import type { Store, StoreEvent } from '../store.ts';
import { KubeStatusError } from '../status.ts';

/**
 * A level-triggered controller loop: store events (and a periodic resync) mark the controller dirty; one reconcile
 * pass runs at a time on the event loop. Conflicts and NotFound from racing writers are expected and retried on the
 * next pass, as real controllers do.
 */
export abstract class Controller {
  private dirty = false;
  private running = false;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly onEvent = (ev: StoreEvent) => { if (this.interested(ev)) this.kick(); };

  constructor(protected readonly store: Store, private readonly resyncMs = 250) {}

  start(): void {
    this.store.events.on('event', this.onEvent);
    this.timer = setInterval(() => this.kick(), this.resyncMs);
    this.kick();
  }

  stop(): void {
    this.stopped = true;
    this.store.events.off('event', this.onEvent);
    if (this.timer) clearInterval(this.timer);
  }

  protected interested(_ev: StoreEvent): boolean { return true; }

  kick(): void {
    if (this.stopped) return;
    this.dirty = true;
    if (this.running) return;
    this.running = true;
    setImmediate(() => void this.loop());
  }

  private async loop(): Promise<void> {
    try {
      while (this.dirty && !this.stopped) {
        this.dirty = false;
        try { await this.reconcile(); } catch (e) {
          if (e instanceof KubeStatusError && (e.code === 409 || e.code === 404)) { this.dirty = true; await new Promise((r) => setImmediate(r)); continue; }
          process.stderr.write(`kube stand-in: ${this.constructor.name} failed: ${(e as Error)?.stack ?? e}\n`);
        }
      }
    } finally {
      this.running = false;
    }
  }

  protected abstract reconcile(): Promise<void> | void;
}

/** Swallows NotFound/Conflict for best-effort controller writes that the next pass redoes anyway. */
export function ignoreRace<T>(f: () => T): T | undefined {
  try { return f(); } catch (e) {
    if (e instanceof KubeStatusError && (e.code === 404 || e.code === 409)) return undefined;
    throw e;
  }
}
