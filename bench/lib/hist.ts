/**
 * Latency histogram over hdr-histogram-js: values recorded in microseconds (integer), summaries in milliseconds.
 * HDR keeps 3 significant digits over the whole range, so p99.9 of a long run is exact to 0.1 %, not a sample.
 */
import * as hdr from 'hdr-histogram-js';

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export class LatencyHistogram {
  private readonly h = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000, // one hour in µs: nothing a run records is longer
    numberOfSignificantValueDigits: 3,
    bitBucketSize: 64,
    useWebAssembly: false,
  });

  /** records one latency given in milliseconds (fractional); negative values (clock noise) count as 0 */
  recordMs(ms: number): void {
    this.h.recordValue(Math.max(1, Math.round(ms * 1000)));
  }

  get count(): number {
    return this.h.totalCount;
  }

  /** percentile in ms (p in 0..100) */
  percentileMs(p: number): number {
    return this.h.getValueAtPercentile(p) / 1000;
  }

  summary(): LatencySummary {
    const r = (v: number): number => Number(v.toFixed(3));
    return {
      count: this.h.totalCount,
      p50: r(this.percentileMs(50)),
      p99: r(this.percentileMs(99)),
      p999: r(this.percentileMs(99.9)),
      max: r(this.h.maxValue / 1000),
      mean: r(this.h.mean / 1000),
    };
  }

  /** exact percentiles of a small sample (nearest-rank), for figures with a handful of values (failover) */
  static nearestRank(values: readonly number[], p: number): number {
    if (values.length === 0) return NaN;
    const s = [...values].sort((a, b) => a - b);
    const rank = Math.ceil((p / 100) * s.length);
    return s[Math.min(s.length, Math.max(1, rank)) - 1]!;
  }
}
