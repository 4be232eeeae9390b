import { existsSync, readFileSync } from 'node:fs';
import { UsageError } from '../cli-options.js';

/** The malloc the bench's servers run on: jemalloc, as in the images, or glibc's own, for comparison. */
export type Allocator = 'jemalloc' | 'glibc';
export const allocators: readonly Allocator[] = ['jemalloc', 'glibc'];

/**
 * jemalloc's settings in the images (docker/Dockerfile sets the same; a test compares the two). One background thread,
 * however many CPUs the node has, gives back pages that have been free for about 100 ms, so what start-up and load
 * leave free returns while the process idles (glibc's malloc keeps 10 to 20 MB of it after load); with 1 s, a
 * service just ready still held start-up's garbage, 5 to 10 MB (docs/benchmarks.md, Memory).
 */
export const jemallocConf = 'background_thread:true,max_background_threads:1,dirty_decay_ms:100,muzzy_decay_ms:0';

/** Where the images link the library, then where Debian's libjemalloc2 puts it on amd64 and arm64. */
export const jemallocPaths = [
  '/usr/local/lib/libjemalloc.so.2',
  '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2',
  '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2',
] as const;

/** The environment that makes a child process run on `allocator`; throws when jemalloc is not installed. */
export function allocatorEnv(allocator: Allocator, exists: (path: string) => boolean = existsSync): Record<string, string> {
  if (allocator === 'glibc') return {};
  const library = jemallocPaths.find((candidate) => exists(candidate));
  if (library === undefined) {
    throw new UsageError(
      'jemalloc, which the images run the services on, is not installed here: apt-get install libjemalloc2, ' +
        'or measure on glibc\'s malloc with --allocator glibc',
    );
  }
  return { LD_PRELOAD: library, MALLOC_CONF: jemallocConf };
}

/** Whether a running process has jemalloc mapped: LD_PRELOAD is ignored, with only a warning, when it cannot load. */
export function runsOnJemalloc(pid: number): boolean {
  return readFileSync(`/proc/${pid}/maps`, 'utf8').includes('/libjemalloc.so.2');
}
