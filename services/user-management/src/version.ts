import { readFileSync } from 'node:fs';

/**
 * This service's version, from its package.json (beside `src/` and `dist/`): shown by /usermgmt/health-status
 * and as `appversion` in every user.
 */
export const serviceVersion: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
