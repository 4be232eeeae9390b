import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError } from './bench-options.js';
import { repositoryRoot } from './service-startup.js';

/** The variable through which user management chooses the connection policy of its notification client. */
export const policyVariable = 'NOTIFICATION_CONNECTION_POLICY';

export interface PolicyChoice {
  /** The policy both ours and the baseline run. */
  policy: string;
  /** `policyVariable` for both, when a policy was asked for. */
  env: Record<string, string>;
}

interface SchemaLike {
  properties?: Record<string, { enum?: unknown[]; default?: unknown } | undefined>;
}

/** The policy asked for, checked against those user management offers; else user management's default. */
export async function choosePolicy(requested: string | undefined): Promise<PolicyChoice> {
  const module = (await import(pathToFileURL(path.join(repositoryRoot, 'services/user-management/dist/config.js')).href)) as { configSchema?: SchemaLike };
  const declared = module.configSchema?.properties?.[policyVariable];
  const offered = (declared?.enum ?? []).map(String);
  if (requested === undefined) return { policy: declared ? String(declared.default) : 'the service\'s only one', env: {} };
  if (!offered.includes(requested)) {
    throw new UsageError(`--policy ${requested}: user management's ${policyVariable} offers ${offered.length ? offered.join(', ') : 'nothing (it has no such variable)'}`);
  }
  return { policy: requested, env: { [policyVariable]: requested } };
}
