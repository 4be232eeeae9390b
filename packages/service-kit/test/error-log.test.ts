import { Writable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpError, registerErrorHandling } from '../src/errors.js';

interface LogLine {
  level: number;
  msg: string;
  statusCode?: number;
  [field: string]: unknown;
}

const lines: LogLine[] = [];
let app: FastifyInstance;

beforeAll(async () => {
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  // The request log lines ('incoming request', 'request completed') are info; the handler's own are warn or error.
  app = Fastify({ logger: { level: 'warn', stream } });
  registerErrorHandling(app);
  app.get('/dependency-down', async () => {
    throw new HttpError(503, 'Database unavailable, retry later', 'The database did not answer (ECONNREFUSED)', {
      msg: 'database unavailable',
      fields: { db: { code: 'ECONNREFUSED', reason: 'connect ECONNREFUSED 127.0.0.1:3306' } },
    });
  });
  app.get('/bad-gateway', async () => {
    throw new HttpError(502, 'Upstream said no', 'Calling http://upstream/x');
  });
  app.get('/not-found', async () => {
    throw new HttpError(404, 'No such thing');
  });
  await app.ready();
});

afterAll(async () => {
  await app?.close();
});

async function logOf(url: string): Promise<{ statusCode: number; lines: LogLine[] }> {
  const before = lines.length;
  const res = await app.inject({ url });
  return { statusCode: res.statusCode, lines: lines.slice(before) };
}

describe('a 5xx HttpError', () => {
  it('is logged once at warn, with the status and the fields its thrower gave', async () => {
    const { statusCode, lines: logged } = await logOf('/dependency-down');
    expect(statusCode).toBe(503);
    expect(logged).toEqual([
      expect.objectContaining({
        level: 40,
        msg: 'database unavailable',
        statusCode: 503,
        db: { code: 'ECONNREFUSED', reason: 'connect ECONNREFUSED 127.0.0.1:3306' },
      }),
    ]);
  });

  it('without fields of its own, is logged with its message and debug message', async () => {
    const { statusCode, lines: logged } = await logOf('/bad-gateway');
    expect(statusCode).toBe(502);
    expect(logged).toEqual([
      expect.objectContaining({ level: 40, msg: 'request failed', statusCode: 502, reason: 'Upstream said no', detail: 'Calling http://upstream/x' }),
    ]);
  });
});

describe('a 4xx HttpError', () => {
  it('is the client\'s business: nothing at warn', async () => {
    const { statusCode, lines: logged } = await logOf('/not-found');
    expect(statusCode).toBe(404);
    expect(logged).toEqual([]);
  });
});
