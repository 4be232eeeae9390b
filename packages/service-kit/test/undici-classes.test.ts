import * as undici from 'undici';
import { describe, expect, it } from 'vitest';
import * as lean from '../src/connection-policy/undici-classes.js';

describe('undici classes loaded from their own files', () => {
  it.each(['Client', 'Pool', 'Dispatcher', 'DecoratorHandler'] as const)('%s is the very class undici exports', (name) => {
    expect(lean[name]).toBe(undici[name]);
  });
});
