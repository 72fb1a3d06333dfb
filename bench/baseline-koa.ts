// The ceiling: a bare Koa app that parses the same form body introspection gets and answers a
// fixed JSON object. Nothing an introspection endpoint does can be faster than this on this machine.
import http from 'node:http';
import Koa from 'koa';

const app = new Koa();
app.use(async (ctx) => {
  const chunks: Buffer[] = [];
  for await (const c of ctx.req) chunks.push(c as Buffer);
  const params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
  ctx.body = { active: params.has('token'), scope: 'workflows:read', client_id: 'bench' };
});
const server = http.createServer(app.callback()).listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}` })}\n`);
});
