/**
 * A steady load for fault tests (failover, rolling restart, a killed instance): `workers` loops run a
 * scenario back to back until stopped, over keep-alive connections (fetch keeps them alive), and
 * every request is recorded with its time, so failures can be counted and placed against the fault.
 */

export interface Outcome {
  /** ms since the load started */
  at: number;
  kind: string;
  ok: boolean;
  status: number;
  error?: string;
}

export interface LoadReport {
  total: number;
  failed: Outcome[];
  byKind: Record<string, { total: number; failed: number }>;
  durationMs: number;
}

export type Step = (kind: string, run: () => Promise<{ status: number; ok: boolean }>) => Promise<boolean>;

export class SteadyLoad {
  readonly outcomes: Outcome[] = [];
  readonly startedAt = Date.now();
  private stopped = false;
  private readonly loops: Promise<void>[] = [];

  constructor(workers: number, scenario: (step: Step, worker: number, iteration: number) => Promise<void>, pauseMs = 0) {
    const step: Step = async (kind, run) => {
      const at = Date.now() - this.startedAt;
      try {
        const r = await run();
        this.outcomes.push({ at, kind, ok: r.ok, status: r.status });
        return r.ok;
      } catch (err) {
        this.outcomes.push({ at, kind, ok: false, status: 0, error: err instanceof Error ? `${err.message}${err.cause ? `: ${String((err.cause as Error).message ?? err.cause)}` : ''}` : String(err) });
        return false;
      }
    };
    for (let w = 0; w < workers; w++) {
      this.loops.push(
        (async () => {
          for (let i = 0; !this.stopped; i++) {
            await scenario(step, w, i);
            if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
          }
        })(),
      );
    }
  }

  /** ms since start */
  now(): number {
    return Date.now() - this.startedAt;
  }

  async stop(): Promise<LoadReport> {
    this.stopped = true;
    await Promise.all(this.loops);
    return this.report();
  }

  report(from = 0, to = Infinity): LoadReport {
    const window = this.outcomes.filter((o) => o.at >= from && o.at < to);
    const byKind: LoadReport['byKind'] = {};
    for (const o of window) {
      const k = (byKind[o.kind] ??= { total: 0, failed: 0 });
      k.total++;
      if (!o.ok) k.failed++;
    }
    return { total: window.length, failed: window.filter((o) => !o.ok), byKind, durationMs: Math.min(to, this.now()) - from };
  }
}

/** One line for the test log: totals and failures by kind, and the failures' statuses. */
export function summarize(label: string, r: LoadReport): string {
  const kinds = Object.entries(r.byKind)
    .map(([k, v]) => `${k} ${v.failed}/${v.total}`)
    .join(', ');
  const statuses = [...new Set(r.failed.map((f) => f.status || f.error))].slice(0, 5).join(' | ');
  return `${label}: ${r.failed.length} of ${r.total} requests failed in ${(r.durationMs / 1000).toFixed(1)} s (${kinds})${statuses ? ` — ${statuses}` : ''}`;
}
