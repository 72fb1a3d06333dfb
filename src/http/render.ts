import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';

export type Renderer = (view: string, data: Record<string, unknown>) => string;

const viewsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../views');

/** Server-rendered pages through Eta with auto-escaping on: `<%= %>` always escapes. */
export function createRenderer(): Renderer {
  const eta = new Eta({ views: viewsDir, autoEscape: true, cache: true, autoTrim: false });
  return (view, data) => eta.render(view, data);
}
