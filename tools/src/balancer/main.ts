import { pino } from 'pino';
import { ConfigError, loadConfig } from '@canary/service-kit';
import { createBalancer } from './balancer.js';
import { balancerConfigSchema, type BalancerConfig } from './config.js';
import { parseTargets, watchTargets, type Target } from './dns-targets.js';
import { balancerEventLog } from './event-log.js';

function fail(message: string): never {
  process.stderr.write(`balancer: ${message}\n`);
  process.exit(1);
}

function readConfig(): { config: BalancerConfig; targets: Target[] } {
  try {
    const config = loadConfig(balancerConfigSchema);
    return { config, targets: parseTargets(config.BALANCER_TARGETS) };
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    return fail(`Invalid environment: BALANCER_TARGETS ${(err as Error).message}`);
  }
}

const { config, targets } = readConfig();
const log = pino({ level: config.LOG_LEVEL, base: { service: 'balancer' } });
const balancer = await createBalancer({
  host: config.BALANCER_HOST,
  port: config.BALANCER_PORT,
  healthPath: config.BALANCER_HEALTH_PATH,
  healthIntervalMs: config.BALANCER_HEALTH_INTERVAL_MS,
  onEvent: balancerEventLog(({ level, message }) => log[level](message)),
}).catch((err: Error) => fail(`cannot listen on ${config.BALANCER_HOST}:${config.BALANCER_PORT}: ${err.message}`));

const watch = watchTargets({
  targets,
  balancer,
  intervalMs: config.BALANCER_RESOLVE_INTERVAL_MS,
  onError: (target, err) => log.warn({ target: target.host }, `cannot resolve ${target.host}, keeping its last addresses: ${err.message}`),
});
await watch.refresh();

log.info(
  { host: balancer.host, port: balancer.port, targets: config.BALANCER_TARGETS, healthPath: config.BALANCER_HEALTH_PATH },
  'balancer listening',
);
if (process.send) process.send({ type: 'listening', service: 'balancer', port: balancer.port });

let stopping = false;
async function stop(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'balancer stopping');
  watch.stop();
  await balancer.close();
  log.info('balancer stopped');
  // Every client connection is closed by now; a socket to a backend still finishing its FIN must not hold the exit.
  process.exit(0);
}
process.on('SIGTERM', (signal) => void stop(signal));
process.on('SIGINT', (signal) => void stop(signal));
