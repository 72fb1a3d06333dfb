/**
 * supertest, with every JSON answer checked against the server's own OpenAPI document: the schema of
 * the operation (method + path template) and status. An answer whose status the document does not
 * list, or whose body does not match, fails the request. Paths the document does not describe
 * (pages, the provider's endpoints other than /token) pass unchecked.
 *
 *   import { request } from './support/api.js';   // instead of `import request from 'supertest'`
 */
import supertest from 'supertest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { ValidateFunction } from 'ajv';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;

type Json = Record<string, any>;

interface Checker {
  check(method: string, path: string, status: number, contentType: string | undefined, body: unknown): string | undefined;
}

const checkers = new Map<string, Promise<Checker>>();

/** The document of the server at `base`, fetched once per test file and server. */
export function openApiChecker(base: string): Promise<Checker> {
  let c = checkers.get(base);
  if (!c) {
    c = fetch(`${base}/openapi.json`).then(async (r) => {
      if (r.status !== 200) throw new Error(`GET /openapi.json answered ${r.status}`);
      return makeChecker((await r.json()) as Json);
    });
    checkers.set(base, c);
  }
  return c;
}

function templateRegex(template: string): RegExp {
  const src = template.split(/\{[^}]+\}/).map((s) => s.replace(/[.*+?^$()|[\]\\]/g, '\\$&')).join('[^/]+');
  return new RegExp(`^${src}/?$`);
}

export function makeChecker(doc: Json): Checker {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  ajv.addSchema({ $id: 'flowgate-openapi', components: { schemas: doc.components?.schemas ?? {} } });
  const relink = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(relink);
    if (v && typeof v === 'object') {
      const out: Json = {};
      for (const [k, x] of Object.entries(v)) out[k] = k === '$ref' && typeof x === 'string' && x.startsWith('#/components/') ? `flowgate-openapi${x}` : relink(x);
      return out;
    }
    return v;
  };
  const templates = Object.keys(doc.paths ?? {})
    .map((t) => ({ t, re: templateRegex(t), vars: (t.match(/\{/g) ?? []).length }))
    .sort((a, b) => a.vars - b.vars);
  const compiled = new Map<string, ValidateFunction>();

  return {
    check(method, path, status, contentType, body) {
      const m = method.toLowerCase();
      const found = templates.find((x) => x.re.test(path) && doc.paths[x.t][m]);
      if (!found) return undefined;
      const op = doc.paths[found.t][m];
      let resp = op.responses?.[String(status)];
      if (!resp) return `${method} ${found.t}: status ${status} is not in the OpenAPI document (it lists ${Object.keys(op.responses ?? {}).join(', ')})`;
      if (resp.$ref) resp = doc.components.responses[String(resp.$ref).split('/').pop()!];
      const media = resp.content?.['application/json'];
      const isJson = !!contentType && /json/.test(contentType);
      if (!media) return isJson && body !== undefined && body !== '' && !(typeof body === 'object' && Object.keys(body as object).length === 0) ? `${method} ${found.t} ${status}: the document says no JSON body, the answer has one` : undefined;
      if (!isJson) return `${method} ${found.t} ${status}: expected JSON, got ${contentType ?? 'no content type'}`;
      const key = `${m} ${found.t} ${status}`;
      let validate = compiled.get(key);
      if (!validate) {
        validate = ajv.compile(relink(media.schema) as Json);
        compiled.set(key, validate);
      }
      if (validate(body)) return undefined;
      return `${method} ${path} ${status} does not match the OpenAPI document: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 1500)}`;
    },
  };
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete', 'head', 'options'] as const;

/** `request(url)` as supertest's, answering the same Test objects, checked against the document. */
export function request(base: string): supertest.Agent & ReturnType<typeof supertest> {
  const agent = supertest(base) as unknown as Record<string, (path: string) => supertest.Test>;
  const wrapped: Record<string, unknown> = {};
  for (const method of METHODS) {
    wrapped[method] = (path: string) => {
      const test = agent[method](path);
      const then = test.then.bind(test);
      (test as { then: unknown }).then = (onFulfilled?: (r: supertest.Response) => unknown, onRejected?: (e: unknown) => unknown) =>
        then(async (res: supertest.Response) => {
          const checker = await openApiChecker(base);
          const problem = checker.check(method, new URL(path, base).pathname, res.status, res.headers['content-type'], res.body);
          if (problem) throw new Error(problem);
          return res;
        }).then(onFulfilled, onRejected);
      return test;
    };
  }
  return wrapped as unknown as supertest.Agent & ReturnType<typeof supertest>;
}
