import type { LocalStack } from './stack.js';

function rows(cells: string[][]): string[] {
  const widths = cells[0]!.map((_, column) => Math.max(...cells.map((row) => row[column]!.length)));
  return cells.map((row) => `  ${row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ')}`.trimEnd());
}

/** Where everything listens, for a person reading the terminal. */
export function describeStack(stack: LocalStack): string[] {
  const replicas = stack.replicas();
  const v1 = replicas.filter((r) => r.version === 'V1').length;
  const base = `http://${stack.host}`;
  const table = rows([
    ['what', 'where', 'pid'],
    ['user management', `${base}:${stack.usermgmtPort}/usermgmt`, String(stack.usermgmtPid)],
    ['notification balancer', `${base}:${stack.notificationPort}/notification`, String(process.pid)],
    ...replicas.map((r) => [`  ${r.name} (${r.version})`, `${base}:${r.port}/notification`, String(r.pid)]),
    [stack.mail.sink ? 'mail sink (prints mail)' : 'mail server', `smtp://${stack.mail.host}:${stack.mail.port}`, stack.mail.sink ? String(process.pid) : '-'],
    ['database', `mysql://${stack.database.user}@${stack.database.host}:${stack.database.port}/${stack.database.name}`, '-'],
  ]);
  return [
    `Local canary stack: V1 ×${v1}, V2 ×${replicas.length - v1}, a random replica per new connection`,
    ...table,
    `Try: curl ${base}:${stack.usermgmtPort}/usermgmt/notification-xray`,
    'Stop: Ctrl-C (or SIGTERM)',
  ];
}
