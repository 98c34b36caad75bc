/**
 * Percentiles of one series of durations in fixed memory: an HDR histogram configured like the
 * latency projection's (1 ms to an hour, 3 significant digits), for the report's tool and TTFT
 * tables and the tenant fold. Internal: not part of the public surface.
 */
import { build, type Histogram } from 'hdr-histogram-js';

export class PercentileFold {
  private readonly histogram: Histogram = build({
    bitBucketSize: 32,
    autoResize: true,
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
  private samples = 0;

  /** Counts one duration in ms (negative and non-finite values are ignored, like the projection does). */
  record(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    this.histogram.recordValue(Math.round(ms));
    this.samples++;
  }

  get count(): number {
    return this.samples;
  }

  /** The value at `p` (0–100), ms; 0 without samples. */
  percentile(p: number): number {
    return this.samples === 0 ? 0 : this.histogram.getValueAtPercentile(p);
  }
}
