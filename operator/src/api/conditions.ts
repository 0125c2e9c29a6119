/**
 * Pure helpers for status conditions (metav1.Condition semantics): lastTransitionTime moves only when the status
 * changes, observedGeneration is always the generation the condition was computed from.
 */
export interface Condition<T extends string = string> {
  type: T;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number | undefined;
}

export interface ConditionUpdate<T extends string = string> {
  type: T;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message?: string;
  observedGeneration: number;
}

/**
 * Returns a new list with `update` applied. `now` is the timestamp to use if the status changed (a parameter so
 * callers and tests control time). Order is kept; a new type is appended.
 */
export function setCondition<T extends string>(conditions: readonly Condition<T>[] | undefined, update: ConditionUpdate<T>, now: Date): Condition<T>[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === update.type);
  const prev = i >= 0 ? list[i] : undefined;
  const next: Condition<T> = {
    type: update.type,
    status: update.status,
    reason: update.reason,
    message: update.message ?? '',
    lastTransitionTime: prev && prev.status === update.status ? prev.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    observedGeneration: update.observedGeneration,
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

export function findCondition<T extends string>(conditions: readonly Condition<T>[] | undefined, type: T): Condition<T> | undefined {
  return conditions?.find((c) => c.type === type);
}

/** True when the condition exists, is True and was computed from `generation` (not stale). */
export function isConditionTrue<T extends string>(conditions: readonly Condition<T>[] | undefined, type: T, generation?: number): boolean {
  const c = findCondition(conditions, type);
  return c !== undefined && c.status === 'True' && (generation === undefined || c.observedGeneration === generation);
}
