import { describe, expect, it } from 'vitest';
import { validEntityId, validTraceId } from '../src/tracing/ids.js';
import { parseTraceHeader } from '../src/tracing/sampling.js';

const root = '1-5759e988-bd862e3fe1be46a994272793';
const parent = '53995c3f42cd8ad8';

describe('the incoming X-Amzn-Trace-Id', () => {
  it('is read in one match in the form the SDKs send', () => {
    expect(parseTraceHeader(`Root=${root};Parent=${parent};Sampled=1`)).toEqual({ root, parent, sampled: '1' });
    expect(parseTraceHeader(`Root=${root};Parent=${parent};Sampled=0`)).toEqual({ root, parent, sampled: '0' });
  });

  it('is read field by field in any other order, case and spacing, as the SDK reads it', () => {
    expect(parseTraceHeader(`sampled=1; parent=${parent}; root=${root}`)).toEqual({ root, parent, sampled: '1' });
    expect(parseTraceHeader(`Root=${root};Sampled=?`)).toEqual({ root, sampled: '?' });
    expect(parseTraceHeader(`Self=1-67891233-12456789abcdef012345678;Root=${root};Parent=${parent};Sampled=1;Lineage=a87bd80c:1`)).toEqual({
      root,
      parent,
      sampled: '1',
    });
  });

  it('keeps only what it can read: no field without a value, no field without a key', () => {
    expect(parseTraceHeader(`Root=;Parent=${parent};=1;Sampled`)).toEqual({ parent });
    expect(parseTraceHeader('garbage')).toEqual({});
    expect(parseTraceHeader('')).toEqual({});
    expect(parseTraceHeader(undefined)).toEqual({});
  });

  it('sent twice, counts once: the first', () => {
    expect(parseTraceHeader([`Root=${root};Sampled=1`, 'Root=1-00000000-000000000000000000000000;Sampled=0'])).toEqual({ root, sampled: '1' });
  });

  it('is trusted only when well formed: a malformed Root starts a new trace, a malformed Parent is dropped', () => {
    expect(validTraceId(root)).toBe(root);
    for (const bad of ['1-5759e988-bd862e3fe1be46a99427279', '2-5759e988-bd862e3fe1be46a994272793', `${root} `, 'not-a-trace', undefined]) {
      expect(validTraceId(bad)).toBeUndefined();
    }
    expect(validEntityId(parent)).toBe(parent);
    for (const bad of ['53995C3F42CD8AD8', '53995c3f42cd8ad', 'x3995c3f42cd8ad8', undefined]) expect(validEntityId(bad)).toBeUndefined();
  });
});
