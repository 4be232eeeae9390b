import { writeFileSync } from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';

/**
 * Preloaded into a service (`NODE_OPTIONS=--import .../cpu-profiler.js`, since node refuses --cpu-prof there) when
 * the bench profiles. SIGWINCH starts sampling, so start-up is left out (SIGUSR2 would not do: close-with-grace
 * takes it for a request to shut down); SIGTERM or exit writes
 * `<service>-<pid>.cpuprofile` into BENCH_CPU_PROFILE_DIR.
 */
const directory = process.env.BENCH_CPU_PROFILE_DIR;
if (directory) {
  const entry = process.argv[1] ?? '';
  const baseline = /bench\/baseline\/(front|back)-server/.exec(entry)?.[1];
  const service = /services\/([^/]+)\//.exec(entry)?.[1] ?? (baseline ? `baseline-${baseline}` : 'node');
  const session = new inspector.Session();
  session.connect();
  let state: 'waiting' | 'sampling' | 'written' = 'waiting';
  process.on('SIGWINCH', () => {
    if (state !== 'waiting') return;
    state = 'sampling';
    session.post('Profiler.enable');
    session.post('Profiler.setSamplingInterval', { interval: 500 });
    session.post('Profiler.start');
  });
  const write = (): void => {
    if (state !== 'sampling') return;
    state = 'written';
    // The in-process session answers synchronously, so this also works inside an 'exit' listener.
    session.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(path.join(directory, `${service}-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  };
  process.prependListener('SIGTERM', write);
  process.on('exit', write);
}

export {};
