import { createSocket, type Socket } from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import type { DaemonAddress } from './options.js';

export type Lookup = (host: string) => Promise<{ address: string; family: number }[]>;

export interface DaemonTargetSettings extends DaemonAddress {
  log: FastifyBaseLogger;
  lookup?: Lookup;
  /** How often a resolved host name is looked up again (Kubernetes DNS records live 30 s). */
  refreshMs?: number;
  /** How soon a failed lookup is tried again. */
  retryMs?: number;
}

const defaultLookup: Lookup = (host) => dnsLookup(host, { all: true, order: 'ipv4first' });

/** A UDP socket connected to one daemon address: sends carry no address, so none is looked up per segment. */
interface Connection {
  ip: string;
  socket: Socket;
  ready: boolean;
}

/**
 * The daemon's UDP address, resolved once rather than per datagram. The SDK hands its socket the host name, so
 * Node looks it up for every segment; when the name does not resolve, those lookups queue in the libuv
 * thread pool (shared with file and DNS work of the whole service) and every segment logs an error
 * (XRAY-NODE-FACTS §5). This resolves once at start without delaying it, again every `refreshMs` (so a
 * daemon that moves is followed), sooner after a failure, logs a failure once, and drops segments while no
 * address is known. A name with several addresses (the headless Service of a DaemonSet answers with every
 * daemon, in rotating order) keeps its current address for as long as the name still lists it.
 */
export class DaemonTarget {
  readonly host: string;
  readonly port: number;
  readonly #log: FastifyBaseLogger;
  readonly #lookup: Lookup;
  readonly #refreshMs: number;
  readonly #retryMs: number;
  #ip: string | undefined;
  #current: Connection | undefined;
  #next: Connection | undefined;
  #timer: NodeJS.Timeout | undefined;
  #resolving = false;
  #lastResolve = 0;
  #dnsFailing = false;
  #sendFailing = false;
  #refused = false;
  #dropped = 0;
  #closed = false;

  constructor(settings: DaemonTargetSettings) {
    this.host = settings.host;
    this.port = settings.port;
    this.#log = settings.log;
    this.#lookup = settings.lookup ?? defaultLookup;
    this.#refreshMs = settings.refreshMs ?? 30_000;
    this.#retryMs = settings.retryMs ?? 5_000;
    const family = isIP(this.host);
    if (family !== 0) this.#use(this.host, family);
    else void this.resolve();
  }

  /** The address segments go to now, or undefined while the host name has never resolved. */
  get ip(): string | undefined {
    return this.#ip;
  }

  /** The address a connected socket sends to, once connected. */
  get connectedTo(): string | undefined {
    return this.#current?.ready ? this.#current.ip : undefined;
  }

  /** Segments dropped because no address was known (or its socket was still connecting). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Looks the host name up now unless a lookup is already running; never rejects. */
  async resolve(): Promise<void> {
    if (this.#resolving || this.#closed || isIP(this.host) !== 0) return;
    this.#resolving = true;
    this.#lastResolve = Date.now();
    clearTimeout(this.#timer);
    let next = this.#refreshMs;
    try {
      const addresses = await this.#lookup(this.host);
      if (this.#closed) return;
      const chosen = addresses.find((entry) => entry.address === this.#ip) ?? addresses[0];
      if (!chosen) throw Object.assign(new Error(`no address for ${this.host}`), { code: 'ENODATA' });
      const { address, family } = chosen;
      if (this.#dnsFailing) {
        this.#log.info({ host: this.host, ip: address, dropped: this.#dropped }, 'X-Ray daemon host resolves again; sending segments');
        this.#dnsFailing = false;
      } else if (this.#ip !== undefined && this.#ip !== address) {
        this.#log.info({ host: this.host, ip: address, previous: this.#ip }, 'X-Ray daemon host moved to a new address');
      }
      this.#use(address, family);
    } catch (err) {
      next = this.#retryMs;
      if (!this.#dnsFailing && !this.#closed) {
        this.#dnsFailing = true;
        const { code, message } = err as NodeJS.ErrnoException;
        this.#log.warn(
          { host: this.host, code, reason: message, retryMs: this.#retryMs, lastAddress: this.#ip ?? null },
          this.#ip === undefined
            ? 'X-Ray daemon host (AWS_XRAY_DAEMON_ADDRESS) does not resolve: segments are dropped until it does'
            : 'X-Ray daemon host (AWS_XRAY_DAEMON_ADDRESS) does not resolve: segments still go to its last address',
        );
      }
    } finally {
      this.#resolving = false;
      if (!this.#closed) {
        this.#timer = setTimeout(() => void this.resolve(), next);
        this.#timer.unref();
      }
    }
  }

  /** Connects a socket to `ip` right away; until it is connected, segments keep going to the previous one. */
  #use(ip: string, family: number): void {
    this.#ip = ip;
    if (this.#current?.ip === ip || this.#next?.ip === ip) return;
    const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
    // The kernel answers a datagram to a port nothing listens on with ICMP, which a connected socket reports
    // as an error event: said once, at info, as segments sent to a closed port are simply lost.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') this.#noteRefused(ip);
    });
    socket.unref();
    const connection: Connection = { ip, socket, ready: false };
    this.#next?.socket.close();
    this.#next = connection;
    socket.connect(this.port, ip, () => {
      if (this.#closed || this.#next !== connection) return;
      connection.ready = true;
      // A successful send says nothing about a listener (UDP): a refusal is said once per address.
      this.#refused = false;
      this.#current?.socket.close();
      this.#current = connection;
      this.#next = undefined;
    });
  }

  /** Sends one datagram (a segment document) to the daemon, or drops it while no address is known. */
  send(message: Buffer): void {
    const connection = this.#current;
    if (this.#closed || !connection?.ready) {
      this.#dropped += 1;
      return;
    }
    connection.socket.send(message, (err) => {
      if (!err) {
        this.#sendFailing = false;
        return;
      }
      const { code } = err as NodeJS.ErrnoException;
      if (code === 'EMSGSIZE') {
        // One segment too large even on its own: said for each, with its size, as it is that segment that is lost.
        this.#log.warn({ bytes: message.length }, 'X-Ray segment too large to send; it is lost');
        return;
      }
      if (code === 'ECONNREFUSED') {
        this.#noteRefused(connection.ip);
        return;
      }
      if (!this.#sendFailing) {
        this.#sendFailing = true;
        this.#log.warn({ host: this.host, ip: connection.ip, err }, 'X-Ray daemon cannot be reached; segments are lost until it can');
      }
      if (Date.now() - this.#lastResolve > 1000) void this.resolve();
    });
  }

  #noteRefused(ip: string): void {
    if (!this.#refused) {
      this.#log.info({ host: this.host, ip, port: this.port }, 'Nothing listens on the X-Ray daemon address; segments are lost until something does');
    }
    this.#refused = true;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#current?.socket.close();
    this.#next?.socket.close();
    this.#current = undefined;
    this.#next = undefined;
  }
}
