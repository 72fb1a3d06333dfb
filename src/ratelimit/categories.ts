/** The documented rate-limit categories. Deployments may configure more; these are the ones Flowgate maps to. */
export const CATEGORIES = ['read', 'write', 'execute', 'webhook'] as const;

/** Path segments that make a POST an execution (workflow run, cancel, retry, trigger). */
const EXECUTE_SEGMENTS = new Set(['run', 'cancel', 'retry', 'trigger', 'execute']);

/**
 * The category of a workflow-service request, from its method and route (the route pattern, e.g.
 * `/api/v1/workflows/:id/run`, or the concrete path): reads are GET/HEAD/OPTIONS; a POST whose path
 * has a run/cancel/retry/trigger segment executes; every other method writes.
 */
export function categoryFor(method: string, route: string): string {
  const m = method.toUpperCase();
  if (m === 'GET' || m === 'HEAD' || m === 'OPTIONS') return 'read';
  if (m === 'POST' && route.split(/[/?#]/).some((seg) => EXECUTE_SEGMENTS.has(seg.toLowerCase()))) return 'execute';
  return 'write';
}
