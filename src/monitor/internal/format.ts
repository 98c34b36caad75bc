/**
 * The tutorial's alert wording, shared by the error-rate monitors. Internal: not part of the public
 * surface.
 */
import { formatDuration, grouped, percent1 } from '../../core/format.js';

/**
 * The tutorial's alert line: "Error rate 7.2% exceeds threshold 5.0% over last 100 tasks"
 * (time windows add "in 2 hours").
 */
export function errorRateMessage(
  errorRate: number,
  threshold: number,
  samples: number,
  windowMs?: number,
  word: 'threshold' | 'target' = 'threshold',
): string {
  const verb = errorRate > threshold ? 'exceeds' : 'within';
  const span = windowMs === undefined ? '' : ` in ${formatDuration(windowMs)}`;
  return `Error rate ${percent1(errorRate)} ${verb} ${word} ${percent1(threshold)} over last ${grouped(samples)} task${samples === 1 ? '' : 's'}${span}`;
}
