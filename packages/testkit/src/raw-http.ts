import { connect } from 'node:net';
import type { Readable } from 'node:stream';
import { expect } from 'vitest';
import { Client } from 'undici';

export interface Answer {
  status: number;
  contentType: string;
  text: string;
}

export interface SendOptions {
  /** A stream goes out chunked, without a Content-Length. */
  body?: string | Buffer | Readable;
  /** The Content-Type header; omitted when undefined. */
  contentType?: string;
}

/** One request over real HTTP (for bad-input tests of both services), with the path sent as written (no normalisation, no encoding). */
export async function send(origin: string, method: string, path: string, options: SendOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (options.contentType !== undefined) headers['content-type'] = options.contentType;
  // A Client takes the path as it is; a URL string would be normalised first (dot segments, %2E).
  const client = new Client(origin);
  try {
    const res = await client.request({ path, method: method as 'GET', headers, body: options.body });
    return { status: res.statusCode, contentType: String(res.headers['content-type'] ?? ''), text: await res.body.text() };
  } finally {
    await client.close();
  }
}

/** Writes `text` on a fresh TCP connection and returns everything the server sends back before it closes. */
export function rawHttp(port: number, text: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('close', () => resolve(received));
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' && received ? resolve(received) : reject(err)));
  });
}

/** Status and body of a raw HTTP/1.1 response. */
export function parseRaw(response: string): Answer {
  const [head = '', text = ''] = response.split('\r\n\r\n', 2);
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  const contentType = /^content-type: *(.+)$/im.exec(head)?.[1] ?? '';
  return { status, contentType, text };
}

export interface KitError {
  status: string;
  statusCode: number;
  timestamp: string;
  message: string;
  debugMessage: string | null;
  subErrors?: { object: string; field: string; message: string; rejectedValue?: unknown }[];
}

/** Asserts the kit's JSON error body with this status and message, and returns it for further checks. */
export function expectKitError(answer: Answer, statusCode: number, message: string | RegExp): KitError {
  expect({ status: answer.status, contentType: answer.contentType }).toEqual({ status: statusCode, contentType: expect.stringMatching(/^application\/json/) });
  const body = JSON.parse(answer.text) as KitError;
  expect(body).toEqual({
    status: expect.stringMatching(/^[A-Z_]+$/),
    statusCode,
    timestamp: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
    message: typeof message === 'string' ? message : expect.stringMatching(message),
    debugMessage: body.debugMessage === null ? null : expect.any(String),
    ...(body.subErrors ? { subErrors: expect.any(Array) } : {}),
  });
  return body;
}

/** The fields a validation error names, in order. */
export function fieldsOf(error: KitError): string[] {
  return (error.subErrors ?? []).map((sub) => sub.field);
}
