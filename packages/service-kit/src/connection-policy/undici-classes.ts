import { createRequire } from 'node:module';
import type * as undici from 'undici';

// undici's index loads all of undici (fetch, WebSocket, EventSource, caches, mocks, proxies) to export it: 100 to 130 ms
// of user management's start and 2 to 8 MB of its memory (Node 26, Node 20) for classes it never uses. These are
// the files the index itself takes them from; undici has no `exports` map, so Node allows the paths, and
// test/undici-classes.test.ts checks that each is the very class the index exports.
const load = createRequire(import.meta.url);

export const Client = load('undici/lib/dispatcher/client.js') as typeof undici.Client;
export const Pool = load('undici/lib/dispatcher/pool.js') as typeof undici.Pool;
export const DecoratorHandler = load('undici/lib/handler/decorator-handler.js') as typeof undici.DecoratorHandler;
export { Dispatcher } from '../undici-dispatcher.js';
