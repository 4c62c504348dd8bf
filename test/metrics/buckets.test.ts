// --task-runtime-metric-buckets: Flower's spelling, checked against the bounds the collector stores.

import { describe, expect, it } from 'vitest';
import { BucketOptionError, DEFAULT_RUNTIME_BUCKETS, parseRuntimeBuckets } from '../../src/metrics/buckets';
import { STORED_BUCKETS } from '../../src/shared/histograms';

describe('parseRuntimeBuckets', () => {
  it("gives Flower's default buckets when empty", () => {
    expect(parseRuntimeBuckets('')).toEqual([0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]);
    expect(parseRuntimeBuckets('  ')).toEqual([...DEFAULT_RUNTIME_BUCKETS]);
  });

  it('takes stored bounds in any order, with inf implied or spelled', () => {
    expect(parseRuntimeBuckets('1,5,10,inf')).toEqual([1, 5, 10]);
    expect(parseRuntimeBuckets(' 60, 0.5 ,+Inf, 30,0.5')).toEqual([0.5, 30, 60]);
    expect(parseRuntimeBuckets('3600')).toEqual([3600]);
  });

  it('refuses a bound the collector does not store, naming the ones it does', () => {
    expect(() => parseRuntimeBuckets('1,3')).toThrow(BucketOptionError);
    expect(() => parseRuntimeBuckets('1,3')).toThrow(
      /^--task-runtime-metric-buckets: 3 is not a stored bucket bound; choose among 0\.005, .*, 3600 \(and inf\)$/,
    );
    expect(() => parseRuntimeBuckets('0.3', 'TASK_RUNTIME_METRIC_BUCKETS')).toThrow(/^TASK_RUNTIME_METRIC_BUCKETS: 0\.3 is not/);
  });

  it('refuses what is not a positive number', () => {
    for (const bad of ['abc', '1,,5', '-1', '0', 'NaN', '1e999']) {
      expect(() => parseRuntimeBuckets(bad), bad).toThrow(/is not a positive number of seconds/);
    }
    expect(() => parseRuntimeBuckets('inf')).toThrow(/at least one finite bound/);
  });

  it('accepts every stored bound', () => {
    expect(parseRuntimeBuckets(STORED_BUCKETS.join(','))).toEqual(STORED_BUCKETS);
  });
});
