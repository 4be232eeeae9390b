import { createRequire } from 'node:module';
import type * as undici from 'undici';

// The class every dispatcher of the undici package extends, from its own file: undici's index would load all of
// undici (see connection-policy/undici-classes.ts, which re-exports it). This file needs only node:events and one
// handler adapter, so the tracing interceptor can check against it at no cost.
export const Dispatcher = createRequire(import.meta.url)('undici/lib/dispatcher/dispatcher.js') as typeof undici.Dispatcher;
