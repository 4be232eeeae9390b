import { newEntityId } from './ids.js';

/** `http` of a segment (an incoming request) or of a remote subsegment (a call made), as X-Ray reads it. */
export interface HttpData {
  request?: {
    method?: string;
    url?: string;
    client_ip?: string;
    user_agent?: string;
    x_forwarded_for?: boolean;
    traced?: boolean;
  };
  response?: { status?: number; content_length?: number };
}

/** `sql` of a database subsegment: where it went and the statement with its placeholders, never values. */
export interface SqlData {
  url: string;
  user: string;
  database_type: string;
  driver_version: string;
  /** X-Ray's `call` is a stored-procedure call, `statement` a prepared statement; a plain query has neither. */
  preparation?: 'call' | 'statement';
  sanitized_query?: string;
}

interface StackFrame {
  path: string;
  line: number;
  label: string;
}

interface CapturedException {
  id: string;
  message: string;
  type: string;
  remote: boolean;
  stack: StackFrame[];
}

/** `cause` of a faulted (sub)segment: the errors that caused it, with their stacks. */
export interface Cause {
  working_directory: string;
  exceptions: CapturedException[];
}

/** The error, or the parts of it worth recording, that made a (sub)segment fail. */
export type Failure = Error | { name?: string; message: string; stack?: string };

const workingDirectory = process.cwd();

/** Epoch microseconds as X-Ray wants times: seconds with six decimals (microsecond resolution is its advice). */
function seconds(us: number): string {
  const whole = Math.floor(us / 1e6);
  return `${whole}.${String(us - whole * 1e6).padStart(6, '0')}`;
}

/** JSON of a string (escaped) or of a small object of data (http, sql, annotations). */
const quoted = JSON.stringify;

/** The frames of a V8 stack trace as X-Ray shows them (file, line, function), at most 50. */
function framesOf(stack: string | undefined): StackFrame[] {
  if (!stack) return [];
  const frames: StackFrame[] = [];
  for (const raw of stack.split('\n').slice(1, 51)) {
    const line = raw.trim().replace(/^at /, '');
    const located = /^(.*?) \((.*)\)$/.exec(line);
    const label = located ? located[1]! : 'anonymous';
    const where = located ? located[2]! : line;
    const match = /^(.*?):(\d+)(?::\d+)?$/.exec(where);
    frames.push({ path: match ? match[1]! : where, line: match ? Number(match[2]) : 0, label });
  }
  return frames;
}

function capture(failure: Failure, remote: boolean): CapturedException {
  return {
    id: newEntityId(),
    message: failure.message,
    type: failure.name ?? 'Error',
    remote,
    stack: framesOf(failure.stack),
  };
}

/**
 * What segments and subsegments share: a name and id, times, flags by status, a cause, nested subsegments. Times
 * are kept in epoch microseconds: the segment reads the wall clock once, and every time within it is that plus the
 * monotonic clock's progress, so durations are exact and a subsegment never starts before its segment.
 */
export abstract class TraceEntity {
  readonly id = newEntityId();
  readonly startUs: number;
  endUs: number | undefined;
  http: HttpData | undefined;
  error = false;
  fault = false;
  throttle = false;
  cause: Cause | undefined;
  subsegments: TraceSubsegment[] | undefined;

  constructor(
    readonly name: string,
    startUs: number,
  ) {
    this.startUs = startUs;
  }

  /** The segment this entity belongs to (itself for a segment). */
  abstract get segment(): TraceSegment;

  /** Start and end in epoch seconds, as the document has them. */
  get startTime(): number {
    return this.startUs / 1e6;
  }

  get endTime(): number | undefined {
    return this.endUs === undefined ? undefined : this.endUs / 1e6;
  }

  get closed(): boolean {
    return this.endUs !== undefined;
  }

  /** A child subsegment, open until its own `close()`; the segment is sent once it and all its children are closed. */
  addSubsegment(name: string): TraceSubsegment {
    const child = new TraceSubsegment(name, this);
    (this.subsegments ??= []).push(child);
    this.segment.opened();
    return child;
  }

  /** 4xx: error (429 also throttle); 5xx: fault. */
  flagStatus(status: number): void {
    if (status === 429) this.throttle = true;
    if (status >= 400 && status < 500) this.error = true;
    else if (status >= 500 && status < 600) this.fault = true;
  }

  /** Marks a fault and records what caused it. */
  addFailure(failure: Failure, remote = false): void {
    this.fault = true;
    (this.cause ??= { working_directory: workingDirectory, exceptions: [] }).exceptions.push(capture(failure, remote));
  }

  /** Ends the entity now; false if it was already closed. */
  protected end(failure: Failure | undefined): boolean {
    if (this.endUs !== undefined) return false;
    this.endUs = this.segment.nowUs();
    if (failure) this.addFailure(failure);
    return true;
  }

  /**
   * The document as JSON, written field by field: JSON.stringify on a document object cost 2.8 µs of a 5 µs
   * segment (its doubles and a dictionary-mode object); this takes under a microsecond. `extra` is the kind's own
   * fields, each with a leading comma.
   */
  protected json(extra: string): string {
    let out = `{"name":${quoted(this.name)},"id":"${this.id}","start_time":${seconds(this.startUs)}`;
    out += this.endUs === undefined ? ',"in_progress":true' : `,"end_time":${seconds(this.endUs)}`;
    if (this.http) out += `,"http":${quoted(this.http)}`;
    if (this.error) out += ',"error":true';
    if (this.fault) out += ',"fault":true';
    if (this.throttle) out += ',"throttle":true';
    if (this.cause) out += `,"cause":${quoted(this.cause)}`;
    out += extra;
    if (this.subsegments?.length) out += `,"subsegments":[${this.subsegments.map((child) => child.toJson()).join(',')}]`;
    return `${out}}`;
  }
}

/** Where a closed segment goes: the emitter of the runtime that made it. */
export type SegmentSink = (segment: TraceSegment) => void;

/** Fields every segment of this process carries, set once by the runtime (`segmentDefaults`). */
export interface SegmentDefaults {
  /** `aws.xray`: which SDK made the segment. */
  xray: Record<string, string>;
  xrayJson: string;
  /** `service`: the runtime it ran on. */
  serviceJson: string;
}

/** The defaults of every segment, serialized once. */
export function segmentDefaults(xray: Record<string, string>, service: Record<string, string>): SegmentDefaults {
  return { xray, xrayJson: quoted(xray), serviceJson: quoted(service) };
}

/**
 * One incoming request (or background task) of a sampled trace: the top document X-Ray receives for this service.
 * Built here rather than with aws-xray-sdk-core's Segment, which draws two random ids from the system per segment
 * and copies itself through a generic object walk and a replacer-driven JSON.stringify on the way out: about 180k
 * instructions per segment against a 120k-instruction request (docs/benchmarks.md). The document is the same.
 */
export class TraceSegment extends TraceEntity {
  /** Subsegments not yet closed: the segment is sent when it is closed and this is 0. */
  #open = 0;
  #sent = false;
  /** performance.now() when the segment started, the origin of every later time in it. */
  readonly #startMono: number;
  parentId: string | undefined;
  /** Name of the sampling rule that picked this trace (centralized sampling). */
  ruleName: string | undefined;
  annotations: Record<string, string | number | boolean> | undefined;

  constructor(
    name: string,
    readonly traceId: string,
    parentId: string | undefined,
    private readonly sink: SegmentSink,
    private readonly defaults: SegmentDefaults,
  ) {
    super(name, Date.now() * 1000);
    this.#startMono = performance.now();
    this.parentId = parentId;
  }

  get segment(): TraceSegment {
    return this;
  }

  /** @internal now, in epoch microseconds, on this segment's clock. */
  nowUs(): number {
    return this.startUs + Math.round((performance.now() - this.#startMono) * 1000);
  }

  /** @internal a subsegment of this segment was opened. */
  opened(): void {
    this.#open += 1;
  }

  /** @internal a subsegment of this segment was closed. */
  closedOne(): void {
    this.#open -= 1;
    if (this.#open === 0 && this.closed) this.#send();
  }

  /** Ends the segment (with the failure, if any); it is sent now, or when its last open subsegment closes. */
  close(failure?: Failure): void {
    if (this.end(failure) && this.#open === 0) this.#send();
  }

  #send(): void {
    if (this.#sent) return;
    this.#sent = true;
    this.sink(this);
  }

  /** X-Ray's segment document, as JSON. */
  toJson(): string {
    let extra = `,"trace_id":"${this.traceId}"`;
    if (this.parentId) extra += `,"parent_id":"${this.parentId}"`;
    extra += `,"service":${this.defaults.serviceJson}`;
    extra += this.ruleName ? `,"aws":{"xray":${quoted({ ...this.defaults.xray, rule_name: this.ruleName })}}` : `,"aws":{"xray":${this.defaults.xrayJson}}`;
    if (this.annotations) extra += `,"annotations":${quoted(this.annotations)}`;
    return this.json(extra);
  }
}

/** A part of a segment's work: a call made, a query. Its document nests in the segment's unless sent on its own. */
export class TraceSubsegment extends TraceEntity {
  namespace: 'remote' | 'aws' | undefined;
  sql: SqlData | undefined;

  constructor(
    name: string,
    readonly parent: TraceEntity,
  ) {
    super(name, parent.segment.nowUs());
  }

  get segment(): TraceSegment {
    return this.parent.segment;
  }

  close(failure?: Failure): void {
    if (this.end(failure)) this.segment.closedOne();
  }

  #ownFields(): string {
    let fields = '';
    if (this.namespace) fields += `,"namespace":"${this.namespace}"`;
    if (this.sql) fields += `,"sql":${quoted(this.sql)}`;
    return fields;
  }

  /** The document as it nests in its parent's. */
  toJson(): string {
    return this.json(this.#ownFields());
  }

  /** The document sent on its own, outside its segment's: it names its trace and its parent. */
  toStandaloneJson(): string {
    return this.json(`,"type":"subsegment","trace_id":"${this.segment.traceId}","parent_id":"${this.parent.id}"${this.#ownFields()}`);
  }
}
