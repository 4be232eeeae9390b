import mysql, { type ResultSetHeader } from 'mysql2/promise';
import type { StackEnv } from './config.js';

/** Creates the database the user management service migrates, unless it exists; true when it was created. */
export async function ensureDatabase(env: StackEnv): Promise<boolean> {
  const where = `${env.DB_USERNAME}@${env.DB_HOSTNAME}:${env.DB_PORT}`;
  let connection: mysql.Connection;
  try {
    connection = await mysql.createConnection({
      host: env.DB_HOSTNAME,
      port: env.DB_PORT,
      user: env.DB_USERNAME,
      password: env.DB_PASSWORD,
      connectTimeout: 5000,
    });
  } catch (err) {
    throw new Error(
      `no MySQL-compatible server accepted ${where} (set DB_HOSTNAME, DB_PORT, DB_USERNAME, DB_PASSWORD): ${(err as Error).message}`,
    );
  }
  try {
    // DB_NAME matched ^[A-Za-z0-9_$]{1,64}$ in the config schema, so quoting it with backticks is safe.
    const [result] = await connection.query<ResultSetHeader>(
      `CREATE DATABASE IF NOT EXISTS \`${env.DB_NAME}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
    );
    // "IF NOT EXISTS" turns the existing-database error into a warning.
    return result.warningStatus === 0;
  } catch (err) {
    throw new Error(`cannot create database ${env.DB_NAME} as ${where}: ${(err as Error).message}`);
  } finally {
    await connection.end();
  }
}
