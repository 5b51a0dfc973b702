export { Histogram, PackedBuckets, bucketPairs, bucketMidpoint, nearestRank, LATENCY_MARKS_US } from './histogram.js';
export type { HistogramSnapshot, PercentileSummary } from './histogram.js';
export { Counters, isCount, isWholeCount, rate, recordTotal, sumRecords, deltaRecords, deltaPerCpu, PER_CPU_COUNTER_RANGE } from './counters.js';
export type { CounterRecord, CounterDelta } from './counters.js';
export { mulberry32 } from './random.js';
export { binomialGreater, fisherGreater, formatP, poissonBinomialGreater, poissonGreater } from './significance.js';
export { percent, percentOf } from './percent.js';
