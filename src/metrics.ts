// Prometheus metric families for what is counted on every request, packet or decision: each
// labelled series is a plain object found once and then updated in place (prom-client's own
// `observe` and `inc` hash their label set on every call). The registry reads them at scrape
// time, in prom-client's exposition format. Used by the API, the SIP edge and the decision index.

import type { Metric, Registry } from 'prom-client';

type Labels = Record<string, string>;
interface Sample {
  value: number;
  labels: Labels;
  metricName?: string;
}

/** One labelled series of a counter. */
export class CounterSeries {
  value = 0;
  constructor(readonly labels: Labels) {}
}

/** One labelled series of a histogram: per-bucket (not cumulative) counts, sum and count. */
export class HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    readonly labels: Labels,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]!++;
        break;
      }
    }
    this.sum += value;
    this.count++;
  }
}

/** The shape the registry reads (`get`), with a series per label set. */
abstract class Family<S extends { labels: Labels }> {
  readonly aggregator = 'sum';
  protected readonly series = new Map<string, S>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
  ) {}

  /** The series of `labels`, made on first use; `key` must identify the label values. */
  seriesOf(key: string, labels: Labels): S {
    let series = this.series.get(key);
    if (series === undefined) this.series.set(key, (series = this.create(labels)));
    return series;
  }

  reset(): void {
    this.series.clear();
  }

  protected abstract create(labels: Labels): S;
  protected abstract samples(series: S): Sample[];

  get() {
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: [...this.series.values()].flatMap((s) => this.samples(s)) });
  }

  register(registry: Registry): this {
    // The registry only calls get() and reset(); it types its entries as its own classes.
    registry.registerMetric(this as unknown as Metric);
    return this;
  }
}

export class LabelledCounter extends Family<CounterSeries> {
  constructor(name: string, help: string) {
    super(name, help, 'counter');
  }
  protected create(labels: Labels) {
    return new CounterSeries(labels);
  }
  protected samples(s: CounterSeries): Sample[] {
    return [{ value: s.value, labels: s.labels }];
  }
}

export class LabelledHistogram extends Family<HistogramSeries> {
  constructor(
    name: string,
    help: string,
    private readonly bounds: readonly number[],
  ) {
    super(name, help, 'histogram');
  }
  protected create(labels: Labels) {
    return new HistogramSeries(labels, this.bounds);
  }
  protected samples(s: HistogramSeries): Sample[] {
    const out: Sample[] = [];
    let cumulative = 0;
    this.bounds.forEach((bound, i) => {
      cumulative += s.counts[i]!;
      out.push({ metricName: `${this.name}_bucket`, labels: { le: String(bound), ...s.labels }, value: cumulative });
    });
    out.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...s.labels }, value: s.count });
    out.push({ metricName: `${this.name}_sum`, labels: s.labels, value: s.sum });
    out.push({ metricName: `${this.name}_count`, labels: s.labels, value: s.count });
    return out;
  }
}
