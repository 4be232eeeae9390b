import { readFileSync } from 'node:fs';
import type { TObject } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { configSchema as notificationConfig } from '../services/notification/src/config.js';
import { configSchema as userManagementConfig } from '../services/user-management/src/config.js';
import { balancerConfigSchema } from '../tools/src/balancer/config.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const scripts = Object.keys((JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }).scripts);

/** The README rows documenting `name` (`| \`NAME\` | default | meaning |`): PORT, say, has one per service. */
function rows(name: string): string[] {
  return readme.split('\n').filter((line) => line.startsWith(`| \`${name}\` |`));
}

describe('README', () => {
  for (const [service, schema] of [
    ['notification', notificationConfig],
    ['user management', userManagementConfig],
    ['balancer', balancerConfigSchema],
  ] as [string, TObject][]) {
    it(`documents every variable the ${service} service reads, with its default`, () => {
      for (const [name, property] of Object.entries(schema.properties)) {
        const lines = rows(name);
        expect(lines, `${name} has no row in the README`).not.toEqual([]);
        const fallback = (property as { default?: unknown }).default;
        if (fallback !== undefined && fallback !== '') {
          expect(
            lines.some((line) => line.split('|')[2]?.includes(`\`${String(fallback)}\``)),
            `no README row of ${name} shows its default ${String(fallback)}`,
          ).toBe(true);
        }
      }
    });
  }

  it('shows only npm scripts the project has', () => {
    const used = [...readme.matchAll(/npm run ([a-z][\w:-]*)/g)].map((m) => m[1] as string);
    expect(used.length).toBeGreaterThan(0);
    for (const name of used) expect(scripts, `npm run ${name}`).toContain(name);
  });

  it('shows the test command', () => {
    expect(readme).toContain('npm test');
  });
});
