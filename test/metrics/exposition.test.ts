// The strict exposition parser the /metrics tests rely on: it must refuse
// what Prometheus would refuse or misread, or those tests prove nothing.

import { describe, expect, it } from 'vitest';
import { canonical, parseExposition, sampleValue } from './exposition';

const GOOD = `# HELP jobs_total Jobs \\\\ done\\nsince start
# TYPE jobs_total counter
jobs_total{kind="a\\"b",path="c:\\\\d\\ne"} 3
jobs_total{kind="x"} 1.5e3
# a comment
# HELP wait Wait
# TYPE wait histogram
wait_bucket{q="a",le="0.1"} 1
wait_bucket{q="a",le="1"} 2
wait_bucket{q="a",le="+Inf"} 3
wait_sum{q="a"} 4.5
wait_count{q="a"} 3
# TYPE up gauge
up NaN
`;

describe('parseExposition', () => {
  it('reads families, help texts, escaped label values and numbers', () => {
    const m = parseExposition(GOOD);
    expect(m.get('jobs_total')).toMatchObject({ type: 'counter', help: 'Jobs \\ done\nsince start' });
    expect(sampleValue(m, 'jobs_total', { kind: 'a"b', path: 'c:\\d\ne' })).toBe(3);
    expect(sampleValue(m, 'jobs_total', { kind: 'x' })).toBe(1500);
    expect(sampleValue(m, 'wait_count', { q: 'a' })).toBe(3);
    expect(sampleValue(m, 'up')).toBeNaN();
    expect(canonical(m)).toContain('wait_bucket{le="+Inf",q="a"} 3');
  });

  const broken: [string, string, RegExp][] = [
    ['no final newline', GOOD.trimEnd(), /end with a newline/],
    ['a sample of no family', 'x 1\n', /of no declared family/],
    ['an unknown type', '# TYPE x thing\nx 1\n', /unknown type/],
    ['a second TYPE', '# TYPE x gauge\n# TYPE x gauge\n', /second TYPE/],
    ['a bad number', '# TYPE x gauge\nx one\n', /is not a number/],
    ['a bad label', '# TYPE x gauge\nx{1a="b"} 1\n', /bad label name/],
    ['an unterminated value', '# TYPE x gauge\nx{a="b} 1\n', /unterminated/],
    ['a bad escape', '# TYPE x gauge\nx{a="\\t"} 1\n', /bad escape/],
    ['a repeated label', '# TYPE x gauge\nx{a="1",a="2"} 1\n', /given twice/],
    ['a repeated series', '# TYPE x gauge\nx{a="1"} 1\nx{a="1"} 2\n', /appears twice/],
    ['a family split in two', '# TYPE x gauge\n# TYPE y gauge\nx 1\n', /not contiguous/],
    ['a negative counter', '# TYPE c_total counter\nc_total -1\n', /counter c_total is -1/],
    ['a histogram without +Inf', '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', /no \+Inf bucket/],
    [
      'a histogram whose buckets decrease',
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
      /buckets decrease/,
    ],
    [
      'a histogram with le out of order',
      '# TYPE h histogram\nh_bucket{le="2"} 1\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
      /not ascending/,
    ],
    ['a _count other than +Inf', '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n', /_count 1 differs/],
    ['a histogram without _sum', '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_count 1\n', /no _sum/],
    ['garbage after the value', '# TYPE x gauge\nx 1 2 3\n', /expected ' value \[timestamp\]'/],
  ];
  for (const [what, text, error] of broken) {
    it(`refuses ${what}`, () => {
      expect(() => parseExposition(text)).toThrow(error);
    });
  }
});
