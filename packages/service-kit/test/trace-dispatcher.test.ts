import { EventEmitter } from 'node:events';
import { Agent, Dispatcher } from 'undici';
import { describe, expect, it } from 'vitest';
import { traceDispatcher } from '../src/tracing/http-interceptor.js';

/** What a dispatcher of another copy of undici (Node's own, behind its fetch) looks like from here: the methods, not the class. */
class ForeignDispatcher extends EventEmitter {
  dispatch(): boolean {
    return true;
  }
  compose(): this {
    return this;
  }
  async close(): Promise<void> {}
  async destroy(): Promise<void> {}
}

const foreign = (): Dispatcher => new ForeignDispatcher() as unknown as Dispatcher;

describe('traceDispatcher', () => {
  it("composes the interceptor onto a dispatcher of the 'undici' package", async () => {
    const agent = new Agent();
    const traced = traceDispatcher(agent, { enabled: true });
    expect(traced).not.toBe(agent);
    expect(traced).toBeInstanceOf(Dispatcher);
    await agent.close();
  });

  it('refuses a dispatcher from another copy of undici at once, saying what to do instead', () => {
    expect(() => traceDispatcher(foreign(), { enabled: true })).toThrow(TypeError);
    expect(() => traceDispatcher(foreign(), { enabled: true })).toThrow(
      "traceDispatcher needs a dispatcher made by the 'undici' package (Pool, Agent, BalancedPool, Client); this one comes " +
        "from another copy of undici, such as Node's own, which getGlobalDispatcher() returns on Node 22 and later. To trace " +
        'fetch() and top-level undici calls: setGlobalDispatcher(traceDispatcher(new Agent(), options)).',
    );
  });

  it('returns any dispatcher as it is when tracing is off: nothing is composed onto it', () => {
    const dispatcher = foreign();
    expect(traceDispatcher(dispatcher, { enabled: false })).toBe(dispatcher);
  });
});
