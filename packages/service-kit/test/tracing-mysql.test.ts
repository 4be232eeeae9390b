import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, startXrayDaemon, testDatabaseSettings, type TestDatabase, type XrayDaemon, type XrayDocument } from '@canary/testkit';
import { concurrently, startFixture, type FixtureProcess } from './support/fixture-process.js';

const traceEverything = fileURLToPath(new URL('../../../docs/xray-sampling-all.json', import.meta.url));

interface SegmentRef {
  id: string;
  trace_id: string;
}

let daemon: XrayDaemon;
let database: TestDatabase;
let service: FixtureProcess;
let admin: mysql.Connection;
// A user of its own with a password, so the test can show the password never reaches a segment.
const user = `xray_${randomBytes(4).toString('hex')}`;
const password = `Pw-${randomBytes(12).toString('hex')}`;

beforeAll(async () => {
  daemon = await startXrayDaemon();
  database = await createTestDatabase('tracing');
  admin = await mysql.createConnection({ ...testDatabaseSettings(), database: database.database });
  await admin.query('CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(40) NOT NULL)');
  await admin.query('CREATE USER ?@? IDENTIFIED BY ?', [user, '%', password]);
  await admin.query(`GRANT ALL ON \`${database.database}\`.* TO ?@?`, [user, '%']);
  service = await startFixture({
    AWS_XRAY_DAEMON_ADDRESS: daemon.address,
    XRAY_SAMPLING_RULES_FILE: traceEverything,
    AWS_XRAY_TRACING_NAME: 'Sql-Service',
    DB_HOSTNAME: database.host,
    DB_PORT: String(database.port),
    DB_NAME: database.database,
    DB_USERNAME: user,
    DB_PASSWORD: password,
    DB_CONNECTION_LIMIT: '2',
  });
});

afterAll(async () => {
  await service?.stop();
  await admin?.query('DROP USER IF EXISTS ?@?', [user, '%']);
  await admin?.end();
  await database?.drop();
  await daemon?.close();
});

async function segmentOf(ref: SegmentRef): Promise<XrayDocument> {
  const [segment] = await daemon.waitForSegments(1, { name: 'Sql-Service', traceId: ref.trace_id });
  expect(segment!.id).toBe(ref.id);
  return segment!;
}

function sqlOf(subsegments: XrayDocument[]): unknown[] {
  return subsegments.map((sub) => [sub.name, sub.namespace, sub.sql?.preparation, sub.sql?.sanitized_query]);
}

describe('mysql2 queries', () => {
  it('made at start-up, outside any request, are neither traced nor logged as a missing context', () => {
    expect(daemon.documents).toEqual([]);
    expect(service.logs.filter((line) => line.level >= 40)).toEqual([]);
  });

  it('on the pool (query and execute) are one remote subsegment each with sql data and no values', async () => {
    const response = await service.get<{ before: SegmentRef; after: SegmentRef; secret: string; n: number }>('/sql');
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ secret: 'query-value-s3cret', n: 41 });
    expect(response.body.after).toEqual(response.body.before);

    const segment = await segmentOf(response.body.before);
    const subs = daemon.subsegmentsOf(segment);
    const name = `${database.database}@${database.host}`;
    expect(sqlOf(subs)).toEqual([
      [name, 'remote', undefined, 'SELECT ? AS secret'],
      [name, 'remote', 'statement', 'SELECT ? AS n'],
    ]);
    expect(subs[0]!.sql).toEqual({
      url: `mysql://${database.host}:${database.port}/${database.database}`,
      user,
      database_type: 'MySQL',
      driver_version: expect.stringMatching(/^mysql2@3\./) as unknown,
      sanitized_query: 'SELECT ? AS secret',
    });
    expect(subs.every((sub) => sub.fault === undefined && sub.error === undefined && sub.end_time! >= sub.start_time)).toBe(true);
    const sent = JSON.stringify(daemon.documents);
    expect(sent).not.toContain('query-value-s3cret');
    expect(sent).not.toContain(password);
  });

  it('of a request the caller chose not to sample run untraced, with no subsegment and no log line', async () => {
    const root = `1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString('hex')}`;
    const logsBefore = service.logs.length;
    const response = await service.get<{ before: { trace_id: string }; secret: string; n: number }>('/sql', {
      'x-amzn-trace-id': `Root=${root};Sampled=0`,
    });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ before: { trace_id: root }, secret: 'query-value-s3cret', n: 41 });
    // A sampled request afterwards is the marker: once its segment is in, anything of the unsampled one would be too.
    const marker = await service.get<{ before: SegmentRef }>('/sql');
    await segmentOf(marker.body.before);
    expect(daemon.documents.filter((document) => document.trace_id === root)).toEqual([]);
    expect(service.logs.slice(logsBefore).filter((line) => line.level >= 40)).toEqual([]);
  });

  it('in a transaction on a connection from getConnection() are each a subsegment, START TRANSACTION and COMMIT included', async () => {
    const response = await service.get<{ count: number; segment: SegmentRef }>('/tx/7');
    expect(response.status).toBe(200);
    expect(response.body.count).toBe(1);
    const segment = await segmentOf(response.body.segment);
    const name = `${database.database}@${database.host}`;
    expect(sqlOf(daemon.subsegmentsOf(segment))).toEqual([
      [name, 'remote', undefined, 'START TRANSACTION'],
      [name, 'remote', 'statement', 'INSERT INTO items (id, label) VALUES (?, ?)'],
      [name, 'remote', undefined, 'SELECT COUNT(*) AS count FROM items WHERE id = ?'],
      [name, 'remote', undefined, 'COMMIT'],
    ]);
    const [[row]] = await admin.query<mysql.RowDataPacket[]>('SELECT label FROM items WHERE id = 7');
    expect(row!.label).toBe('tx-value-s3cret');
    expect(JSON.stringify(daemon.documents)).not.toContain('tx-value-s3cret');
  });

  it('that fail are a fault whose cause holds the error code only, not the message quoting the row', async () => {
    await admin.query("INSERT INTO items (id, label) VALUES (8, 'existing')");
    const response = await service.get<{ message: string }>('/sql-duplicate/8');
    expect(response.status).toBe(409);
    const forUrl = () => daemon.segments({ name: 'Sql-Service' }).filter((s) => s.http?.request?.url?.endsWith('/sql-duplicate/8'));
    await expect.poll(() => forUrl().length, { timeout: 10_000 }).toBe(1);
    const [segment] = forUrl();
    expect(segment!.error).toBe(true);
    const [sub] = daemon.subsegmentsOf(segment!);
    expect(sub!.fault).toBe(true);
    expect(sub!.cause?.exceptions?.map((e) => e.message)).toEqual(['ER_DUP_ENTRY, errno 1062, sqlState 23000']);
    expect(JSON.stringify(daemon.documents)).not.toContain('dup-value-s3cret');
  });

  it('waiting for one of 2 pooled connections under 60 concurrent requests stay with their own request', async () => {
    const responses = await concurrently(60, () => service.get<{ before: SegmentRef; after: SegmentRef }>('/sql'));
    expect(responses.map((r) => r.status)).toEqual(Array(60).fill(200));
    for (const { body } of responses) {
      expect(body.after).toEqual(body.before);
      const segment = await segmentOf(body.before);
      expect(sqlOf(daemon.subsegmentsOf(segment)).map((row) => (row as unknown[])[3])).toEqual(['SELECT ? AS secret', 'SELECT ? AS n']);
    }
    expect(service.logs.filter((line) => line.level >= 40 || /sub\/segment/.test(line.msg))).toEqual([]);
  });
});
