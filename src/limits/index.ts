/** Provider rate limits, bulkheads and tenant fair queueing. */
export * from './limiter.js';
export * from './backend.js';
export * from './bulkheads.js';
