import type { PoolConnection, RowDataPacket } from 'mysql2/promise';
import type { MigrationLog } from './migrations.js';

/**
 * Migration 3. The course's Java service made `users` itself (Hibernate `ddl-auto`): `enabled bit`, nullable
 * columns, VARCHAR(255), no unique key on `email`, maybe latin1 or MyISAM. Migration 1's `CREATE TABLE IF NOT
 * EXISTS` keeps such a table as it is, and then `enabled` reads as a Buffer (always true), NULL as "null", and two
 * users can share an e-mail. This brings the table to the shape the code relies on, or, when that would lose or
 * invent data, changes nothing and refuses to start with a message saying what to fix. It reads
 * `information_schema` first: a table already in shape (a fresh one) gets no UPDATE and no ALTER.
 */

const collation = 'utf8mb4_unicode_ci';

/** A value as compared after adoption; works from any character set. */
const compared = (column: string) => `CONVERT(${column} USING utf8mb4) COLLATE ${collation}`;

/**
 * Our string columns: the length migration 1 gives them (a wider existing column is kept: the API validates
 * lengths, and shrinking could cut data) and what a NULL becomes: what the API stores when the field is omitted.
 * Without `ifNull`, a NULL has no honest replacement and refuses.
 */
const stringColumns: Record<string, { length: number; ifNull?: string; default?: string }> = {
  username: { length: 20 },
  password: { length: 100 },
  role: { length: 50, ifNull: "'ROLE_USER'" },
  email: { length: 254 },
  firstname: { length: 20 },
  lastname: { length: 20, ifNull: "''", default: "''" },
};
const integerTypes = ['bit', 'tinyint', 'smallint', 'mediumint', 'int', 'bigint'];

interface Column {
  dataType: string;
  columnType: string;
  nullable: boolean;
  length: number;
  collation: string | null;
  generatedOrDefaulted: boolean;
}

interface UsersTable {
  database: string;
  engine: string;
  rowFormat: string;
  collation: string;
  columns: Map<string, Column>;
  /** Unique keys (PRIMARY included) by name: their columns, `(prefix)` marking a prefix-only part. */
  uniqueKeys: Map<string, string[]>;
}

async function readUsersTable(connection: PoolConnection): Promise<UsersTable> {
  const [[table]] = await connection.query<RowDataPacket[]>(
    `SELECT DATABASE() AS db, engine AS engine, row_format AS rowFormat, table_collation AS collation
     FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'users'`,
  );
  const [columnRows] = await connection.query<RowDataPacket[]>(
    `SELECT column_name AS name, data_type AS dataType, column_type AS columnType, is_nullable AS nullable,
       character_maximum_length AS length, collation_name AS collation, column_default AS defaultValue, extra AS extra
     FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'users' ORDER BY ordinal_position`,
  );
  const [keyRows] = await connection.query<RowDataPacket[]>(
    `SELECT index_name AS name, column_name AS columnName, sub_part AS subPart
     FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = 'users' AND non_unique = 0
     ORDER BY index_name, seq_in_index`,
  );
  const columns = new Map<string, Column>();
  for (const row of columnRows) {
    columns.set(String(row.name).toLowerCase(), {
      dataType: String(row.dataType).toLowerCase(),
      columnType: String(row.columnType),
      nullable: row.nullable === 'YES',
      length: Number(row.length ?? 0),
      collation: row.collation === null ? null : String(row.collation),
      generatedOrDefaulted: row.defaultValue !== null || /auto_increment|generated|virtual|stored|persistent/i.test(String(row.extra)),
    });
  }
  const uniqueKeys = new Map<string, string[]>();
  for (const row of keyRows) {
    const name = String(row.name);
    const part = String(row.columnName).toLowerCase() + (row.subPart === null ? '' : '(prefix)');
    uniqueKeys.set(name, [...(uniqueKeys.get(name) ?? []), part]);
  }
  return {
    database: String(table?.db ?? ''),
    engine: String(table?.engine ?? ''),
    rowFormat: String(table?.rowFormat ?? ''),
    collation: String(table?.collation ?? ''),
    columns,
    uniqueKeys,
  };
}

interface Plan {
  /** Why adoption would lose or invent data, each with a query that finds the rows. */
  problems: string[];
  /** NULL to the API's default for an omitted field, before the column becomes NOT NULL. */
  updates: string[];
  /** Engine and character set: a first ALTER, so the column definitions below are utf8mb4 already. */
  tableOptions: string[];
  columnChanges: string[];
  /** What is done, for the log: types and counts, never data. */
  changes: string[];
}

async function count(connection: PoolConnection, sql: string): Promise<number> {
  const [[row]] = await connection.query<RowDataPacket[]>(sql);
  return Number(row?.n ?? 0);
}

async function duplicates(connection: PoolConnection, column: string): Promise<number> {
  return count(connection, `SELECT COUNT(*) AS n FROM (SELECT 1 FROM users GROUP BY ${compared(column)} HAVING COUNT(*) > 1) AS shared`);
}

export const duplicateEmailQuery = `SELECT ${compared('email')} AS email, COUNT(*) AS users, GROUP_CONCAT(username) AS usernames FROM users GROUP BY 1 HAVING COUNT(*) > 1;`;

async function plan(connection: PoolConnection, table: UsersTable): Promise<Plan> {
  const result: Plan = { problems: [], updates: [], tableOptions: [], columnChanges: [], changes: [] };
  const { problems, changes } = result;
  const { columns } = table;

  const missing = [...Object.keys(stringColumns), 'enabled'].filter((name) => !columns.has(name));
  if (missing.length) problems.push(`It has no column ${missing.join(', ')}.`);

  const convert = table.collation !== collation || [...columns.values()].some((c) => c.collation !== null && c.collation !== collation);
  if (table.engine.toLowerCase() !== 'innodb') {
    result.tableOptions.push('ENGINE=InnoDB');
    changes.push(`engine ${table.engine} to InnoDB`);
  }
  if (convert) {
    result.tableOptions.push(`CONVERT TO CHARACTER SET utf8mb4 COLLATE ${collation}`);
    changes.push(`character set ${table.collation} to ${collation}`);
  }

  async function nulls(name: string, ifNull: string | undefined): Promise<void> {
    const n = await count(connection, `SELECT COUNT(*) AS n FROM users WHERE ${name} IS NULL`);
    if (n === 0) return;
    if (ifNull === undefined) {
      problems.push(`Rows with a NULL ${name}, which has no default to take its place: ${n}; find them with: SELECT username FROM users WHERE ${name} IS NULL;`);
    } else {
      result.updates.push(`UPDATE users SET ${name} = ${ifNull} WHERE ${name} IS NULL`);
      changes.push(`${n} NULL ${name} set to ${ifNull}`);
    }
  }

  for (const [name, spec] of Object.entries(stringColumns)) {
    const column = columns.get(name);
    if (!column) continue;
    if (column.dataType !== 'varchar') {
      problems.push(`Column ${name} is ${column.columnType}, not VARCHAR.`);
      continue;
    }
    if (column.nullable) await nulls(name, spec.ifNull);
    if (column.nullable || column.length < spec.length) {
      const length = Math.max(column.length, spec.length);
      const defaultClause = spec.default === undefined ? '' : ` DEFAULT ${spec.default}`;
      result.columnChanges.push(`MODIFY ${name} VARCHAR(${length}) CHARACTER SET utf8mb4 COLLATE ${collation} NOT NULL${defaultClause}`);
      changes.push(`${name} ${column.columnType}${column.nullable ? ' NULL' : ''} to VARCHAR(${length}) NOT NULL`);
    }
  }

  const enabled = columns.get('enabled');
  if (enabled && !integerTypes.includes(enabled.dataType)) {
    problems.push(`Column enabled is ${enabled.columnType}, not BIT or an integer.`);
  } else if (enabled && (enabled.dataType !== 'tinyint' || enabled.nullable)) {
    // BIT reads as a Buffer, which is always true: it becomes BOOLEAN (TINYINT(1)), b'1' as 1 and b'0' as 0.
    // Another integer type could hold values TINYINT cannot: only 0 and 1 are taken.
    const other = enabled.dataType === 'tinyint' ? 0 : await count(connection, 'SELECT COUNT(*) AS n FROM users WHERE enabled NOT IN (0, 1)');
    if (other > 0) {
      problems.push(`Rows whose enabled is neither 0 nor 1: ${other}; find them with: SELECT username, enabled + 0 AS enabled FROM users WHERE enabled NOT IN (0, 1);`);
    }
    if (enabled.nullable) await nulls('enabled', 'TRUE');
    result.columnChanges.push('MODIFY enabled BOOLEAN NOT NULL DEFAULT TRUE');
    changes.push(`enabled ${enabled.columnType}${enabled.nullable ? ' NULL' : ''} to BOOLEAN NOT NULL`);
  }

  const keys = [...table.uniqueKeys.entries()];
  if (table.uniqueKeys.get('PRIMARY')?.join() !== 'username') {
    problems.push('Its primary key is not (username); make it so with: ALTER TABLE users ADD PRIMARY KEY (username);');
  }
  const emailUnique = keys.some(([, parts]) => parts.join() === 'email');
  if (!emailUnique) {
    result.columnChanges.push('ADD UNIQUE KEY uq_users_email (email)');
    changes.push('unique key uq_users_email added');
  }
  if (columns.has('email') && (convert || !emailUnique)) {
    const shared = await duplicates(connection, 'email');
    if (shared > 0) {
      problems.push(
        `E-mail addresses shared by several rows (compared as ${collation}, which ignores case), so e-mail cannot be made unique: ${shared}; find them with: ${duplicateEmailQuery}`,
      );
    }
  }
  if (columns.has('username') && convert) {
    const shared = await duplicates(connection, 'username');
    if (shared > 0) {
      problems.push(
        `User names shared by several rows once compared as ${collation}, which ignores case: ${shared}; find them with: SELECT ${compared('username')} AS username, COUNT(*) AS users FROM users GROUP BY 1 HAVING COUNT(*) > 1;`,
      );
    }
  }

  // utf8mb4 takes 4 bytes a character in a key; InnoDB allows 3072 bytes a key, 767 in the old row formats.
  const keyLimit = table.engine.toLowerCase() === 'innodb' && /^(compact|redundant)$/i.test(table.rowFormat) ? 767 : 3072;
  for (const name of ['username', 'email']) {
    const column = columns.get(name);
    const length = Math.max(column?.length ?? 0, stringColumns[name]?.length ?? 0);
    if (column?.dataType === 'varchar' && (convert || (name === 'email' && !emailUnique)) && length * 4 > keyLimit) {
      problems.push(`Column ${name} (${column.columnType}) is too wide for a utf8mb4 key of at most ${keyLimit} bytes; narrow it to ${Math.floor(keyLimit / 4)} characters or use ROW_FORMAT=DYNAMIC.`);
    }
  }

  for (const [name, column] of columns) {
    if (name === 'enabled' || name in stringColumns) continue;
    if (!column.nullable && !column.generatedOrDefaulted) {
      problems.push(`Column ${name} is NOT NULL without a default, and this service does not write it; give it a default or drop it.`);
    }
  }
  return result;
}

function pending(p: Plan): boolean {
  return p.updates.length + p.tableOptions.length + p.columnChanges.length > 0;
}

/**
 * One ALTER: InnoDB applies it whole or not at all. A duplicate can only come from a writer (the Java service still
 * running?) between the check and the ALTER; the server's message would quote the value, so it is not passed on.
 */
async function alter(connection: PoolConnection, database: string, clauses: string[]): Promise<void> {
  try {
    await connection.query(`ALTER TABLE users ${clauses.join(', ')}`);
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ER_DUP_ENTRY') throw err;
    throw new Error(
      `Cannot adopt table users of database ${database}: another writer added a duplicate user name or e-mail while it was being adopted. ` +
        'Stop every other service writing to it, then start again.',
    );
  }
}

/** Adopts `users` as described above; run under the migration lock. Safe to repeat: it only does what is left. */
export async function adoptUsersTable(connection: PoolConnection, log?: MigrationLog): Promise<void> {
  const table = await readUsersTable(connection);
  const todo = await plan(connection, table);
  if (todo.problems.length > 0) {
    throw new Error(
      `Cannot adopt table users of database ${table.database}, made by another service such as the course's Java one: ${todo.problems.join(' ')} ` +
        `The table was not changed: correct it, then start again (docs/user-management.md, "Coming from the course's database").`,
    );
  }
  if (!pending(todo)) return;
  for (const statement of todo.updates) await connection.query(statement);
  if (todo.tableOptions.length) await alter(connection, table.database, todo.tableOptions);
  if (todo.columnChanges.length) await alter(connection, table.database, todo.columnChanges);
  const left = await plan(connection, await readUsersTable(connection));
  if (left.problems.length > 0 || pending(left)) {
    throw new Error(`Table users of database ${table.database} is still not in shape after adoption: ${[...left.problems, ...left.changes].join('; ')}`);
  }
  log?.info({ table: 'users', changes: todo.changes }, 'adopted a users table made by another service');
}
