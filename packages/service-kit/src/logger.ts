import type { FastifyServerOptions } from 'fastify';

/** Paths pino blanks out wherever they appear in a log line: no password or credential is ever logged. */
export const redactedPaths = [
  'password',
  '*.password',
  'req.headers.authorization',
  'req.headers.cookie',
  'DB_PASSWORD',
  '*.DB_PASSWORD',
  'AWS_MAIL_SERVER_PASSWORD',
  '*.AWS_MAIL_SERVER_PASSWORD',
];

export interface LoggerSettings {
  level: string;
  service: string;
}

export function loggerOptions({ level, service }: LoggerSettings): Exclude<FastifyServerOptions['logger'], boolean | undefined> {
  return {
    level,
    base: { service },
    redact: { paths: redactedPaths, censor: '[redacted]' },
  };
}

/** Probes arrive every few seconds from every balancer and kubelet: their request lines would drown the log. */
export const probeLogLevel = 'warn';
