/**
 * A tiny Prometheus text-format exporter (exposition format 0.0.4) for the rate limiter's few series.
 * Why not prom-client: Flowgate exports a handful of counters and gauges; a 60-line exporter keeps
 * the hot path free of a registry's label hashing and adds no dependency. Swap in prom-client when
 * the process needs default metrics (GC, event loop lag) too: the series names stay the same.
 */
type Labels = Record<string, string>;

function labelKey(labels: Labels): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k].replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

class Series {
  readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
  ) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  set(value: number, labels: Labels = {}): void {
    this.values.set(labelKey(labels), value);
  }
}

export class MetricsRegistry {
  private readonly series: Series[] = [];
  private readonly collectors: (() => void)[] = [];

  counter(name: string, help: string): Series {
    return this.add(new Series(name, help, 'counter'));
  }
  gauge(name: string, help: string): Series {
    return this.add(new Series(name, help, 'gauge'));
  }
  /** Runs before each scrape (gauges computed from current state). */
  onCollect(fn: () => void): void {
    this.collectors.push(fn);
  }
  private add(s: Series): Series {
    this.series.push(s);
    return s;
  }
  /** The text exposition format: `# HELP`, `# TYPE`, then one line per label set. */
  render(): string {
    for (const c of this.collectors) c();
    const out: string[] = [];
    for (const s of this.series) {
      out.push(`# HELP ${s.name} ${s.help}`, `# TYPE ${s.name} ${s.type}`);
      if (s.values.size === 0 && s.type === 'counter') out.push(`${s.name} 0`);
      for (const [k, v] of s.values) out.push(`${s.name}${k} ${v}`);
    }
    return out.join('\n') + '\n';
  }
}

export type { Series };
